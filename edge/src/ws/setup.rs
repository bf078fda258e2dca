//! Opening one socket: read the stream, join its viewer session (whose answer
//! carries the snapshot's figures), so one control-plane call per socket: the
//! stream read is shared by the sockets that open on one stream within one
//! lifecycle generation and `NOVA_STREAM_CACHE` (see `ViewerSessions::streams`); a
//! signed stream's socket, which joins nothing, reads the figures instead. A crowd
//! that connects together (an edge restart, a popular stream going live, a
//! reconnect storm) queues for one of [`SETUP_CONCURRENCY`] places instead of
//! sending every call at once: unbounded, ten thousand sockets put thirty thousand
//! calls in flight, the last ones ran past their 5 s deadline, and those sockets
//! were closed with 1011 without ever getting a count. A call that fails
//! transiently (the control plane unreachable, slow or overloaded) is retried with
//! jittered backoff for up to [`SETUP_BUDGET`], so a socket is closed with 1011 only
//! when the control plane stays away.

use std::{future::Future, sync::Arc, time::Duration};

use backon::{BackoffBuilder, ExponentialBuilder};
use nova_proto::v1::{
    GetStreamRequest, GetViewerCountRequest, GetViewerCountResponse, PlaybackPolicy, Stream,
    StreamStatus,
};
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::state::AppState;

/// Sockets of one edge making their set-up calls at once.
pub const SETUP_CONCURRENCY: usize = 64;
/// How long a socket's set-up calls are retried before it is closed with 1011.
pub const SETUP_BUDGET: Duration = Duration::from_secs(10);

/// What a socket needs for its snapshot, its session joined.
pub struct Opened {
    /// The stream, as read for this socket or for one that opened on it in the
    /// same lifecycle generation.
    pub stream: Arc<Stream>,
    /// The socket's session handle (to leave it); `None` on a signed stream, whose
    /// viewers are counted by their playback tokens at the media origin only, so
    /// an anonymous socket neither counts nor fills a viewer cap.
    pub handle: Option<u64>,
    /// The stream's viewer count and peak, from the join's answer (or read after
    /// it).
    pub figures: GetViewerCountResponse,
}

/// Why a socket could not be opened.
#[derive(Debug)]
pub enum Refused {
    /// The stream does not exist (4404).
    NotFound,
    /// The stream has completed (4410).
    Completed,
    /// The control plane stayed unreachable or kept failing (1011).
    Unavailable(Status),
}

/// Waits for a set-up place, then reads the stream (shared, see the module
/// comment), joins the session of `viewer` (not on a signed stream) and, when the
/// join's answer has no figures (a signed stream, or a control plane from before
/// `peak_viewers`), reads them; each call retried while it fails transiently. Call
/// it after the socket registered with the hub.
pub async fn open(state: &AppState, name: &str, viewer: &str) -> Result<Opened, Refused> {
    let _place = state.sessions.setup_place().await;
    let deadline = Instant::now() + SETUP_BUDGET;
    let generation = state.hub.generation();
    let streams = &state.upstream.streams;
    let fetch = || {
        retried(deadline, is_transient, || {
            let mut streams = streams.clone();
            let request = GetStreamRequest {
                name: name.to_owned(),
            };
            async move { streams.get_stream(request).await }
        })
    };
    // Each call's future is boxed, and freed when it answers: held inline, they
    // made this future 24 KB, and a 24 KB block freed after every socket's set-up
    // was carved up by the long-lived allocations of the next sockets, so each
    // socket cost a fresh one (G1 in docs/benchmarks.md).
    let stream = Box::pin(
        state
            .sessions
            .streams()
            .get_or_fetch(format!("{name}@{generation}"), || {
                Box::pin(async move { Ok(fetch().await?.into_inner().stream.unwrap_or_default()) })
            }),
    )
    .await
    .map_err(|status| match status.code() {
        Code::NotFound => Refused::NotFound,
        _ => Refused::Unavailable(status),
    })?;
    let (handle, joined) = if stream.playback_policy == PlaybackPolicy::Signed as i32 {
        if stream.status == StreamStatus::Completed as i32 {
            return Err(Refused::Completed);
        }
        (None, None)
    } else {
        // A join that ran past its deadline may have joined: only a join that
        // surely did not (unreachable, refused for load) is retried.
        let (handle, answer) = Box::pin(retried(deadline, surely_not_done, || {
            state.sessions.join(name, viewer)
        }))
        .await
        .map_err(|status| match status.code() {
            Code::FailedPrecondition => Refused::Completed,
            _ => Refused::Unavailable(status),
        })?;
        (Some(handle), Some(answer))
    };
    // A join's peak includes the joiner: zero means a control plane that does not
    // send it.
    if let Some(joined) = joined.filter(|j| j.peak_viewers > 0) {
        return Ok(Opened {
            stream,
            handle,
            figures: GetViewerCountResponse {
                viewer_count: joined.viewer_count,
                peak_viewers: joined.peak_viewers,
                ..Default::default()
            },
        });
    }
    let sessions = &state.upstream.sessions;
    // Without figures the snapshot says 0 and the next count event corrects it.
    let figures = Box::pin(retried(deadline, is_transient, || {
        let mut sessions = sessions.clone();
        let request = GetViewerCountRequest {
            name: name.to_owned(),
        };
        async move { sessions.get_viewer_count(request).await }
    }))
    .await
    .map(tonic::Response::into_inner)
    .unwrap_or_default();
    Ok(Opened {
        stream,
        handle,
        figures,
    })
}

/// Tells whether a failure may pass by itself: the control plane unreachable
/// (restarting, a network blip, its database pool exhausted), too slow for the
/// deadline (tonic reports its own timeout as `Cancelled`, "Timeout expired"), or
/// refusing streams for load (`ResourceExhausted`).
fn is_transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Cancelled
    )
}

/// Tells whether a failed call surely had no effect: it never reached the control
/// plane's logic (unreachable, no database connection, refused stream), unlike one
/// cut off by a deadline.
fn surely_not_done(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::ResourceExhausted)
}

/// Runs `call` until it succeeds, fails in a way `retry` does not accept, or the next
/// attempt would start after `deadline`; returns its last answer.
async fn retried<T, F, Fut>(
    deadline: Instant,
    retry: impl Fn(Code) -> bool,
    mut call: F,
) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(2))
        .with_jitter()
        .without_max_times()
        .build();
    loop {
        match call().await {
            Err(status) if retry(status.code()) => {
                let delay = delays.next().unwrap_or(Duration::from_secs(2));
                if Instant::now() + delay >= deadline {
                    return Err(status);
                }
                tracing::debug!(grpc.code = ?status.code(), error = status.message(), "a socket's set-up call failed; retrying");
                tokio::time::sleep(delay).await;
            }
            answer => return answer,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_the_deadline_and_others_are_not() {
        let calls = AtomicUsize::new(0);
        let answer = retried(Instant::now() + SETUP_BUDGET, is_transient, || {
            let n = calls.fetch_add(1, Ordering::Relaxed);
            async move {
                match n {
                    0 => Err(Status::unavailable("restarting")),
                    1 => Err(Status::deadline_exceeded("slow")),
                    _ => Ok(n),
                }
            }
        })
        .await;
        assert_eq!(answer.unwrap(), 2, "the third attempt answers");

        let calls = AtomicUsize::new(0);
        let answer: Result<(), Status> =
            retried(Instant::now() + SETUP_BUDGET, is_transient, || {
                calls.fetch_add(1, Ordering::Relaxed);
                async { Err(Status::not_found("no such stream")) }
            })
            .await;
        assert_eq!(answer.unwrap_err().code(), Code::NotFound);
        assert_eq!(
            calls.load(Ordering::Relaxed),
            1,
            "a definite answer is not retried"
        );

        let started = Instant::now();
        let answer: Result<(), Status> = retried(started + SETUP_BUDGET, is_transient, || async {
            Err(Status::unavailable("down"))
        })
        .await;
        assert_eq!(answer.unwrap_err().code(), Code::Unavailable);
        let waited = started.elapsed();
        assert!(
            waited <= SETUP_BUDGET,
            "gave up within the budget, after {waited:?}"
        );
    }
}
