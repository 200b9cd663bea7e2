//! Test fixture: misbehaves on purpose so tests can check that the sandbox contains it.

wit_bindgen::generate!({
    path: ["../../../wit", "wit"],
    world: "continuum-tests:misbehave/misbehave",
    with: {
        "continuum:host/commands@0.1.0": continuum_sdk::host::commands,
        "continuum:host/log@0.1.0": continuum_sdk::host::log,
    },
});

struct Misbehave;

impl Guest for Misbehave {
    fn spin() -> u64 {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }

    fn hog(mib: u32) -> u32 {
        let mut kept: Vec<Vec<u8>> = Vec::new();
        for _ in 0..mib {
            kept.push(vec![1u8; 1 << 20]);
        }
        std::hint::black_box(&kept);
        kept.len() as u32
    }

    fn crash(message: String) {
        panic!("{message}");
    }

    fn shout(bytes: u32) -> String {
        "A".repeat(bytes as usize)
    }

    fn chatter(bytes: u32) {
        use std::io::Write;
        let line = [b'x'; 1024];
        let mut out = std::io::stdout().lock();
        let mut left = bytes as usize;
        while left > 0 {
            let n = left.min(line.len());
            out.write_all(&line[..n]).expect("stdout closed");
            left -= n;
        }
        out.flush().expect("stdout closed");
    }

    fn noisy() -> String {
        println!("\x1b[31mred\x1b[0m \x1b]0;pwned\x07title");
        eprintln!("\x1b[2Jcleared");
        continuum_sdk::log::warn("\x1b[1mbold\x1b[0m log");
        "\x1b[32mgreen\x1b[0m".to_string()
    }

    fn flood(times: u32) -> u32 {
        for i in 0..times {
            continuum_sdk::log::debug(&format!("flood {i}"));
        }
        times
    }

    fn recurse(depth: u32) -> u32 {
        if depth == 0 {
            0
        } else {
            std::hint::black_box(Self::recurse(depth - 1)) + 1
        }
    }

    fn relay(command: String, params: String) -> Result<String, String> {
        let params: serde_json::Value = serde_json::from_str(&params).map_err(|e| e.to_string())?;
        continuum_sdk::commands::call(&command, &params)
            .map(|v| v.to_string())
            .map_err(|e| continuum_sdk::commands::message(&e).to_string())
    }
}

export!(Misbehave);
