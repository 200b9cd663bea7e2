//! Test fixture: a stream in an exported signature, which the host refuses at install.

wit_bindgen::generate!({ path: "wit", world: "streamy" });

struct Fixture;

impl Guest for Fixture {
    fn numbers(_n: u32) -> wit_bindgen::StreamReader<u8> {
        let (_writer, reader) = wit_stream::new();
        reader
    }
}

export!(Fixture);
