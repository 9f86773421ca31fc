//! How the daemon's heap behaves under glibc's allocator: few arenas, and freed memory handed
//! back after a large pass. Called by [`crate::daemon`] at start and by the live worker.
//!
//! glibc gives threads that contend for the allocator arenas of their own, up to eight per
//! core, and memory freed into one arena serves only that arena. The daemon's threads (the
//! runtime's workers, its blocking pool, sled's flusher, the hashing pool) take turns with
//! the same data, so under continuous edits each arena kept its own high-water mark and
//! the resident size crept up long after the live heap had stopped growing (README,
//! "Benchmarks": the memory benchmark with and without). Two arenas keep that in check;
//! the daemon's allocations are small and short, so they hardly contend. Other platforms
//! and allocators are left as they are.

/// Arenas glibc may create (`M_ARENA_MAX`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Limits glibc's arenas; call before the daemon starts its threads. `MALLOC_ARENA_MAX` in
/// the environment still wins (glibc reads it when the first arena is made).
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes a tunable of the allocator; M_ARENA_MAX is valid.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}

/// Hands memory the allocator holds free back to the system, after a pass that freed much
/// (a full reconcile's hashing buffers and listings): glibc keeps it otherwise, and the
/// resident size would stay at its peak while the daemon idles.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused memory of the allocator to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}
