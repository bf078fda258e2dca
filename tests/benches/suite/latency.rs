//! G3 and G4: single-call latency, one call at a time (a parallel benchmark hides a
//! flat per-call stall such as Nagle meeting delayed ACKs), each row beside a
//! baseline from the same server; throughput with calls in parallel; the on_publish
//! decision and a publish storm.

use std::{
    future::Future,
    net::SocketAddr,
    time::{Duration, Instant},
};

use bytes_body::{Body, get, post};
use nova_proto::v1::{AuthorizePublishRequest, GetStreamRequest, IngestHeartbeatRequest};
use nova_tests::{TestContext, clients, edge};

use crate::{
    procstat::{env_or, summary},
    table::{Row, Rows},
};

/// p50, p99, max in ms and calls/s of `n` sequential calls (after 50 warm-up calls).
struct Timed {
    p50: f64,
    p99: f64,
    max: f64,
    rate: f64,
}

async fn timed<F, Fut>(n: usize, mut call: F) -> Timed
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
        took.push(at.elapsed().as_secs_f64() * 1000.0);
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let (p50, _, p99, max) = summary(&mut took);
    Timed {
        p50,
        p99,
        max,
        rate,
    }
}

/// Calls per second of `call` run by `workers` tasks at once for `window`.
async fn throughput<F, Fut>(workers: usize, window: Duration, call: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while started.elapsed() < window {
                    call().await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Calls per second of `base` and of `call`, `workers` at once, each for 3 s in all,
/// in four alternating 1.5 s windows (base, call, call, base), so that a burst of
/// load from outside the suite falls on both sides alike.
async fn throughput_pair<B, BFut, F, Fut>(workers: usize, base: B, call: F) -> (f64, f64)
where
    B: Fn() -> BFut + Clone + Send + 'static,
    BFut: Future<Output = ()> + Send,
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let window = Duration::from_millis(1500);
    let b1 = throughput(workers, window, base.clone()).await;
    let c1 = throughput(workers, window, call.clone()).await;
    let c2 = throughput(workers, window, call).await;
    let b2 = throughput(workers, window, base).await;
    ((b1 + b2) / 2.0, (c1 + c2) / 2.0)
}

fn latency_row(
    id: &str,
    what: &str,
    t: &Timed,
    base: &Timed,
    base_what: &str,
    goal: &'static str,
) -> Row {
    Row::new(id, what, "ms")
        .figure(t.p50)
        .baseline(format!("{base_what} p50"), base.p50)
        .goal(goal)
        .note(format!(
            "p99 {:.3} ms, max {:.3} ms, {:.0} calls/s one at a time (baseline p99 {:.3} ms)",
            t.p99, t.max, t.rate, base.p99
        ))
}

pub async fn run(rows: &Rows) {
    let n = env_or("CALLS", 2000);
    let ctx = TestContext::start().await;
    let mut streams = clients::streams(&ctx.url(), Some(&ctx.token), Some("bench")).await;
    let mut create = async |title: &str| clients::create_titled(&mut streams, title).await;
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
            recording: false,
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

    println!("G4 single-call latency, {n} sequential calls per figure");
    let channel = clients::channel(&ctx.url()).await;
    let health = tonic_health::pb::health_client::HealthClient::new(channel);
    let check = {
        let health = health.clone();
        move || {
            let mut health = health.clone();
            async move {
                health
                    .check(tonic_health::pb::HealthCheckRequest::default())
                    .await
                    .unwrap();
            }
        }
    };
    let base = timed(n, check.clone()).await;
    let get_stream = |name: String, streams: clients::Streams| {
        move || {
            let mut streams = streams.clone();
            let name = name.clone();
            async move {
                streams.get_stream(GetStreamRequest { name }).await.unwrap();
            }
        }
    };
    for (id, label, stream) in [
        (
            "G4.grpc_get.pending",
            "gRPC GetStream, PENDING stream, p50",
            &pending,
        ),
        (
            "G4.grpc_get.live",
            "gRPC GetStream, live (ACTIVE) stream, p50",
            &live,
        ),
    ] {
        let client = clients::streams(&ctx.url(), Some(&ctx.token), None).await;
        let t = timed(n, get_stream(stream.name.clone(), client)).await;
        rows.push(latency_row(
            id,
            label,
            &t,
            &base,
            "Health/Check",
            "≤ 1 ms, live and pending alike",
        ));
    }
    let client = clients::streams(&ctx.url(), Some(&ctx.token), None).await;
    let (health_rate, live_rate) =
        throughput_pair(16, check, get_stream(live.name.clone(), client)).await;
    rows.push(
        Row::new(
            "G4.grpc_get.throughput",
            "gRPC GetStream of a live stream, 16 calls in flight on one channel",
            "calls/s",
        )
        .figure(live_rate)
        .baseline("Health/Check, same load", health_rate)
        .goal("≥ 70% of Health/Check")
        .note(format!(
            "{:.0}% of the baseline",
            100.0 * live_rate / health_rate
        )),
    );

    let mut config = edge::config(&ctx, "bench-edge");
    config.reads_per_minute = u32::MAX / 2;
    // The production default (the test harness turns it off).
    config.stream_cache = std::time::Duration::from_secs(1);
    let edge = nova_edge::start(&config).await.unwrap();
    let base_url = format!("http://{}", edge.addr);
    let client = bytes_body::client();
    let healthz = timed(n, || get(&client, format!("{base_url}/healthz"), None)).await;
    // The owner reads (an anonymous caller does not see PENDING streams).
    let owner = edge::jwt("bench");
    for (id, label, stream) in [
        (
            "G4.rest_get.pending",
            "REST GET /api/v1/streams/{id}, PENDING, p50",
            &pending,
        ),
        (
            "G4.rest_get.live",
            "REST GET /api/v1/streams/{id}, live, p50",
            &live,
        ),
    ] {
        let url = format!("{base_url}/api/v1/streams/{}", stream.stream_id);
        let t = timed(n, || get(&client, url.clone(), Some(&owner))).await;
        rows.push(latency_row(
            id,
            label,
            &t,
            &healthz,
            "GET /healthz",
            "p50 ≤ 1 ms",
        ));
    }
    let rest = |url: String, owner: Option<String>| {
        move || {
            let url = url.clone();
            let owner = owner.clone();
            async move {
                // One keep-alive connection per task, as a crowd of browsers has.
                shared_client::get(url, owner).await;
            }
        }
    };
    let live_url = format!("{base_url}/api/v1/streams/{}", live.stream_id);
    let (healthz_rate, live_rate) = throughput_pair(
        16,
        rest(format!("{base_url}/healthz"), None),
        rest(live_url, None),
    )
    .await;
    rows.push(
        Row::new(
            "G4.rest_get.throughput",
            "REST GET one live stream, 16 keep-alive connections",
            "req/s",
        )
        .figure(live_rate)
        .baseline("GET /healthz, same load", healthz_rate)
        .goal("≥ 10k req/s"),
    );

    println!("G3 on_publish decision at ingest-hooks (nginx callback → answer)");
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
    let refused_t = timed(n, || post(&client, url.clone(), refused.clone(), 403)).await;
    let accepted = body(&live_key);
    let accepted_t = timed(n, || post(&client, url.clone(), accepted.clone(), 302)).await;
    rows.push(latency_row(
        "G3.on_publish.p50",
        "on_publish, accepted key (302 to the relay), p50",
        &accepted_t,
        &refused_t,
        "refused key",
        "p50 ≤ 2 ms",
    ));
    rows.push(
        Row::new("G3.on_publish.p99", "on_publish, accepted key, p99", "ms")
            .figure(accepted_t.p99)
            .baseline("refused key p99", refused_t.p99)
            .goal("p99 ≤ 10 ms"),
    );

    let storm = env_or("STORM", 300);
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
    rows.push(
        Row::new(
            format!("G3.storm@{storm}"),
            format!("publish storm: {storm} on_publish callbacks at once, broadcasters on air"),
            "on air",
        )
        .figure(on_air as f64)
        .baseline("callbacks sent", storm as f64)
        .goal("every broadcaster on air")
        .note(format!(
            "answers {statuses:?}, slowest {:.0} ms, all answered in {:.0} ms (hooks' deadline 2 s)",
            slowest.as_secs_f64() * 1000.0,
            wall.as_secs_f64() * 1000.0
        )),
    );
    edge.shutdown().await.unwrap();
}

/// Starts ingest-hooks in-process against `ctx` (the /stat poller off); returns its address.
async fn start_hooks(ctx: &TestContext) -> SocketAddr {
    let config = nova_ingest_hooks::Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        metrics_addr: None,
        secret: Some("bench-secret-0123456789".into()),
        control_plane: nova_runtime::UpstreamArgs {
            url: ctx.url(),
            ca: None,
            service_token: ctx.ingest_token.as_str().into(),
        },
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
        record_url: "rtmp://127.0.0.1:9/record".into(),
        record_dir: None,
        store: Default::default(),
        log: nova_runtime::LogArgs::default(),
    };
    let hooks = nova_ingest_hooks::start(&config).await.unwrap();
    let addr = hooks.addr;
    std::mem::forget(hooks);
    addr
}

/// One shared keep-alive client for the throughput rows.
mod shared_client {
    use super::bytes_body;

    /// GETs `url` on one client whose pool keeps 16 connections, standing in for 16
    /// browsers with a keep-alive connection each.
    pub async fn get(url: String, bearer: Option<String>) {
        static CLIENT: std::sync::OnceLock<bytes_body::Client> = std::sync::OnceLock::new();
        let client = CLIENT.get_or_init(|| bytes_body::client_with(16));
        bytes_body::get(client, url, bearer.as_deref()).await;
    }
}

/// A keep-alive HTTP/1.1 client and the two calls the bench makes.
mod bytes_body {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper_util::{client::legacy::connect::HttpConnector, rt::TokioExecutor};

    /// A request body.
    pub type Body = Full<Bytes>;

    /// The keep-alive client.
    pub type Client = hyper_util::client::legacy::Client<HttpConnector, Body>;

    /// Builds a client that keeps its connection (and sets TCP_NODELAY, as browsers do).
    pub fn client() -> Client {
        client_with(1)
    }

    /// Builds a client keeping up to `idle` connections.
    pub fn client_with(idle: usize) -> Client {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(idle)
            .build(connector)
    }

    /// GETs `url` (with a bearer token if given), expecting 200, and reads the body.
    pub async fn get(client: &Client, url: String, bearer: Option<&str>) {
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
    pub async fn status(client: &Client, url: String, body: Body) -> u16 {
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
    pub async fn post(client: &Client, url: String, body: Body, status: u16) {
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
