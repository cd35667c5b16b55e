//! A token bucket per connection, for client events and for inbound messages in general. Plain state owned
//! by the session: no locks, no timers.

use std::time::Instant;

/// Allows `rate` actions a second on average, with bursts up to `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(rate: u32, burst: u32) -> Self {
        let burst = burst.max(1) as f64;
        RateLimiter {
            rate: rate as f64,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes one token at `now`; false when the bucket is empty.
    pub fn allow_at(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub fn allow(&mut self) -> bool {
        self.allow_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10, 10);
        let allowed = (0..30).filter(|_| limiter.allow_at(start)).count();
        assert_eq!(allowed, 10);
        assert!(limiter.allow_at(start + Duration::from_millis(100)));
        assert!(!limiter.allow_at(start + Duration::from_millis(100)));
        let later = start + Duration::from_secs(5);
        assert_eq!((0..30).filter(|_| limiter.allow_at(later)).count(), 10);
    }
}
