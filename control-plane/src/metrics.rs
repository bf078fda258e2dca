//! Control-plane metrics, served on `NOVA_METRICS_ADDR` at `/metrics`: live streams,
//! viewers, stream durations, webhook deliveries, and gRPC rate/errors/duration per
//! method.

mod grpc;

use std::{net::SocketAddr, time::Duration};

pub use grpc::{GrpcRed, GrpcRedLayer, RecordedBody, code_name};

use nova_runtime::{
    metrics::{Metrics, MetricsError, Red},
    shutdown,
};
use opentelemetry::{
    KeyValue,
    metrics::{Counter, Gauge, Histogram},
};

/// How many of the largest live audiences `nova_streaming_top_stream_viewers` ranks
/// (its `rank` label: "1" to "10", a fixed set).
pub const TOP_STREAMS: usize = 10;

/// Bucket boundaries of viewers per stream.
const VIEWER_BUCKETS: &[f64] = &[
    0.0, 1.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, 50000.0,
];
/// Bucket boundaries of stream durations, in seconds (1 min to 1 day).
const DURATION_BUCKETS: &[f64] = &[
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0,
];

/// Bucket boundaries of webhook delivery latencies, in seconds (up to the timeout).
const WEBHOOK_LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Bucket boundaries of remux durations, in seconds (1 s to 2 h).
const REMUX_BUCKETS: &[f64] = &[
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];
/// Bucket boundaries of asset sizes, in bytes (1 MiB to 64 GiB).
const ASSET_SIZE_BUCKETS: &[f64] = &[
    1_048_576.0,
    10_485_760.0,
    104_857_600.0,
    536_870_912.0,
    1_073_741_824.0,
    4_294_967_296.0,
    17_179_869_184.0,
    68_719_476_736.0,
];

/// How a remux attempt ended (the `outcome` label: a fixed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemuxOutcome {
    /// The asset became READY.
    Ready,
    /// The asset became ERRORED (attempts used up, or nothing to remux).
    Errored,
    /// The attempt failed and the job waits for another.
    Retried,
    /// The attempt lost its lease (or its asset was deleted) and stopped.
    Lost,
}

impl RemuxOutcome {
    /// Every outcome.
    pub const ALL: [Self; 4] = [Self::Ready, Self::Errored, Self::Retried, Self::Lost];

    /// Returns the label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Errored => "errored",
            Self::Retried => "retried",
            Self::Lost => "lost",
        }
    }
}

/// The control plane's instruments.
#[derive(Clone)]
pub struct CpMetrics {
    /// The registry behind `/metrics`.
    metrics: Metrics,
    /// gRPC RED.
    grpc: Red,
    /// `nova_streaming_active_streams`.
    active: Gauge<u64>,
    /// `nova_streaming_peak_viewers`.
    peak: Gauge<u64>,
    /// `nova_streaming_top_stream_viewers{rank}`.
    top: Gauge<u64>,
    /// The `rank` labels of `top`, largest audience first.
    ranks: [[KeyValue; 1]; TOP_STREAMS],
    /// `nova_streaming_viewers_total` (histogram of viewers per live stream).
    viewers: Histogram<f64>,
    /// `nova_streaming_stream_duration_seconds`.
    durations: Histogram<f64>,
    /// `nova_streaming_grpc_auth_refusals_total`.
    auth_refusals: Counter<u64>,
    /// `nova_streaming_redis_up`.
    redis_up: Gauge<u64>,
    /// `nova_streaming_events_unpublished_total`.
    unpublished: Counter<u64>,
    /// `nova_streaming_remux_jobs_total`.
    remux_jobs: Counter<u64>,
    /// `nova_streaming_remux_duration_seconds`.
    remux_duration: Histogram<f64>,
    /// `nova_streaming_asset_size_bytes`.
    asset_size: Histogram<f64>,
    /// Webhook deliveries.
    webhooks: WebhookInstruments,
}

/// The webhook dispatcher's instruments; every label is bounded.
#[derive(Clone)]
struct WebhookInstruments {
    /// `nova_streaming_webhook_deliveries_total{outcome}`.
    deliveries: Counter<u64>,
    /// `nova_streaming_webhook_delivery_duration_seconds{outcome}`.
    latency: Histogram<f64>,
    /// `nova_streaming_webhook_events_abandoned_total`.
    abandoned: Counter<u64>,
    /// `nova_streaming_webhook_endpoints_disabled_total`.
    disabled: Counter<u64>,
    /// `nova_streaming_webhook_lag_seconds`.
    lag: Gauge<f64>,
    /// `nova_streaming_webhook_failing_endpoints`.
    failing: Gauge<u64>,
}

impl CpMetrics {
    /// Creates the instruments.
    pub fn new() -> Result<Self, MetricsError> {
        let metrics = Metrics::new("control-plane")?;
        let meter = metrics.meter().clone();
        let active = meter
            .u64_gauge("nova_streaming_active_streams")
            .with_description("Streams ACTIVE now")
            .build();
        active.record(0, &[]);
        let peak = meter
            .u64_gauge("nova_streaming_peak_viewers")
            .with_description(
                "Highest concurrent viewer count of any live stream at the last sample",
            )
            .build();
        peak.record(0, &[]);
        let top = meter
            .u64_gauge("nova_streaming_top_stream_viewers")
            .with_description(
                "Concurrent viewers of the live stream ranked `rank` (1 = largest audience) at the last sample; 0 when fewer streams are live",
            )
            .build();
        let ranks = std::array::from_fn(|i| [KeyValue::new("rank", (i + 1).to_string())]);
        for rank in &ranks {
            top.record(0, rank);
        }
        let redis_up = meter
            .u64_gauge("nova_streaming_redis_up")
            .with_description(
                "1 while Redis answers this replica's probe, 0 while it is away (sessions and counts unavailable, events read from the log)",
            )
            .build();
        redis_up.record(0, &[]);
        let unpublished = meter
            .u64_counter("nova_streaming_events_unpublished")
            .with_description(
                "Lifecycle events not published to Redis pub/sub (other replicas read them from the durable log), by reason",
            )
            .build();
        for reason in ["queue_full", "redis_unavailable", "redis_error"] {
            unpublished.add(0, &[KeyValue::new("reason", reason)]);
        }
        let webhooks = WebhookInstruments {
            deliveries: meter
                .u64_counter("nova_streaming_webhook_deliveries")
                .with_description(
                    "Webhook delivery attempts, by outcome: delivered, http_error, timeout, network_error, refused",
                )
                .build(),
            latency: meter
                .f64_histogram("nova_streaming_webhook_delivery_duration")
                .with_unit("s")
                .with_description("Time from sending a webhook to its answer or failure, by outcome")
                .with_boundaries(WEBHOOK_LATENCY_BUCKETS.to_vec())
                .build(),
            abandoned: meter
                .u64_counter("nova_streaming_webhook_events_abandoned")
                .with_description(
                    "Webhook events given up after failing past NOVA_WEBHOOK_MAX_AGE",
                )
                .build(),
            disabled: meter
                .u64_counter("nova_streaming_webhook_endpoints_disabled")
                .with_description("Webhook endpoints disabled after a run of failed deliveries")
                .build(),
            lag: meter
                .f64_gauge("nova_streaming_webhook_lag")
                .with_unit("s")
                .with_description(
                    "Age of the oldest event waiting for an enabled webhook endpoint that is not failing: how far delivery lags",
                )
                .build(),
            failing: meter
                .u64_gauge("nova_streaming_webhook_failing_endpoints")
                .with_description("Enabled webhook endpoints whose last delivery attempt failed")
                .build(),
        };
        for outcome in [
            "delivered",
            "http_error",
            "timeout",
            "network_error",
            "refused",
        ] {
            webhooks
                .deliveries
                .add(0, &[KeyValue::new("outcome", outcome)]);
        }
        webhooks.abandoned.add(0, &[]);
        webhooks.disabled.add(0, &[]);
        webhooks.lag.record(0.0, &[]);
        webhooks.failing.record(0, &[]);
        let remux_jobs = meter
            .u64_counter("nova_streaming_remux_jobs")
            .with_description("Remux attempts of recorded broadcasts, by outcome")
            .build();
        for outcome in RemuxOutcome::ALL {
            remux_jobs.add(0, &[KeyValue::new("outcome", outcome.as_str())]);
        }
        Ok(Self {
            webhooks,
            redis_up,
            unpublished,
            remux_jobs,
            remux_duration: meter
                .f64_histogram("nova_streaming_remux_duration")
                .with_unit("s")
                .with_description(
                    "Time of remux attempts that made an asset READY: pieces fetched, remuxed, stored",
                )
                .with_boundaries(REMUX_BUCKETS.to_vec())
                .build(),
            asset_size: meter
                .f64_histogram("nova_streaming_asset_size")
                .with_unit("By")
                .with_description("Bytes stored per READY asset (HLS rendition and MP4)")
                .with_boundaries(ASSET_SIZE_BUCKETS.to_vec())
                .build(),
            grpc: metrics.red("grpc"),
            active,
            peak,
            top,
            ranks,
            viewers: meter
                .f64_histogram("nova_streaming_viewers_total")
                .with_description(
                    "Concurrent viewers per live stream, one observation per stream per sample",
                )
                .with_boundaries(VIEWER_BUCKETS.to_vec())
                .build(),
            durations: meter
                .f64_histogram("nova_streaming_stream_duration")
                .with_unit("s")
                .with_description(
                    "How long completed streams were live, first publish to completion",
                )
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            auth_refusals: meter
                .u64_counter("nova_streaming_grpc_auth_refusals")
                .with_description(
                    "gRPC calls refused by the service-token check, by caller role, service and reason",
                )
                .build(),
            metrics,
        })
    }

    /// Records the live picture from the concurrent viewers of every ACTIVE stream
    /// (in any order): how many there are, the largest audience, and the
    /// [`TOP_STREAMS`] largest by rank.
    pub fn live(&self, mut audiences: Vec<i64>) {
        audiences.sort_unstable_by(|a, b| b.cmp(a));
        let ranked = |i: usize| u64::try_from(audiences.get(i).copied().unwrap_or(0)).unwrap_or(0);
        self.active.record(audiences.len() as u64, &[]);
        self.peak.record(ranked(0), &[]);
        for (i, rank) in self.ranks.iter().enumerate() {
            self.top.record(ranked(i), rank);
        }
    }

    /// Records one stream's concurrent viewers (sampler leader only).
    pub fn viewers(&self, count: i64) {
        self.viewers.record(count.max(0) as f64, &[]);
    }

    /// Records a completed stream's live duration.
    pub fn completed(&self, duration: Duration) {
        self.durations.record(duration.as_secs_f64(), &[]);
    }

    /// Records whether Redis answers.
    pub fn redis_up(&self, up: bool) {
        self.redis_up.record(u64::from(up), &[]);
    }

    /// Counts lifecycle events not published to Redis; `reason` is one of
    /// `queue_full`, `redis_unavailable`, `redis_error`.
    pub fn unpublished(&self, reason: &'static str, events: usize) {
        self.unpublished.add(
            u64::try_from(events).unwrap_or(u64::MAX),
            &[KeyValue::new("reason", reason)],
        );
    }

    /// Records one webhook delivery attempt; `outcome` is one of a fixed five.
    pub fn webhook_attempt(&self, outcome: &'static str, latency: Duration) {
        let labels = [KeyValue::new("outcome", outcome)];
        self.webhooks.deliveries.add(1, &labels);
        self.webhooks.latency.record(latency.as_secs_f64(), &labels);
    }

    /// Counts a webhook event given up after its maximum age.
    pub fn webhook_abandoned(&self) {
        self.webhooks.abandoned.add(1, &[]);
    }

    /// Counts an endpoint disabled after failures.
    pub fn webhook_disabled(&self) {
        self.webhooks.disabled.add(1, &[]);
    }

    /// Records the webhook backlog: delivery lag and failing endpoints.
    pub fn webhook_backlog(&self, lag_seconds: f64, failing: u64) {
        self.webhooks.lag.record(lag_seconds, &[]);
        self.webhooks.failing.record(failing, &[]);
    }

    /// Counts one remux attempt's outcome.
    pub fn remux(&self, outcome: RemuxOutcome) {
        self.remux_jobs
            .add(1, &[KeyValue::new("outcome", outcome.as_str())]);
    }

    /// Records a READY asset: how long its remux took and the bytes it stores.
    pub fn asset_ready(&self, took: Duration, size_bytes: u64) {
        self.remux_duration.record(took.as_secs_f64(), &[]);
        self.asset_size.record(size_bytes as f64, &[]);
    }

    /// Counts a call refused by the service-token check. `role` is a role name or
    /// `none`, `service` a routed service name, `reason` one of a fixed few: every
    /// label is bounded.
    pub fn auth_refused(&self, role: &'static str, service: &'static str, reason: &'static str) {
        self.auth_refusals.add(
            1,
            &[
                KeyValue::new("role", role),
                KeyValue::new("service", service),
                KeyValue::new("reason", reason),
            ],
        );
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        self.metrics.render()
    }

    /// Returns the gRPC RED tower layer.
    pub fn grpc_layer(&self) -> GrpcRedLayer {
        GrpcRedLayer(self.grpc.clone())
    }

    /// Serves `/metrics` on `addr` until shutdown; returns the bound address.
    pub async fn serve(
        &self,
        addr: SocketAddr,
        stop: shutdown::Signal,
    ) -> Result<SocketAddr, MetricsError> {
        nova_runtime::metrics::serve(self.metrics.clone(), addr, "NOVA_METRICS_ADDR", stop).await
    }
}
