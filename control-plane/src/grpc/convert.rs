//! Conversions from stored rows to protos.

use chrono::{DateTime, Utc};
use nova_proto::v1;

use crate::{
    db::streams::StreamRow,
    error::Error,
    grpc::name::stream_name,
    service::{PlaybackPolicy, StreamStatus},
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

/// Converts a stored stream to its proto. Never carries the key or its hash.
pub fn stream_to_proto(row: &StreamRow) -> v1::Stream {
    let playback = row.hls_url.as_ref().map(|hls| v1::PlaybackUrls {
        hls_url: hls.clone(),
        dash_url: row.dash_url.clone().unwrap_or_default(),
        hls_master_url: row.hls_master_url.clone().unwrap_or_default(),
    });
    v1::Stream {
        name: stream_name(row.id),
        stream_id: row.id.to_string(),
        owner: row.owner.clone(),
        title: row.title.clone(),
        status: status_to_proto(StreamStatus::from_db(&row.status)).into(),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
        start_time: row.started_at.map(timestamp),
        end_time: row.ended_at.map(timestamp),
        key_issue_time: Some(timestamp(row.key_issued_at)),
        reconnect_deadline: row.reconnect_deadline.map(timestamp),
        // An interrupted stream may remember its lost connection; nobody is publishing.
        ingest_node: if StreamStatus::from_db(&row.status) == StreamStatus::Active {
            row.ingest_node.clone().unwrap_or_default()
        } else {
            String::new()
        },
        playback,
        ingest_health: row
            .ingest_health
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .map(|h| super::ingest_service::health_to_proto(&h)),
        playback_policy: policy_to_proto(PlaybackPolicy::from_db(&row.playback_policy)).into(),
        max_viewers: row.max_viewers.unwrap_or(0),
        record: row.record,
    }
}

/// Converts a rendition to its proto.
pub fn rendition_to_proto(r: &crate::service::events::Rendition) -> v1::Rendition {
    v1::Rendition {
        name: r.name.clone(),
        width: r.width,
        height: r.height,
        bitrate_kbps: r.bitrate_kbps,
    }
}
