//! Keeping the server's resident memory near what it holds. glibc's allocator gives threads that
//! allocate at the same time arenas of their own and keeps freed memory in them; after a burst of
//! registrations (each reads its archive on a blocking thread) that is megabytes per thread the
//! process no longer uses. Few blocking threads that exit soon when idle, two arenas, and freed
//! memory handed back to the system every few seconds keep memory flat after load.

use std::time::Duration;

/// How often freed memory is handed back; a trim of a quiet heap takes microseconds.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(5);

/// Blocking threads (archive reads, commits): more than a few only queue for the same cores.
pub const MAX_BLOCKING_THREADS: usize = 8;

/// The server's runtime: a worker per core, and few blocking threads that do not linger.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_keep_alive(Duration::from_secs(2))
        .build()
}

/// Before any thread starts: two arenas for all threads.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator settings, and no other thread runs yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands freed memory back to the system every `TRIM_INTERVAL`, for as long as the runtime runs.
pub fn spawn_trimmer() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::spawn(async {
        let mut every = tokio::time::interval(TRIM_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            // SAFETY: malloc_trim is thread-safe and only releases memory that is already free.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    });
}
