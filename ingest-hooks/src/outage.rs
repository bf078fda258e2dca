//! How long the control plane has been out of reach, as the hooks saw it, so an
//! admitted broadcaster is kept on air for a bounded grace and no longer.
//!
//! nginx sends `update_publish` only for a publisher it admitted through
//! `on_publish`, so the hooks may vouch for it while the control plane cannot
//! answer: up to `grace` after the first failed call of the current outage. Any
//! answer from the control plane to any call (a refusal included) ends the outage,
//! and so does a quiet spell of `STALE` without a failure: a failure long ago (a
//! broadcaster who then left, on a quiet node) never shortens a later outage's grace.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// A failure this long after the previous one starts a new outage.
const STALE: Duration = Duration::from_secs(60);

/// The current control-plane outage, if any.
#[derive(Debug, Default)]
pub struct Outage {
    /// When the first call of the current outage failed, and the latest failure;
    /// `None` while reachable.
    failures: Mutex<Option<(Instant, Instant)>>,
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
        self.failed_at(Instant::now(), grace)
    }

    /// [`Outage::failed`] at `now`.
    fn failed_at(&self, now: Instant, grace: Duration) -> Keep {
        let mut failures = self.failures();
        let since = match *failures {
            Some((since, latest)) if now.duration_since(latest) < STALE => since,
            _ => now,
        };
        *failures = Some((since, now));
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
        self.failures().take().map(|(since, _)| since.elapsed())
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Instant)>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
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

    #[test]
    fn a_failure_long_after_the_last_one_starts_a_new_outage() {
        let outage = Outage::default();
        let grace = Duration::from_secs(300);
        let t0 = Instant::now();
        assert_eq!(outage.failed_at(t0, grace), Keep::Within(Duration::ZERO));
        // Failures keep coming: one outage, growing.
        let t1 = t0 + Duration::from_secs(50);
        assert_eq!(
            outage.failed_at(t1, grace),
            Keep::Within(Duration::from_secs(50))
        );
        let t2 = t1 + Duration::from_secs(50);
        assert_eq!(
            outage.failed_at(t2, grace),
            Keep::Within(Duration::from_secs(100))
        );
        // Hours of quiet (the broadcaster left; nobody called): a new outage.
        let later = t2 + Duration::from_secs(3 * 3600);
        assert_eq!(outage.failed_at(later, grace), Keep::Within(Duration::ZERO));
    }
}
