//! The Redis availability probe: PINGs Redis every half second and reports the
//! verdict three ways: the [`Availability`] flag that session calls check first, the
//! gauge `nova_streaming_redis_up`, and the gRPC health service `nova.redis`, which
//! is SERVING only while Redis answers *and* this replica's pub/sub subscription is
//! up (so viewer counts flow). The server as a whole (`""`) and the nova services
//! stay SERVING: publish decisions, stream CRUD and lifecycle events need only
//! PostgreSQL. Each change is logged once.

use std::time::Duration;

use tokio::time::Instant;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    metrics::CpMetrics,
    redis::{Redis, availability::Availability},
    service::live::Hub,
    shutdown,
};

/// The gRPC health service name that reports Redis.
pub const REDIS_HEALTH: &str = "nova.redis";
/// Time between probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// Longest a probe may take before Redis counts as away.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What the probe reports to.
pub struct RedisProbe {
    /// Redis connections.
    pub redis: Redis,
    /// The flag session calls check.
    pub availability: Availability,
    /// The live hub, whose subscription counts towards readiness.
    pub hub: Hub,
    /// gRPC health.
    pub reporter: HealthReporter,
    /// The gauge.
    pub metrics: CpMetrics,
}

impl RedisProbe {
    /// Publishes the current verdict (at start-up, before serving); returns whether
    /// `nova.redis` is SERVING.
    pub async fn report(&self) -> bool {
        let up = self.availability.is_up();
        self.metrics.redis_up(up);
        let ready = up && self.hub.subscribed();
        let status = if ready {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status(REDIS_HEALTH, status).await;
        ready
    }

    /// Probes until shutdown.
    pub async fn run(self, stop: shutdown::Signal) {
        let stopped = stop.wait();
        tokio::pin!(stopped);
        let mut tick = shutdown::steady(PROBE_INTERVAL);
        let mut since = Instant::now();
        let mut ready = self.report().await;
        loop {
            tokio::select! {
                () = &mut stopped => return,
                _ = tick.tick() => {}
            }
            let result = self.redis.ping(PROBE_TIMEOUT).await;
            let up = result.is_ok();
            let changed = self.availability.set(up) != up;
            if changed {
                match &result {
                    Ok(()) => tracing::info!(
                        outage_s = since.elapsed().as_secs_f64(),
                        "Redis answers again: sessions and counts available"
                    ),
                    Err(err) => tracing::warn!(
                        error = %err,
                        "Redis unavailable: session calls answer UNAVAILABLE; publishes, stream calls and lifecycle events go on from PostgreSQL"
                    ),
                }
                since = Instant::now();
            }
            if changed || ready != (up && self.hub.subscribed()) {
                ready = self.report().await;
            }
        }
    }
}
