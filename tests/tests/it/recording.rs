//! Recording to VOD assets with real nginx-rtmp, ffmpeg, ffprobe and Chromium, on
//! the local filesystem and on a real S3 API server (s3s-fs): a recorded broadcast
//! with one drop and resume becomes one READY asset that plays to its end; signed
//! streams' assets need a token; deletion removes the files; a stream that does not
//! record makes nothing; a worker stopped mid-remux still ends with one READY asset.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::time::Duration;

use nova_proto::v1::{AssetStatus, PlaybackPolicy};
use nova_tests::{
    edge,
    live::{LiveOptions, LiveStack},
    playback,
    s3::S3Server,
    tools::workspace_root,
    vod::{self, Probe},
};

/// Each of the two publishes of a recorded broadcast.
const EACH: Duration = Duration::from_secs(8);
/// Their media, in all.
const EXPECTED_SECONDS: f64 = 16.0;
/// One VOD segment: the tolerance on the asset's duration.
const FRAGMENT: f64 = 2.0;
/// Bound on the remux of a 16 s broadcast, pieces' hand-over included.
const REMUX: Duration = Duration::from_secs(60);

/// Asserts a probe read the whole 16 s recording: the expected duration within one
/// fragment, video and audio to the end (25 fps video; AAC at 44.1 kHz gives about
/// 43 packets a second).
fn assert_whole(what: &str, probe: &Probe) {
    assert_whole_of(what, probe, EXPECTED_SECONDS);
}

/// Like [`assert_whole`] for a recording of `expected` seconds.
fn assert_whole_of(what: &str, probe: &Probe, expected: f64) {
    assert!(
        (probe.duration - expected).abs() <= FRAGMENT,
        "{what}: {:.2} s, expected {expected} s ± {FRAGMENT}",
        probe.duration
    );
    let seconds = probe.video_packets as f64 / 25.0;
    assert!(
        (seconds - probe.duration).abs() <= FRAGMENT,
        "{what}: {} video packets read ({seconds:.1} s) for {:.2} s",
        probe.video_packets,
        probe.duration
    );
    assert!(
        probe.audio_packets as f64 >= (probe.duration - FRAGMENT) * 40.0,
        "{what}: {probe:?}"
    );
}

/// Records a broadcast with one drop and resume on `live` (stream of `policy`);
/// returns the stream's name and its READY asset.
async fn recorded(live: &LiveStack, policy: PlaybackPolicy) -> (String, nova_proto::v1::Asset) {
    let (stream, key) = vod::create_stream(live, true, policy).await;
    assert!(stream.record);
    vod::broadcast(live, &stream.name, &key, 2, EACH).await;
    let asset = vod::wait_for_asset(live, &stream.name, REMUX).await;
    assert_eq!(asset.status(), AssetStatus::Ready, "{asset:?}");
    assert_eq!(asset.stream, stream.name);
    (stream.name, asset)
}

#[tokio::test(flavor = "multi_thread")]
async fn recording_on_disk_one_drop_and_resume_is_one_ready_asset_until_deleted() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let (name, asset) = recorded(&live, PlaybackPolicy::Public).await;
    let duration = asset.duration.unwrap();
    let seconds = duration.seconds as f64 + f64::from(duration.nanos) / 1e9;
    assert!((seconds - EXPECTED_SECONDS).abs() <= FRAGMENT, "{asset:?}");
    assert!(asset.size_bytes > 100_000, "{asset:?}");
    let urls = asset.playback.clone().unwrap();

    // The playlist is a complete VOD rendition, served once the origin's rules know it.
    let playlist = live
        .wait_for_url(&urls.hls_url, Duration::from_secs(10))
        .await;
    let text = playlist.text();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{text}");
    assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"), "{text}");
    assert_whole("HLS VOD", &vod::probe(&urls.hls_url).await.unwrap());
    assert_whole("MP4", &vod::probe(&urls.mp4_url).await.unwrap());

    // hls.js in Chromium plays it to its end.
    let root = workspace_root();
    let run = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/vod.mjs"))
        .arg(&urls.hls_url)
        .arg(root.join(".nova/tools/node_modules/hls.js/dist/hls.min.js"))
        .env(
            "PLAYWRIGHT_CORE",
            root.join(".nova/tools/node_modules/playwright-core/index.mjs"),
        )
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser run finished within 120 s")
        .expect("node runs (scripts/install-deps.sh installs playwright-core)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let played: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(played["ended"], true);
    let played_seconds = played["duration"].as_f64().unwrap();
    assert!(
        (played_seconds - EXPECTED_SECONDS).abs() <= FRAGMENT,
        "{played}"
    );
    assert!(
        (played["currentTime"].as_f64().unwrap() - played_seconds).abs() <= 0.5,
        "{played}"
    );

    // The store holds the asset's one version and no piece any more; nginx's
    // recording folder is empty again.
    let store = live.ctx.assets_dir.path().join("store");
    let files = vod::files_under(&store);
    let prefix = format!("assets/{}/", asset.asset_id);
    assert!(files.iter().all(|f| f.starts_with(&prefix)), "{files:?}");
    assert!(
        files.iter().any(|f| f.ends_with("/index.m3u8"))
            && files.iter().any(|f| f.ends_with("/download.mp4"))
    );
    let versions: std::collections::BTreeSet<_> =
        files.iter().filter_map(|f| f.split('/').nth(2)).collect();
    assert_eq!(versions.len(), 1, "{files:?}");
    assert_eq!(
        vod::files_under(&live.nginx.record_dir()),
        Vec::<String>::new()
    );

    // Over REST, for the owner only: listed, read, then deleted, which removes every
    // file; the origin stops serving it.
    let e = edge::start(&live.ctx, "edge-vod").await;
    let base = format!("http://{}/api/v1", e.addr);
    let id = name.trim_start_matches("streams/");
    let alice = edge::jwt("alice");
    let listed = edge::call(
        "GET",
        &format!("{base}/streams/{id}/assets"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(listed.status, 200, "{:?}", listed.json);
    assert_eq!(listed.headers["cache-control"], "no-store");
    let shown = &listed.json["assets"][0];
    assert_eq!(shown["id"], asset.asset_id.as_str());
    assert_eq!(shown["status"], "ready");
    assert_eq!(shown["playback"]["hls_url"], urls.hls_url.as_str());
    assert_eq!(shown["playback"]["mp4_url"], urls.mp4_url.as_str());
    assert_eq!(shown["size_bytes"], asset.size_bytes);
    assert_eq!(shown["error_reason"], serde_json::Value::Null);
    let one = format!("{base}/assets/{}", asset.asset_id);
    assert_eq!(
        edge::call("GET", &one, Some(&alice), None).await.json["asset"],
        *shown
    );
    for (who, status) in [(None, 401), (Some(edge::jwt("mallory")), 403)] {
        assert_eq!(
            edge::call("GET", &one, who.as_deref(), None).await.status,
            status
        );
        assert_eq!(
            edge::call("DELETE", &one, who.as_deref(), None)
                .await
                .status,
            status
        );
    }
    let deleted = edge::call("DELETE", &one, Some(&alice), None).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.json);
    assert_eq!(
        edge::call("GET", &one, Some(&alice), None).await.status,
        404
    );
    let audit = edge::call(
        "GET",
        &format!("{base}/streams/{id}/audit"),
        Some(&alice),
        None,
    )
    .await;
    let newest = &audit.json["records"][0];
    assert_eq!(newest["action"], "asset_deleted", "{:?}", audit.json);
    assert_eq!(newest["resource"], asset.name.as_str());
    assert_eq!(
        (newest["actor"].as_str(), newest["service"].as_str()),
        (Some("alice"), Some("edge"))
    );
    assert!(newest["client_ip"].is_string(), "{newest}");
    e.shutdown().await.unwrap();
    assert_eq!(vod::files_under(&store), Vec::<String>::new());
    assert!(vod::list(&live, &name).await.is_empty());
    nova_tests::wait::until(
        "the origin to stop serving the deleted asset",
        Duration::from_secs(10),
        || async {
            match nova_tests::http::get(&urls.hls_url).await {
                Ok(a) if a.status == 403 || a.status == 404 => Ok(()),
                other => Err(format!("{:?}", other.map(|a| a.status))),
            }
        },
    )
    .await;
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn recording_on_s3_signed_asset_needs_a_token() {
    let s3 = S3Server::start().await;
    let mut live = LiveStack::start(LiveOptions {
        store: Some(s3.store()),
        ..LiveOptions::default()
    })
    .await;
    let (name, asset) = recorded(&live, PlaybackPolicy::Signed).await;
    let urls = asset.playback.clone().unwrap();
    assert!(
        vod::files_under(&s3.bucket_dir())
            .iter()
            .any(|f| f.starts_with(&format!("assets/{}/", asset.asset_id)))
    );

    // Plain URLs of a signed stream's asset are refused; with a token of the stream
    // (inserted as t/<token>/ after /vod/) it plays to its end, through the origin's
    // presigned reads of the bucket.
    let token = playback::issue(&live, &name, "vod-viewer").await.token;
    let signed = urls
        .hls_url
        .replacen("/vod/", &format!("/vod/t/{token}/"), 1);
    live.wait_for_url(&signed, Duration::from_secs(10)).await;
    for plain in [&urls.hls_url, &urls.mp4_url] {
        let answer = nova_tests::http::get(plain).await.unwrap();
        assert_eq!(answer.status, 403, "{plain}");
    }
    let other = playback::issue(
        &live,
        &vod::create_stream(&live, false, PlaybackPolicy::Signed)
            .await
            .0
            .name,
        "x",
    )
    .await;
    let wrong = urls
        .hls_url
        .replacen("/vod/", &format!("/vod/t/{}/", other.token), 1);
    assert_eq!(nova_tests::http::get(&wrong).await.unwrap().status, 403);
    assert_whole("signed HLS VOD", &vod::probe(&signed).await.unwrap());
    let mp4 = urls
        .mp4_url
        .replacen("/vod/", &format!("/vod/t/{token}/"), 1);
    assert_whole("signed MP4", &vod::probe(&mp4).await.unwrap());
    // The origin's access log names asset files, never the token.
    let access_log = live.nginx.error_log().with_file_name("http-access.log");
    let logged = std::fs::read_to_string(&access_log).unwrap();
    assert!(
        logged.contains(&format!("/vod/t/-/{}/index.m3u8", asset.asset_id)),
        "{logged}"
    );
    assert!(!logged.contains(&token), "a token in the access log");
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn recording_off_makes_no_asset() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let (stream, key) = vod::create_stream(&live, false, PlaybackPolicy::Public).await;
    assert!(!stream.record);
    vod::broadcast(&live, &stream.name, &key, 1, Duration::from_secs(4)).await;
    // The broadcast went through the public application only: nothing was recorded,
    // nothing handed over, nothing stored.
    assert_eq!(
        vod::files_under(&live.nginx.record_dir()),
        Vec::<String>::new()
    );
    assert_eq!(
        vod::files_under(&live.ctx.assets_dir.path().join("store")),
        Vec::<String>::new()
    );
    assert!(vod::list(&live, &stream.name).await.is_empty());
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn recording_survives_a_control_plane_stopped_mid_remux() {
    // The first remux runs an "ffmpeg" that says it started and then never ends.
    let gate = tempfile::tempdir().unwrap();
    let stuck = gate.path().join("ffmpeg");
    let started = gate.path().join("started");
    std::fs::write(
        &stuck,
        format!("#!/bin/sh\n: > '{}'\nexec sleep 600\n", started.display()),
    )
    .unwrap();
    std::fs::set_permissions(&stuck, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut live = LiveStack::start(LiveOptions {
        remux_ffmpeg: Some(stuck),
        remux_lease: Some(Duration::from_secs(3)),
        ..LiveOptions::default()
    })
    .await;
    let (stream, key) = vod::create_stream(&live, true, PlaybackPolicy::Public).await;
    vod::broadcast(&live, &stream.name, &key, 2, Duration::from_secs(4)).await;
    nova_tests::wait::until("the first remux to start", REMUX, || async {
        if started.exists() {
            Ok(())
        } else {
            Err("not yet")
        }
    })
    .await;
    assert_eq!(
        vod::list(&live, &stream.name).await[0].status(),
        AssetStatus::Preparing
    );

    // Stopped mid-remux (its ffmpeg dies with it) and started again, with the real
    // ffmpeg: the job's lease runs out and the new worker makes the asset.
    live.ctx.config.ffmpeg = "ffmpeg".into();
    live.ctx.restart_while(async {}).await;
    let asset = vod::wait_for_asset(&live, &stream.name, REMUX).await;
    assert_eq!(asset.status(), AssetStatus::Ready, "{asset:?}");
    let urls = asset.playback.clone().unwrap();
    live.wait_for_url(&urls.hls_url, Duration::from_secs(10))
        .await;
    assert_whole_of(
        "HLS VOD after a restart",
        &vod::probe(&urls.hls_url).await.unwrap(),
        8.0,
    );

    // One version in the store (the interrupted run left nothing READY points at,
    // and nothing at all once its successor finished); no work folder left.
    let files = vod::files_under(&live.ctx.assets_dir.path().join("store"));
    let versions: std::collections::BTreeSet<_> =
        files.iter().filter_map(|f| f.split('/').nth(2)).collect();
    assert_eq!(versions.len(), 1, "{files:?}");
    assert_eq!(
        vod::files_under(&live.ctx.assets_dir.path().join("remux")),
        Vec::<String>::new()
    );
    // The restarted control plane counted one READY remux and measured it; the
    // hooks handed both pieces over.
    let metrics = nova_tests::http::get(&live.ctx.metrics_url())
        .await
        .unwrap()
        .text();
    for line in [
        "# TYPE nova_streaming_remux_jobs_total counter",
        "nova_streaming_remux_jobs_total{outcome=\"ready\"",
        "# TYPE nova_streaming_remux_duration_seconds histogram",
        "nova_streaming_remux_duration_seconds_count 1",
        "# TYPE nova_streaming_asset_size_bytes histogram",
        "nova_streaming_asset_size_bytes_count 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    let hooks = live.hooks.as_ref().unwrap().addr;
    let hooks = nova_tests::http::get(&format!("http://{hooks}/metrics"))
        .await
        .unwrap()
        .text();
    assert!(
        hooks.contains("nova_streaming_recorded_pieces_total{result=\"taken\"} 2"),
        "{hooks}"
    );
    live.shutdown().await;
}
