//! `GET /api/v1/streams`: the stream list. Anonymous callers get the public view:
//! no PENDING streams, no owner ids, no node names, served from a short cache
//! (`NOVA_LIST_CACHE`) so a crowd refreshing the page costs the control plane one
//! ListStreams and one BatchGetViewerCounts per query per interval. A caller whose
//! bearer token names `owner` sees that owner's streams in full.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, extract::State};
use nova_proto::v1::{BatchGetViewerCountsRequest, ListStreamsRequest, StreamStatus};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::{sync::OnceCell, time::Instant};

use crate::{
    auth::Owner, error::ApiError, extract::Params, json, ratelimit::ReadAdmitted, state::AppState,
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

/// Most distinct anonymous queries cached at once; beyond it the cache starts over.
const MAX_ENTRIES: usize = 256;

/// The answer to one anonymous query: filled once by the first caller, shared by
/// every caller that arrives while it is being built or while it is fresh.
type Slot = Arc<OnceCell<Result<Arc<Value>, ApiError>>>;

/// Anonymous list answers by query, each kept for a short time. Single-flight: a
/// crowd arriving when an answer expires costs the control plane one call, not one
/// per request.
#[derive(Clone)]
pub struct ListCache {
    /// How long an answer is reused; zero disables the cache.
    ttl: Duration,
    /// Query key → (when its slot was opened, the slot).
    entries: Arc<Mutex<HashMap<String, (Instant, Slot)>>>,
}

impl ListCache {
    /// Builds a cache reusing answers for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Arc::default(),
        }
    }

    /// Returns the answer for `key`: the fresh or in-flight one if there is one,
    /// else the one `fetch` builds. A failed fetch is shared by the callers that
    /// waited for it, then forgotten, so the next caller tries again.
    async fn get_or_fetch<F>(&self, key: String, fetch: F) -> Result<Arc<Value>, ApiError>
    where
        F: Future<Output = Result<Value, ApiError>>,
    {
        if self.ttl.is_zero() {
            return fetch.await.map(Arc::new);
        }
        let slot = self.slot(&key);
        let answer = slot
            .get_or_init(|| async { fetch.await.map(Arc::new) })
            .await
            .clone();
        if answer.is_err() {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if entries
                .get(&key)
                .is_some_and(|(_, s)| Arc::ptr_eq(s, &slot))
            {
                entries.remove(&key);
            }
        }
        answer
    }

    /// The slot for `key`: the current one while it is fresh or still being filled,
    /// else a new one.
    fn slot(&self, key: &str) -> Slot {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let ttl = self.ttl;
        let usable = |(at, slot): &(Instant, Slot)| at.elapsed() < ttl || !slot.initialized();
        if let Some(entry) = entries.get(key).filter(|e| usable(e)) {
            return entry.1.clone();
        }
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, entry| usable(entry));
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        let slot = Slot::default();
        entries.insert(key.to_owned(), (Instant::now(), slot.clone()));
        slot
    }
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
    State(state): State<AppState>,
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
        let body = state
            .lists()
            .get_or_fetch(key, fetch(&state, query, public))
            .await?;
        return Ok(Json(Value::clone(&body)));
    }
    fetch(&state, query, public).await.map(Json)
}

/// One page of streams from the control plane with their viewer counts, in the
/// public view when `public`.
async fn fetch(
    state: &AppState,
    query: ListStreamsRequest,
    public: bool,
) -> Result<Value, ApiError> {
    let page = state
        .upstream()
        .streams
        .clone()
        .list_streams(query)
        .await?
        .into_inner();
    let names: Vec<String> = page.streams.iter().map(|s| s.name.clone()).collect();
    let counts = if names.is_empty() {
        Vec::new()
    } else {
        match state
            .upstream()
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::StatusCode;

    use super::*;

    /// A fetch that counts its calls and waits until `gate` opens, so callers pile up.
    async fn counted(
        calls: &AtomicUsize,
        gate: &tokio::sync::Notify,
        answer: Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        calls.fetch_add(1, Ordering::SeqCst);
        gate.notified().await;
        answer
    }

    #[tokio::test]
    async fn a_crowd_on_one_query_costs_one_fetch() {
        let cache = ListCache::new(Duration::from_secs(60));
        let calls = AtomicUsize::new(0);
        let gate = tokio::sync::Notify::new();
        let crowd = (0..50)
            .map(|_| cache.get_or_fetch("q".into(), counted(&calls, &gate, Ok(json!({"n": 1})))));
        let all = futures::future::join_all(crowd);
        tokio::pin!(all);
        // Let every caller reach the cache before the one fetch answers.
        tokio::select! {
            biased;
            _ = &mut all => panic!("answered before the fetch was let through"),
            () = tokio::task::yield_now() => {}
        }
        gate.notify_waiters();
        gate.notify_one();
        let answers = all.await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "one fetch for the whole crowd"
        );
        assert!(
            answers
                .iter()
                .all(|a| a.as_ref().is_ok_and(|v| v["n"] == 1))
        );
    }

    #[tokio::test]
    async fn a_failed_fetch_is_shared_then_forgotten() {
        let cache = ListCache::new(Duration::from_secs(60));
        let calls = AtomicUsize::new(0);
        let gate = tokio::sync::Notify::new();
        gate.notify_one();
        let down = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "down");
        let first = cache
            .get_or_fetch("q".into(), counted(&calls, &gate, Err(down)))
            .await;
        assert_eq!(
            first.map_err(|e| e.status),
            Err(StatusCode::SERVICE_UNAVAILABLE)
        );
        gate.notify_one();
        let second = cache
            .get_or_fetch("q".into(), counted(&calls, &gate, Ok(json!({"n": 2}))))
            .await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "the failure was not cached"
        );
        assert_eq!(second.map(|v| v["n"].clone()).ok(), Some(json!(2)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_answer_is_fetched_again() {
        let cache = ListCache::new(Duration::from_secs(1));
        let calls = AtomicUsize::new(0);
        let gate = tokio::sync::Notify::new();
        for n in 0..2 {
            gate.notify_one();
            let answer = cache
                .get_or_fetch("q".into(), counted(&calls, &gate, Ok(json!({ "n": n }))))
                .await;
            assert_eq!(answer.map(|v| v["n"].clone()).ok(), Some(json!(n)));
            tokio::time::advance(Duration::from_secs(2)).await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
