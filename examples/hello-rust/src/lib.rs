wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "my-plugins:hello/hello",
    with: { "continuum:host/log@0.1.0": continuum_sdk::host::log },
});

struct Hello;
impl Guest for Hello {
    fn greet(who: Greeting) -> String {
        continuum_sdk::log::info(&format!("greeting {}", who.name));
        let text = format!("Hello, {}!", who.name);
        if who.loud.unwrap_or(false) {
            text.to_uppercase()
        } else {
            text
        }
    }
}
export!(Hello);
