//! The `continuum` binary.

/// mimalloc: per-request allocations on many threads are a measurable share of a node's CPU
/// under glibc malloc (`continuum bench http`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    continuum::process::disable_huge_pages();
    let code = match continuum::cli::main() {
        Ok(()) => 0,
        Err(exit) => {
            if !exit.is_broken_pipe() {
                // `error: …`, or one line of JSON with --json; control characters removed.
                eprintln!("{}", exit.report());
            }
            exit.code
        }
    };
    continuum::process::exit(code)
}
