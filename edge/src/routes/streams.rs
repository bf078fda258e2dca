//! `/api/v1/streams…`: REST over StreamService, SessionService and AnalyticsService.
//! Reads are public (and rate-limited per client address, like mutations); mutations
//! need a bearer JWT (its `sub` is the owner). The list is in [`super::list`].

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use nova_proto::v1::{
    CreateStreamRequest, EndStreamRequest, GetStreamMetricsRequest, GetStreamRequest,
    GetViewerCountRequest, RotateStreamKeyRequest, Stream, UpdateStreamRequest,
};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    auth::Owner,
    error::ApiError,
    extract::{Body, Params},
    json,
    ratelimit::{Admitted, ClientIp, ReadAdmitted},
    state::Caches,
    upstream::{Upstream, as_principal},
};

/// Body of `POST /streams`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// Title, 1–200 characters.
    title: String,
    /// `public` (default) or `signed`; `null` is refused.
    #[serde(default, deserialize_with = "present")]
    playback_policy: Option<json::Policy>,
    /// Most concurrent viewers, 1 to 1000000; absent or 0 means no cap.
    #[serde(default, deserialize_with = "present_whole")]
    max_viewers: Option<u32>,
    /// Whether broadcasts are recorded into assets (default false).
    #[serde(default, deserialize_with = "present")]
    record: Option<bool>,
}

/// Body of `PATCH /streams/{id}`: the fields to change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    /// New title, 1–200 characters.
    #[serde(default, deserialize_with = "present")]
    title: Option<String>,
    /// New playback policy, `public` or `signed`.
    #[serde(default, deserialize_with = "present")]
    playback_policy: Option<json::Policy>,
    /// New viewer cap, 1 to 1000000; 0 removes it.
    #[serde(default, deserialize_with = "present_whole")]
    max_viewers: Option<u32>,
    /// Whether to record broadcasts (from the next publish).
    #[serde(default, deserialize_with = "present")]
    record: Option<bool>,
}

/// Converts a REST viewer cap to the proto's (0 = none); above the largest cap is
/// refused here, as the control plane would.
fn cap(raw: Option<u32>) -> Result<i32, ApiError> {
    i32::try_from(raw.unwrap_or(0))
        .ok()
        .filter(|n| *n <= 1_000_000)
        .ok_or_else(|| ApiError::invalid("max_viewers", "must be between 0 (no cap) and 1000000"))
}

/// Reads a whole number that may be absent but never `null`; JSON allows `50.0`
/// for 50, so a number with a zero fraction is accepted.
pub(crate) fn present_whole<'de, D>(deserializer: D) -> Result<Option<u32>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let n = f64::deserialize(deserializer)?;
    if n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n) {
        Ok(Some(n as u32))
    } else {
        Err(serde::de::Error::custom(
            "must be a whole number of at least 0",
        ))
    }
}

/// Reads a field that may be absent (`None`, by `serde(default)`) but never `null`.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Query of `GET /streams/{id}/metrics`.
#[derive(Debug, Deserialize)]
pub struct MetricsQuery {
    /// Window start, RFC 3339 (default: the stream's creation).
    start: Option<String>,
    /// Window end, RFC 3339 (default: now).
    end: Option<String>,
    /// Step in seconds (default: about 300 points).
    step: Option<u64>,
}

pub(crate) fn stream_name(id: &str) -> Result<String, ApiError> {
    Uuid::try_parse(id)
        .map(|id| format!("{}{id}", nova_proto::STREAM_NAME_PREFIX))
        .map_err(|_| ApiError::invalid("id", "must be a stream id (a UUID)"))
}

/// `POST /api/v1/streams`: creates a stream owned by the token's `sub`.
pub async fn create(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: Admitted,
    ClientIp(client): ClientIp,
    Body(body): Body<CreateBody>,
) -> Result<Response, ApiError> {
    let request = CreateStreamRequest {
        stream: Some(Stream {
            title: body.title,
            playback_policy: body.playback_policy.map_or(0, json::Policy::to_proto),
            max_viewers: cap(body.max_viewers)?,
            record: body.record.unwrap_or(false),
            ..Default::default()
        }),
    };
    let created = upstream
        .streams
        .clone()
        .create_stream(as_principal(request, &owner, client)?)
        .await?
        .into_inner();
    let stream = created.stream.unwrap_or_default();
    let body = json!({
        "stream": json::stream(&stream),
        "stream_key": created.stream_key,
        "ingest_url": created.ingest_url,
    });
    let location = format!("/api/v1/streams/{}", stream.stream_id);
    Ok((
        StatusCode::CREATED,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Json(body),
    )
        .into_response())
}

/// `GET /api/v1/streams/{id}`: the owner (by bearer token) sees everything, anyone
/// else the public view (no owner, no ingest node).
pub async fn get(
    State(upstream): State<Arc<Upstream>>,
    State(caches): State<Caches>,
    _: ReadAdmitted,
    caller: Option<Owner>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let name = stream_name(&id)?;
    let Some(Owner(sub)) = caller else {
        // Anonymous: the public view, shared by a crowd for `NOVA_STREAM_CACHE`.
        let body = caches
            .streams
            .get_or_fetch(name.clone(), || fetch_one(&upstream, name, None))
            .await?;
        return Ok(Json(Value::clone(&body)));
    };
    fetch_one(&upstream, name, Some(&sub)).await.map(Json)
}

/// One stream with its viewer count (`null` when the count cannot be read), in full
/// only for its owner `caller`. The stream and its count are asked for at once: one
/// round trip to the control plane instead of two in a row.
async fn fetch_one(
    upstream: &Upstream,
    name: String,
    caller: Option<&str>,
) -> Result<Value, ApiError> {
    let (mut streams, mut sessions) = (upstream.streams.clone(), upstream.sessions.clone());
    let (stream, count) = tokio::join!(
        streams.get_stream(GetStreamRequest { name: name.clone() }),
        sessions.get_viewer_count(GetViewerCountRequest { name }),
    );
    let stream = stream?.into_inner().stream.unwrap_or_default();
    let mut value = json::stream(&stream);
    value["viewer_count"] = json!(count.ok().map(|r| r.into_inner().viewer_count));
    if caller != Some(stream.owner.as_str()) {
        json::hide_private(&mut value);
    }
    Ok(json!({ "stream": value }))
}

/// `DELETE /api/v1/streams/{id}`: ends the stream (owner only).
pub async fn end(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: Admitted,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let request = EndStreamRequest {
        name: stream_name(&id)?,
    };
    let stream = upstream
        .streams
        .clone()
        .end_stream(as_principal(request, &owner, client)?)
        .await?
        .into_inner()
        .stream
        .unwrap_or_default();
    Ok(Json(json!({ "stream": json::stream(&stream) })))
}

/// `PATCH /api/v1/streams/{id}`: changes the title, playback policy, viewer cap or
/// recording (owner only).
pub async fn update(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: Admitted,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
    Body(body): Body<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    let mut paths = Vec::new();
    let mut stream = Stream {
        name: stream_name(&id)?,
        ..Default::default()
    };
    if let Some(title) = body.title {
        stream.title = title;
        paths.push("title".to_owned());
    }
    if let Some(policy) = body.playback_policy {
        stream.playback_policy = policy.to_proto();
        paths.push("playback_policy".to_owned());
    }
    if body.max_viewers.is_some() {
        stream.max_viewers = cap(body.max_viewers)?;
        paths.push("max_viewers".to_owned());
    }
    if let Some(record) = body.record {
        stream.record = record;
        paths.push("record".to_owned());
    }
    if paths.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "name at least one of title, playback_policy, max_viewers, record",
        ));
    }
    let request = UpdateStreamRequest {
        stream: Some(stream),
        update_mask: Some(prost_types::FieldMask { paths }),
    };
    let stream = upstream
        .streams
        .clone()
        .update_stream(as_principal(request, &owner, client)?)
        .await?
        .into_inner()
        .stream
        .unwrap_or_default();
    Ok(Json(json!({ "stream": json::stream(&stream) })))
}

/// `POST /api/v1/streams/{id}/rotate-key`: issues a new key (owner only).
pub async fn rotate_key(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: Admitted,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let request = RotateStreamKeyRequest {
        name: stream_name(&id)?,
    };
    let rotated = upstream
        .streams
        .clone()
        .rotate_stream_key(as_principal(request, &owner, client)?)
        .await?
        .into_inner();
    let body = json!({
        "stream": json::stream(&rotated.stream.unwrap_or_default()),
        "stream_key": rotated.stream_key,
    });
    Ok(json::private(StatusCode::OK, body))
}

fn parse_time(field: &str, raw: Option<&str>) -> Result<Option<prost_types::Timestamp>, ApiError> {
    raw.map(|raw| {
        DateTime::parse_from_rfc3339(raw)
            .map(|t| {
                let t = t.with_timezone(&Utc);
                prost_types::Timestamp {
                    seconds: t.timestamp(),
                    nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
                }
            })
            .map_err(|_| {
                ApiError::invalid(field, "must be an RFC 3339 time, e.g. 2026-11-24T12:00:00Z")
            })
    })
    .transpose()
}

/// `GET /api/v1/streams/{id}/metrics`.
pub async fn metrics(
    State(upstream): State<Arc<Upstream>>,
    _: ReadAdmitted,
    Path(id): Path<String>,
    Params(q): Params<MetricsQuery>,
) -> Result<Json<Value>, ApiError> {
    let request = GetStreamMetricsRequest {
        name: stream_name(&id)?,
        start_time: parse_time("start", q.start.as_deref())?,
        end_time: parse_time("end", q.end.as_deref())?,
        step: q.step.map(|s| prost_types::Duration {
            seconds: i64::try_from(s).unwrap_or(i64::MAX),
            nanos: 0,
        }),
    };
    let report = upstream
        .analytics
        .clone()
        .get_stream_metrics(request)
        .await?
        .into_inner();
    let seconds = |d: Option<&prost_types::Duration>| {
        d.map_or(0.0, |d| d.seconds as f64 + f64::from(d.nanos) / 1e9)
    };
    let summary = report.summary.unwrap_or_default();
    Ok(Json(json!({
        "points": report.points.iter().map(|p| json!({
            "time": json::time(p.time.as_ref()),
            "viewers": p.viewers,
            "ingest_bitrate_kbps": p.ingest_bitrate_kbps,
        })).collect::<Vec<_>>(),
        "summary": {
            "peak_viewers": summary.peak_viewers,
            "unique_viewers": summary.unique_viewers,
            "total_watch_time_seconds": seconds(summary.total_watch_time.as_ref()),
            "duration_seconds": seconds(summary.duration.as_ref()),
        },
    })))
}
