//! The `continuum` binary.

fn main() {
    if let Err(exit) = continuum::cli::main() {
        eprintln!("error: {}", exit.message);
        std::process::exit(exit.code);
    }
}
