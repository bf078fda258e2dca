//! A real Prometheus scrapes every tier while a broadcaster streams and WebSocket
//! viewers watch: every target is up, every dashboard query and every rule
//! evaluates without error, the ones that should have data do, and the top-N
//! audience panel shows the live stream's viewers at rank 1.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::time::Duration;

use nova_proto::v1::StreamStatus;
use nova_tests::{
    edge::{self, Viewer},
    ffmpeg::Broadcaster,
    live::{LiveOptions, LiveStack},
    prometheus::{Prometheus, dashboard_queries},
    tools::workspace_root,
    wait,
};

/// Panels that may legitimately be empty in this scenario (nothing failed, nothing
/// completed).
const MAY_BE_EMPTY: [&str; 3] = [
    "Errors by method and code",
    "Errors by route and status",
    "Stream durations (p50 / p95)",
];

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_every_tier_and_evaluates_the_dashboard_and_rules() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let e = edge::start(&live.ctx, "edge-a").await;
    let base = format!("http://{}", e.addr);
    let (stream, key) = live.create_stream("observed").await;
    let _ffmpeg = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(180));
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;
    let mut viewers = Vec::new();
    for _ in 0..2 {
        let mut v = Viewer::connect(&base, &stream.stream_id).await;
        v.next_of("snapshot", Duration::from_secs(2)).await;
        viewers.push(v);
    }

    let cp_metrics = live
        .ctx
        .metrics_url()
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();
    let prometheus = Prometheus::start(&[
        ("nova-control-plane", cp_metrics),
        ("nova-edge", e.addr.to_string()),
        (
            "nova-ingest-hooks",
            live.hooks.as_ref().unwrap().addr.to_string(),
        ),
    ])
    .await;

    let targets = wait::until("all three targets up", Duration::from_secs(30), || async {
        let data = prometheus.api("/api/v1/targets").await?;
        let active = data["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let up = active.iter().filter(|t| t["health"] == "up").count();
        if active.len() == 3 && up == 3 {
            Ok(active)
        } else {
            Err(format!("{up}/{} up: {active:?}", active.len()))
        }
    })
    .await;
    println!(
        "targets up: {:?}",
        targets
            .iter()
            .map(|t| t["labels"]["job"].clone())
            .collect::<Vec<_>>()
    );

    // Data the dashboard needs: the stream is sampled, segments are measured.
    wait::until(
        "samples of the live stream",
        Duration::from_secs(30),
        || async {
            let active = prometheus
                .query("max(nova_streaming_active_streams)")
                .await?;
            let segments = prometheus
                .query("sum(nova_streaming_hls_segment_generation_seconds_count)")
                .await?;
            let value = |r: &Vec<serde_json::Value>| {
                r.first()
                    .and_then(|s| s["value"][1].as_str())
                    .unwrap_or("0")
                    .to_owned()
            };
            if value(&active) == "1" && value(&segments) != "0" {
                Ok(())
            } else {
                Err(format!("active {active:?} segments {segments:?}"))
            }
        },
    )
    .await;
    // rate() needs two scrapes inside the window.
    let queries = dashboard_queries(&workspace_root().join("grafana/nova-streaming.json"), "30s");
    assert!(queries.len() >= 20, "{} queries", queries.len());
    let results = wait::until(
        "every dashboard query with data",
        Duration::from_secs(30),
        || async {
            let mut missing = Vec::new();
            let mut results = Vec::new();
            for (title, expr) in &queries {
                let result = prometheus
                    .query(expr)
                    .await
                    .map_err(|err| format!("{title}: `{expr}` failed: {err}"))?;
                if result.is_empty() && !MAY_BE_EMPTY.contains(&title.as_str()) {
                    missing.push(title.clone());
                }
                results.push((title.clone(), result.len()));
            }
            if missing.is_empty() {
                Ok(results)
            } else {
                Err(format!("no data yet for {missing:?}"))
            }
        },
    )
    .await;
    println!("{} dashboard queries evaluated: {results:?}", results.len());

    // The top-N panel: ten ranks whatever the number of streams; the one live stream,
    // with its two viewers, is rank 1.
    let (title, top) = queries
        .iter()
        .find(|(_, expr)| expr.contains("nova_streaming_top_stream_viewers"))
        .expect("a dashboard panel of nova_streaming_top_stream_viewers");
    let ranks = wait::until(
        "rank 1 of the top-N panel at the stream's 2 viewers",
        Duration::from_secs(30),
        || async {
            let result = prometheus.query(top).await?;
            let mut ranks: Vec<(u32, String)> = result
                .iter()
                .map(|s| {
                    (
                        s["metric"]["rank"]
                            .as_str()
                            .unwrap_or("0")
                            .parse()
                            .unwrap_or(0),
                        s["value"][1].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            ranks.sort();
            if ranks
                .first()
                .is_some_and(|(rank, v)| *rank == 1 && v == "2")
            {
                Ok(ranks)
            } else {
                Err(format!("{title}: {ranks:?}"))
            }
        },
    )
    .await;
    let expected: Vec<(u32, String)> = (1..=10)
        .map(|rank| (rank, if rank == 1 { "2" } else { "0" }.to_owned()))
        .collect();
    assert_eq!(ranks, expected, "{title}");

    // Every rule of deploy/prometheus/rules.yml is loaded and evaluates cleanly, and its
    // expression runs as a query too.
    let in_file = std::fs::read_to_string(
        nova_tests::tools::workspace_root().join("deploy/prometheus/rules.yml"),
    )
    .expect("read rules.yml")
    .lines()
    .filter(|l| {
        let l = l.trim_start();
        l.starts_with("- alert:") || l.starts_with("- record:")
    })
    .count();
    assert!(in_file > 0, "rules.yml lists no rule");
    let groups = wait::until("every rule evaluated", Duration::from_secs(30), || async {
        let data = prometheus.api("/api/v1/rules").await?;
        let groups = data["groups"].as_array().cloned().unwrap_or_default();
        let rules: Vec<serde_json::Value> = groups
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        let pending = rules.iter().filter(|r| r["health"] != "ok").count();
        if rules.len() == in_file && pending == 0 {
            Ok(rules)
        } else {
            Err(format!("{pending} of {} not ok: {rules:?}", rules.len()))
        }
    })
    .await;
    for rule in &groups {
        let expr = rule["query"].as_str().unwrap();
        prometheus
            .query(expr)
            .await
            .unwrap_or_else(|err| panic!("rule `{}` does not evaluate: {err}", rule["name"]));
        if rule["type"] == "alerting" {
            assert_eq!(
                rule["state"], "inactive",
                "{} should not fire on a healthy stack: {rule}",
                rule["name"]
            );
        }
    }
    println!("{} rules evaluated, no alert firing", groups.len());
    for v in viewers {
        v.close().await;
    }
    live.shutdown().await;
    e.shutdown().await.unwrap();
}
