//! DASH media segments of a signed stream (issue 13, item 3), through real
//! nginx-rtmp and ffmpeg: the `<id>-<time>.m4v` and `.m4a` files its manifest names
//! are served with a valid token only; without one, with another stream's token, a
//! tampered or a malformed token, the origin refuses them.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use nova_proto::v1::{PlaybackPolicy, StreamStatus};
use nova_tests::{
    ffmpeg::Broadcaster,
    live::{LiveOptions, LiveStack},
    playback::{self, claims, raw_status},
};

/// Returns the newest media segment of each adaptation set of an nginx-rtmp
/// manifest: `<id>-<time>.m4v` and `<id>-<time>.m4a`.
fn newest_segments(mpd: &str) -> Vec<String> {
    mpd.split("<AdaptationSet")
        .skip(1)
        .map(|set| {
            let media = set
                .split("media=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("no media template in {set}"));
            let time = set
                .rsplit("t=\"")
                .next()
                .and_then(|rest| rest.split('"').next())
                .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .unwrap_or_else(|| panic!("no segment time in {set}"));
            media.replace("$Time$", time)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_stream_s_dash_segments_need_a_valid_token() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let origin = live.nginx.origin_url();
    let (stream, key) = playback::create_stream(&live, PlaybackPolicy::Signed).await;
    let (other, _) = playback::create_stream(&live, PlaybackPolicy::Signed).await;
    let id = stream.stream_id.clone();
    let _ffmpeg = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(120));
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;
    let issued = playback::issue(&live, &stream.name, "dash-1").await;
    let theirs = playback::issue(&live, &other.name, "dash-2").await;
    let mpd = live
        .wait_for_url(&issued.dash_url, Duration::from_secs(20))
        .await
        .text();
    let segments = newest_segments(&mpd);
    let mut kinds: Vec<&str> = segments
        .iter()
        .map(|s| s.rsplit('.').next().unwrap())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["m4a", "m4v"], "{mpd}");
    // The token with its payload swapped for another session's: the signature no
    // longer matches.
    let tampered = {
        let mut parts: Vec<String> = issued.token.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(claims(&id, "someone-else", 300).to_string());
        parts.join(".")
    };

    for segment in &segments {
        assert!(
            segment.starts_with(&format!("{id}-")) && !segment.contains('/'),
            "a media segment of the stream: {segment}"
        );
        let got = nova_tests::http::get(&format!("{origin}/dash/t/{}/{segment}", issued.token))
            .await
            .unwrap();
        assert_eq!(got.status, 200, "{segment} with the token");
        assert!(!got.body.is_empty(), "{segment} has content");
        for (what, path) in [
            ("no token", format!("/dash/{segment}")),
            (
                "another stream's token",
                format!("/dash/t/{}/{segment}", theirs.token),
            ),
            ("a tampered token", format!("/dash/t/{tampered}/{segment}")),
            ("a malformed token", format!("/dash/t/a.b.c/{segment}")),
        ] {
            assert_eq!(raw_status(&origin, &path).await, 403, "{segment}: {what}");
        }
    }
    live.shutdown().await;
}
