//! Tokens that name the networks they play from (issue 13, item 2's optional
//! limits), enforced at the origin: issued over REST with `allowed_networks`, a
//! token plays from an address inside them only, also while nginx holds a cached
//! "yes" for the same token from an allowed address (decisions are cached per
//! client address). Loopback gives the test several client addresses
//! (127.0.0.1, 127.0.0.2, …); an unmodified player (ffprobe) is refused too.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{net::IpAddr, time::Duration};

use nova_proto::v1::{PlaybackPolicy, StreamStatus};
use nova_tests::{
    edge::{self, call, jwt},
    ffmpeg::Broadcaster,
    live::{LiveOptions, LiveStack},
    playback::{self, ffprobe, raw_status_from},
    wait,
};

const WAIT: Duration = Duration::from_secs(20);

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_naming_networks_plays_only_from_them_at_the_origin() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let e = edge::start(&live.ctx, "edge-a").await;
    let api = format!("http://{}/api/v1", e.addr);
    let origin = live.nginx.origin_url();
    let (stream, key) = playback::create_stream(&live, PlaybackPolicy::Signed).await;
    let id = stream.stream_id.clone();
    let alice = jwt("alice");
    let issue = |body: String| {
        let url = format!("{api}/streams/{id}/playback-tokens");
        let alice = alice.clone();
        async move { call("POST", &url, Some(&alice), Some(&body)).await }
    };

    // Bad networks are refused at issue, naming the field.
    let many: Vec<String> = (0..17).map(|i| format!("\"10.0.{i}.0/24\"")).collect();
    for bad in [
        r#"["example.com"]"#.to_owned(),
        r#"["10.0.0.0/33"]"#.to_owned(),
        r#""10.0.0.0/8""#.to_owned(),
        format!("[{}]", many.join(",")),
    ] {
        let refused = issue(format!(r#"{{"allowed_networks":{bad}}}"#)).await;
        assert_eq!(refused.status, 400, "{bad}: {:?}", refused.json);
    }
    // An address is a /32; the answer shows the networks normalised.
    let only_two = issue(r#"{"session_id":"net-2","allowed_networks":["127.0.0.2"]}"#.into()).await;
    assert_eq!(only_two.status, 201, "{:?}", only_two.json);
    assert_eq!(
        only_two.json["allowed_networks"],
        serde_json::json!(["127.0.0.2/32"])
    );
    let loopback =
        issue(r#"{"session_id":"net-8","allowed_networks":["127.0.0.1/8"]}"#.into()).await;
    assert_eq!(
        loopback.json["allowed_networks"],
        serde_json::json!(["127.0.0.0/8"])
    );
    let token = only_two.json["token"].as_str().unwrap().to_owned();
    let path = format!("/hls/t/{token}/{id}.m3u8");

    let _ffmpeg = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(120));
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;
    wait::until("the playlist to play from 127.0.0.2", WAIT, || async {
        match raw_status_from(&origin, &path, ip("127.0.0.2")).await {
            200 => Ok(()),
            s => Err(s),
        }
    })
    .await;
    // Right after a "yes" for 127.0.0.2 (cached for a second), other addresses
    // are still refused: the decision is per client address.
    for _ in 0..3 {
        assert_eq!(raw_status_from(&origin, &path, ip("127.0.0.2")).await, 200);
        for outside in ["127.0.0.1", "127.0.0.3"] {
            assert_eq!(
                raw_status_from(&origin, &path, ip(outside)).await,
                403,
                "from {outside}"
            );
        }
    }
    // An unmodified player on 127.0.0.1: refused with the /32 token, plays with
    // the /8 one.
    let url = |t: &str| format!("{origin}/hls/t/{t}/{id}.m3u8");
    assert!(
        !ffprobe(&url(&token)).await,
        "ffprobe from outside the network"
    );
    assert!(
        ffprobe(&url(loopback.json["token"].as_str().unwrap())).await,
        "ffprobe from inside the network"
    );

    // The verifier counted the refusals under their own reason.
    let hooks = live.hooks.as_ref().unwrap().addr;
    let metrics = nova_tests::http::get(&format!("http://{hooks}/metrics"))
        .await
        .unwrap()
        .text();
    assert!(
        metrics.contains("nova_streaming_playback_decisions_total{result=\"network\""),
        "{metrics}"
    );
    live.shutdown().await;
    e.shutdown().await.unwrap();
}
