//! Per-IP token buckets for mutations.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// A token bucket per client address, refilled continuously.
#[derive(Clone)]
pub struct RateLimiter {
    /// Buckets: tokens left and when they were last refilled.
    buckets: Arc<Mutex<HashMap<IpAddr, (f64, Instant)>>>,
    /// Bucket size (burst) = the per-minute allowance.
    capacity: f64,
    /// Tokens added per second.
    refill_per_s: f64,
}

/// Most buckets kept; beyond it, idle ones are dropped.
const MAX_BUCKETS: usize = 100_000;

impl RateLimiter {
    /// Allows `per_minute` requests a minute per address, in bursts of as many.
    pub fn new(per_minute: u32) -> Self {
        Self {
            buckets: Arc::default(),
            capacity: f64::from(per_minute),
            refill_per_s: f64::from(per_minute) / 60.0,
        }
    }

    /// Takes a token for `ip`; on refusal returns the seconds until one is available.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            let full_after = Duration::from_secs_f64(self.capacity / self.refill_per_s);
            buckets.retain(|_, (_, at)| now.duration_since(*at) < full_after);
        }
        let (tokens, at) = buckets.entry(ip).or_insert((self.capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.refill_per_s)
            .min(self.capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.refill_per_s).ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_per_address() {
        let limiter = RateLimiter::new(3);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        assert!((0..3).all(|_| limiter.check(a).is_ok()));
        let wait = limiter.check(a).unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(limiter.check(b).is_ok());
    }
}
