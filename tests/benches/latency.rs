//! Single-call latency, one call at a time (never many in parallel), each row beside a
//! baseline measured in the same run on the same server:
//!
//! - gRPC `GetStream` of a live (ACTIVE) and of a PENDING stream, against
//!   `grpc.health.v1.Health/Check`;
//! - REST `GET /api/v1/streams/{id}` through the edge, live and pending, against the
//!   edge's `/healthz`;
//! - the on_publish decision (an nginx-shaped callback to ingest-hooks, answered after
//!   `AuthorizePublish`) for an accepted and for a refused key;
//! - a publish storm: `NOVA_BENCH_STORM` (default 300) on_publish callbacks for
//!   distinct streams sent at once, as after an ingest restart: how many got on air
//!   and how long the slowest waited.
//!
//! A flat ~40 ms here is a timer (Nagle's algorithm meeting delayed ACKs), not work.
//! Run with `make bench`; it prints p50/p99/max and asserts nothing about speed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::{
    future::Future,
    net::SocketAddr,
    time::{Duration, Instant},
};

use bytes_body::{Body, get, post};
use nova_proto::v1::{
    AuthorizePublishRequest, CreateStreamRequest, GetStreamRequest, IngestHeartbeatRequest, Stream,
};
use nova_tests::{TestContext, clients, edge};

/// Calls timed per row (`NOVA_BENCH_CALLS`, default 2000).
fn calls() -> usize {
    std::env::var("NOVA_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench());
}

/// Times `n` sequential calls of `call` after 50 warm-up calls; prints one row.
async fn row<F, Fut>(label: &str, n: usize, mut call: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..50 {
        call().await;
    }
    let mut took = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let at = Instant::now();
        call().await;
        took.push(at.elapsed());
    }
    let total = started.elapsed();
    took.sort();
    let pct = |p: f64| took[((took.len() as f64 * p) as usize).min(took.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "  {label:<44} p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms  {:>7.0} calls/s",
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(*took.last().unwrap()),
        n as f64 / total.as_secs_f64()
    );
}

async fn bench() {
    let n = calls();
    let ctx = TestContext::start().await;
    let mut streams = clients::streams(&ctx.url(), Some(&ctx.token), Some("bench")).await;
    let mut create = async |title: &str| {
        let created = streams
            .create_stream(CreateStreamRequest {
                stream: Some(Stream {
                    title: title.into(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        (created.stream.unwrap(), created.stream_key)
    };
    let (pending, _) = create("pending").await;
    let (live, live_key) = create("live").await;
    let mut ingest = clients::ingest(&ctx.url(), &ctx.token).await;
    ingest
        .authorize_publish(AuthorizePublishRequest {
            stream_key: live_key.clone(),
            client_addr: "192.0.2.1".into(),
            app: "live".into(),
            ingest_node: "bench".into(),
            origin_url: "http://127.0.0.1:9".into(),
            abr: false,
            client_id: "1".into(),
        })
        .await
        .unwrap();
    ingest
        .ingest_heartbeat(IngestHeartbeatRequest {
            stream_key: live_key.clone(),
            ingest_node: "bench".into(),
            client_id: "1".into(),
        })
        .await
        .unwrap();

    println!("single-call latency, {n} sequential calls per row (release build)");
    println!("gRPC, one connection:");
    let channel = clients::channel(&ctx.url()).await;
    let health = tonic_health::pb::health_client::HealthClient::new(channel);
    row("baseline: grpc.health.v1.Health/Check", n, || {
        let mut health = health.clone();
        async move {
            health
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .unwrap();
        }
    })
    .await;
    for (label, stream) in [
        ("GetStream, PENDING stream", &pending),
        ("GetStream, live (ACTIVE) stream", &live),
    ] {
        let name = stream.name.clone();
        let streams = clients::streams(&ctx.url(), Some(&ctx.token), None).await;
        row(label, n, || {
            let mut streams = streams.clone();
            let name = name.clone();
            async move {
                streams.get_stream(GetStreamRequest { name }).await.unwrap();
            }
        })
        .await;
    }

    println!("REST through the edge, one keep-alive connection:");
    let mut config = edge::config(&ctx, "bench-edge");
    config.reads_per_minute = u32::MAX / 2;
    let edge = nova_edge::start(&config).await.unwrap();
    let base = format!("http://{}", edge.addr);
    let client = bytes_body::client();
    row("baseline: GET /healthz", n, || {
        get(&client, format!("{base}/healthz"), None)
    })
    .await;
    // The owner reads (an anonymous caller does not see PENDING streams).
    let owner = edge::jwt("bench");
    for (label, stream) in [
        ("GET /api/v1/streams/{id}, PENDING", &pending),
        ("GET /api/v1/streams/{id}, live", &live),
    ] {
        let url = format!("{base}/api/v1/streams/{}", stream.stream_id);
        row(label, n, || get(&client, url.clone(), Some(&owner))).await;
    }

    println!("on_publish decision at ingest-hooks (nginx callback → answer):");
    let hooks = start_hooks(&ctx).await;
    let url = format!("http://{hooks}/rtmp/publish?secret=bench-secret-0123456789");
    let body = |key: &str| -> Body {
        format!(
            "app=live&flashver=FMLE%2F3.0&swfurl=&tcurl=rtmp%3A%2F%2F127.0.0.1%2Flive&pageurl=\
             &addr=192.0.2.1&clientid=1&call=publish&name={key}&type=live"
        )
        .into()
    };
    let refused = body(&format!("sk_live_{}", "x".repeat(43)));
    row("refused key (baseline: no stream to update)", n, || {
        post(&client, url.clone(), refused.clone(), 403)
    })
    .await;
    let accepted = body(&live_key);
    row("accepted key (302 to the relay)", n, || {
        post(&client, url.clone(), accepted.clone(), 302)
    })
    .await;

    let storm: usize = std::env::var("NOVA_BENCH_STORM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut keys = Vec::with_capacity(storm);
    for i in 0..storm {
        keys.push(create(&format!("storm {i}")).await.1);
    }
    let started = Instant::now();
    let answers = futures::future::join_all(keys.iter().enumerate().map(|(i, key)| {
        let url = url.clone();
        let body: Body = format!(
            "app=live&flashver=FMLE%2F3.0&swfurl=&tcurl=rtmp%3A%2F%2F127.0.0.1%2Flive&pageurl=\
             &addr=198.51.100.{}&clientid={}&call=publish&name={key}&type=live",
            i % 250,
            1000 + i
        )
        .into();
        async move {
            // A fresh connection each, as nginx opens one per callback.
            let client = bytes_body::client();
            let at = Instant::now();
            let status = bytes_body::status(&client, url, body).await;
            (status, at.elapsed())
        }
    }))
    .await;
    let wall = started.elapsed();
    let on_air = answers.iter().filter(|(s, _)| *s == 302).count();
    let slowest = answers.iter().map(|(_, t)| *t).max().unwrap_or_default();
    let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    statuses.sort();
    statuses.dedup();
    println!(
        "  publish storm: {storm} at once                  {on_air}/{storm} on air (answers {statuses:?}), slowest {:.0} ms, all answered in {:.0} ms",
        slowest.as_secs_f64() * 1000.0,
        wall.as_secs_f64() * 1000.0
    );
}

/// Starts ingest-hooks in-process against `ctx` (the /stat poller off); returns its address.
async fn start_hooks(ctx: &TestContext) -> SocketAddr {
    let config = nova_ingest_hooks::Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        secret: Some("bench-secret-0123456789".into()),
        control_plane_url: ctx.url(),
        control_plane_ca: None,
        service_token: ctx.ingest_token.as_str().into(),
        ingest_node: "bench".into(),
        origin_url: "http://127.0.0.1:9".into(),
        relay_url: "rtmp://127.0.0.1:9/stream".into(),
        ingest_app: "live".into(),
        abr: false,
        stat_url: String::new(),
        stat_interval: Duration::from_secs(5),
        upstream_timeout: Duration::from_secs(2),
        update_grace: Duration::from_secs(300),
        publish_failures: std::num::NonZeroU32::MAX,
        publish_failure_refill: Duration::from_millis(1),
        hls_dir: None,
        log_format: nova_ingest_hooks::config::LogFormat::Text,
    };
    let hooks = nova_ingest_hooks::start(&config).await.unwrap();
    let addr = hooks.addr;
    std::mem::forget(hooks);
    addr
}

/// A keep-alive HTTP/1.1 client and the two calls the bench makes.
mod bytes_body {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper_util::{
        client::legacy::{Client, connect::HttpConnector},
        rt::TokioExecutor,
    };

    /// A request body.
    pub type Body = Full<Bytes>;

    /// Builds a client that keeps its connection (and sets TCP_NODELAY, as browsers do).
    pub fn client() -> Client<HttpConnector, Body> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1)
            .build(connector)
    }

    /// GETs `url` (with a bearer token if given), expecting 200, and reads the body.
    pub async fn get(client: &Client<HttpConnector, Body>, url: String, bearer: Option<&str>) {
        let mut request = hyper::Request::get(url.as_str());
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let answer = client
            .request(request.body(Body::default()).unwrap())
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{url}");
        answer.into_body().collect().await.unwrap();
    }

    /// POSTs a form to `url`; returns the status (0 when the request failed).
    pub async fn status(client: &Client<HttpConnector, Body>, url: String, body: Body) -> u16 {
        let request = hyper::Request::post(url.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .unwrap();
        match client.request(request).await {
            Ok(answer) => {
                let status = answer.status().as_u16();
                let _ = answer.into_body().collect().await;
                status
            }
            Err(_) => 0,
        }
    }

    /// POSTs a form to `url`, expecting `status`, and reads the body.
    pub async fn post(client: &Client<HttpConnector, Body>, url: String, body: Body, status: u16) {
        let request = hyper::Request::post(url.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .unwrap();
        let answer = client.request(request).await.unwrap();
        let got = answer.status();
        let body = answer.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(got, status, "{url}: {}", String::from_utf8_lossy(&body));
    }
}
