//! How long the control plane has been out of reach, as the hooks saw it, so an
//! admitted broadcaster is kept on air for a bounded grace and no longer.
//!
//! nginx sends `update_publish` only for a publisher it admitted through
//! `on_publish`, so the hooks may vouch for it while the control plane cannot
//! answer: up to `grace` after the first failed call of the current outage. Any
//! answer from the control plane ends the outage.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// The current control-plane outage, if any.
#[derive(Debug, Default)]
pub struct Outage {
    /// When the first call of the current outage failed; `None` while reachable.
    since: Mutex<Option<Instant>>,
}

/// What to do with an admitted broadcaster whose heartbeat could not be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Keep it on air; the outage has lasted this long.
    Within(Duration),
    /// Cut it off: the outage has outlasted the grace.
    Expired(Duration),
}

impl Outage {
    /// Records a failed call now; returns whether a broadcaster stays within `grace`.
    pub fn failed(&self, grace: Duration) -> Keep {
        let now = Instant::now();
        let since = *self.since().get_or_insert(now);
        let lasted = now.duration_since(since);
        if lasted < grace {
            Keep::Within(lasted)
        } else {
            Keep::Expired(lasted)
        }
    }

    /// Records an answer from the control plane; returns how long the outage that
    /// it ends lasted, if there was one.
    pub fn answered(&self) -> Option<Duration> {
        self.since().take().map(|since| since.elapsed())
    }

    fn since(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.since.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_keeps_broadcasters_within_the_grace_and_ends_with_an_answer() {
        let outage = Outage::default();
        assert_eq!(outage.answered(), None);
        assert!(matches!(
            outage.failed(Duration::from_secs(60)),
            Keep::Within(_)
        ));
        assert!(matches!(outage.failed(Duration::ZERO), Keep::Expired(_)));
        assert!(outage.answered().is_some());
        assert_eq!(outage.answered(), None, "an answer ends the outage");
        assert!(matches!(outage.failed(Duration::ZERO), Keep::Expired(_)));
    }
}
