//! G6, the seed's success metrics: `NOVA_BENCH_STREAMS` (default 20; the goal is 100)
//! concurrent RTMP streams (the in-tree publisher looping the FLV fixture, no
//! encoding) through a real nginx-rtmp, every HLS playlist fresh (its newest
//! segment at most 2 × the target duration old, sampled for 20 s), and
//! `NOVA_BENCH_VIEWERS` (default 1000; the goal is 10,000) WebSocket viewers spread
//! over the streams and two edge processes, every count exact; CPU and memory of
//! each tier over the same 20 s.

use std::time::{Duration, Instant, SystemTime};

use futures::{StreamExt, stream};
use nova_proto::v1::{
    CreateStreamRequest, GetStreamRequest, GetViewerCountRequest, Stream, StreamStatus,
};
use nova_tests::{
    clients,
    publisher::{Flv, PublishTask, publish},
};

use crate::{
    procstat::env_or,
    sockets::{self, Crowd},
    stack::BenchStack,
    table::{Row, Rows},
};

/// The window over which freshness, CPU and memory are sampled.
const WINDOW: Duration = Duration::from_secs(20);

pub async fn run(rows: &Rows) {
    let wanted = env_or("STREAMS", 20);
    let viewers = env_or("VIEWERS", 1000).div_ceil(wanted) * wanted;
    let stack = BenchStack::start(2, viewers).await;
    println!("G6: {wanted} streams, {viewers} viewers over 2 edges");
    let mut streams = clients::streams(&stack.grpc_url, Some(&stack.token), Some("bench")).await;
    let mut created = Vec::new();
    for i in 0..wanted {
        let answer = streams
            .create_stream(CreateStreamRequest {
                stream: Some(Stream {
                    title: format!("seed {i}"),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        created.push((answer.stream.unwrap(), answer.stream_key));
    }
    let rtmp = stack.nginx.rtmp_url();
    let started = Instant::now();
    let urls: Vec<String> = created
        .iter()
        .map(|(_, key)| format!("{rtmp}/{key}"))
        .collect();
    let publishers: Vec<Option<PublishTask>> = stream::iter(urls)
        .map(|url| async move {
            match publish(&url).await {
                Ok(publisher) => Some(publisher.spawn(Flv::fixture(), Duration::from_secs(3600))),
                Err(err) => {
                    println!("  a publisher was refused: {err}");
                    None
                }
            }
        })
        .buffer_unordered(10)
        .collect()
        .await;
    let on_air = active(&stack, &created, Duration::from_secs(60)).await;
    println!(
        "  {on_air} of {wanted} streams ACTIVE {:.1} s after the first publish",
        started.elapsed().as_secs_f64()
    );

    // Viewers: stream s gets viewers / wanted sockets, split over the two edges.
    let per_stream = viewers / wanted;
    let mut groups = Vec::new();
    for (s, (stream, _)) in created.iter().enumerate() {
        for (e, (_, base)) in stack.edges.iter().enumerate() {
            let n = per_stream / 2 + usize::from(e == 0) * (per_stream % 2);
            let url = format!(
                "{}/api/v1/streams/{}/ws",
                base.replacen("http://", "ws://", 1),
                stream.stream_id
            );
            groups.push((s, url, n));
        }
    }
    let opening = Instant::now();
    let mut crowds: Vec<(usize, Crowd)> = stream::iter(groups)
        .map(|(s, url, n)| async move { (s, sockets::open(&url, n, 16, &[]).await) })
        .buffer_unordered(8)
        .collect()
        .await;
    let failed: usize = crowds.iter().map(|(_, c)| c.failed.len()).sum();
    let mut shown = 0;
    for (_, crowd) in &mut crowds {
        let seen = crowd
            .until_all(per_stream as i64, Duration::from_secs(120))
            .await;
        shown += seen.iter().flatten().count();
    }
    println!(
        "  {shown} of {viewers} sockets saw their stream's full count {:.1} s after opening began ({failed} handshakes failed)",
        opening.elapsed().as_secs_f64()
    );

    // Every playlist exists before the window starts (the first one ~2 s after a
    // publish: see G7).
    let playlists: Vec<_> = created
        .iter()
        .map(|(stream, _)| {
            stack
                .nginx
                .media()
                .join(format!("hls/{}.m3u8", stream.stream_id))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while playlists.iter().any(|p| !p.exists()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The window: freshness, then CPU and memory of every tier.
    let tiers = stack.tiers();
    let window = Instant::now();
    let mut worst_age: f64 = 0.0;
    let mut target: f64 = 0.0;
    let mut stale = vec![false; created.len()];
    while window.elapsed() < WINDOW {
        for (i, playlist) in playlists.iter().enumerate() {
            let (age, duration) = freshness(playlist);
            if std::env::var("NOVA_BENCH_DEBUG").is_ok() {
                println!("  {} age {age:.2} target {duration}", playlist.display());
            }
            target = target.max(duration);
            worst_age = worst_age.max(age);
            if age > 2.0 * duration.max(1.0) {
                stale[i] = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let elapsed = window.elapsed();
    let fresh = stale.iter().filter(|s| !**s).count();

    // Exact counts: at the control plane, and the last count every socket holds.
    let mut sessions = clients::sessions(&stack.grpc_url, &stack.token).await;
    let mut exact_streams = 0;
    for (stream, _) in &created {
        let count = sessions
            .get_viewer_count(GetViewerCountRequest {
                name: stream.name.clone(),
            })
            .await
            .map(|r| r.into_inner().viewer_count)
            .unwrap_or(-1);
        exact_streams += usize::from(count == per_stream as i64);
    }
    let exact_sockets: usize = crowds
        .iter()
        .map(|(_, crowd)| {
            crowd
                .logs
                .iter()
                .filter(|l| {
                    let log = l.lock().unwrap_or_else(|p| p.into_inner());
                    log.ended.is_none()
                        && log
                            .counts
                            .last()
                            .is_some_and(|(_, c, _)| *c == per_stream as i64)
                })
                .count()
        })
        .sum();

    rows.push(
        Row::new(
            format!("G6.streams@{wanted}"),
            format!("RTMP streams on air through nginx-rtmp with every HLS playlist fresh ({wanted} published)"),
            "streams",
        )
        .figure(fresh.min(on_air) as f64)
        .baseline("published", wanted as f64)
        .goal("100 streams, every playlist fresh")
        .note(format!(
            "{on_air} ACTIVE; newest-segment age worst {worst_age:.1} s over {:.0} s (fresh: ≤ 2 × target duration {target:.0} s)",
            elapsed.as_secs_f64()
        )),
    );
    rows.push(
        Row::new(
            format!("G6.viewers@{viewers}"),
            format!("viewers over 2 edges whose socket shows its stream's exact count ({per_stream} per stream)"),
            "viewers",
        )
        .figure(exact_sockets as f64)
        .baseline("sockets opened", viewers as f64)
        .goal("10,000 viewers across ≥ 2 edges, exact counts")
        .note(format!(
            "{exact_streams} of {wanted} streams exact at the control plane; {failed} handshakes failed"
        )),
    );
    for tier in &tiers {
        let (cpu, rss) = tier.sample(elapsed);
        rows.push(
            Row::new(
                format!(
                    "G6.cpu.{}",
                    tier.name.split_whitespace().next().unwrap_or("?")
                ),
                format!(
                    "{}: CPU with {wanted} streams and {viewers} viewers",
                    tier.name
                ),
                "% of a core",
            )
            .figure(cpu)
            .goal("(reported)")
            .note(format!("RSS {rss:.0} MiB ({} processes)", tier.pids.len())),
        );
    }
    // A broadcast that went off air is named with the publisher's own reason.
    let mut ended = Vec::new();
    for mut publisher in publishers.into_iter().flatten() {
        if publisher.is_finished() {
            ended.push(match publisher.ended_within(Duration::ZERO).await {
                Ok(()) => "ended without an error".to_owned(),
                Err(err) => err.to_string(),
            });
        } else {
            publisher.stop().await;
        }
    }
    if !ended.is_empty() {
        let mut reasons = std::collections::BTreeMap::<String, usize>::new();
        for reason in ended {
            *reasons.entry(reason).or_default() += 1;
        }
        let reasons: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} × {r}")).collect();
        println!(
            "  publishers off air before the end: {}",
            reasons.join("; ")
        );
    }
    drop(crowds);
}

/// Waits (at most `limit`) until every stream is ACTIVE; returns how many are.
async fn active(stack: &BenchStack, created: &[(Stream, String)], limit: Duration) -> usize {
    let streams = clients::streams(&stack.grpc_url, Some(&stack.token), Some("bench")).await;
    let deadline = Instant::now() + limit;
    loop {
        let mut n = 0;
        for (stream, _) in created {
            let status = streams
                .clone()
                .get_stream(GetStreamRequest {
                    name: stream.name.clone(),
                })
                .await
                .ok()
                .and_then(|r| r.into_inner().stream)
                .map(|s| s.status());
            n += usize::from(status == Some(StreamStatus::Active));
        }
        if n == created.len() || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Returns how old the newest segment of the playlist at `path` is (the playlist's
/// own age: nginx rewrites it when a segment completes) and its target duration, in
/// seconds; a missing playlist (never written, or removed) is infinitely old.
fn freshness(path: &std::path::Path) -> (f64, f64) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return (f64::INFINITY, 0.0);
    };
    let target = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let age = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .map_or(f64::INFINITY, |d| d.as_secs_f64());
    (age, target)
}
