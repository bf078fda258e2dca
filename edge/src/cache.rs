//! Short-lived, single-flight caches of answers shared by many callers (the public
//! stream list, the public view of one stream, the stream a crowd of sockets opens
//! on): a crowd costs the control plane one call per key per interval, and an
//! answer is never older than the interval.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{sync::OnceCell, time::Instant};

use crate::error::ApiError;
use serde_json::Value;

/// The answer to one key: filled once by the first caller, shared by
/// every caller that arrives while it is being built or while it is fresh.
type Slot<T, E> = Arc<OnceCell<Result<Arc<T>, E>>>;

/// Key → (when its slot was opened, the slot).
type Entries<T, E> = HashMap<String, (Instant, Slot<T, E>)>;

/// Answers by key, each kept for a short time (JSON answers and API errors unless
/// told otherwise). Single-flight: a crowd arriving when an answer expires costs the
/// control plane one call, not one per request.
pub struct AnswerCache<T = Value, E = ApiError> {
    /// How long an answer is reused; zero disables the cache.
    ttl: Duration,
    /// Most distinct keys held at once; beyond it the cache starts over.
    max_entries: usize,
    /// Query key → (when its slot was opened, the slot).
    entries: Arc<Mutex<Entries<T, E>>>,
}

impl<T, E> Clone for AnswerCache<T, E> {
    fn clone(&self) -> Self {
        Self {
            ttl: self.ttl,
            max_entries: self.max_entries,
            entries: self.entries.clone(),
        }
    }
}

impl<T, E: Clone> AnswerCache<T, E> {
    /// Builds a cache reusing answers for `ttl`, holding at most `max_entries` keys.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            ttl,
            max_entries,
            entries: Arc::default(),
        }
    }

    /// Returns the answer for `key`: the fresh or in-flight one if there is one,
    /// else the one `fetch` builds (called only then, so a caller served from the
    /// cache never builds its fetch's future). A failed fetch is shared by the
    /// callers that waited for it, then forgotten, so the next caller tries again.
    pub async fn get_or_fetch<F, Fut>(&self, key: String, fetch: F) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if self.ttl.is_zero() {
            return fetch().await.map(Arc::new);
        }
        let slot = self.slot(&key);
        let answer = slot
            .get_or_init(|| async { fetch().await.map(Arc::new) })
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
    fn slot(&self, key: &str) -> Slot<T, E> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let ttl = self.ttl;
        let usable = |(at, slot): &(Instant, Slot<T, E>)| at.elapsed() < ttl || !slot.initialized();
        if let Some(entry) = entries.get(key).filter(|e| usable(e)) {
            return entry.1.clone();
        }
        if entries.len() >= self.max_entries {
            entries.retain(|_, entry| usable(entry));
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        let slot = Slot::default();
        entries.insert(key.to_owned(), (Instant::now(), slot.clone()));
        slot
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::StatusCode;

    use serde_json::json;

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
        let cache = AnswerCache::new(Duration::from_secs(60), 16);
        let calls = AtomicUsize::new(0);
        let gate = tokio::sync::Notify::new();
        let crowd = (0..50).map(|_| {
            cache.get_or_fetch("q".into(), || counted(&calls, &gate, Ok(json!({"n": 1}))))
        });
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
        let cache = AnswerCache::new(Duration::from_secs(60), 16);
        let calls = AtomicUsize::new(0);
        let gate = tokio::sync::Notify::new();
        gate.notify_one();
        let down = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "down");
        let first = cache
            .get_or_fetch("q".into(), || counted(&calls, &gate, Err(down)))
            .await;
        assert_eq!(
            first.map_err(|e| e.status),
            Err(StatusCode::SERVICE_UNAVAILABLE)
        );
        gate.notify_one();
        let second = cache
            .get_or_fetch("q".into(), || counted(&calls, &gate, Ok(json!({"n": 2}))))
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
        let cache = AnswerCache::new(Duration::from_secs(1), 16);
        let calls = AtomicUsize::new(0);
        let gate = tokio::sync::Notify::new();
        for n in 0..2 {
            gate.notify_one();
            let answer = cache
                .get_or_fetch("q".into(), || counted(&calls, &gate, Ok(json!({ "n": n }))))
                .await;
            assert_eq!(answer.map(|v| v["n"].clone()).ok(), Some(json!(n)));
            tokio::time::advance(Duration::from_secs(2)).await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
