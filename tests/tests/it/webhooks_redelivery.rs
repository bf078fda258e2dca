//! Manual redelivery (issue 14, item 2): an owner's event sent again with the same
//! id and body, whatever the endpoint's types, listed as a manual attempt; another
//! owner's or a made-up event is not found; a disabled endpoint takes none.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use nova_tests::{
    clients, wait,
    webhook_receiver::Receiver,
    webhooks::{WAIT, World, owner_log},
};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn a_manual_redelivery_sends_the_same_event_again() {
    let mut w = World::start(|_| {}).await;
    let receiver = Receiver::start(&[]).await;
    let (hook, secret) = w
        .register("alice", &receiver.url("/"), Some(&["stream.created"]))
        .await;
    let (stream, key) = w.create_stream("again").await;
    w.publish(&key).await;
    let first = wait::until("the creation delivered", WAIT, || {
        let got = receiver.acknowledged();
        async move { got.into_iter().next().ok_or(()) }
    })
    .await;
    assert_eq!(first.event_type, "stream.created");

    // Another owner's event, or a made-up one, is not found.
    let bob_stream = {
        let mut bob = clients::streams(&w.ctx.url(), Some(&w.ctx.token), Some("bob")).await;
        bob.create_stream(nova_proto::v1::CreateStreamRequest {
            stream: Some(nova_proto::v1::Stream {
                title: "bob's".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
        owner_log(&w.ctx, "bob").await[0].id
    };
    for event_id in [bob_stream.to_string(), "999999".into()] {
        let refused = w
            .rest(
                "alice",
                "POST",
                &format!("/webhooks/{hook}/redeliver"),
                Some(json!({ "event_id": event_id })),
            )
            .await;
        assert_eq!(refused.status, 404, "{:?}", refused.json);
    }
    // The stream's `stream.active` is not among this endpoint's types, yet it may be
    // redelivered on request; so may the creation.
    let active = owner_log(&w.ctx, "alice").await[1].id.to_string();
    for event_id in [first.event_id.clone(), active.clone()] {
        let queued = w
            .rest(
                "alice",
                "POST",
                &format!("/webhooks/{hook}/redeliver"),
                Some(json!({ "event_id": event_id })),
            )
            .await;
        assert_eq!(queued.status, 202, "{:?}", queued.json);
    }
    let again = wait::until("both redeliveries", WAIT, || {
        let got = receiver.acknowledged();
        async move {
            if got.len() >= 3 {
                Ok(got)
            } else {
                Err(got.len())
            }
        }
    })
    .await;
    assert_eq!(again[1].event_id, first.event_id);
    assert_eq!(again[1].body, first.body, "the same body, byte for byte");
    assert!(again[1].signed_with(&secret));
    assert_eq!(again[2].event_id, active);
    assert_eq!(again[2].event_type, "stream.active");
    assert_eq!(again[2].json()["stream_id"], json!(stream.stream_id));
    let attempts = w.wait_attempts("alice", &hook, 3).await;
    let manual: Vec<(Value, Value, Value)> = attempts
        .iter()
        .map(|a| {
            (
                a["event_id"].clone(),
                a["attempt"].clone(),
                a["manual"].clone(),
            )
        })
        .collect();
    assert_eq!(
        manual,
        vec![
            (json!(first.event_id), json!(1), json!(false)),
            (json!(first.event_id), json!(2), json!(true)),
            (json!(active), json!(1), json!(true)),
        ]
    );
    // A disabled endpoint takes no redelivery.
    let off = w
        .rest(
            "alice",
            "PATCH",
            &format!("/webhooks/{hook}"),
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!(off.json["webhook"]["disabled_reason"], "owner");
    let refused = w
        .rest(
            "alice",
            "POST",
            &format!("/webhooks/{hook}/redeliver"),
            Some(json!({ "event_id": active })),
        )
        .await;
    assert_eq!(refused.status, 400, "{:?}", refused.json);
    assert_eq!(refused.json["error"]["code"], "FAILED_PRECONDITION");
    w.shutdown().await;
}
