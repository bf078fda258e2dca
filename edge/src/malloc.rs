//! The edge's allocator settings. The edge keeps glibc's malloc (mimalloc raised its
//! memory per socket from about 7–8 to 13 KiB, see G1 in docs/benchmarks.md), limited
//! to one arena: glibc gives threads arenas of their own (up to eight per core), and a
//! socket's long-lived allocations land in whichever arena its task last ran on, each
//! arena holding partly used pages. On the 2-core box (2026-12-02, five alternating
//! runs each) 2,000 sockets cost 7.4 KiB each on average with one arena (at most 7.8)
//! against 8.0 KiB (at most 8.8) without; at 5,000 sockets both were 6.6–6.7 KiB.
//! Small allocations still take no lock: glibc's per-thread cache serves them.

/// Limits glibc's malloc to one arena. Call it first in `main`, before the runtime
/// starts its threads (a thread that has allocated keeps its arena). A no-op where
/// the C library is not glibc.
pub fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt has no memory-safety preconditions: it changes a malloc
    // parameter under malloc's own lock, and no allocation depends on the value.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
