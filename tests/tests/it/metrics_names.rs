//! Pins the exported metric names and types of every tier by scraping `/metrics`
//! while a broadcaster streams and a viewer watches.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use nova_proto::v1::{EndStreamRequest, StreamStatus};
use nova_tests::{
    edge::{self, Viewer},
    ffmpeg::Broadcaster,
    http,
    live::{LiveOptions, LiveStack},
    wait,
};

/// Returns the `# TYPE` of `family` in an exposition, if present.
fn type_of(exposition: &str, family: &str) -> Option<String> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(&format!("# TYPE {family} ")))
        .map(str::to_owned)
}

async fn scrape(url: &str) -> String {
    let answer = http::get(url).await.unwrap();
    assert_eq!(answer.status, 200, "{url}");
    assert!(
        answer.content_type.starts_with("text/plain"),
        "{}",
        answer.content_type
    );
    answer.text()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_tier_exports_the_specified_metric_names() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    // Sample often so the viewer figures show up quickly.
    let e = edge::start(&live.ctx, "edge-a").await;
    let base = format!("http://{}", e.addr);
    let (stream, key) = live.create_stream("metrics").await;
    let _ffmpeg = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(120));
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;
    let mut viewer = Viewer::connect(&base, &stream.stream_id).await;
    viewer.next_of("snapshot", Duration::from_secs(2)).await;
    // A bad callback and a REST call, so error and RED series exist.
    let hooks_addr = live.hooks.as_ref().unwrap().addr;
    let refused = edge::call(
        "POST",
        &format!("http://{hooks_addr}/rtmp/publish"),
        None,
        Some("call=publish"),
    )
    .await;
    assert_eq!(refused.status, 403);
    edge::call(
        "GET",
        &format!("{base}/api/v1/streams/{}", stream.stream_id),
        None,
        None,
    )
    .await;

    let hooks = wait::until(
        "a generated HLS segment to be measured",
        Duration::from_secs(20),
        || async {
            let text = scrape(&format!("http://{hooks_addr}/metrics")).await;
            if text.contains("nova_streaming_hls_segment_generation_seconds_count 0")
                || !text.contains("nova_streaming_hls_segment_generation_seconds_count")
            {
                Err("no segment yet")
            } else {
                Ok(text)
            }
        },
    )
    .await;
    for (family, kind) in [
        ("nova_streaming_rtmp_ingestion_latency_seconds", "histogram"),
        ("nova_streaming_broadcast_errors_total", "counter"),
        ("nova_streaming_hls_segment_generation_seconds", "histogram"),
        ("nova_streaming_http_server_requests_total", "counter"),
        ("nova_streaming_http_server_duration_seconds", "histogram"),
        ("nova_streaming_playback_rules_age_seconds", "gauge"),
        ("nova_streaming_recorded_pieces_total", "counter"),
    ] {
        assert_eq!(
            type_of(&hooks, family).as_deref(),
            Some(kind),
            "ingest-hooks {family}:\n{hooks}"
        );
    }
    assert!(
        hooks.contains(
            r#"nova_streaming_broadcast_errors_total{reason="unauthenticated_callback"} 1"#
        ),
        "{hooks}"
    );
    assert!(
        hooks.contains(
            r#"nova_streaming_rtmp_ingestion_latency_seconds_bucket{callback="publish",le="0.005"}"#
        ),
        "{hooks}"
    );
    assert!(hooks.contains(r#"route="/rtmp/publish""#), "{hooks}");

    let edge_text = scrape(&format!("{base}/metrics")).await;
    assert_eq!(
        type_of(&edge_text, "nova_streaming_websocket_connections").as_deref(),
        Some("gauge"),
        "{edge_text}"
    );
    assert!(
        edge_text.contains("nova_streaming_websocket_connections 1"),
        "{edge_text}"
    );
    assert_eq!(
        type_of(&edge_text, "nova_streaming_edge_refusals_total").as_deref(),
        Some("counter"),
        "{edge_text}"
    );
    assert!(
        edge_text.contains(r#"nova_streaming_edge_refusals_total{reason="ws_origin"} 0"#),
        "every refusal reason is exported from the start:\n{edge_text}"
    );
    assert!(
        edge_text.contains(r#"route="/api/v1/streams/{id}""#),
        "route templates, not paths:\n{edge_text}"
    );
    assert!(
        !edge_text.contains(&stream.stream_id),
        "no stream ids in labels"
    );

    let cp = wait::until(
        "the sampler to see one active stream",
        Duration::from_secs(15),
        || async {
            let text = scrape(&live.ctx.metrics_url()).await;
            if text.contains("nova_streaming_active_streams 1")
                && text.contains("nova_streaming_peak_viewers 1")
            {
                Ok(text)
            } else {
                Err(text)
            }
        },
    )
    .await;
    for (family, kind) in [
        ("nova_streaming_active_streams", "gauge"),
        ("nova_streaming_peak_viewers", "gauge"),
        ("nova_streaming_top_stream_viewers", "gauge"),
        ("nova_streaming_viewers_total", "histogram"),
        ("nova_streaming_grpc_server_requests_total", "counter"),
        ("nova_streaming_grpc_server_duration_seconds", "histogram"),
        ("nova_streaming_redis_up", "gauge"),
        ("nova_streaming_events_unpublished_total", "counter"),
        ("nova_streaming_remux_jobs_total", "counter"),
    ] {
        assert_eq!(
            type_of(&cp, family).as_deref(),
            Some(kind),
            "control-plane {family}:\n{cp}"
        );
    }
    assert!(
        cp.contains(r#"method="/nova.streaming.v1.IngestService/AuthorizePublish""#),
        "{cp}"
    );
    assert!(cp.contains("nova_streaming_redis_up 1"), "{cp}");
    assert!(
        cp.contains(r#"nova_streaming_top_stream_viewers{rank="1"} 1"#)
            && cp.contains(r#"nova_streaming_top_stream_viewers{rank="10"} 0"#),
        "ten ranks, the one live stream first:\n{cp}"
    );
    assert!(
        cp.contains(r#"nova_streaming_events_unpublished_total{reason="redis_error"} 0"#),
        "{cp}"
    );
    assert!(
        cp.contains(r#"nova_streaming_remux_jobs_total{outcome="errored"} 0"#),
        "every remux outcome is exported from the start:\n{cp}"
    );
    assert!(
        hooks.contains(r#"nova_streaming_recorded_pieces_total{result="failed"} 0"#),
        "{hooks}"
    );

    live.streams
        .end_stream(EndStreamRequest {
            name: stream.name.clone(),
        })
        .await
        .unwrap();
    let cp = scrape(&live.ctx.metrics_url()).await;
    assert_eq!(
        type_of(&cp, "nova_streaming_stream_duration_seconds").as_deref(),
        Some("histogram"),
        "{cp}"
    );
    assert!(
        cp.contains("nova_streaming_stream_duration_seconds_count 1"),
        "{cp}"
    );
    viewer.close().await;
    live.shutdown().await;
    e.shutdown().await.unwrap();
}
