//! Keeps the resident set near the live heap. glibc's malloc keeps what a
//! burst of work freed (the first sync, a thousand new domains at once) in
//! its per-thread arenas, so a settled controller would go on holding its
//! peak. One arena fragments less than one per thread (two workers contend
//! little for it), and a periodic trim hands whole free pages back to the
//! operating system. Other C libraries: nothing to do.

use std::time::Duration;

/// How often freed pages are handed back.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Limits malloc to one arena; call before the runtime starts its threads.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; no memory is touched.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Hands freed heap pages back to the operating system, every few seconds, forever.
pub async fn trim_periodically() {
    let mut every = tokio::time::interval(TRIM_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim is thread-safe and only hands free memory back to the system.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
