//! Shutdown signalling: one trigger fans out to every task that waits on it.

use tokio::sync::watch;

/// Sends the shutdown signal.
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

/// Waits for the shutdown signal; cheap to clone.
#[derive(Debug, Clone)]
pub struct Signal(watch::Receiver<bool>);

/// Creates a connected trigger and signal.
pub fn channel() -> (Trigger, Signal) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Signal(rx))
}

impl Trigger {
    /// Tells every signal holder to shut down.
    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

impl Signal {
    /// Resolves once shutdown was triggered (or the trigger was dropped).
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|fired| *fired).await;
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
pub fn steady(period: std::time::Duration) -> tokio::time::Interval {
    let period = period.max(std::time::Duration::from_millis(1));
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

/// A steady clock that stops with shutdown: `while ticker.tick().await { … }`.
/// The first tick is immediate.
#[derive(Debug)]
pub struct Ticker {
    interval: tokio::time::Interval,
    stop: watch::Receiver<bool>,
}

impl Ticker {
    /// Ticks every `period` until `stop` fires.
    pub fn new(period: std::time::Duration, stop: Signal) -> Self {
        Self {
            interval: steady(period),
            stop: stop.0,
        }
    }

    /// Waits for the next tick; `false` once shutdown was triggered.
    pub async fn tick(&mut self) -> bool {
        if *self.stop.borrow() {
            return false;
        }
        tokio::select! {
            _ = self.stop.wait_for(|fired| *fired) => false,
            _ = self.interval.tick() => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
}
