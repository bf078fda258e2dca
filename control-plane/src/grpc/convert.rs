//! Conversions between the service's domain types and protos.

use chrono::{DateTime, Utc};
use nova_proto::v1;

use crate::{
    error::Error,
    grpc::name::stream_name,
    service::{
        PlaybackPolicy, Stream, StreamStatus,
        events::{Playback, Rendition},
        health::Health,
    },
};

/// Converts a timestamp to its proto form.
pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// Converts milliseconds to a proto duration.
pub fn duration_ms(ms: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// Converts a lifecycle state to its proto enum.
pub fn status_to_proto(status: StreamStatus) -> v1::StreamStatus {
    match status {
        StreamStatus::Pending => v1::StreamStatus::Pending,
        StreamStatus::Active => v1::StreamStatus::Active,
        StreamStatus::Interrupted => v1::StreamStatus::Interrupted,
        StreamStatus::Completed => v1::StreamStatus::Completed,
    }
}

/// Converts a proto enum value to a lifecycle state; `None` for UNSPECIFIED or unknown.
pub fn status_from_proto(raw: i32) -> Option<StreamStatus> {
    match v1::StreamStatus::try_from(raw).ok()? {
        v1::StreamStatus::Unspecified => None,
        v1::StreamStatus::Pending => Some(StreamStatus::Pending),
        v1::StreamStatus::Active => Some(StreamStatus::Active),
        v1::StreamStatus::Interrupted => Some(StreamStatus::Interrupted),
        v1::StreamStatus::Completed => Some(StreamStatus::Completed),
    }
}

/// Converts a playback policy to its proto enum.
pub fn policy_to_proto(policy: PlaybackPolicy) -> v1::PlaybackPolicy {
    match policy {
        PlaybackPolicy::Public => v1::PlaybackPolicy::Public,
        PlaybackPolicy::Signed => v1::PlaybackPolicy::Signed,
    }
}

/// Converts a proto enum value to a playback policy; UNSPECIFIED is `default`, an
/// unknown value is INVALID_ARGUMENT naming `field`.
pub fn policy_from_proto(
    field: &'static str,
    raw: i32,
    default: Option<PlaybackPolicy>,
) -> Result<Option<PlaybackPolicy>, Error> {
    match v1::PlaybackPolicy::try_from(raw) {
        Ok(v1::PlaybackPolicy::Unspecified) => Ok(default),
        Ok(v1::PlaybackPolicy::Public) => Ok(Some(PlaybackPolicy::Public)),
        Ok(v1::PlaybackPolicy::Signed) => Ok(Some(PlaybackPolicy::Signed)),
        Err(_) => Err(Error::invalid(
            field,
            format!("unknown playback policy {raw}"),
        )),
    }
}

/// Converts a stream to its proto. Never carries the key or its hash.
pub fn stream_to_proto(stream: &Stream) -> v1::Stream {
    v1::Stream {
        name: stream_name(stream.id),
        stream_id: stream.id.to_string(),
        owner: stream.owner.clone(),
        title: stream.title.clone(),
        status: status_to_proto(stream.status).into(),
        create_time: Some(timestamp(stream.created_at)),
        update_time: Some(timestamp(stream.updated_at)),
        start_time: stream.started_at.map(timestamp),
        end_time: stream.ended_at.map(timestamp),
        key_issue_time: Some(timestamp(stream.key_issued_at)),
        reconnect_deadline: stream.reconnect_deadline.map(timestamp),
        ingest_node: stream.ingest_node.clone().unwrap_or_default(),
        playback: stream.playback.as_ref().map(playback_to_proto),
        ingest_health: stream.ingest_health.as_ref().map(health_to_proto),
        playback_policy: policy_to_proto(stream.playback_policy).into(),
        max_viewers: stream.max_viewers.unwrap_or(0),
        record: stream.record,
    }
}

/// Converts playback addresses to their proto.
pub fn playback_to_proto(p: &Playback) -> v1::PlaybackUrls {
    v1::PlaybackUrls {
        hls_url: p.hls_url.clone(),
        dash_url: p.dash_url.clone(),
        hls_master_url: p.hls_master_url.clone(),
    }
}

/// Converts an ingest health reading to its proto.
pub fn health_to_proto(h: &Health) -> v1::IngestHealth {
    v1::IngestHealth {
        bitrate_kbps: h.bitrate_kbps,
        frame_rate: h.frame_rate,
        width: h.width,
        height: h.height,
        video_codec: h.video_codec.clone(),
        audio_codec: h.audio_codec.clone(),
        report_time: Some(timestamp(h.report_time)),
        renditions: h.renditions.iter().map(rendition_to_proto).collect(),
    }
}

/// Converts a rendition to its proto.
pub fn rendition_to_proto(r: &Rendition) -> v1::Rendition {
    v1::Rendition {
        name: r.name.clone(),
        width: r.width,
        height: r.height,
        bitrate_kbps: r.bitrate_kbps,
    }
}
