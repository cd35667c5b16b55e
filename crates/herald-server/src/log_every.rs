//! A log line that may repeat for every request (a refused origin, a refused auth) is let through at most
//! once a second, so a hostile or broken client cannot flood the log while an operator still sees it.

use std::sync::atomic::{AtomicU64, Ordering};

/// Lets a log line through at most once a second.
pub struct LogEvery(AtomicU64);

impl LogEvery {
    pub const fn new() -> Self {
        LogEvery(AtomicU64::new(0))
    }

    /// True when the line may be logged now.
    pub fn allow(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.0.swap(now, Ordering::Relaxed) != now
    }
}
