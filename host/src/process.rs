//! How this process uses memory. Figures in docs/performance.md, "Memory".

/// Turns transparent huge pages off for this process, on kernels set to `always` too: a 2 MiB
/// page zeroed for a few bytes of a thread's heap or of a fresh instance's memory costs resident
/// memory and time on every call.
pub fn disable_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and only sets a flag on this process.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}
