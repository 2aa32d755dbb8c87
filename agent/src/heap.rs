//! The agent's heap, for a process that runs for months: glibc's malloc tuned so that memory
//! freed after a release goes back to the kernel instead of staying with the process.
//!
//! What the soak measured (docs/performance.md): the memory the agent actually holds grew by
//! ~0.1 MiB over 200 releases (heaptrack), but glibc kept ever more of what was freed, so RSS
//! crept up release after release. Four causes, four settings: a cache of freed blocks in each
//! thread (tcache), which alone made most of the creep and can only be turned off as the
//! process starts (`GLIBC_TUNABLES`, so the agent starts itself again with it: [`restart_tuned`]);
//! up to 8 arenas a core, one per thread that allocated; a threshold for mapping large blocks
//! that rises to 32 MiB as blocks are freed (after which 1 MiB buffers came from the heap and
//! left holes in it); and holes that are returned only by `malloc_trim`. Settings given in the
//! environment (`GLIBC_TUNABLES`, `MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`) win. Other C
//! libraries: nothing is done.

/// What the agent starts itself with when `GLIBC_TUNABLES` is unset: no per-thread cache.
pub const TUNABLES: &str = "glibc.malloc.tcache_count=0";

/// Starts this program again, as the same process, with glibc's per-thread cache turned off,
/// unless `GLIBC_TUNABLES` is set (then it returns at once). In the program started again it
/// removes the setting from the environment, so hooks and what they start get the
/// environment the agent was given. Returns if it did not start again (then the cache stays).
///
/// Call first thing, while the process has one thread and no file open.
pub fn restart_tuned() {
    #[cfg(target_env = "gnu")]
    {
        use std::os::unix::process::CommandExt as _;
        match std::env::var_os("GLIBC_TUNABLES") {
            Some(value) if value == TUNABLES => {
                // SAFETY: called while the process has one thread (see above): nothing reads
                // the environment concurrently.
                #[allow(unsafe_code)]
                unsafe {
                    std::env::remove_var("GLIBC_TUNABLES");
                }
            }
            Some(_) => {}
            None => {
                let mut args = std::env::args_os();
                let arg0 = args.next().unwrap_or_default();
                // Only returns on failure (e.g. no /proc): run on with the cache.
                let _error = std::process::Command::new("/proc/self/exe")
                    .arg0(arg0)
                    .args(args)
                    .env("GLIBC_TUNABLES", TUNABLES)
                    .exec();
            }
        }
    }
}

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
