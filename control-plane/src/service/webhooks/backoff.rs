//! When a failing endpoint is tried again: exponential backoff with jitter, as a
//! function of the failure count. The count lives in PostgreSQL (the endpoint's run
//! of failures, across replicas and restarts), so the delay is computed from it at
//! each failure rather than drawn from an in-process retry loop such as `backon`'s.

use std::time::Duration;

/// Retry delays: `min` after the first failure, doubling per consecutive failure, at
/// most `max`; each delay is drawn between half and all of that (jitter), so
/// endpoints that failed together do not come back together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub min: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Backoff {
    /// Returns the delay after `failures` consecutive failures (at least 1); `jitter`
    /// in `[0, 1)` picks where in the upper half of the delay the retry lands.
    pub fn delay(&self, failures: i32, jitter: f64) -> Duration {
        let exponent = u32::try_from(failures.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let full = self
            .min
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max.max(self.min));
        full.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_in_the_upper_half() {
        let backoff = Backoff {
            min: Duration::from_secs(10),
            max: Duration::from_secs(3600),
        };
        let full = |n| backoff.delay(n, 1.0);
        assert_eq!(full(1), Duration::from_secs(10));
        assert_eq!(full(2), Duration::from_secs(20));
        assert_eq!(full(4), Duration::from_secs(80));
        assert_eq!(full(9), Duration::from_secs(2560));
        assert_eq!(full(10), Duration::from_secs(3600));
        assert_eq!(full(1000), Duration::from_secs(3600));
        assert_eq!(backoff.delay(1, 0.0), Duration::from_secs(5));
        assert_eq!(backoff.delay(0, 1.0), Duration::from_secs(10));
        assert_eq!(backoff.delay(3, 0.5), Duration::from_secs(30));
    }
}
