//! Ingest metrics on `/metrics`: callback decision time, broadcast errors, HLS
//! segment generation time, and HTTP rate/errors/duration.

use std::time::Duration;

use nova_runtime::metrics::{LATENCY_BUCKETS, Metrics, MetricsError, Red};
use opentelemetry::{
    KeyValue,
    metrics::{Counter, Gauge, Histogram},
};

/// Bucket boundaries of segment generation time (1 s fragments expected).
const SEGMENT_BUCKETS: &[f64] = &[0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0];

/// The hooks' instruments.
#[derive(Clone)]
pub struct HooksMetrics {
    /// The registry behind `/metrics`.
    metrics: Metrics,
    /// HTTP RED.
    http: Red,
    /// `nova_streaming_rtmp_ingestion_latency_seconds{callback}`.
    decision: Histogram<f64>,
    /// `nova_streaming_broadcast_errors_total{reason}`.
    errors: Counter<u64>,
    /// `nova_streaming_hls_segment_generation_seconds`.
    segments: Histogram<f64>,
    /// `nova_streaming_ingest_streams{quality}`.
    qualities: Gauge<u64>,
    /// `nova_streaming_playback_rules_age_seconds`: how old the verifier's rules are.
    rules_age: Gauge<f64>,
    /// `nova_streaming_playback_decisions_total{result}`.
    playback: Counter<u64>,
    /// `nova_streaming_recorded_pieces_total{result}`.
    recordings: Counter<u64>,
}

/// Quality classes of live streams by source height (the `quality` label).
pub const QUALITIES: [&str; 7] = ["2160p", "1440p", "1080p", "720p", "480p", "360p", "lower"];

/// Returns the quality class of a source `height`.
pub fn quality_of(height: i32) -> &'static str {
    match height {
        h if h >= 2160 => "2160p",
        h if h >= 1440 => "1440p",
        h if h >= 1080 => "1080p",
        h if h >= 720 => "720p",
        h if h >= 480 => "480p",
        h if h >= 360 => "360p",
        _ => "lower",
    }
}

/// Why a broadcast went wrong (a fixed set: the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BroadcastError {
    /// A publish was refused (bad, rotated or completed key).
    PublishRefused,
    /// A live broadcaster was cut off (stream ended, key rotated).
    CutOff,
    /// The control plane could not be reached.
    ControlPlaneUnavailable,
    /// nginx sent a callback we could not parse.
    MalformedCallback,
    /// A callback came without the shared secret.
    UnauthenticatedCallback,
    /// A publish was refused at once: its address used up its failed-publish budget.
    PublishThrottled,
    /// A heartbeat could not reach the control plane; the broadcaster was kept on
    /// air within the outage grace.
    HeartbeatUndelivered,
}

impl BroadcastError {
    fn label(self) -> &'static str {
        match self {
            Self::PublishRefused => "publish_refused",
            Self::CutOff => "cut_off",
            Self::ControlPlaneUnavailable => "control_plane_unavailable",
            Self::MalformedCallback => "malformed_callback",
            Self::UnauthenticatedCallback => "unauthenticated_callback",
            Self::PublishThrottled => "publish_throttled",
            Self::HeartbeatUndelivered => "heartbeat_undelivered",
        }
    }
}

impl HooksMetrics {
    /// Creates the instruments.
    pub fn new() -> Result<Self, MetricsError> {
        let metrics = Metrics::new("ingest-hooks")?;
        let meter = metrics.meter().clone();
        let errors = meter
            .u64_counter("nova_streaming_broadcast_errors")
            .with_description("Broadcast failures seen at ingest, by reason")
            .build();
        for reason in [
            BroadcastError::PublishRefused,
            BroadcastError::CutOff,
            BroadcastError::ControlPlaneUnavailable,
            BroadcastError::MalformedCallback,
            BroadcastError::UnauthenticatedCallback,
            BroadcastError::PublishThrottled,
            BroadcastError::HeartbeatUndelivered,
        ] {
            errors.add(0, &[KeyValue::new("reason", reason.label())]);
        }
        let recordings = meter
            .u64_counter("nova_streaming_recorded_pieces")
            .with_description(
                "Recorded pieces handed to the control plane, by result (taken, unwanted, failed: retried at the next sweep)",
            )
            .build();
        for outcome in [
            crate::recordings::HandOver::Taken,
            crate::recordings::HandOver::Unwanted,
            crate::recordings::HandOver::Failed,
        ] {
            recordings.add(0, &[KeyValue::new("result", outcome.as_str())]);
        }
        Ok(Self {
            recordings,
            http: metrics.red("http"),
            decision: meter
                .f64_histogram("nova_streaming_rtmp_ingestion_latency")
                .with_unit("s")
                .with_description("Time to answer an nginx-rtmp callback, by callback")
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build(),
            errors,
            segments: meter
                .f64_histogram("nova_streaming_hls_segment_generation")
                .with_unit("s")
                .with_description(
                    "Time between consecutive HLS segments of a stream, from the output folder",
                )
                .with_boundaries(SEGMENT_BUCKETS.to_vec())
                .build(),
            qualities: meter
                .u64_gauge("nova_streaming_ingest_streams")
                .with_description("Live streams on this ingest node by source quality class")
                .build(),
            rules_age: meter
                .f64_gauge("nova_streaming_playback_rules_age")
                .with_unit("s")
                .with_description(
                    "Seconds since the playback verifier last read its rules (since start-up if never)",
                )
                .build(),
            playback: meter
                .u64_counter("nova_streaming_playback_decisions")
                .with_description(
                    "Answers of the playback verifier to nginx (not counting its decision cache), by result",
                )
                .build(),
            metrics,
        })
    }

    /// Records how long a callback took to answer.
    pub fn callback(&self, callback: &'static str, elapsed: Duration) {
        self.decision.record(
            elapsed.as_secs_f64(),
            &[KeyValue::new("callback", callback)],
        );
    }

    /// Counts a broadcast error.
    pub fn error(&self, error: BroadcastError) {
        self.errors
            .add(1, &[KeyValue::new("reason", error.label())]);
    }

    /// Records the time between two segments of a stream.
    pub fn segment(&self, elapsed: Duration) {
        self.segments.record(elapsed.as_secs_f64(), &[]);
    }

    /// Records how many live streams this node has per quality class, given their
    /// source heights.
    pub fn qualities(&self, heights: &[i32]) {
        for quality in QUALITIES {
            let n = heights
                .iter()
                .filter(|h| quality_of(**h) == quality)
                .count() as u64;
            self.qualities
                .record(n, &[KeyValue::new("quality", quality)]);
        }
    }

    /// Counts a playback decision; `result` is `public`, `granted` or a refusal
    /// reason (a fixed set).
    pub fn playback(&self, result: &'static str) {
        self.playback.add(1, &[KeyValue::new("result", result)]);
    }

    /// Counts a recorded piece's hand-over.
    pub fn recording(&self, outcome: crate::recordings::HandOver) {
        self.recordings
            .add(1, &[KeyValue::new("result", outcome.as_str())]);
    }

    /// Records how old the playback rules are (updated at every refresh attempt).
    pub fn rules_age(&self, age: Duration) {
        self.rules_age.record(age.as_secs_f64(), &[]);
    }

    /// Returns the HTTP RED instruments.
    pub fn http(&self) -> Red {
        self.http.clone()
    }

    /// Returns the registry.
    pub fn registry(&self) -> &Metrics {
        &self.metrics
    }
}
