//! Shutdown signalling and draining: one trigger cancels a `CancellationToken` that
//! every task waits on, and [`Tasks`] (a `TaskTracker`) joins the background tasks
//! with a deadline.

use std::{future::Future, time::Duration};

use tokio_util::{
    sync::{CancellationToken, WaitForCancellationFutureOwned},
    task::{TaskTracker, task_tracker::TaskTrackerToken},
};

/// Sends the shutdown signal; dropping it signals too (a lost trigger means shutdown).
#[derive(Debug)]
pub struct Trigger(CancellationToken);

/// Waits for the shutdown signal; cheap to clone.
#[derive(Debug, Clone)]
pub struct Signal(CancellationToken);

/// Creates a connected trigger and signal.
pub fn channel() -> (Trigger, Signal) {
    let token = CancellationToken::new();
    (Trigger(token.clone()), Signal(token))
}

impl Trigger {
    /// Tells every signal holder to shut down.
    pub fn fire(&self) {
        self.0.cancel();
    }
}

impl Drop for Trigger {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl Signal {
    /// Resolves once shutdown was triggered (or the trigger was dropped).
    pub fn wait(self) -> WaitForCancellationFutureOwned {
        self.0.cancelled_owned()
    }

    /// Tells whether shutdown was triggered.
    pub fn fired(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Returns the underlying cancellation token (cancelling it shuts down too).
    pub fn token(&self) -> CancellationToken {
        self.0.clone()
    }
}

/// The background tasks of one service, joined on shutdown; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Tasks(TaskTracker);

/// Background tasks still running when the drain deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("{0} background task(s) still running after the {1:?} drain deadline")]
pub struct Unfinished(pub usize, pub Duration);

impl Tasks {
    /// Creates an empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns `task` and tracks it.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.spawn(task)
    }

    /// Returns a guard that counts as one running task until dropped (for work
    /// spawned by someone else, such as a WebSocket served by axum).
    pub fn guard(&self) -> TaskTrackerToken {
        self.0.token()
    }

    /// Returns how many tasks (and guards) are running.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Tells whether nothing is running.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Stops accepting the end of the set as final and waits until every task has
    /// finished, at most `deadline`.
    pub async fn join(&self, deadline: Duration) -> Result<(), Unfinished> {
        self.0.close();
        tokio::time::timeout(deadline, self.0.wait())
            .await
            .map_err(|_| Unfinished(self.0.len(), deadline))
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn os_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// An interval that waits a full period after a late tick instead of bursting to
/// catch up. A zero period (e.g. a `0s` setting) is taken as one millisecond.
pub fn steady(period: Duration) -> tokio::time::Interval {
    let period = period.max(Duration::from_millis(1));
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

/// A steady clock that stops with shutdown: `while ticker.tick().await { … }`.
/// The first tick is immediate.
#[derive(Debug)]
pub struct Ticker {
    /// The clock.
    interval: tokio::time::Interval,
    /// Shutdown.
    stop: CancellationToken,
}

impl Ticker {
    /// Ticks every `period` until `stop` fires.
    pub fn new(period: Duration, stop: Signal) -> Self {
        Self {
            interval: steady(period),
            stop: stop.0,
        }
    }

    /// Waits for the next tick; `false` once shutdown was triggered.
    pub async fn tick(&mut self) -> bool {
        if self.stop.is_cancelled() {
            return false;
        }
        tokio::select! {
            () = self.stop.cancelled() => false,
            _ = self.interval.tick() => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_ticker_ticks_until_shutdown_then_stays_stopped() {
        let (trigger, signal) = channel();
        let mut ticker = Ticker::new(Duration::from_secs(1), signal);
        assert!(ticker.tick().await, "first tick is immediate");
        assert!(ticker.tick().await, "second tick after one period");
        trigger.fire();
        assert!(!ticker.tick().await, "stopped after the trigger");
        assert!(!ticker.tick().await, "and stays stopped");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_trigger_stops_the_ticker() {
        let (trigger, signal) = channel();
        let mut ticker = Ticker::new(Duration::from_secs(3600), signal);
        assert!(ticker.tick().await);
        drop(trigger);
        assert!(!ticker.tick().await, "a lost trigger means shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn join_waits_for_tasks_and_guards_then_gives_up_at_the_deadline() {
        let (trigger, signal) = channel();
        let tasks = Tasks::new();
        let mut ticker = Ticker::new(Duration::from_secs(1), signal.clone());
        tasks.spawn(async move { while ticker.tick().await {} });
        let guard = tasks.guard();
        tasks.spawn(signal.wait());
        assert_eq!(tasks.len(), 3);
        trigger.fire();
        let Err(Unfinished(left, _)) = tasks.join(Duration::from_secs(5)).await else {
            panic!("a held guard keeps the set open");
        };
        assert_eq!(left, 1, "only the guard is left");
        drop(guard);
        tasks
            .join(Duration::from_secs(5))
            .await
            .expect("every task joined");
        assert!(tasks.is_empty());
    }
}
