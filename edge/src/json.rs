//! JSON shapes of the REST and WebSocket APIs (snake_case), built from protos.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, SecondsFormat, Utc};
use nova_proto::v1::{self, StreamEvent, stream_event::Kind};
use serde_json::{Value, json};

/// Formats a proto timestamp as RFC 3339 (UTC, milliseconds), or null.
pub fn time(t: Option<&prost_types::Timestamp>) -> Value {
    t.and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .map(|t| Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true)))
        .unwrap_or(Value::Null)
}

/// Returns the lower-case name of a status (`active`, …).
pub fn status(raw: i32) -> &'static str {
    match v1::StreamStatus::try_from(raw).unwrap_or(v1::StreamStatus::Unspecified) {
        v1::StreamStatus::Pending => "pending",
        v1::StreamStatus::Active => "active",
        v1::StreamStatus::Interrupted => "interrupted",
        v1::StreamStatus::Completed => "completed",
        v1::StreamStatus::Unspecified => "unspecified",
    }
}

/// A playback policy as REST spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Plain URLs for anyone.
    Public,
    /// A playback token is needed.
    Signed,
}

impl Policy {
    /// Returns the proto enum value.
    pub fn to_proto(self) -> i32 {
        match self {
            Self::Public => v1::PlaybackPolicy::Public.into(),
            Self::Signed => v1::PlaybackPolicy::Signed.into(),
        }
    }
}

/// Returns the REST name of a proto playback policy (`public`, `signed`).
pub fn policy(raw: i32) -> &'static str {
    match v1::PlaybackPolicy::try_from(raw).unwrap_or(v1::PlaybackPolicy::Unspecified) {
        v1::PlaybackPolicy::Signed => "signed",
        v1::PlaybackPolicy::Public | v1::PlaybackPolicy::Unspecified => "public",
    }
}

/// Playback URLs, or null.
pub fn playback(p: Option<&v1::PlaybackUrls>) -> Value {
    p.map(|p| json!({ "hls_url": p.hls_url, "dash_url": p.dash_url, "hls_master_url": p.hls_master_url }))
        .unwrap_or(Value::Null)
}

fn renditions(rs: &[v1::Rendition]) -> Value {
    rs.iter()
        .map(|r| json!({ "name": r.name, "width": r.width, "height": r.height, "bitrate_kbps": r.bitrate_kbps }))
        .collect()
}

/// A stream as the REST API shows it.
pub fn stream(s: &v1::Stream) -> Value {
    let health = s.ingest_health.as_ref().map(|h| {
        json!({
            "bitrate_kbps": h.bitrate_kbps, "frame_rate": h.frame_rate, "width": h.width, "height": h.height,
            "video_codec": h.video_codec, "audio_codec": h.audio_codec, "renditions": renditions(&h.renditions),
            "report_time": time(h.report_time.as_ref()),
        })
    });
    json!({
        "id": s.stream_id,
        "name": s.name,
        "title": s.title,
        "owner": s.owner,
        "status": status(s.status),
        "playback_policy": policy(s.playback_policy),
        "max_viewers": Some(s.max_viewers).filter(|n| *n > 0),
        "record": s.record,
        "created_at": time(s.create_time.as_ref()),
        "updated_at": time(s.update_time.as_ref()),
        "started_at": time(s.start_time.as_ref()),
        "ended_at": time(s.end_time.as_ref()),
        "reconnect_deadline": time(s.reconnect_deadline.as_ref()),
        "ingest_node": s.ingest_node,
        "playback": playback(s.playback.as_ref()),
        "ingest_health": health,
    })
}

/// Removes what only a stream's owner may see (owner id, ingest node) from a
/// stream's JSON.
pub fn hide_private(stream: &mut Value) {
    if let Some(object) = stream.as_object_mut() {
        object.remove("owner");
        object.remove("ingest_node");
    }
}

/// A live event as WebSocket clients receive it; `None` for events without a kind.
pub fn event(e: &StreamEvent) -> Option<Value> {
    let id = e
        .name
        .strip_prefix(nova_proto::STREAM_NAME_PREFIX)
        .unwrap_or(&e.name);
    let at = time(e.event_time.as_ref());
    Some(match e.kind.as_ref()? {
        Kind::ViewerCountChanged(c) => json!({
            "type": "viewer_count_changed", "stream_id": id, "at": at,
            "viewer_count": c.viewer_count, "peak_viewers": c.peak_viewers,
        }),
        Kind::StreamStarted(s) => json!({
            "type": "stream_started", "stream_id": id, "at": at, "cursor": e.cursor,
            "resumed": s.resumed, "playback": playback(s.playback.as_ref()),
        }),
        Kind::StreamEnded(s) => json!({
            "type": "stream_ended", "stream_id": id, "at": at, "cursor": e.cursor,
            "status": status(s.status), "reason": s.reason,
        }),
        Kind::QualityChanged(q) => json!({
            "type": "quality_changed", "stream_id": id, "at": at, "cursor": e.cursor,
            "renditions": renditions(&q.renditions),
        }),
        // Asset events are for the owner's services (webhooks, WatchEvents), not
        // for the viewers a stream's WebSocket serves.
        Kind::AssetReady(_) | Kind::AssetErrored(_) => return None,
    })
}

/// A JSON answer that no shared cache may store (it is the caller's own, or carries
/// a secret shown once).
pub fn private(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
