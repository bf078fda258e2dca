//! Viewer caps (issue 13, item 5): a stream's optional `max_viewers`, enforced when
//! tokens are issued (RESOURCE_EXHAUSTED over gRPC, 429 + Retry-After over REST) and
//! at the origin for token sessions (429 + Retry-After from nginx), counted in
//! `nova_streaming_playback_decisions_total{result="capacity"}`. Real nginx-rtmp and
//! ffmpeg players.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use nova_proto::v1::{CreatePlaybackTokenRequest, StreamStatus, UpdateStreamRequest};
use nova_tests::{
    edge::{self, call, jwt},
    ffmpeg::Broadcaster,
    live::{LiveOptions, LiveStack},
    playback::{self, raw_status},
};
use tonic::Code;

#[tokio::test(flavor = "multi_thread")]
async fn a_cap_of_two_refuses_the_third_viewer_at_issue_and_at_the_origin() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let e = edge::start(&live.ctx, "edge-a").await;
    let api = format!("http://{}/api/v1", e.addr);
    let origin = live.nginx.origin_url();
    let alice = jwt("alice");
    let created = call(
        "POST",
        &format!("{api}/streams"),
        Some(&alice),
        Some(r#"{"title":"small room","playback_policy":"signed","max_viewers":2}"#),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.json);
    assert_eq!(created.json["stream"]["max_viewers"], 2);
    let id = created.json["stream"]["id"].as_str().unwrap().to_owned();
    let name = format!("streams/{id}");
    let key = created.json["stream_key"].as_str().unwrap().to_owned();
    let _ffmpeg = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(120));
    live.wait_for_status(&name, StreamStatus::Active, Duration::from_secs(15))
        .await;

    // Three tokens issued while nobody watches; two players fill the room.
    let first = playback::issue(&live, &name, "v-1").await;
    let second = playback::issue(&live, &name, "v-2").await;
    let third = playback::issue(&live, &name, "v-3").await;
    live.wait_for_url(&first.hls_url, Duration::from_secs(20))
        .await;
    let _players = [
        playback::player(&first.hls_url, 60),
        playback::player(&second.hls_url, 60),
    ];
    live.wait_for_viewers(&name, 2, Duration::from_secs(15))
        .await;

    // At issue: gRPC RESOURCE_EXHAUSTED, REST 429 with Retry-After.
    let err = playback::client(&live.ctx.url(), &live.ctx.token, Some("alice"))
        .await
        .create_playback_token(CreatePlaybackTokenRequest {
            name: name.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(
        err.message(),
        "the stream has its maximum of 2 viewers; retry later"
    );
    let refused = call(
        "POST",
        &format!("{api}/streams/{id}/playback-tokens"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json["error"]["code"], "RESOURCE_EXHAUSTED");
    assert_eq!(refused.headers["retry-after"], "5");

    // At the origin: the third session is refused with 429 + Retry-After; the two
    // viewers go on, and the count stays 2.
    let answer = reqwest_like(&origin, &format!("/hls/t/{}/{id}.m3u8", third.token)).await;
    assert_eq!(answer.0, 429);
    assert!(answer.1.contains("retry-after: 5"), "{}", answer.1);
    assert_eq!(
        raw_status(&origin, &format!("/hls/t/{}/{id}.m3u8", first.token)).await,
        200
    );
    assert_eq!(live.viewer_count(&name).await, Ok(2));
    let hooks = live.hooks.as_ref().unwrap().addr;
    let metrics = nova_tests::http::get(&format!("http://{hooks}/metrics"))
        .await
        .unwrap()
        .text();
    assert!(
        metrics.contains(r#"nova_streaming_playback_decisions_total{result="capacity""#),
        "{metrics}"
    );

    // Raising the cap lets the third viewer in (the origin learns it at its next
    // refresh).
    live.streams
        .clone()
        .update_stream(UpdateStreamRequest {
            stream: Some(nova_proto::v1::Stream {
                name: name.clone(),
                max_viewers: 3,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["max_viewers".into()],
            }),
        })
        .await
        .unwrap();
    nova_tests::wait::until(
        "the third viewer to be let in",
        Duration::from_secs(10),
        || async {
            match raw_status(&origin, &format!("/hls/t/{}/{id}.m3u8", third.token)).await {
                200 => Ok(()),
                s => Err(s),
            }
        },
    )
    .await;
    live.wait_for_viewers(&name, 3, Duration::from_secs(10))
        .await;
    live.shutdown().await;
    e.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_refused_at_the_cap_leaves_no_trace_in_the_figures() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let origin = live.nginx.origin_url();
    let stream = live
        .streams
        .clone()
        .create_stream(nova_proto::v1::CreateStreamRequest {
            stream: Some(nova_proto::v1::Stream {
                title: "room for one".into(),
                playback_policy: nova_proto::v1::PlaybackPolicy::Signed.into(),
                max_viewers: 1,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    let (name, id) = (stream.name.clone(), stream.stream_id.clone());
    let first = playback::issue(&live, &name, "only-1").await;
    let second = playback::issue(&live, &name, "hammer-2").await;
    // No broadcast: an authorised request finds no file (404) and joins its session.
    nova_tests::wait::until(
        "the first viewer to be let in",
        Duration::from_secs(10),
        || async {
            match raw_status(&origin, &format!("/hls/t/{}/{id}.m3u8", first.token)).await {
                404 => Ok(()),
                s => Err(s),
            }
        },
    )
    .await;
    live.wait_for_viewers(&name, 1, Duration::from_secs(10))
        .await;
    // A second player retrying in a loop: refused every time, and never counted.
    let mut statuses = Vec::new();
    for _ in 0..50 {
        statuses.push(raw_status(&origin, &format!("/hls/t/{}/{id}.m3u8", second.token)).await);
    }
    assert!(statuses.iter().all(|s| *s == 429), "{statuses:?}");
    let figures = nova_tests::clients::sessions(&live.ctx.url(), &live.ctx.token)
        .await
        .get_viewer_count(nova_proto::v1::GetViewerCountRequest { name: name.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            figures.viewer_count,
            figures.peak_viewers,
            figures.unique_viewers
        ),
        (1, 1, 1),
        "(count, peak, uniques)"
    );
    // The first viewer still plays.
    assert_eq!(
        raw_status(&origin, &format!("/hls/t/{}/{id}.m3u8", first.token)).await,
        404
    );
    live.shutdown().await;
}

/// GETs `path` raw; returns the status and the lower-cased head.
async fn reqwest_like(origin: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = origin.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&answer).to_lowercase();
    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head)
}
