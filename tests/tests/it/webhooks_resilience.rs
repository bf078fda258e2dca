//! Webhook delivery under trouble: a control-plane restart in the middle of a
//! backlog resumes from each endpoint's position without losing or repeating an
//! event; a receiver that hangs holds up only its own endpoint, and an attempt it
//! never answers times out and is retried; two replicas never deliver to one
//! endpoint at once.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use nova_tests::{
    wait,
    webhook_receiver::Receiver,
    webhooks::{WAIT, World, owner_log},
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_in_the_middle_of_a_backlog_resumes_from_the_position_without_loss() {
    let mut w = World::start(|_| {}).await;
    let receiver = Receiver::start(&[]).await;
    let (hook, secret) = w.register("alice", &receiver.url("/"), None).await;
    let (stream, key) = w.create_stream("restarted").await;
    w.publish(&key).await;
    wait::until("the first two events acknowledged", WAIT, || {
        let n = receiver.acknowledged().len();
        async move { if n >= 2 { Ok(()) } else { Err(n) } }
    })
    .await;

    // The receiver starts failing; four more events pile up behind the first failure.
    receiver.answer(503);
    w.leave(&key).await;
    w.publish(&key).await;
    w.rotate(&stream.name).await;
    w.end(&stream.name).await;
    wait::until("a failed attempt at the backlog", WAIT, || async {
        let attempts = w.attempts("alice", &hook).await;
        let failed = attempts.iter().any(|a| a["outcome"] == "http_error");
        if failed { Ok(()) } else { Err(attempts) }
    })
    .await;
    let log = owner_log(&w.ctx, "alice").await;
    assert_eq!(log.len(), 6);
    let before = w.webhook("alice", &hook).await;
    assert_eq!(before["last_event_id"], json!(log[1].id.to_string()));

    // The control plane goes away and comes back; meanwhile the receiver recovers.
    w.ctx.restart_while(async { receiver.answer(200) }).await;
    let acknowledged = wait::until("the backlog delivered after the restart", WAIT, || {
        let got = receiver.acknowledged();
        async move {
            if got.len() >= 6 {
                Ok(got)
            } else {
                Err(got.len())
            }
        }
    })
    .await;
    let ids: Vec<i64> = acknowledged
        .iter()
        .map(|d| d.event_id.parse().unwrap())
        .collect();
    let logged: Vec<i64> = log.iter().map(|e| e.id).collect();
    assert_eq!(
        ids, logged,
        "every event once, in order, across the restart"
    );
    assert!(acknowledged.iter().all(|d| d.signed_with(&secret)));
    let types: Vec<&str> = acknowledged.iter().map(|d| d.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "stream.created",
            "stream.active",
            "stream.interrupted",
            "stream.resumed",
            "stream.key_rotated",
            "stream.completed"
        ]
    );
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_receiver_holds_up_only_its_own_endpoint() {
    // Attempts may take a minute: the hanging one is still open when the test looks.
    let mut w = World::start(|config| config.webhooks.timeout = Duration::from_secs(60)).await;
    let hanging = Receiver::start(&[]).await;
    hanging.hold(true);
    let healthy = Receiver::start(&[]).await;
    let (stuck, _) = w.register("alice", &hanging.url("/"), None).await;
    w.register("alice", &healthy.url("/"), None).await;
    let (_, key) = w.create_stream("one slow receiver").await;
    w.publish(&key).await;

    wait::until("the healthy endpoint served", WAIT, || {
        let n = healthy.acknowledged().len();
        async move { if n >= 2 { Ok(()) } else { Err(n) } }
    })
    .await;
    assert_eq!(
        hanging.in_flight(),
        1,
        "the hanging receiver still holds its request"
    );
    assert!(
        w.attempts("alice", &stuck).await.is_empty(),
        "no attempt finished there"
    );

    hanging.hold(false);
    let got = wait::until("the hanging endpoint served once released", WAIT, || {
        let got = hanging.acknowledged();
        async move {
            if got.len() >= 2 {
                Ok(got)
            } else {
                Err(got.len())
            }
        }
    })
    .await;
    assert_eq!(got.len(), 2);
    assert_eq!(
        hanging.max_in_flight(),
        1,
        "one attempt at a time per endpoint"
    );
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unanswered_attempt_times_out_and_is_retried() {
    let mut w = World::start(|config| config.webhooks.timeout = Duration::from_secs(1)).await;
    let receiver = Receiver::start(&[]).await;
    receiver.hold(true);
    let (hook, _) = w
        .register("alice", &receiver.url("/"), Some(&["stream.created"]))
        .await;
    w.create_stream("timed out").await;
    let attempts = w.wait_attempts("alice", &hook, 1).await;
    assert_eq!(attempts[0]["outcome"], "timeout", "{:?}", attempts[0]);
    assert_eq!(attempts[0]["status_code"], serde_json::Value::Null);

    receiver.hold(false);
    let attempts = wait::until("a delivered retry", WAIT, || async {
        let attempts = w.attempts("alice", &hook).await;
        let done = attempts.last().is_some_and(|a| a["outcome"] == "delivered");
        if done { Ok(attempts) } else { Err(attempts) }
    })
    .await;
    let event = &attempts[0]["event_id"];
    assert!(
        attempts.iter().all(|a| &a["event_id"] == event),
        "retries of one event"
    );
    // The receiver may have seen the timed-out requests too once released: at least
    // once, deduplicated by the event id.
    let seen = receiver.acknowledged_counts();
    assert_eq!(seen.len(), 1);
    assert!(seen.contains_key(event.as_str().unwrap()));
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_never_deliver_to_one_endpoint_at_once() {
    let mut w = World::start(|_| {}).await;
    let replica = w.ctx.replica().await;
    let receivers = [
        Receiver::start(&[]).await,
        Receiver::start(&[]).await,
        Receiver::start(&[]).await,
    ];
    for r in &receivers {
        // Slow answers widen the window in which a second deliverer would overlap.
        r.slow_down(Duration::from_millis(50));
        w.register("alice", &r.url("/"), None).await;
    }
    for n in 0..3 {
        let (stream, key) = w.create_stream(&format!("stream {n}")).await;
        w.publish(&key).await;
        w.leave(&key).await;
        w.end(&stream.name).await;
    }
    let log = owner_log(&w.ctx, "alice").await;
    assert_eq!(log.len(), 12);
    let logged: Vec<String> = log.iter().map(|e| e.id.to_string()).collect();
    for (n, r) in receivers.iter().enumerate() {
        let got = wait::until(&format!("receiver {n} served"), WAIT, || {
            let got = r.acknowledged();
            async move {
                if got.len() >= 12 {
                    Ok(got)
                } else {
                    Err(got.len())
                }
            }
        })
        .await;
        let ids: Vec<String> = got.iter().map(|d| d.event_id.clone()).collect();
        assert_eq!(ids, logged, "receiver {n}: every event once, in order");
        assert_eq!(
            r.max_in_flight(),
            1,
            "receiver {n}: one deliverer at a time"
        );
    }
    replica.shutdown().await.unwrap();
    w.shutdown().await;
}
