//! When a dispatcher retries, gives up and disables, read once from the
//! configuration.

use std::time::Duration;

use crate::{config::WebhookConfig, service::webhooks::backoff::Backoff};

/// Lease time beyond one attempt: room for the database work around it.
const LEASE_MARGIN: Duration = Duration::from_secs(20);

/// When to retry, give up and disable.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Endpoints served at once by this replica.
    pub concurrency: usize,
    /// One attempt's bound.
    pub timeout: Duration,
    /// An event failing past this age is given up.
    pub max_age: Duration,
    /// Retry delays.
    pub backoff: Backoff,
    /// Consecutive failures that can disable an endpoint.
    pub disable_failures: i32,
    /// How long an endpoint must have failed before it is disabled.
    pub disable_after: Duration,
    /// How often endpoints with work are looked for.
    pub poll_interval: Duration,
    /// How long attempts are kept.
    pub attempt_retention: Duration,
}

impl Rules {
    /// Reads the rules from the configuration.
    pub fn from_config(config: &WebhookConfig) -> Self {
        Self {
            concurrency: usize::try_from(config.concurrency).unwrap_or(16).max(1),
            timeout: config.timeout,
            max_age: config.max_age,
            backoff: Backoff {
                min: config.retry_min,
                max: config.retry_max,
            },
            disable_failures: i32::try_from(config.disable_failures).unwrap_or(i32::MAX),
            disable_after: config.disable_after,
            poll_interval: config.poll_interval,
            attempt_retention: config.attempt_retention,
        }
    }

    /// How long a lease lasts: one attempt and the database work around it.
    pub fn lease(&self) -> Duration {
        self.timeout + LEASE_MARGIN
    }
}
