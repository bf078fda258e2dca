//! Attacks on the RTMP doors, through real nginx-rtmp, real ingest-hooks and the real
//! control plane: client `?args` that try to override any field nginx sends in its
//! callbacks (plain, percent-encoded, upper-case, repeated, empty, long), keyless
//! publishes and plays, forged relay/transcoder markers, and key guessing against
//! the failed-publish budget. Both our RTMP publisher and ffmpeg attack.
//!
//! Only on_publish and on_play carry arguments a client chose just now. nginx-rtmp's
//! `ngx_rtmp_notify_publish` / `ngx_rtmp_notify_play` copy the command's `args` into
//! the session's notify context (`ngx_rtmp_notify_init`), and on_update, on_publish_done,
//! on_play_done and on_done append exactly those saved `ctx->args`
//! (`ngx_rtmp_notify_update_create`, `ngx_rtmp_notify_done_create`); a refused on_publish
//! or on_play clears the session's flag, so no later callback follows it. A second
//! publish or play on the same connection saves new args but is itself sent to
//! on_publish / on_play first; an on_update racing that answer carries the same forged
//! args, which the hooks refuse under the same rules (403, which drops the connection).
//! So those kinds are tested at the hooks' HTTP door (`hooks_doors`), not through nginx.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::{num::NonZeroU32, time::Duration};

use futures::StreamExt;

use nova_proto::v1::StreamStatus;
use nova_tests::{
    ffmpeg::Broadcaster,
    http,
    live::{LiveOptions, LiveStack},
    publisher::{Flv, publish},
    wait,
};
use tokio::time::Instant;

const LONG: Duration = Duration::from_secs(3600);

/// Every field nginx-rtmp writes into some callback body before the client's args.
const NGINX_FIELDS: [&str; 18] = [
    "app",
    "flashver",
    "swfurl",
    "tcurl",
    "pageurl",
    "addr",
    "clientid",
    "epoch",
    "call",
    "name",
    "type",
    "start",
    "duration",
    "reset",
    "time",
    "timestamp",
    "recorder",
    "path",
];

/// The value an attacker would pick for `field` to get in.
fn hostile_value(field: &str, key: &str) -> String {
    match field {
        "call" => "done".into(),
        "name" => key.into(),
        "app" => "live".into(),
        "addr" => "127.0.0.1".into(),
        "flashver" => "ngx-local-relay".into(),
        "clientid" => "1".into(),
        _ => "1".into(),
    }
}

/// Every spelling of `field=value` a client can append.
fn spellings(field: &str, value: &str) -> Vec<String> {
    let first = field.as_bytes()[0];
    vec![
        format!("{field}={value}"),
        format!("%{first:02x}{}={value}", &field[1..]),
        format!("{}={value}", field.to_ascii_uppercase()),
        format!("{field}={value}&{field}={value}"),
        format!("{field}="),
        format!("{field}={}", "A".repeat(180)),
    ]
}

async fn hooks_metrics(live: &LiveStack) -> String {
    let addr = live.hooks.as_ref().expect("hooks running").addr;
    http::get(&format!("http://{addr}/metrics"))
        .await
        .expect("scrape ingest-hooks")
        .text()
}

fn counter(text: &str, reason: &str) -> u64 {
    let prefix = format!("nova_streaming_broadcast_errors_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs ffmpeg reading `url` for a second; returns whether it succeeded.
async fn ffmpeg_plays(url: &str) -> bool {
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i", url])
        .args(["-t", "1", "-f", "null", "-"])
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("ffmpeg ended within 30 s")
        .expect("ffmpeg runs")
        .status
        .success()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_client_argument_can_publish_without_a_key_or_override_an_nginx_field() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let (stream, key) = live.create_stream("attacked").await;
    let before = hooks_metrics(&live).await;

    // The table: every field, every spelling, on a keyless name and on the valid key.
    let mut tried = 0;
    for field in NGINX_FIELDS {
        let value = hostile_value(field, &key);
        for args in spellings(field, &value) {
            for name in ["x", key.as_str()] {
                let url = format!("{}?{args}", live.publish_url(name));
                let shown = url.replace(&key, "<key>");
                match publish(&url).await {
                    Err(_) => tried += 1,
                    Ok(publisher) => {
                        publisher.close().await;
                        panic!("published with {shown}");
                    }
                }
            }
        }
    }
    println!("{tried} forged publishes refused");
    let after = hooks_metrics(&live).await;
    let forged = counter(&after, "malformed_callback") - counter(&before, "malformed_callback");
    assert!(
        forged >= tried,
        "each forged callback is counted as malformed_callback: {forged} < {tried}"
    );
    assert_eq!(
        live.get(&stream.name).await.status(),
        StreamStatus::Pending,
        "no forged publish made the stream live"
    );

    // The example with real ffmpeg fails fast, and nothing can be played.
    let started = Instant::now();
    let mut ffmpeg = Broadcaster::start(
        &format!("{}?call=done", live.publish_url("x")),
        Duration::from_secs(8),
    );
    let (ok, stderr) = ffmpeg
        .exited_within(Duration::from_secs(10))
        .await
        .expect("ffmpeg is refused before its 8 s are up");
    assert!(!ok, "ffmpeg published with ?call=done: {stderr}");
    println!(
        "ffmpeg …/live/x?call=done refused after {:.2} s: {}",
        started.elapsed().as_secs_f64(),
        stderr.trim()
    );
    for args in [
        "call=done",
        "%63all=done",
        "call=play&flashver=ngx-local-relay",
    ] {
        let url = format!("{}?{args}", live.publish_url("x"));
        assert!(!ffmpeg_plays(&url).await, "played {url}");
    }

    // A valid key with harmless extra args works, exactly once.
    let publisher = publish(&format!("{}?tok=abc&utm=1", live.publish_url(&key)))
        .await
        .expect("a valid key with extra args publishes");
    let task = publisher.spawn(Flv::fixture(), LONG);
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(10))
        .await;
    let second = publish(&format!("{}?tok=other", live.publish_url(&key))).await;
    assert!(
        second.is_err(),
        "a second connection cannot take the live key"
    );
    let id = live.get(&stream.name).await.stream_id;
    // From either loopback address, the relay's own one included.
    for host in ["127.0.0.1", nova_stack::nginx::RELAY_HOST] {
        let relay_url = format!(
            "rtmp://{host}:{}/stream/{id}",
            live.nginx.settings().rtmp_port
        );
        assert!(
            !ffmpeg_plays(&format!("{relay_url}?flashver=ngx-local-relay")).await,
            "a player on {host} may not claim to be nginx's relay"
        );
    }
    task.stop().await;
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_client_argument_can_play_or_pass_a_player_off_as_nginx_own() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let (stream, key) = live.create_stream("watched").await;
    let task = publish(&live.publish_url(&key))
        .await
        .unwrap()
        .spawn(Flv::fixture(), LONG);
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(10))
        .await;
    let id = live.get(&stream.name).await.stream_id;
    let internal = format!(
        "rtmp://127.0.0.1:{}/stream/{id}",
        live.nginx.settings().rtmp_port
    );
    // The live key on the ingest application, and the live stream on the internal
    // application (which loopback may play), each with every forged field.
    let mut urls = Vec::new();
    for field in NGINX_FIELDS {
        let value = hostile_value(field, &key);
        for args in spellings(field, &value) {
            for target in [live.publish_url(&key), internal.clone()] {
                urls.push(format!("{target}?{args}"));
            }
        }
    }
    let tried = urls.len() as u64;
    let before = hooks_metrics(&live).await;
    let played: Vec<String> = futures::stream::iter(urls)
        .map(|url| async move { ffmpeg_plays(&url).await.then_some(url) })
        .buffer_unordered(4)
        .filter_map(|played| async move { played })
        .collect()
        .await;
    let shown: Vec<String> = played.iter().map(|u| u.replace(&key, "<key>")).collect();
    assert!(shown.is_empty(), "forged plays were let through: {shown:?}");
    println!("{tried} forged plays refused");
    let after = hooks_metrics(&live).await;
    let forged = counter(&after, "malformed_callback") - counter(&before, "malformed_callback");
    assert!(
        forged >= tried,
        "each forged on_play is counted as malformed_callback: {forged} < {tried}"
    );
    assert_eq!(
        live.viewer_count(&stream.name).await,
        Ok(0),
        "no forged play was counted as a viewer"
    );

    // The same player without forged arguments plays and is counted, so the table
    // above could have failed.
    let mut player = tokio::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-i",
            &internal,
        ])
        .args(["-t", "4", "-f", "null", "-"])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    live.wait_for_viewers(&stream.name, 1, Duration::from_secs(10))
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(20), player.wait()).await;
    task.stop().await;
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_transcoder_mark_is_still_counted_as_a_viewer() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let (stream, key) = live.create_stream("counted").await;
    let task = publish(&live.publish_url(&key))
        .await
        .unwrap()
        .spawn(Flv::fixture(), LONG);
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(10))
        .await;
    let url = format!(
        "rtmp://127.0.0.1:{}/stream/{}?nova_internal=guess&internal=transcoder",
        live.nginx.settings().rtmp_port,
        stream.stream_id
    );
    let mut player = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i", &url])
        .args(["-t", "4", "-f", "null", "-"])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    live.wait_for_viewers(&stream.name, 1, Duration::from_secs(10))
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(20), player.wait()).await;
    task.stop().await;
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_that_keeps_guessing_keys_is_refused_without_asking_the_control_plane() {
    let mut live = LiveStack::start(LiveOptions {
        publish_failures: NonZeroU32::new(3).unwrap(),
        ..LiveOptions::default()
    })
    .await;
    let (stream, key) = live.create_stream("guessed").await;
    for attempt in 0..3 {
        let guess = format!("sk_live_{}{attempt}", "g".repeat(42));
        assert!(publish(&live.publish_url(&guess)).await.is_err());
    }
    let before = counter(&hooks_metrics(&live).await, "publish_throttled");
    // Out of budget: even the right key is refused now, so the control plane was not asked.
    assert!(publish(&live.publish_url(&key)).await.is_err());
    let after = counter(&hooks_metrics(&live).await, "publish_throttled");
    assert_eq!(after, before + 1, "the throttled publish is counted");
    assert_eq!(live.get(&stream.name).await.status(), StreamStatus::Pending);
    // A budget refills (one attempt per NOVA_PUBLISH_FAILURE_REFILL, 6 s here).
    let publisher = wait::until("the budget to refill", Duration::from_secs(15), || async {
        publish(&live.publish_url(&key))
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    publisher.close().await;
    live.shutdown().await;
}
