//! The agent's heap, for a process that runs for months: glibc's malloc tuned so that memory
//! freed after a release goes back to the kernel instead of staying with the process.
//!
//! What the soak measured (docs/performance.md): the heap in use stayed at 2–6 MiB, but glibc
//! kept ever more of it free in pieces it could not return, so RSS crept up release after
//! release. Three causes, three settings: up to 8 arenas a core, one per thread that allocated
//! (the pool threads that fetch, unpack and install each left a few MiB free that no other
//! thread reused); a threshold for mapping large blocks that rises to 32 MiB as blocks are
//! freed (after which 1 MiB buffers came from the heap and left holes in it); and holes that
//! are returned only by `malloc_trim`. Settings given in the environment (`MALLOC_ARENA_MAX`,
//! `MALLOC_MMAP_THRESHOLD_`) win. Other C libraries: nothing is done.

/// The most arenas, unless `MALLOC_ARENA_MAX` says otherwise.
const ARENAS: i32 = 2;

/// Blocks from this size up are mapped on their own and unmapped when freed, unless
/// `MALLOC_MMAP_THRESHOLD_` says otherwise; fixing it stops glibc from raising it.
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Sets the allocator up for the long-running agent: call before any other thread starts.
pub fn tune() {
    #[cfg(target_env = "gnu")]
    for (variable, param, value) in [
        ("MALLOC_ARENA_MAX", nix::libc::M_ARENA_MAX, ARENAS),
        (
            "MALLOC_MMAP_THRESHOLD_",
            nix::libc::M_MMAP_THRESHOLD,
            MMAP_THRESHOLD,
        ),
    ] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: mallopt sets one of glibc's own tunables; no memory crosses, and the
            // caller runs before other threads allocate.
            #[allow(unsafe_code)]
            let set = unsafe { nix::libc::mallopt(param, value) };
            if set == 0 {
                tracing::debug!(tunable = variable, "malloc did not take the setting");
            }
        }
    }
}

/// Gives the free pages of the heap back to the kernel; after work that allocated and freed
/// a lot (a release fetched, the cache cleaned). Blocking: it walks every arena.
pub fn give_back() {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: malloc_trim only releases memory glibc holds free; no pointer of ours is
        // involved, and it locks each arena itself.
        #[allow(unsafe_code)]
        unsafe {
            nix::libc::malloc_trim(0);
        }
    }
}
