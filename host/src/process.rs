//! How this process uses memory and how it ends. Figures in docs/performance.md.

/// Turns transparent huge pages off for this process, on kernels set to `always` too: a 2 MiB
/// page zeroed for a few bytes of a thread's heap or of a fresh instance's memory costs resident
/// memory and time on every call.
pub fn disable_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and only sets a flag on this process.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

/// Ends the process with `code` once `main`'s work is done and dropped (databases closed, the
/// log's writer joined), flushing standard output but skipping the C exit handlers: mimalloc
/// handing every arena back to the system and the C++ libraries' static destructors only cost
/// time by then (≈ 2 % of a `continuum run`).
pub fn exit(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` ends the process at once; everything that must outlive it was flushed.
    unsafe { libc::_exit(code) }
}
