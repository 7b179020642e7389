//! Keeping the server's resident memory near what it holds. glibc's allocator keeps freed memory
//! in its arenas (one per thread that allocated at the same time as another); after a burst of
//! registrations or large lists that is megabytes the process no longer uses. Handing it back to
//! the system every few seconds keeps memory flat after load.

use std::time::Duration;

/// How often freed memory is handed back; a trim of a quiet heap takes microseconds.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(5);

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
