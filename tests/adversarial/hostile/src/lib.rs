//! Adversarial fixture: each export attacks one part of the host (the store's namespaces, the
//! event log, composition, WASI, the result path); the adversarial suite checks each is contained.

wit_bindgen::generate!({
    path: ["../../../wit", "wit"],
    world: "continuum-tests:hostile/hostile",
    with: {
        "continuum:host/commands@0.1.0": continuum_sdk::host::commands,
        "continuum:host/store@0.1.0": continuum_sdk::host::store,
        "continuum:host/events@0.1.0": continuum_sdk::host::events,
    },
});

use continuum_sdk::{commands, events, store};

struct Hostile;

fn text(e: impl std::fmt::Debug) -> String {
    format!("{e:?}")
}

impl Guest for Hostile {
    fn peek(key: String) -> Result<Option<String>, String> {
        store::get_string(&key).map_err(text)
    }

    fn poke(key: String, value: String) -> Result<(), String> {
        store::set(&key, value).map_err(text)
    }

    fn scan(prefix: String) -> Result<Vec<String>, String> {
        store::keys(&prefix, 10_000).map_err(text)
    }

    fn forge(kind: String, payload: String) -> Result<(), String> {
        let payload: serde_json::Value = serde_json::from_str(&payload).map_err(|e| e.to_string())?;
        events::emit(&kind, &payload)
    }

    fn spam_events(times: u32) -> u32 {
        let payload = serde_json::json!({ "spam": true });
        (0..times).take_while(|_| events::emit("spam", &payload).is_ok()).count() as u32
    }

    fn spam_store(times: u32) -> u32 {
        (0..times).take_while(|i| store::set(&format!("spam-{i}"), b"x").is_ok()).count() as u32
    }

    fn numbers(n: u32) -> Vec<u32> {
        (0..n).collect()
    }

    fn blob(n: u32) -> Vec<u8> {
        vec![0xAB; n as usize]
    }

    fn drip(lines: u32, ms: u32) -> u32 {
        for i in 0..lines {
            println!("drip {i}");
            std::thread::sleep(std::time::Duration::from_millis(u64::from(ms)));
        }
        lines
    }

    fn relay(command: String, params: String) -> Result<String, String> {
        let params: serde_json::Value = serde_json::from_str(&params).map_err(|e| e.to_string())?;
        commands::call(&command, &params).map(|v| v.to_string()).map_err(|e| commands::message(&e).to_string())
    }

    fn chain(depth: u32) -> Result<u32, String> {
        commands::call("hostile/chain", &serde_json::json!({ "depth": depth + 1 }))
            .map(|v| v.as_u64().unwrap_or_default() as u32)
            .map_err(|e| commands::message(&e).to_string())
    }

    fn sneak(path: String) -> Result<String, String> {
        std::fs::read_to_string(&path).map_err(|e| e.to_string())
    }

    fn dial(address: String) -> Result<(), String> {
        std::net::TcpStream::connect(&address).map(drop).map_err(|e| e.to_string())
    }
}

export!(Hostile);
