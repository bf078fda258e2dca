//! What a delivery carries: the JSON body built from a logged event, identical on
//! every attempt (its `id` is the event's log position, the idempotency id).
//!
//! A new kind of logged event becomes deliverable by giving it an [`EventType`] and a
//! case in [`build`].

use chrono::SecondsFormat;
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    db::events::OwnerEventRow,
    service::{
        events::{Event, Notice},
        webhooks::EventType,
    },
};

/// An event ready to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    /// Log position: the idempotency id (`Nova-Event-Id`, body `id`).
    pub event_id: i64,
    /// Its type.
    pub event_type: EventType,
    /// The JSON body, byte for byte what is signed and sent.
    pub body: Vec<u8>,
}

/// The body's shape.
#[derive(Serialize)]
struct Body<'a> {
    /// Log position, as a string.
    id: String,
    /// Event type.
    #[serde(rename = "type")]
    event_type: &'a str,
    /// When the event was logged (RFC 3339, UTC, microseconds).
    created_at: String,
    /// The stream's id; null for account events.
    stream_id: Option<String>,
    /// The type's fields.
    data: Value,
}

/// Builds the payload of a logged event; `None` for kinds no webhook type stands for.
pub fn build(row: &OwnerEventRow) -> Option<Payload> {
    let (event_type, data) = if let Some(event) = Event::from_stored(&row.kind, &row.payload) {
        (EventType::of_event(&event), event_data(&event))
    } else {
        let notice = Notice::from_stored(&row.kind, &row.payload)?;
        (EventType::of_notice(&notice), notice_data(&notice))
    };
    let body = Body {
        id: row.id.to_string(),
        event_type: event_type.as_str(),
        created_at: row.created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        stream_id: row.stream_id.map(|id| id.to_string()),
        data,
    };
    Some(Payload {
        event_id: row.id,
        event_type,
        body: serde_json::to_vec(&body).ok()?,
    })
}

fn event_data(event: &Event) -> Value {
    match event {
        Event::StreamStarted { playback, .. } => json!({ "playback": playback }),
        Event::StreamEnded { reason, .. } => json!({ "reason": reason }),
        Event::QualityChanged { renditions } => json!({ "renditions": renditions }),
        Event::AssetReady {
            asset_id,
            duration_ms,
            size_bytes,
        } => json!({
            "asset_id": asset_id,
            "duration_seconds": *duration_ms as f64 / 1000.0,
            "size_bytes": size_bytes,
        }),
        Event::AssetErrored { asset_id, reason } => {
            json!({ "asset_id": asset_id, "reason": reason })
        }
    }
}

fn notice_data(notice: &Notice) -> Value {
    match notice {
        Notice::StreamCreated {
            title,
            playback_policy,
            max_viewers,
        } => json!({
            "title": title,
            "playback_policy": playback_policy,
            "max_viewers": max_viewers,
        }),
        Notice::StreamKeyRotated => json!({}),
        Notice::WebhookDisabled {
            webhook_id,
            failures,
        } => json!({ "webhook_id": webhook_id, "failures": failures }),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::service::StreamStatus;

    fn row(kind: &str, payload: Value, stream: Option<Uuid>) -> OwnerEventRow {
        OwnerEventRow {
            id: 42,
            stream_id: stream,
            kind: kind.into(),
            payload,
            created_at: Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap(),
        }
    }

    #[test]
    fn bodies_carry_id_type_time_stream_and_data() {
        let stream = Uuid::now_v7();
        let ended = Event::ended(StreamStatus::Interrupted, "publisher_disconnected");
        let payload = build(&row(ended.kind(), ended.payload(), Some(stream))).unwrap();
        assert_eq!(payload.event_id, 42);
        assert_eq!(payload.event_type, EventType::StreamInterrupted);
        let body: Value = serde_json::from_slice(&payload.body).unwrap();
        assert_eq!(
            body,
            json!({
                "id": "42",
                "type": "stream.interrupted",
                "created_at": "2026-12-01T10:00:00.000000Z",
                "stream_id": stream.to_string(),
                "data": { "reason": "publisher_disconnected" },
            })
        );
    }

    #[test]
    fn asset_events_carry_the_asset() {
        let (stream, asset) = (Uuid::now_v7(), Uuid::now_v7());
        let ready = Event::AssetReady {
            asset_id: asset,
            duration_ms: 14_890,
            size_bytes: 1_479_965,
        };
        let payload = build(&row(ready.kind(), ready.payload(), Some(stream))).unwrap();
        assert_eq!(payload.event_type, EventType::AssetReady);
        let body: Value = serde_json::from_slice(&payload.body).unwrap();
        assert_eq!(body["type"], "asset.ready");
        assert_eq!(
            body["data"],
            json!({ "asset_id": asset, "duration_seconds": 14.89, "size_bytes": 1_479_965 })
        );
        let errored = Event::AssetErrored {
            asset_id: asset,
            reason: "no recording arrived".into(),
        };
        let payload = build(&row(errored.kind(), errored.payload(), Some(stream))).unwrap();
        let body: Value = serde_json::from_slice(&payload.body).unwrap();
        assert_eq!(body["type"], "asset.errored");
        assert_eq!(body["data"]["reason"], "no recording arrived");
    }

    #[test]
    fn account_events_have_no_stream_and_unknown_kinds_none() {
        let webhook_id = Uuid::now_v7();
        let notice = Notice::WebhookDisabled {
            webhook_id,
            failures: 5,
        };
        let payload = build(&row(notice.kind(), notice.payload(), None)).unwrap();
        let body: Value = serde_json::from_slice(&payload.body).unwrap();
        assert_eq!(body["type"], "webhook.disabled");
        assert_eq!(body["stream_id"], Value::Null);
        assert_eq!(body["data"]["webhook_id"], webhook_id.to_string());
        assert!(build(&row("asset_unknown", json!({}), None)).is_none());
    }

    #[test]
    fn a_key_rotation_carries_no_key() {
        let payload = build(&row(
            Notice::StreamKeyRotated.kind(),
            json!({}),
            Some(Uuid::now_v7()),
        ))
        .unwrap();
        let body: Value = serde_json::from_slice(&payload.body).unwrap();
        assert_eq!(body["data"], json!({}));
    }
}
