//! G7: from a broadcaster's publish to its first playable playlist (HTTP 200 from
//! the origin with at least one segment), `NOVA_BENCH_STARTUPS` publishes one at a
//! time (default 10) per broadcaster (real ffmpeg encoding live, and the in-tree
//! publisher), through nginx-rtmp's key-hiding relay; viewer startup: the viewer page →
//! first frame in headless Chromium (`startup.mjs`), 5 fresh loads; and the ABR
//! quality switch. Measured only.

use std::time::{Duration, Instant};

use nova_tests::{
    clients, ffmpeg,
    publisher::{Flv, PublishTask, publish},
    tools::workspace_root,
};
use serde_json::Value;

use crate::{
    procstat::{env_or, summary},
    stack::BenchStack,
    table::{Row, Rows},
};

/// Who publishes.
#[derive(Clone, Copy)]
enum Broadcaster {
    /// Real ffmpeg encoding a test pattern live (x264 zerolatency, 1 s GOP).
    Ffmpeg,
    /// The in-tree RTMP publisher sending the fixture.
    Publisher,
}

/// A broadcast on air.
enum OnAir {
    /// An ffmpeg process (killed on drop).
    Ffmpeg(ffmpeg::Broadcaster),
    /// A publisher task.
    Publisher(PublishTask),
}

impl OnAir {
    /// Ends the broadcast.
    async fn end(self) {
        match self {
            Self::Ffmpeg(process) => drop(process),
            Self::Publisher(task) => task.stop().await,
        }
    }
}

/// Creates a stream titled `title`, starts `who` publishing to it, and waits (at
/// most 20 s) until its playlist is playable; returns the broadcast, the stream id
/// and the milliseconds from the start of the publish.
async fn go_live(stack: &BenchStack, who: Broadcaster, title: &str) -> (OnAir, String, f64) {
    let mut streams = clients::streams(&stack.grpc_url, Some(&stack.token), Some("bench")).await;
    let (stream, key) = clients::create_titled(&mut streams, title).await;
    let id = stream.stream_id;
    let url = format!("{}/{key}", stack.nginx.rtmp_url());
    let playlist = format!("{}/hls/{id}.m3u8", stack.nginx.origin_url());
    let http = reqwest_free_client();
    let started = Instant::now();
    let on_air = match who {
        Broadcaster::Ffmpeg => {
            OnAir::Ffmpeg(ffmpeg::Broadcaster::start(&url, Duration::from_secs(3600)))
        }
        Broadcaster::Publisher => OnAir::Publisher(
            publish(&url)
                .await
                .expect("publish accepted")
                .spawn(Flv::fixture(), Duration::from_secs(3600)),
        ),
    };
    let deadline = started + Duration::from_secs(20);
    while segments(&http, &playlist).await == 0 {
        assert!(
            Instant::now() < deadline,
            "{playlist} not playable within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (on_air, id, started.elapsed().as_secs_f64() * 1000.0)
}

/// Milliseconds to the first playable playlist of `runs` broadcasts by `who`, one at
/// a time.
async fn first_playlists(stack: &BenchStack, runs: usize, who: Broadcaster) -> Vec<f64> {
    let mut took = Vec::new();
    for i in 0..runs {
        let (on_air, _, ms) = go_live(stack, who, &format!("startup {i}")).await;
        took.push(ms);
        on_air.end().await;
    }
    took
}

pub async fn run(rows: &Rows) {
    let runs = env_or("STARTUPS", 10);
    let stack = BenchStack::start(1, 100).await;
    println!("G7: {runs} publishes one at a time per broadcaster");
    let mut ffmpeg = first_playlists(&stack, runs, Broadcaster::Ffmpeg).await;
    let mut publisher = first_playlists(&stack, runs, Broadcaster::Publisher).await;
    // Whether the relay address has its quickack route (nova-stack adds it as root):
    // without it the relay joins ~85 ms late and misses the first keyframe.
    let relay = match nova_stack::nginx::relay_quick_acks() {
        Ok(()) => {
            "the relay joins before the first keyframe (its address has quick ACKs)".to_owned()
        }
        Err(why) => format!(
            "the relay's address keeps delayed ACKs ({why}), so it misses the first keyframe and the playlist waits one more 1 s keyframe interval"
        ),
    };
    let (p50, p95, _, max) = summary(&mut ffmpeg);
    rows.push(
        Row::new(
            "G7.first_playlist.p95",
            format!(
                "ffmpeg live encoder (x264 zerolatency, 1 s GOP) start → first playable playlist, p95 of {runs}"
            ),
            "ms",
        )
        .figure(p95)
        .baseline("hls_fragment of the template", 1000.0)
        .goal("p95 ≤ 1.5 s")
        .note(format!(
            "p50 {p50:.0} ms, max {max:.0} ms; ffmpeg start + RTMP handshake + on_publish + relay hop + first 1 s fragment; {relay}"
        )),
    );
    let (p50, p95, _, max) = summary(&mut publisher);
    rows.push(
        Row::new(
            "G7.first_playlist_publisher.p95",
            format!(
                "in-tree publisher (fixture, first keyframe sent the moment the publish is accepted) → first playable playlist, p95 of {runs}"
            ),
            "ms",
        )
        .figure(p95)
        .baseline("hls_fragment of the template", 1000.0)
        .goal("p95 ≤ 1.5 s")
        .note(format!(
            "p50 {p50:.0} ms, max {max:.0} ms; {relay}"
        )),
    );

    // Viewer startup on a stream that stays live.
    // Right after its first playlist (one segment), then once the playlist holds
    // hls.js's live sync distance (3 segments), as for a viewer of a running stream.
    let (on_air, id, _) = go_live(&stack, Broadcaster::Publisher, "viewer startup").await;
    let (_, base) = &stack.edges[0];
    let page = format!("{base}/#/streams/{id}");
    let (mut fresh, _) = browser("startup.mjs", &page).await;
    let (fresh_p50, _, _, _) = summary(&mut fresh);
    let playlist = format!("{}/hls/{id}.m3u8", stack.nginx.origin_url());
    let http = reqwest_free_client();
    let deadline = Instant::now() + Duration::from_secs(15);
    while segments(&http, &playlist).await < 3 {
        assert!(
            Instant::now() < deadline,
            "{playlist} never listed 3 segments"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (mut ms, result) = browser("startup.mjs", &page).await;
    let (p50, _, _, max) = summary(&mut ms);
    rows.push(
        Row::new(
            "G7.viewer_startup.p50",
            format!(
                "viewer page → first frame in headless Chromium, stream live with 3 segments, p50 of {} fresh loads",
                ms.len()
            ),
            "ms",
        )
        .figure(p50)
        .goal("≤ 1 s")
        .note(match result["error"].as_str() {
            Some(err) => format!("max {max:.0} ms; browser error: {err}"),
            None => format!(
                "max {max:.0} ms; page + hls.js + playlist + first 1 s segment; right after the first playlist (1 segment): p50 {fresh_p50:.0} ms"
            ),
        }),
    );
    on_air.end().await;
    drop(stack);
    quality_switch(rows).await;
}

/// With the ABR profile on: a forced level change in hls.js on the viewer page,
/// until a frame of the new height is on screen (`abr_switch.mjs`), 5 switches.
async fn quality_switch(rows: &Rows) {
    let stack = BenchStack::start_with(1, 100, true).await;
    let (_on_air, id, _) = go_live(&stack, Broadcaster::Publisher, "quality switch").await;
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

/// Counts the segments the playlist at `url` lists (0 while it is not served).
async fn segments(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Empty<hyper::body::Bytes>,
    >,
    url: &str,
) -> usize {
    use http_body_util::BodyExt;
    let Ok(uri) = url.parse() else { return 0 };
    let Ok(answer) = client.get(uri).await else {
        return 0;
    };
    if answer.status() != 200 {
        return 0;
    }
    answer
        .into_body()
        .collect()
        .await
        .map(|b| {
            String::from_utf8_lossy(&b.to_bytes())
                .matches("#EXTINF")
                .count()
        })
        .unwrap_or(0)
}
