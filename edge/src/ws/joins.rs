//! The joins of sockets that open together, sent to the control plane together.
//!
//! At most [`IN_FLIGHT`] join calls are out at once. The joins of sockets that open
//! meanwhile queue, and the next call carries all of them (up to [`MAX_BATCH`]) as
//! one BatchJoinSessions. A socket that opens alone is joined at once with
//! JoinSession, so nobody waits for a batch to fill; a crowd (a reconnect storm, a
//! popular stream going live) costs the control plane a few calls instead of one
//! per socket. Each join succeeds or fails on its own, with the status JoinSession
//! would have answered.

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use nova_proto::v1::{
    BatchJoinSessionsRequest, JoinResult, JoinSessionRequest, JoinSessionResponse,
};
use tokio::sync::{Semaphore, oneshot};
use tonic::{Code, Status};

use crate::upstream::Upstream;

/// Join calls out at once.
pub const IN_FLIGHT: usize = 4;
/// Joins per BatchJoinSessions call (the control plane's cap).
pub const MAX_BATCH: usize = 1000;
/// JoinSession calls in flight at once when the control plane has no batches.
const FALLBACK_CONCURRENCY: usize = 64;

/// The answer a socket waits for.
type Answer = Result<JoinSessionResponse, Status>;

/// A join waiting for a call to carry it.
struct Waiting {
    /// What to ask.
    request: JoinSessionRequest,
    /// Where its answer goes.
    answer: oneshot::Sender<Answer>,
}

/// Coalesces the joins of this edge's sockets; clones share the queue.
#[derive(Clone)]
pub struct Joins {
    /// The control plane.
    upstream: Upstream,
    /// Joins not yet sent, in arrival order.
    queue: Arc<Mutex<Vec<Waiting>>>,
    /// One permit per call out.
    calls: Arc<Semaphore>,
}

impl Joins {
    /// Builds the queue over `upstream`.
    pub fn new(upstream: Upstream) -> Self {
        Self {
            upstream,
            queue: Arc::default(),
            calls: Arc::new(Semaphore::new(IN_FLIGHT)),
        }
    }

    /// Joins as `request` asks; answers as JoinSession would.
    ///
    /// The call that carries a join runs in a task of its own, so a socket that
    /// gives up waiting (it closed, the edge shuts down) cancels nobody else's join.
    pub async fn join(&self, request: JoinSessionRequest) -> Answer {
        let (answer, mut answered) = oneshot::channel();
        self.lock().push(Waiting { request, answer });
        let permit = tokio::select! {
            biased;
            answer = &mut answered => return unwrap(answer),
            permit = self.calls.clone().acquire_owned() => permit,
        };
        let batch = {
            let mut queue = self.lock();
            let n = queue.len().min(MAX_BATCH);
            queue.drain(..n).collect::<Vec<_>>()
        };
        if !batch.is_empty() {
            let upstream = self.upstream.clone();
            tokio::spawn(async move {
                send(&upstream, batch).await;
                drop(permit);
            });
        }
        unwrap(answered.await)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A join whose carrier vanished (only if its task panicked) failed unseen: not
/// retried, as it may have joined.
fn unwrap(answer: Result<Answer, oneshot::error::RecvError>) -> Answer {
    answer.unwrap_or_else(|_| Err(Status::internal("the join was lost")))
}

/// Sends `batch` in one call and hands each join its answer.
async fn send(upstream: &Upstream, batch: Vec<Waiting>) {
    let (requests, answers): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|w| (w.request, w.answer)).unzip();
    for (answer, to) in ask(upstream, requests).await.into_iter().zip(answers) {
        // The socket may have stopped waiting; its session then expires unheartbeated.
        let _ = to.send(answer);
    }
}

/// Asks the control plane for `requests` (at most [`MAX_BATCH`]) in one call;
/// returns one answer per request, in order. Also the edge's bulk rejoin.
pub async fn ask(upstream: &Upstream, mut requests: Vec<JoinSessionRequest>) -> Vec<Answer> {
    if requests.len() == 1 {
        let request = requests.swap_remove(0);
        return vec![one(upstream, request).await];
    }
    let n = requests.len();
    let asked = upstream
        .sessions
        .clone()
        .batch_join_sessions(BatchJoinSessionsRequest {
            joins: requests.clone(),
        })
        .await;
    match asked {
        Ok(answer) => {
            let results = answer.into_inner().results;
            if results.len() != n {
                let status = Status::internal(format!(
                    "BatchJoinSessions answered {} results for {n} joins",
                    results.len()
                ));
                return vec![Err(status); n];
            }
            results.into_iter().map(JoinResult::into_answer).collect()
        }
        // A control plane from before BatchJoinSessions (a rolling update).
        Err(status) if status.code() == Code::Unimplemented => {
            futures::stream::iter(requests)
                .map(|r| one(upstream, r))
                .buffered(FALLBACK_CONCURRENCY)
                .collect()
                .await
        }
        Err(status) => vec![Err(status); n],
    }
}

/// One JoinSession call.
async fn one(upstream: &Upstream, request: JoinSessionRequest) -> Answer {
    upstream
        .sessions
        .clone()
        .join_session(request)
        .await
        .map(tonic::Response::into_inner)
}

#[cfg(test)]
#[path = "joins_tests.rs"]
mod tests;
