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

/// Blocks at least this large get pages of their own (`M_MMAP_THRESHOLD`): glibc's
/// starting value, kept fixed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Limits glibc's arenas and fixes its threshold for blocks of their own; call before the
/// daemon starts its threads. `MALLOC_ARENA_MAX` and `MALLOC_MMAP_THRESHOLD_` in the
/// environment still win (glibc reads them when the first arena is made).
///
/// glibc raises the threshold to the size of every large block freed, up to 32 MB, so
/// after the first reconcile freed its buffers, large blocks came from the arenas: memory
/// handed back only by a trim, and zeroed blocks written page by page. sled's metrics
/// histograms (21.5 MB, zeroed, never written with metrics off) were resident in full for
/// that reason.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set = |var: &str, param: libc::c_int, value: libc::c_int| {
            if std::env::var_os(var).is_none() {
                // SAFETY: mallopt only changes a tunable of the allocator; `param` is valid.
                unsafe {
                    libc::mallopt(param, value);
                }
            }
        };
        set("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, ARENAS);
        set(
            "MALLOC_MMAP_THRESHOLD_",
            libc::M_MMAP_THRESHOLD,
            MMAP_THRESHOLD,
        );
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
