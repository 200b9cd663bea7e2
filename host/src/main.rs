//! The `continuum` binary.

/// mimalloc: per-request allocations on many threads are a measurable share of a node's CPU
/// under glibc malloc (`continuum bench http`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if let Err(exit) = continuum::cli::main() {
        if !exit.is_broken_pipe() {
            // Errors quote what they refuse (names, paths, fields of untrusted artifacts): no
            // escape sequence in it may reach the terminal.
            eprintln!("error: {}", continuum::terminal::strip_control(&exit.message));
        }
        std::process::exit(exit.code);
    }
}
