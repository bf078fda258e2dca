//! The one HTTP/1.1 server every public door uses (edge, ingest-hooks, `/metrics`
//! listeners), with limits `axum::serve` does not set:
//!
//! - **header read timeout** (`NOVA_HTTP_HEADER_TIMEOUT`, default `10s`): a connection
//!   must deliver a whole request head within this time. hyper 1.x restarts the same
//!   timer whenever a keep-alive connection goes idle after a response, so it also
//!   bounds how long an idle keep-alive connection waits for its next request.
//! - **idle timeout** (`NOVA_HTTP_IDLE_TIMEOUT`, default `60s`): a connection that moves
//!   no byte in either direction for this long is closed, whatever it is doing (a
//!   request body that stopped arriving, a response the client stopped reading).
//!   Upgraded connections (WebSockets) leave this server and keep their own pings.
//!
//! Connections closed by either limit are counted in
//! `nova_streaming_http_connections_closed_total{reason}` (`header_timeout`,
//! `idle_timeout`) of the service's registry.
//!
//! Every request carries [`axum::extract::ConnectInfo`]`<SocketAddr>` of its peer, as
//! `into_make_service_with_connect_info::<SocketAddr>()` would. On shutdown the
//! listener stops accepting, open connections finish their request and close, and
//! whatever is still open after the drain deadline is dropped.

use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, extract::ConnectInfo};
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use opentelemetry::{KeyValue, metrics::Counter};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    task::JoinSet,
    time::Instant,
};

use crate::{config::parse_duration, metrics::Metrics};

/// Connection limits of an HTTP listener; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct HttpLimits {
    /// Time a connection has to send a whole request head (also bounds idle
    /// keep-alive connections between requests).
    #[arg(long = "http-header-timeout", env = "NOVA_HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Time a connection may move no byte at all before it is closed.
    #[arg(long = "http-idle-timeout", env = "NOVA_HTTP_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
}

/// What went wrong setting up a listener.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// A `NOVA_HTTP_*` variable did not parse.
    #[error("{0}")]
    Config(String),
    /// A limit was zero.
    #[error("NOVA_HTTP_HEADER_TIMEOUT and NOVA_HTTP_IDLE_TIMEOUT must be positive")]
    ZeroLimit,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl HttpLimits {
    /// Reads `NOVA_HTTP_HEADER_TIMEOUT` and `NOVA_HTTP_IDLE_TIMEOUT` from the
    /// environment, for binaries whose config does not carry them.
    pub fn from_env() -> Result<Self, HttpError> {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            limits: HttpLimits,
        }
        let only = <Only as clap::Parser>::try_parse_from(["nova"])
            .map_err(|e| HttpError::Config(e.to_string()))?;
        only.limits.validate()?;
        Ok(only.limits)
    }

    /// Checks that both limits are positive.
    pub fn validate(&self) -> Result<(), HttpError> {
        if self.header_timeout.is_zero() || self.idle_timeout.is_zero() {
            return Err(HttpError::ZeroLimit);
        }
        Ok(())
    }
}

/// Counts connections closed for a client's slowness, by reason.
#[derive(Clone)]
struct Closed(Counter<u64>);

impl Closed {
    const HEADER: &'static str = "header_timeout";
    const IDLE: &'static str = "idle_timeout";

    fn new(metrics: &Metrics) -> Self {
        let counter = metrics
            .meter()
            .u64_counter("nova_streaming_http_connections_closed")
            .with_description(
                "HTTP connections the server closed because the client was too slow, by reason",
            )
            .build();
        for reason in [Self::HEADER, Self::IDLE] {
            counter.add(0, &[KeyValue::new("reason", reason)]);
        }
        Self(counter)
    }

    fn count(&self, reason: &'static str) {
        self.0.add(1, &[KeyValue::new("reason", reason)]);
    }
}

/// How long open connections get to finish after shutdown is signalled.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` with `limits` until `stop` resolves, then drains;
/// counts connections closed by the limits in `metrics`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: impl Future<Output = ()> + Send + 'static,
    limits: HttpLimits,
    metrics: &Metrics,
) {
    let closed = Closed::new(metrics);
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let builder = Arc::new(builder);
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(
            stream,
            peer,
            router.clone(),
            builder.clone(),
            limits.idle_timeout,
            closing.clone(),
            closed.clone(),
        ));
    }
    drop(listener);
    closing_tx.send_replace(true);
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "connections still open after the drain deadline; dropping them"
        );
    }
}

/// Serves one connection until it ends, goes idle for `idle`, or shutdown asks it to
/// finish its current request.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    builder: Arc<http1::Builder>,
    idle: Duration,
    mut closing: tokio::sync::watch::Receiver<bool>,
    closed: Closed,
) {
    let activity = Activity::new();
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    // The ConnectInfo extractor reads this extension.
    let service = TowerToHyperService::new(tower::Layer::layer(
        &axum::Extension(ConnectInfo(peer)),
        router,
    ));
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                match result {
                    Err(err) if err.is_timeout() => closed.count(Closed::HEADER),
                    Err(err) if !err.is_incomplete_message() => {
                        tracing::debug!(error = %err, "HTTP connection ended with an error");
                    }
                    _ => {}
                }
                return;
            }
            () = activity.idle_for(idle) => {
                tracing::debug!(peer = %peer, "closing an idle HTTP connection");
                closed.count(Closed::IDLE);
                return;
            }
            _ = closing.wait_for(|c| *c), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// When a connection last moved a byte, in milliseconds since it was accepted.
#[derive(Clone)]
struct Activity {
    /// Accept time.
    start: Instant,
    /// Milliseconds after `start` of the last byte read or written.
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: Arc::default(),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once no byte moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A TCP stream that records its activity.
struct Watched {
    /// The connection.
    inner: TcpStream,
    /// Where reads and writes are recorded.
    activity: Activity,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn server(limits: HttpLimits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, Metrics) {
        let metrics = Metrics::new("test").unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new()
            .route(
                "/peer",
                axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                    peer.ip().to_string()
                }),
            )
            .route(
                "/echo",
                axum::routing::post(|body: String| async move { body }),
            );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let registry = metrics.clone();
        tokio::spawn(async move {
            serve(
                listener,
                router,
                async move {
                    let _ = rx.await;
                },
                limits,
                &registry,
            )
            .await;
        });
        (addr, tx, metrics)
    }

    fn closed(metrics: &Metrics, reason: &str) -> String {
        let prefix =
            format!("nova_streaming_http_connections_closed_total{{reason=\"{reason}\"}} ");
        let text = metrics.render();
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {text}"))
            .to_owned()
    }

    /// Reads until the server closes; `Err` when it stays open past `within`.
    async fn closed_within(stream: &mut TcpStream, within: Duration) -> Result<Vec<u8>, String> {
        let mut got = Vec::new();
        tokio::time::timeout(within, stream.read_to_end(&mut got))
            .await
            .map_err(|_| format!("the server kept the connection open for {within:?}"))?
            .map_err(|e| e.to_string())?;
        Ok(got)
    }

    #[tokio::test]
    async fn half_a_request_line_and_an_idle_keep_alive_are_closed() {
        let limits = HttpLimits {
            header_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_secs(30),
        };
        let (addr, _stop, metrics) = server(limits).await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /peer HT").await.unwrap();
        closed_within(&mut slow, Duration::from_secs(10))
            .await
            .unwrap();

        let mut kept = TcpStream::connect(addr).await.unwrap();
        kept.write_all(b"GET /peer HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let answer = closed_within(&mut kept, Duration::from_secs(10))
            .await
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            answer.ends_with("127.0.0.1"),
            "ConnectInfo is set: {answer}"
        );
        assert_eq!(closed(&metrics, "header_timeout"), "2");
        assert_eq!(closed(&metrics, "idle_timeout"), "0");
    }

    #[tokio::test]
    async fn a_stalled_body_is_closed_by_the_idle_timeout() {
        let limits = HttpLimits {
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_millis(300),
        };
        let (addr, _stop, metrics) = server(limits).await;
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        stalled
            .write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nabc")
            .await
            .unwrap();
        closed_within(&mut stalled, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(closed(&metrics, "idle_timeout"), "1");
    }

    #[test]
    fn limits_come_from_the_environment_with_defaults() {
        assert_eq!(HttpLimits::from_env().unwrap(), HttpLimits::default());
        assert!(
            HttpLimits {
                header_timeout: Duration::ZERO,
                ..HttpLimits::default()
            }
            .validate()
            .is_err()
        );
    }
}
