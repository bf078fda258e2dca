//! Edges for scenario tests (in-process, or as real processes to kill), REST calls
//! with dev JWTs, and a WebSocket viewer client.

use std::{net::SocketAddr, process::Stdio, time::Duration};

use futures::StreamExt;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

use crate::TestContext;

/// HS256 secret of test edges.
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123456789";

/// Returns a JWT for `sub` that test edges accept.
pub fn jwt(sub: &str) -> String {
    nova_stack::jwt::mint_hs256(JWT_SECRET, sub, 3600).expect("mint a JWT")
}

/// The edge config tests use, pointing at `ctx`'s control plane.
pub fn config(ctx: &TestContext, node: &str) -> nova_edge::Config {
    nova_edge::Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        control_plane: nova_runtime::UpstreamArgs {
            url: ctx.url(),
            ca: None,
            service_token: ctx.edge_token.as_str().into(),
        },
        node: node.into(),
        jwt_hs256_secret: Some(JWT_SECRET.into()),
        jwt_rs256_public_key: None,
        jwt_issuer: None,
        jwt_audience: None,
        jwt_max_lifetime: Duration::from_secs(24 * 3600),
        cors_origins: "*".into(),
        mutations_per_minute: 600,
        reads_per_minute: 60_000,
        list_cache: Duration::ZERO,
        stream_cache: Duration::ZERO,
        ws_opens_per_minute: 60_000,
        ws_max_sockets_per_ip: 10_000,
        ws_allowed_origins: None,
        trusted_proxies: nova_edge::ratelimit::TrustedProxies::default(),
        metrics_addr: None,
        max_body_bytes: 16 * 1024,
        web_dir: crate::tools::workspace_root().join("edge/web"),
        ws_queue: 64,
        ws_max_sockets: 10_000,
        session_heartbeat: Duration::from_secs(1),
        drain_timeout: Duration::from_secs(5),
        http: nova_runtime::http::HttpLimits::default(),
        log: nova_runtime::LogArgs::default(),
    }
}

/// Starts an edge in-process.
pub async fn start(ctx: &TestContext, node: &str) -> nova_edge::Edge {
    nova_edge::start(&config(ctx, node))
        .await
        .expect("start an edge")
}

/// Starts the real `nova-edge` binary (to be killed); returns it and its base URL.
pub fn spawn_process(ctx: &TestContext, node: &str) -> (tokio::process::Child, String) {
    spawn_process_with(ctx, node, &[])
}

/// Like [`spawn_process`], with extra environment variables.
pub fn spawn_process_with(
    ctx: &TestContext,
    node: &str,
    env: &[(&str, String)],
) -> (tokio::process::Child, String) {
    let port = nova_stack::wait::free_port().expect("a free port");
    spawn_process_on(ctx, node, port, env)
}

/// Like [`spawn_process_with`], listening on `port` (to restart an edge where it was).
pub fn spawn_process_on(
    ctx: &TestContext,
    node: &str,
    port: u16,
    env: &[(&str, String)],
) -> (tokio::process::Child, String) {
    let child = tokio::process::Command::new(
        nova_stack::stack::sibling_binary("nova-edge").expect("nova-edge built"),
    )
    .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
    .env("NOVA_EDGE_ADDR", format!("127.0.0.1:{port}"))
    .env("NOVA_CONTROL_PLANE_URL", ctx.url())
    .env("NOVA_SERVICE_TOKEN", &ctx.edge_token)
    .env("NOVA_EDGE_NODE", node)
    .env("NOVA_JWT_HS256_SECRET", JWT_SECRET)
    .env("NOVA_SESSION_HEARTBEAT", "1s")
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .kill_on_drop(true)
    .spawn()
    .expect("spawn nova-edge");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    nova_stack::wait::until(
        &format!("nova-edge on {addr}"),
        Duration::from_secs(30),
        || nova_stack::wait::accepts(addr),
    )
    .expect("nova-edge listens");
    (child, format!("http://{addr}"))
}

/// An HTTP answer with a JSON body.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Parsed body (Null when empty or not JSON).
    pub json: Value,
}

/// Sends `method url` with an optional bearer token and JSON body.
pub async fn call(method: &str, url: &str, bearer: Option<&str>, body: Option<&str>) -> Reply {
    call_with(method, url, bearer, body, &[]).await
}

/// Like [`call`], with extra request headers.
pub async fn call_with(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut request = crate::http::client().request(method, url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.expect("HTTP answer within 10 s");
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let bytes = response.bytes().await.expect("HTTP body");
    Reply {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// A WebSocket viewer.
pub struct Viewer {
    /// The socket.
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a socket ended.
#[derive(Debug, PartialEq)]
pub enum Ended {
    /// A close frame with this code and reason.
    Closed(u16, String),
    /// The connection dropped without a close frame.
    Dropped,
}

/// The WebSocket client config of the test and benchmark crowds: a 4 KiB read
/// buffer. tungstenite zeroes its whole read buffer (128 KiB by default) before every
/// read, so 10,000 default clients spend more CPU on memset than the edge spends
/// serving them, and on a shared box that is the edge's CPU (a browser pays no such
/// cost).
pub fn client_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096)
}

impl Viewer {
    /// Connects to stream `id` on the edge at `base` (http://…).
    pub async fn connect(base: &str, id: &str) -> Self {
        let url = format!(
            "{}/api/v1/streams/{id}/ws",
            base.replacen("http://", "ws://", 1)
        );
        let (socket, _) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async_with_config(url, Some(client_config()), true),
        )
        .await
        .expect("WebSocket handshake within 10 s")
        .expect("WebSocket handshake");
        Self { socket }
    }

    /// Returns the next JSON message, failing after `timeout`; `Err` when the socket ends.
    /// Every frame must match its message in `docs/asyncapi.yaml` ([`crate::frames`]).
    pub async fn next(&mut self, timeout: Duration) -> Result<Value, Ended> {
        loop {
            let message = tokio::time::timeout(timeout, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no WebSocket message within {timeout:?}"));
            match message {
                Some(Ok(Message::Text(text))) => {
                    let frame = serde_json::from_str(&text).expect("JSON frame");
                    crate::frames::assert_valid(&frame);
                    return Ok(frame);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(frame.map_or(Ended::Dropped, |f| {
                        Ended::Closed(f.code.into(), f.reason.to_string())
                    }));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(Ended::Dropped),
            }
        }
    }

    /// Returns the next message of `kind`, skipping others, failing after `timeout`.
    pub async fn next_of(&mut self, kind: &str, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(!left.is_zero(), "no {kind} within {timeout:?}");
            let message = self
                .next(left)
                .await
                .unwrap_or_else(|e| panic!("socket ended ({e:?}) before {kind}"));
            if message["type"] == kind {
                return message;
            }
        }
    }

    /// Waits until a viewer count of `count` arrives (snapshot or event); returns
    /// that message.
    pub async fn until_count(&mut self, count: i64, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "viewer count never reached {count} within {timeout:?}"
            );
            let message = self
                .next(left)
                .await
                .unwrap_or_else(|e| panic!("socket ended ({e:?})"));
            if message["viewer_count"] == count {
                return message;
            }
        }
    }

    /// Skips messages until the socket ends (at most `timeout`); returns how.
    pub async fn until_closed(&mut self, timeout: Duration) -> Ended {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(!left.is_zero(), "the socket stayed open for {timeout:?}");
            if let Err(ended) = self.next(left).await {
                return ended;
            }
        }
    }

    /// Closes the socket politely.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
