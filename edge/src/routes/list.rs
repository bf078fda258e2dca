//! `GET /api/v1/streams`: the stream list. Anonymous callers get the public view:
//! no PENDING streams, no owner ids, no node names, served from a short cache
//! (`NOVA_LIST_CACHE`) so a crowd refreshing the page costs the control plane one
//! ListStreams and one BatchGetViewerCounts per query per interval (`crate::cache`). A caller whose
//! bearer token names `owner` sees that owner's streams in full.

use std::sync::Arc;

use axum::{Json, extract::State};
use nova_proto::v1::{BatchGetViewerCountsRequest, ListStreamsRequest, StreamStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    auth::Owner, error::ApiError, extract::Params, json, ratelimit::ReadAdmitted, state::Caches,
    upstream::Upstream,
};

/// Query of `GET /streams`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// `live` (ACTIVE or INTERRUPTED, the default), `active`, `pending`,
    /// `interrupted`, `completed` or `all`.
    status: Option<String>,
    /// Only this owner's streams (needs the owner's bearer token).
    owner: Option<String>,
    /// Page size, 1–1000 (default 50).
    page_size: Option<i32>,
    /// Token of the next page.
    page_token: Option<String>,
}

/// The statuses `raw` names; anonymous callers never see PENDING streams.
fn statuses(raw: Option<&str>, public: bool) -> Result<Vec<i32>, ApiError> {
    use StreamStatus::*;
    let list: &[StreamStatus] = match (raw.unwrap_or("live"), public) {
        ("live", _) => &[Active, Interrupted],
        ("active", _) => &[Active],
        ("interrupted", _) => &[Interrupted],
        ("completed", _) => &[Completed],
        ("all", false) => &[],
        ("all", true) => &[Active, Interrupted, Completed],
        ("pending", false) => &[Pending],
        ("pending", true) => {
            return Err(ApiError::unauthenticated(
                "pending streams are listed only to their owner: send `owner` and the owner's bearer token",
            ));
        }
        _ => {
            return Err(ApiError::invalid(
                "status",
                "must be live, active, pending, interrupted, completed or all",
            ));
        }
    };
    Ok(list.iter().map(|s| *s as i32).collect())
}

/// `GET /api/v1/streams`.
pub async fn list(
    State(upstream): State<Arc<Upstream>>,
    State(caches): State<Caches>,
    _: ReadAdmitted,
    caller: Option<Owner>,
    Params(q): Params<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let owner = match (&q.owner, caller) {
        (None, _) => None,
        (Some(owner), Some(Owner(sub))) if *owner == sub => Some(sub),
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "a token lists only its own streams by owner",
            ));
        }
        (Some(_), None) => {
            return Err(ApiError::unauthenticated(
                "listing by owner needs the owner's `Authorization: Bearer <JWT>`",
            ));
        }
    };
    let public = owner.is_none();
    let statuses = statuses(q.status.as_deref(), public)?;
    let key = format!(
        "{statuses:?}|{}|{}",
        q.page_size.unwrap_or(0),
        q.page_token.as_deref().unwrap_or_default()
    );
    let query = ListStreamsRequest {
        page_size: q.page_size.unwrap_or(0),
        page_token: q.page_token.unwrap_or_default(),
        statuses,
        owner: owner.unwrap_or_default(),
    };
    if public {
        let body = caches
            .lists
            .get_or_fetch(key, || fetch(&upstream, query, public))
            .await?;
        return Ok(Json(Value::clone(&body)));
    }
    fetch(&upstream, query, public).await.map(Json)
}

/// One page of streams from the control plane with their viewer counts, in the
/// public view when `public`.
async fn fetch(
    upstream: &Upstream,
    query: ListStreamsRequest,
    public: bool,
) -> Result<Value, ApiError> {
    let page = upstream
        .streams
        .clone()
        .list_streams(query)
        .await?
        .into_inner();
    let names: Vec<String> = page.streams.iter().map(|s| s.name.clone()).collect();
    let counts = if names.is_empty() {
        Vec::new()
    } else {
        match upstream
            .sessions
            .clone()
            .batch_get_viewer_counts(BatchGetViewerCountsRequest { names })
            .await
        {
            Ok(answer) => answer.into_inner().viewer_counts,
            Err(status) => {
                tracing::warn!(grpc.code = ?status.code(), "viewer counts unavailable; listing without them");
                Vec::new()
            }
        }
    };
    let streams: Vec<Value> = page
        .streams
        .iter()
        .enumerate()
        .map(|(i, stream)| {
            let mut value = json::stream(stream);
            value["viewer_count"] = counts
                .get(i)
                .filter(|c| c.name == stream.name)
                .map_or(Value::Null, |c| json!(c.viewer_count));
            if public {
                json::hide_private(&mut value);
            }
            value
        })
        .collect();
    let body = json!({ "streams": streams, "next_page_token": page.next_page_token });
    Ok(body)
}
