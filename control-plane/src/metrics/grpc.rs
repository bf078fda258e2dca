//! The gRPC RED layer: every call counted by method and `code`, and its time to the
//! response head. tower-http's [`GrpcErrorsAsFailures`] reads the code from the
//! `grpc-status` of the response head (a trailers-only answer: an error before any
//! message) or, when the head has none, from the trailers that end the body (every
//! success, and a stream that fails after its first message). A body dropped before
//! its trailers (the client went away) counts as `CANCELLED`.

use std::{
    fmt,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use http_body::{Body, Frame, SizeHint};
use nova_runtime::metrics::Red;
use tower_http::classify::{
    ClassifiedResponse, ClassifyEos, ClassifyResponse, GrpcEosErrorsAsFailures,
    GrpcErrorsAsFailures, GrpcFailureClass,
};

/// Tower layer recording gRPC RED per method.
#[derive(Clone)]
pub struct GrpcRedLayer(pub(super) Red);

impl<S> tower::Layer<S> for GrpcRedLayer {
    type Service = GrpcRed<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcRed {
            inner,
            red: self.0.clone(),
        }
    }
}

/// Service of [`GrpcRedLayer`].
#[derive(Clone)]
pub struct GrpcRed<S> {
    /// The wrapped service.
    inner: S,
    /// Instruments.
    red: Red,
}

/// Returns `path` when it names one of our methods, else `unknown` (bounded labels).
fn method_label(path: &str) -> String {
    let known = path.starts_with("/nova.streaming.v1.")
        || path.starts_with("/grpc.health.v1.")
        || path.starts_with("/grpc.reflection.");
    if known && path.len() <= 128 {
        path.to_owned()
    } else {
        "unknown".to_owned()
    }
}

/// Returns the canonical name of a gRPC code (`NOT_FOUND`, …).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Label of the service failing instead of answering, or of a body that failed.
const TRANSPORT_ERROR: &str = "TRANSPORT_ERROR";

/// Returns the `code` label of a classified call.
fn code_label(classified: Result<(), GrpcFailureClass>) -> &'static str {
    match classified {
        Ok(()) => "OK",
        Err(GrpcFailureClass::Status(status)) => {
            code_name(tonic::Code::from_i32(status.code_raw()))
        }
        Err(_) => TRANSPORT_ERROR,
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcRed<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Send,
    R: Body,
    S::Future: Send + 'static,
{
    type Response = http::Response<RecordedBody<R>>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = method_label(request.uri().path());
        let red = self.red.clone();
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = match future.await {
                Ok(response) => response,
                Err(err) => {
                    red.record_grpc(&method, TRANSPORT_ERROR, started.elapsed());
                    return Err(err);
                }
            };
            let elapsed = started.elapsed();
            let pending = match GrpcErrorsAsFailures::new().classify_response(&response) {
                ClassifiedResponse::Ready(classified) => {
                    red.record_grpc(&method, code_label(classified), elapsed);
                    None
                }
                ClassifiedResponse::RequiresEos(eos) => Some(Pending {
                    eos,
                    red,
                    method,
                    elapsed,
                }),
            };
            Ok(response.map(|inner| RecordedBody { inner, pending }))
        })
    }
}

/// A call whose code is in its trailers, recorded once they pass.
struct Pending {
    /// Classifies the trailers.
    eos: GrpcEosErrorsAsFailures,
    /// Instruments.
    red: Red,
    /// The `method` label.
    method: String,
    /// Time to the response head, the recorded duration.
    elapsed: Duration,
}

/// A response body that records its call when its trailers (or its end, or an error)
/// pass, or as `CANCELLED` when it is dropped before.
pub struct RecordedBody<B: Body> {
    /// The service's body.
    inner: B,
    /// Set until the call is recorded.
    pending: Option<Pending>,
}

impl<B: Body> RecordedBody<B> {
    /// Records the call, once, with the code `classify` gives.
    fn finish(
        &mut self,
        classify: impl FnOnce(GrpcEosErrorsAsFailures) -> Result<(), GrpcFailureClass>,
    ) {
        if let Some(pending) = self.pending.take() {
            let code = code_label(classify(pending.eos));
            pending
                .red
                .record_grpc(&pending.method, code, pending.elapsed);
        }
    }
}

impl<B> Body for RecordedBody<B>
where
    B: Body + Unpin,
    B::Error: fmt::Display + 'static,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    self.finish(|eos| eos.classify_eos(Some(trailers)));
                }
            }
            Poll::Ready(Some(Err(err))) => self.finish(|eos| Err(eos.classify_error(err))),
            Poll::Ready(None) => self.finish(|eos| eos.classify_eos(None)),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: Body> Drop for RecordedBody<B> {
    /// Records a call whose body ended unread as OK, one cut off before its
    /// trailers as `CANCELLED`.
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            let code = if self.inner.is_end_stream() {
                "OK"
            } else {
                "CANCELLED"
            };
            pending
                .red
                .record_grpc(&pending.method, code, pending.elapsed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::VecDeque, convert::Infallible};

    use http::{HeaderMap, HeaderValue};
    use nova_runtime::metrics::Metrics;
    use tower::{Layer, ServiceExt};

    use super::*;

    /// A body of ready frames.
    struct Frames(VecDeque<Frame<&'static [u8]>>);

    impl Body for Frames {
        type Data = &'static [u8];
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Self::Data>, Infallible>>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }

        fn is_end_stream(&self) -> bool {
            self.0.is_empty()
        }
    }

    fn status(code: u8) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert("grpc-status", HeaderValue::from(u16::from(code)));
        map
    }

    /// Answers `path` with `head` headers and `frames`; reads the body to its end
    /// when `read`, else drops it unread.
    async fn call(
        red: &Red,
        path: &str,
        head: HeaderMap,
        frames: Vec<Frame<&'static [u8]>>,
        read: bool,
    ) {
        let mut frames = Some(frames);
        let service = tower::service_fn(move |_: http::Request<()>| {
            let frames = frames.take().unwrap_or_default();
            let mut response = http::Response::new(Frames(frames.into()));
            *response.headers_mut() = head.clone();
            async move { Ok::<_, Infallible>(response) }
        });
        let request = http::Request::builder().uri(path).body(()).unwrap();
        let response = GrpcRedLayer(red.clone())
            .layer(service)
            .oneshot(request)
            .await
            .unwrap();
        let mut body = response.into_body();
        while read
            && std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
                .await
                .is_some()
        {}
    }

    /// Returns the count of `method` calls with `code`.
    fn count(metrics: &Metrics, method: &str, code: &str) -> String {
        let (method, code) = (format!("method=\"{method}\""), format!("code=\"{code}\""));
        metrics
            .render()
            .lines()
            .find(|l| {
                l.starts_with("nova_streaming_grpc_server_requests_total{")
                    && l.contains(&method)
                    && l.contains(&code)
            })
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or("none")
            .to_owned()
    }

    #[tokio::test]
    async fn codes_come_from_the_head_or_the_trailers() {
        let metrics = Metrics::new("control-plane").unwrap();
        let red = metrics.red("grpc");
        let get = "/nova.streaming.v1.StreamService/GetStream";
        let watch = "/nova.streaming.v1.EventService/WatchEvents";
        // A trailers-only error.
        call(&red, get, status(5), vec![], true).await;
        // A success: a message, then OK in the trailers.
        let ok = vec![Frame::data(&b"m"[..]), Frame::trailers(status(0))];
        call(&red, get, HeaderMap::new(), ok, true).await;
        // A stream failing after its first message: the code is only in the trailers.
        let failed = || vec![Frame::data(&b"m"[..]), Frame::trailers(status(14))];
        call(&red, watch, HeaderMap::new(), failed(), true).await;
        // A stream whose client went away before the trailers.
        call(&red, watch, HeaderMap::new(), failed(), false).await;
        assert_eq!(count(&metrics, get, "NOT_FOUND"), "1");
        assert_eq!(count(&metrics, get, "OK"), "1");
        assert_eq!(count(&metrics, watch, "UNAVAILABLE"), "1");
        assert_eq!(count(&metrics, watch, "CANCELLED"), "1");
        assert_eq!(count(&metrics, watch, "OK"), "none");
    }
}
