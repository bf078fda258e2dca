//! `quality_changed` from a real broadcast: ffmpeg through nginx-rtmp, the `/stat`
//! poller of ingest-hooks reporting health every second. A steady broadcast writes
//! exactly one event, its first; the ABR ladder writes one per step while its
//! renditions come up, then none while it is steady.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::time::Duration;

use nova_proto::v1::StreamStatus;
use nova_tests::{
    events::{self, LoggedEvent},
    ffmpeg::Broadcaster,
    live::{LiveOptions, LiveStack},
    wait,
};

/// Health reports awaited while the broadcast is steady.
const STEADY_REPORTS: usize = 6;

/// Waits until the control plane has stored `count` more health reports of stream
/// `name` (told apart by their report time); returns the renditions of the last one.
async fn reports(live: &LiveStack, name: &str, count: usize) -> Vec<(String, i32, i32)> {
    let seen = std::cell::RefCell::new(Vec::new());
    let seen = &seen;
    wait::until(
        &format!("{count} ingest health reports of {name}"),
        Duration::from_secs(count as u64 * 5 + 20),
        move || async move {
            let health = live.get(name).await.ingest_health;
            let mut seen = seen.borrow_mut();
            if let Some(h) = &health {
                let at = h.report_time.unwrap_or_default();
                if seen.last() != Some(&(at.seconds, at.nanos)) {
                    seen.push((at.seconds, at.nanos));
                }
            }
            if seen.len() > count {
                Ok(health.unwrap_or_default().renditions)
            } else {
                Err(format!("{} reports", seen.len()))
            }
        },
    )
    .await
    .into_iter()
    .map(|r| (r.name, r.width, r.height))
    .collect()
}

/// Returns the `quality_changed` events of stream `id`, oldest first, as rendition
/// lists `name WxH`.
async fn quality_events(live: &LiveStack, id: &str) -> Vec<Vec<String>> {
    let logged: Vec<LoggedEvent> = events::of_stream(&mut live.ctx.db().await, id).await;
    logged
        .into_iter()
        .filter(|e| e.kind == "quality_changed")
        .map(|e| {
            let payload: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
            payload["renditions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    format!(
                        "{} {}x{}",
                        r["name"].as_str().unwrap_or("?"),
                        r["width"],
                        r["height"]
                    )
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_steady_broadcast_writes_exactly_one_quality_changed() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let (stream, key) = live.create_stream("steady").await;
    let _ffmpeg = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(120));
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;

    // Several readings of a steady broadcast (its bitrate wanders from one to the next).
    let renditions = reports(&live, &stream.name, STEADY_REPORTS).await;
    assert_eq!(renditions, [("src".to_owned(), 320, 180)]);
    assert_eq!(
        quality_events(&live, &stream.stream_id).await,
        [["src 320x180"]],
        "one quality_changed, the first report's; bitrate alone is no change"
    );
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_abr_ladder_writes_one_quality_changed_per_step_then_none_while_steady() {
    let mut live = LiveStack::start(LiveOptions {
        abr: true,
        ..LiveOptions::default()
    })
    .await;
    let (stream, key) = live.create_stream("steady ladder").await;
    let _ffmpeg = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(120));
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;
    let ladder = ["480p 854x480", "240p 426x240"];
    wait::until(
        "the whole ladder in ingest health",
        Duration::from_secs(40),
        || async {
            let names: Vec<String> = live
                .get(&stream.name)
                .await
                .ingest_health
                .map(|h| h.renditions.into_iter().map(|r| r.name).collect())
                .unwrap_or_default();
            if names == ["480p", "240p"] {
                Ok(())
            } else {
                Err(names)
            }
        },
    )
    .await;
    let coming_up = quality_events(&live, &stream.stream_id).await;
    println!("quality_changed while the ladder came up: {coming_up:?}");
    assert_eq!(
        coming_up.last().unwrap(),
        &ladder,
        "the last step is the ladder"
    );
    assert!(
        coming_up.len() <= 3,
        "at most: the source alone, one rendition, both: {coming_up:?}"
    );
    for pair in coming_up.windows(2) {
        assert_ne!(pair[0], pair[1], "each event is a change: {coming_up:?}");
    }

    // Steady: more readings, no more events.
    reports(&live, &stream.name, STEADY_REPORTS).await;
    assert_eq!(
        quality_events(&live, &stream.stream_id).await,
        coming_up,
        "a steady ladder writes no quality_changed"
    );
    live.shutdown().await;
}
