//! Whether Redis answers now, as last seen by the availability probe
//! ([`crate::health`]). Calls that need Redis check it first and fail at once
//! (UNAVAILABLE) instead of waiting for a connection that will not come.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

/// Shared flag: `true` while Redis answers.
#[derive(Debug, Clone, Default)]
pub struct Availability(Arc<AtomicBool>);

impl Availability {
    /// Returns a flag in the given state.
    pub fn new(up: bool) -> Self {
        Self(Arc::new(AtomicBool::new(up)))
    }

    /// Returns true while Redis answers.
    pub fn is_up(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Records the probe's verdict; returns the previous one.
    pub fn set(&self, up: bool) -> bool {
        self.0.swap(up, Ordering::Relaxed)
    }

    /// Returns `Ok` while Redis answers, else the error a caller gets.
    pub fn check(&self) -> redis::RedisResult<()> {
        if self.is_up() {
            Ok(())
        } else {
            Err(super::unavailable("Redis is away; retry later"))
        }
    }
}
