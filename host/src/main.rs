//! The `continuum` binary.

fn main() {
    if let Err(exit) = continuum::cli::main() {
        if !exit.is_broken_pipe() {
            eprintln!("error: {}", exit.message);
        }
        std::process::exit(exit.code);
    }
}
