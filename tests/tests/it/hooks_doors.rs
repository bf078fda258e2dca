//! The hooks' HTTP door, called directly with the valid shared secret (as nginx
//! would, or anybody who stole it): unknown callback paths, forged bodies on every
//! kind nginx cannot be made to forge through RTMP (on_update, on_publish_done,
//! on_play_done, on_done: see `rtmp_attacks`), and stream keys that are not plain
//! text, refused before the control plane is asked.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use nova_tests::{
    edge::{Reply, call_with},
    figures, http,
    live::{LiveOptions, LiveStack},
};

/// The header nginx's private on_update guard uses for the secret (never the URL).
const SECRET_HEADER: &str = "x-nova-hooks-secret";
const AUTHORIZE: &str = "/nova.streaming.v1.IngestService/AuthorizePublish";

/// Returns a callback body as nginx writes it for `call` from address `addr`.
fn body(app: &str, addr: &str, call: &str, own: &str) -> String {
    format!(
        "app={app}&flashver=FMLE%2F3.0&swfurl=&tcurl=rtmp%3A%2F%2F127.0.0.1%2F{app}&pageurl=\
         &addr={addr}&clientid=7&call={call}{own}"
    )
}

async fn post(live: &LiveStack, path: &str, body: &str) -> Reply {
    let addr = live.hooks.as_ref().expect("hooks running").addr;
    let secret = live.hooks_secret();
    call_with(
        "POST",
        &format!("http://{addr}{path}"),
        None,
        Some(body),
        &[(SECRET_HEADER, secret.as_str())],
    )
    .await
}

async fn malformed(live: &LiveStack) -> u64 {
    let addr = live.hooks.as_ref().expect("hooks running").addr;
    let text = http::get(&format!("http://{addr}/metrics"))
        .await
        .expect("scrape ingest-hooks")
        .text();
    let prefix = "nova_streaming_broadcast_errors_total{reason=\"malformed_callback\"} ";
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_field_on_update_publish_done_play_done_or_done_is_refused_and_counted() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let name = "&name=sk_live_unknown";
    // Each kind's genuine body (answered 200 without a change), on its own path.
    let genuine = [
        (
            "/rtmp/update",
            body(
                "stream",
                "127.0.0.9",
                "update_publish",
                &format!("&time=4&timestamp=4000{name}"),
            ),
        ),
        (
            "/rtmp/update",
            body(
                "stream",
                "127.0.0.9",
                "update_play",
                "&time=4&timestamp=4000&name=x",
            ),
        ),
        (
            "/rtmp/publish_done",
            body("live", "127.0.0.9", "publish_done", name),
        ),
        (
            "/rtmp/play_done",
            body("stream", "127.0.0.9", "play_done", "&name=x"),
        ),
        ("/rtmp/done", body("live", "127.0.0.9", "done", name)),
    ];
    let forgeries = [
        "&call=done",
        "&%63all=done",
        "&CALL=publish",
        "&name=other",
        "&Name=",
        "&app=live",
        "&addr=127.0.0.1",
        "&flashver=ngx-local-relay",
        "&clientid=1",
        "&type=live",
        "&epoch=1",
        "&path=%2Fetc%2Fpasswd",
    ];
    let before = malformed(&live).await;
    let mut forged = 0;
    for (path, genuine) in &genuine {
        let answer = post(&live, path, genuine).await;
        assert_eq!(answer.status, 200, "{path} {genuine}: {:?}", answer.json);
        for forgery in forgeries {
            let answer = post(&live, path, &format!("{genuine}{forgery}")).await;
            assert_eq!(
                answer.status, 403,
                "{path} with {forgery}: {:?}",
                answer.json
            );
            assert_eq!(answer.json["error"]["code"], "permission_denied");
            forged += 1;
        }
    }
    assert_eq!(
        malformed(&live).await - before,
        forged,
        "each forged callback is counted as malformed_callback, nothing else is"
    );
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_paths_forged_bodies_and_unplain_keys_are_refused_before_the_control_plane() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let publish =
        |addr: &str, name: &str| body("live", addr, "publish", &format!("&name={name}&type=live"));

    // A valid secret opens only the paths nginx is configured with.
    for path in [
        "/rtmp/x",
        "/rtmp/",
        "/rtmp",
        "/rtmp/PUBLISH",
        "/rtmp/publish/",
        "/rtmp/publish/x",
        "/rtmp/connect",
        "/rtmp/playback",
        "/rtmp/%70ublish",
        "/rtmp/./publish",
    ] {
        let answer = post(&live, path, &publish("127.0.0.2", "sk_live_unknown")).await;
        assert!(
            answer.status >= 400,
            "POST {path} answered {}: {:?}",
            answer.status,
            answer.json
        );
    }

    // A forged body is refused with exactly 403.
    for forgery in ["&call=done", "&%63all=done", "&name=x", "&app=stream"] {
        let answer = post(
            &live,
            "/rtmp/publish",
            &format!("{}{forgery}", publish("127.0.0.3", "k")),
        )
        .await;
        assert_eq!(answer.status, 403, "{forgery}: {:?}", answer.json);
    }

    // A key that is not plain text never reaches the control plane (each from its own
    // address, so the failed-publish budget plays no part).
    let asked = figures::grpc_calls(&live.ctx, AUTHORIZE).await;
    let unplain = [
        "sk_live_a%3Fcall%3Ddone",
        "sk_live_a%26call%3Ddone",
        "sk_live_a%25",
        "sk_live_a%2541",
        "sk_live_a%0Ab",
        "sk_live_a%0D",
        "sk_live_a%00",
        "sk_live_a%7F",
        "sk_live_a%09",
        "sk_live_a+b",
        "sk_live_a%2Fb",
        "sk_live_%C3%A9",
    ];
    for (i, name) in unplain.iter().enumerate() {
        let answer = post(
            &live,
            "/rtmp/publish",
            &publish(&format!("127.0.1.{i}"), name),
        )
        .await;
        assert_eq!(answer.status, 403, "{name}: {:?}", answer.json);
    }
    assert_eq!(
        figures::grpc_calls(&live.ctx, AUTHORIZE).await,
        asked,
        "no AuthorizePublish call for a key that is not plain text"
    );
    // A plain unknown key is asked about (so the counter above could have moved).
    let answer = post(
        &live,
        "/rtmp/publish",
        &publish("127.0.2.1", "sk_live_unknown"),
    )
    .await;
    assert_eq!(answer.status, 403, "{:?}", answer.json);
    assert_eq!(
        figures::grpc_calls(&live.ctx, AUTHORIZE).await,
        asked + 1,
        "a plain key is checked by the control plane"
    );
    live.shutdown().await;
}
