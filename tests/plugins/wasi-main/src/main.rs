//! A plain WASI program, as any toolchain builds one: what it does is chosen by its first
//! argument, so the tests can drive every path of a program command.

use std::io::{Read, Write};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        // Echo the arguments, the environment variable GREETING and stdin (upper-cased).
        Some("echo") => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input).unwrap();
            println!("argv: {}", args.join(" "));
            println!("greeting: {}", std::env::var("GREETING").unwrap_or_else(|_| "(none)".into()));
            println!("env count: {}", std::env::vars().count());
            print!("{}", input.to_uppercase());
            eprintln!("to stderr");
        }
        // Exit with the code given.
        Some("exit") => {
            eprintln!("exiting");
            std::process::exit(args.get(2).and_then(|c| c.parse().ok()).unwrap_or(1));
        }
        // Read a file (only reachable through a lent folder), or try to write one.
        Some("read") => match std::fs::read_to_string(&args[2]) {
            Ok(text) => print!("{text}"),
            Err(e) => {
                eprintln!("cannot read {}: {e}", args[2]);
                std::process::exit(2);
            }
        },
        Some("write") => match std::fs::write(&args[2], "written by the guest") {
            Ok(()) => println!("wrote {}", args[2]),
            Err(e) => {
                eprintln!("cannot write {}: {e}", args[2]);
                std::process::exit(2);
            }
        },
        // Write bytes that are not UTF-8.
        Some("binary") => std::io::stdout().write_all(&[0xff, 0xfe, 0x00, 0x41]).unwrap(),
        // Write without end (the output cap stops it).
        Some("flood") => {
            let block = vec![b'x'; 1 << 16];
            let mut out = std::io::stdout();
            loop {
                if out.write_all(&block).is_err() {
                    std::process::exit(3);
                }
            }
        }
        // Panic (a trap, not an exit).
        Some("panic") => panic!("the program panicked"),
        _ => {
            eprintln!("usage: wasi-main echo|exit N|read PATH|write PATH|binary|flood|panic");
            std::process::exit(64);
        }
    }
}
