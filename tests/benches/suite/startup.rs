//! G7: from a broadcaster's publish to its first playable playlist (HTTP 200 from
//! the origin with at least one segment), `NOVA_BENCH_STARTUPS` publishes one at a
//! time (default 10), through nginx-rtmp's key-hiding relay; and viewer startup:
//! the viewer page → first frame in headless Chromium (`startup.mjs`), 5 fresh
//! loads. Measured only.

use std::time::{Duration, Instant};

use nova_proto::v1::{CreateStreamRequest, Stream};
use nova_tests::{
    clients,
    publisher::{Flv, publish},
    tools::workspace_root,
};
use serde_json::Value;

use crate::{
    procstat::{env_or, summary},
    stack::BenchStack,
    table::{Row, Rows},
};

pub async fn run(rows: &Rows) {
    let runs = env_or("STARTUPS", 10);
    let stack = BenchStack::start(1, 100).await;
    let mut streams = clients::streams(&stack.grpc_url, Some(&stack.token), Some("bench")).await;
    let origin = stack.nginx.origin_url();
    let rtmp = stack.nginx.rtmp_url();
    let http = reqwest_free_client();
    println!("G7: {runs} publishes one at a time");
    let mut took = Vec::new();
    let mut last = None;
    for i in 0..runs {
        let created = streams
            .create_stream(CreateStreamRequest {
                stream: Some(Stream {
                    title: format!("startup {i}"),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        let stream = created.stream.unwrap();
        let playlist = format!("{origin}/hls/{}.m3u8", stream.stream_id);
        let started = Instant::now();
        let task = publish(&format!("{rtmp}/{}", created.stream_key))
            .await
            .expect("publish accepted")
            .spawn(Flv::fixture(), Duration::from_secs(3600));
        let deadline = started + Duration::from_secs(20);
        loop {
            if playable(&http, &playlist).await {
                took.push(started.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{playlist} not playable within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some((task, _)) = last.replace((task, stream.stream_id)) {
            nova_tests::publisher::PublishTask::stop(task).await;
        }
    }
    let (p50, p95, _, max) = summary(&mut took);
    rows.push(
        Row::new(
            "G7.first_playlist.p95",
            format!("publish → first playable playlist, p95 of {runs}"),
            "ms",
        )
        .figure(p95)
        .baseline("hls_fragment of the template", 1000.0)
        .goal("p95 ≤ 1.5 s")
        .note(format!("p50 {p50:.0} ms, max {max:.0} ms; RTMP handshake + on_publish + relay hop + first 1 s fragment")),
    );

    // Viewer startup on the last stream, still live.
    let Some((_task, id)) = last else { return };
    let (_, base) = &stack.edges[0];
    let page = format!("{base}/#/streams/{id}");
    let (mut ms, result) = browser("startup.mjs", &page).await;
    let (p50, _, _, max) = summary(&mut ms);
    rows.push(
        Row::new(
            "G7.viewer_startup.p50",
            format!(
                "viewer page → first frame in headless Chromium, p50 of {} fresh loads",
                ms.len()
            ),
            "ms",
        )
        .figure(p50)
        .goal("≤ 1 s")
        .note(match result["error"].as_str() {
            Some(err) => format!("max {max:.0} ms; browser error: {err}"),
            None => format!("max {max:.0} ms; page + hls.js + playlist + first 1 s segment"),
        }),
    );
    drop(_task);
    drop(stack);
    quality_switch(rows).await;
}

/// With the ABR profile on: a forced level change in hls.js on the viewer page,
/// until a frame of the new height is on screen (`abr_switch.mjs`), 5 switches.
async fn quality_switch(rows: &Rows) {
    let stack = BenchStack::start_with(1, 100, true).await;
    let mut streams = clients::streams(&stack.grpc_url, Some(&stack.token), Some("bench")).await;
    let created = streams
        .create_stream(CreateStreamRequest {
            stream: Some(Stream {
                title: "quality switch".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let id = created.stream.unwrap().stream_id;
    let _task = publish(&format!(
        "{}/{}",
        stack.nginx.rtmp_url(),
        created.stream_key
    ))
    .await
    .expect("publish accepted")
    .spawn(Flv::fixture(), Duration::from_secs(3600));
    println!("G7: quality switches in hls.js on an ABR stream");
    let (_, base) = &stack.edges[0];
    let page = format!("{base}/#/streams/{id}");
    let (mut ms, result) = browser("abr_switch.mjs", &page).await;
    let (p50, _, _, max) = summary(&mut ms);
    let levels = result["levels"].to_string();
    rows.push(
        Row::new(
            "G7.quality_switch.max",
            format!(
                "ABR on: forced hls.js level change → a frame of the new height on screen, worst of {}",
                ms.len()
            ),
            "ms",
        )
        .figure(max)
        .goal("< 2 s")
        .note(match result["error"].as_str() {
            Some(err) => format!("p50 {p50:.0} ms; levels {levels}; browser error: {err}"),
            None => format!("p50 {p50:.0} ms; levels (heights) {levels}; hls.currentLevel drops the buffer and loads the new level's segment"),
        }),
    );
}

/// Runs `script` (a file of this folder) in node against `page`, 5 runs; returns the
/// milliseconds it printed and its whole JSON line (`error` says what went wrong).
async fn browser(script: &str, page: &str) -> (Vec<f64>, Value) {
    let root = workspace_root();
    let run = tokio::process::Command::new("node")
        .arg(root.join("tests/benches/suite").join(script))
        .arg(page)
        .arg("5")
        .env(
            "PLAYWRIGHT_CORE",
            root.join(".nova/tools/node_modules/playwright-core/index.mjs"),
        )
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the browser runs within 240 s")
        .expect("node runs (scripts/install-deps.sh installs playwright-core)");
    let line = String::from_utf8_lossy(&out.stdout);
    let result: Value =
        serde_json::from_str(line.lines().last().unwrap_or("{}")).unwrap_or_default();
    let ms = result["ms"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    (ms, result)
}

/// A plain HTTP/1.1 client for polling the origin.
fn reqwest_free_client() -> hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Empty<hyper::body::Bytes>,
> {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// Tells whether the playlist at `url` is served and lists a segment.
async fn playable(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Empty<hyper::body::Bytes>,
    >,
    url: &str,
) -> bool {
    use http_body_util::BodyExt;
    let Ok(uri) = url.parse() else { return false };
    let Ok(answer) = client.get(uri).await else {
        return false;
    };
    if answer.status() != 200 {
        return false;
    }
    answer
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).contains("#EXTINF"))
        .unwrap_or(false)
}
