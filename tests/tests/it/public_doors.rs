//! Attacks on the public HTTP doors: slow headers on the edge and ingest-hooks,
//! read floods, spoofed X-Forwarded-For, socket floods from one client, foreign
//! Origins and client-chosen viewer ids. Every refusal answers in the JSON error
//! shape and is counted by reason.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{net::SocketAddr, process::Stdio, time::Duration};

use futures::StreamExt;
use nova_proto::v1::GetViewerCountRequest;
use nova_tests::{
    TestContext, clients,
    edge::{self, Viewer, call, call_with, jwt},
};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

const SECOND: Duration = Duration::from_secs(1);

/// Opens `n` connections to `addr` that each send half a request line and stop.
async fn half_requests(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(b"GET /healthz HT").await.expect("write");
        held.push(stream);
    }
    held
}

/// Waits until the server has closed every connection (read returns EOF or an
/// error), failing after `within` with how many were still open.
async fn all_closed(what: &str, held: Vec<TcpStream>, within: Duration) {
    let total = held.len();
    let waits = held.into_iter().map(|mut stream| async move {
        let mut sink = Vec::new();
        tokio::time::timeout(within, stream.read_to_end(&mut sink))
            .await
            .is_ok()
    });
    let closed = futures::future::join_all(waits)
        .await
        .into_iter()
        .filter(|c| *c)
        .count();
    assert_eq!(
        closed, total,
        "{what}: only {closed} of {total} half-request connections were closed within {within:?}"
    );
}

fn spawn_hooks(ctx: &TestContext, env: &[(&str, &str)]) -> (tokio::process::Child, SocketAddr) {
    let port = nova_stack::wait::free_port().expect("a free port");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let child = tokio::process::Command::new(
        nova_stack::stack::sibling_binary("nova-ingest-hooks").expect("nova-ingest-hooks built"),
    )
    .envs(env.iter().copied())
    .env("NOVA_HOOKS_ADDR", addr.to_string())
    .env("NOVA_CONTROL_PLANE_URL", ctx.url())
    .env("NOVA_SERVICE_TOKEN", &ctx.ingest_token)
    .env("NOVA_STAT_URL", "")
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .kill_on_drop(true)
    .spawn()
    .expect("spawn nova-ingest-hooks");
    nova_stack::wait::until(
        &format!("nova-ingest-hooks on {addr}"),
        Duration::from_secs(30),
        || nova_stack::wait::accepts(addr),
    )
    .expect("nova-ingest-hooks listens");
    (child, addr)
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_header_connections_are_closed_by_the_edge_and_the_hooks() {
    let ctx = TestContext::start().await;
    let timeouts = [("NOVA_HTTP_HEADER_TIMEOUT", "1s")];
    let (_edge, base) = edge::spawn_process_with(
        &ctx,
        "edge-slow",
        &[("NOVA_HTTP_HEADER_TIMEOUT", "1s".into())],
    );
    let (_hooks, hooks_addr) = spawn_hooks(&ctx, &timeouts);
    let edge_addr: SocketAddr = base.trim_start_matches("http://").parse().unwrap();

    let on_edge = half_requests(edge_addr, 100).await;
    let on_hooks = half_requests(hooks_addr, 100).await;
    // 1 s header timeout; 20 s is the bound of this wait, not a speed assertion.
    all_closed("edge", on_edge, 20 * SECOND).await;
    all_closed("ingest-hooks", on_hooks, 20 * SECOND).await;
    for (what, url) in [
        ("edge", format!("{base}/metrics")),
        ("ingest-hooks", format!("http://{hooks_addr}/metrics")),
    ] {
        let text = nova_tests::http::get(&url).await.unwrap().text();
        let closed: u64 = text
            .lines()
            .find_map(|l| {
                l.strip_prefix(
                    r#"nova_streaming_http_connections_closed_total{reason="header_timeout"} "#,
                )
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{what}: no header_timeout count in\n{text}"));
        assert!(closed >= 100, "{what} counted {closed} header timeouts");
    }

    // Well-behaved clients are still served: REST, the hooks' health, a WebSocket.
    assert_eq!(
        call("GET", &format!("{base}/healthz"), None, None)
            .await
            .status,
        200
    );
    let hooks_health = nova_tests::http::get(&format!("http://{hooks_addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(hooks_health.status, 200);
    let created = call(
        "POST",
        &format!("{base}/api/v1/streams"),
        Some(&jwt("alice")),
        Some(r#"{"title":"doors"}"#),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.json);
    let id = created.json["stream"]["id"].as_str().unwrap();
    let mut viewer = Viewer::connect(&base, id).await;
    assert_eq!(viewer.next(5 * SECOND).await.unwrap()["type"], "snapshot");
    viewer.close().await;
}

/// Opens a WebSocket to `url` with extra headers; the refusal's status, headers and
/// JSON body, or `Ok` with the first frame.
async fn open(url: &str, headers: &[(&str, &str)]) -> Result<Value, (u16, http::HeaderMap, Value)> {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut socket, _)) => {
            let frame = tokio::time::timeout(5 * SECOND, socket.next())
                .await
                .expect("a first frame within 5 s")
                .expect("a frame")
                .expect("a message");
            // Keep the socket open for the caller's count: leak it into a task.
            tokio::spawn(async move { while socket.next().await.is_some() {} });
            Ok(serde_json::from_str(frame.to_text().unwrap()).unwrap())
        }
        Err(tungstenite::Error::Http(response)) => {
            let body = serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                .expect("a JSON error body");
            Err((response.status().as_u16(), response.headers().clone(), body))
        }
        Err(other) => panic!("handshake failed without an HTTP answer: {other}"),
    }
}

fn refusals(metrics: &str, reason: &str) -> u64 {
    let prefix = format!("nova_streaming_edge_refusals_total{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in /metrics"))
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_are_rate_limited_per_client_and_forwarded_for_is_not_believed_from_strangers() {
    let ctx = TestContext::start().await;
    let mut config = edge::config(&ctx, "edge-reads");
    config.reads_per_minute = 60; // a burst of 6
    let e = nova_edge::start(&config).await.unwrap();
    let base = format!("http://{}", e.addr);
    for i in 0..6 {
        let spoof = format!("198.51.100.{i}");
        let answer = call_with(
            "GET",
            &format!("{base}/api/v1/streams"),
            None,
            None,
            &[("x-forwarded-for", &spoof)],
        )
        .await;
        assert_eq!(answer.status, 200, "read {i}: {:?}", answer.json);
    }
    let refused = call_with(
        "GET",
        &format!("{base}/api/v1/streams"),
        None,
        None,
        &[("x-forwarded-for", "203.0.113.99")],
    )
    .await;
    assert_eq!(
        refused.status, 429,
        "a spoofed X-Forwarded-For buys no bucket"
    );
    assert_eq!(refused.json["error"]["code"], "RESOURCE_EXHAUSTED");
    let wait: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let stream = format!("{base}/api/v1/streams/{}", uuid::Uuid::now_v7());
    assert_eq!(
        call("GET", &stream, None, None).await.status,
        429,
        "every REST GET"
    );
    assert_eq!(
        call("GET", &format!("{base}/healthz"), None, None)
            .await
            .status,
        200
    );
    let metrics = nova_tests::http::get(&format!("{base}/metrics"))
        .await
        .unwrap();
    assert_eq!(refusals(&metrics.text(), "read_rate"), 2);
    e.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn one_client_cannot_flood_an_edge_with_sockets_or_pick_its_viewer_id() {
    let ctx = TestContext::start().await;
    let mut config = edge::config(&ctx, "edge-sockets");
    config.ws_max_sockets_per_ip = 2;
    config.ws_opens_per_minute = 9; // a burst of 3
    let e = nova_edge::start(&config).await.unwrap();
    let base = format!("http://{}", e.addr);
    let created = call(
        "POST",
        &format!("{base}/api/v1/streams"),
        Some(&jwt("alice")),
        Some(r#"{"title":"crowd"}"#),
    )
    .await;
    let id = created.json["stream"]["id"].as_str().unwrap().to_owned();
    let url = format!("ws://{}/api/v1/streams/{id}/ws", e.addr);

    // Two sockets with different client-chosen viewer ids: one viewer, two sessions.
    assert_eq!(
        open(&format!("{url}?viewer=a"), &[]).await.unwrap()["type"],
        "snapshot"
    );
    assert_eq!(
        open(&format!("{url}?viewer=b"), &[]).await.unwrap()["type"],
        "snapshot"
    );
    let figures = clients::sessions(&ctx.url(), &ctx.token)
        .await
        .get_viewer_count(GetViewerCountRequest {
            name: format!("streams/{id}"),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(figures.viewer_count, 2);
    assert_eq!(
        figures.unique_viewers, 1,
        "the edge picks the viewer id, not the client"
    );

    let (status, headers, body) = open(&url, &[]).await.unwrap_err();
    assert_eq!(status, 429, "a third socket from one client: {body}");
    assert_eq!(body["error"]["code"], "RESOURCE_EXHAUSTED");
    assert!(headers.contains_key("retry-after"));
    let (status, _, body) = open(&url, &[]).await.unwrap_err();
    assert_eq!(status, 429, "the open rate: {body}");
    assert_eq!(e.state.slots.taken(), 2, "refusals take no place");

    let metrics = nova_tests::http::get(&format!("{base}/metrics"))
        .await
        .unwrap();
    assert_eq!(refusals(&metrics.text(), "ws_client_sockets"), 1);
    assert_eq!(refusals(&metrics.text(), "ws_open_rate"), 1);
    e.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn websockets_from_unlisted_origins_are_refused_before_upgrading() {
    let ctx = TestContext::start().await;
    let mut config = edge::config(&ctx, "edge-origin");
    config.ws_allowed_origins =
        Some(nova_edge::ws::origin::AllowedOrigins::parse("https://watch.example.com").unwrap());
    let e = nova_edge::start(&config).await.unwrap();
    let base = format!("http://{}", e.addr);
    let created = call(
        "POST",
        &format!("{base}/api/v1/streams"),
        Some(&jwt("alice")),
        Some(r#"{"title":"origins"}"#),
    )
    .await;
    let id = created.json["stream"]["id"].as_str().unwrap().to_owned();
    let url = format!("ws://{}/api/v1/streams/{id}/ws", e.addr);
    for origin in [
        Some("https://evil.example"),
        Some("https://watch.example.com.evil.example"),
        Some("null"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = origin.iter().map(|o| ("origin", *o)).collect();
        let (status, _, body) = open(&url, &headers).await.unwrap_err();
        assert_eq!(status, 403, "{origin:?}");
        assert_eq!(body["error"]["code"], "PERMISSION_DENIED", "{origin:?}");
    }
    let good = open(&url, &[("origin", "https://watch.example.com")])
        .await
        .unwrap();
    assert_eq!(good["type"], "snapshot");
    assert_eq!(e.state.slots.taken(), 1);
    let metrics = nova_tests::http::get(&format!("{base}/metrics"))
        .await
        .unwrap();
    assert_eq!(refusals(&metrics.text(), "ws_origin"), 4);
    e.shutdown().await.unwrap();
}
