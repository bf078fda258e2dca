//! Webhook deliveries to real HTTP receivers on loopback (issue 14, item 2): retries
//! until a failing receiver answers, every event exactly once (by idempotency id),
//! in log order per stream, signed; an endpoint down for good disabled, which is
//! itself an event and an audit record. Redelivery: `webhooks_redelivery.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;

use nova_proto::v1::{
    AuditAction, ListAuditRecordsRequest, audit_service_client::AuditServiceClient,
};
use nova_tests::{
    clients::{self, Credentials},
    wait,
    webhook_receiver::Receiver,
    webhooks::{WAIT, World, owner_log},
};
use serde_json::{Value, json};

/// Webhook types of what a script of calls logs, per logged kind and payload.
fn expected_types(kinds: &[&str]) -> Vec<String> {
    kinds.iter().map(|k| (*k).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_failing_its_first_three_attempts_gets_every_event_once_in_order() {
    let mut w = World::start(|_| {}).await;
    let receiver = Receiver::start(&[500, 503, 500]).await;
    let (hook, secret) = w
        .register("alice", &receiver.url("/hooks/nova?src=test"), None)
        .await;

    // Two streams, their lifecycles interleaved.
    let (a, key_a) = w.create_stream("stream a").await;
    let (b, key_b) = w.create_stream("stream b").await;
    w.publish(&key_a).await;
    w.publish(&key_b).await;
    w.leave(&key_a).await;
    w.publish(&key_a).await;
    w.rotate(&a.name).await;
    w.leave(&key_b).await;
    w.end(&b.name).await;
    w.end(&a.name).await;

    let log = owner_log(&w.ctx, "alice").await;
    assert_eq!(log.len(), 10, "{log:?}");
    let acknowledged = wait::until("every logged event acknowledged", WAIT, || {
        let got = receiver.acknowledged();
        async move {
            if got.len() >= 10 {
                Ok(got)
            } else {
                Err(got.len())
            }
        }
    })
    .await;

    // Exactly once each, by idempotency id, in log order; header and body agree.
    let ids: Vec<i64> = acknowledged
        .iter()
        .map(|d| d.event_id.parse().unwrap())
        .collect();
    let logged: Vec<i64> = log.iter().map(|e| e.id).collect();
    assert_eq!(ids, logged, "every event once, in log order");
    for d in &acknowledged {
        let body = d.json();
        assert_eq!(body["id"], json!(d.event_id));
        assert_eq!(body["type"], json!(d.event_type));
        assert!(d.signed_with(&secret), "valid signature on {}", d.event_id);
        assert!(!d.signed_with("whsec_wrong"));
        let text = String::from_utf8_lossy(&d.body);
        assert!(!text.contains("sk_live_"), "no stream key in {text}");
        assert!(!text.contains("whsec_"), "no secret in {text}");
    }
    // Per stream, the documented types in lifecycle order.
    let mut per_stream: HashMap<String, Vec<String>> = HashMap::new();
    for d in &acknowledged {
        let body = d.json();
        per_stream
            .entry(body["stream_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(body["type"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        per_stream[&a.stream_id],
        expected_types(&[
            "stream.created",
            "stream.active",
            "stream.interrupted",
            "stream.resumed",
            "stream.key_rotated",
            "stream.completed"
        ])
    );
    assert_eq!(
        per_stream[&b.stream_id],
        expected_types(&[
            "stream.created",
            "stream.active",
            "stream.interrupted",
            "stream.completed"
        ])
    );
    let first = acknowledged[0].json();
    assert_eq!(first["data"]["title"], "stream a");
    assert_eq!(first["data"]["playback_policy"], "public");

    // The failed attempts were retries of the first event; all are listed.
    let all = receiver.deliveries();
    assert_eq!(all.len(), 13, "three failures, then ten deliveries");
    assert!(all[..4].iter().all(|d| d.event_id == all[0].event_id));
    let attempts = w.wait_attempts("alice", &hook, 13).await;
    let summary: Vec<(Value, Value, Value)> = attempts[..4]
        .iter()
        .map(|a| {
            (
                a["attempt"].clone(),
                a["outcome"].clone(),
                a["status_code"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (json!(1), json!("http_error"), json!(500)),
            (json!(2), json!("http_error"), json!(503)),
            (json!(3), json!("http_error"), json!(500)),
            (json!(4), json!("delivered"), json!(200)),
        ]
    );
    assert_eq!(attempts[0]["error"], "answered HTTP 500");
    assert!(
        attempts
            .iter()
            .all(|a| a["latency_ms"].as_i64().unwrap() >= 0)
    );
    let endpoint = w.webhook("alice", &hook).await;
    assert_eq!(endpoint["consecutive_failures"], 0);
    assert_eq!(endpoint["last_event_id"], json!(log[9].id.to_string()));

    // Paging through the attempts, two at a time, gives them all once.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = w
            .rest(
                "alice",
                "GET",
                &format!("/webhooks/{hook}/attempts?page_size=2&page_token={token}"),
                None,
            )
            .await;
        assert_eq!(page.status, 200, "{:?}", page.json);
        for a in page.json["attempts"].as_array().unwrap() {
            seen.push(a["id"].as_str().unwrap().to_owned());
        }
        token = page.json["next_page_token"].as_str().unwrap().to_owned();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), 13);
    seen.dedup();
    assert_eq!(seen.len(), 13);
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_down_for_the_whole_test_gets_its_endpoint_disabled() {
    let mut w = World::start(|config| {
        config.webhooks.disable_failures = 3;
        config.webhooks.disable_after = std::time::Duration::ZERO;
    })
    .await;
    // Nothing listens where the dead endpoint points.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", listener.local_addr().unwrap())
    };
    let watcher = Receiver::start(&[]).await;
    let (down, _) = w.register("alice", &dead, None).await;
    let (_, watcher_secret) = w
        .register("alice", &watcher.url("/"), Some(&["webhook.disabled"]))
        .await;
    w.create_stream("nobody hears this").await;

    let endpoint = wait::until("the dead endpoint disabled", WAIT, || async {
        let endpoint = w.webhook("alice", &down).await;
        if endpoint["enabled"] == json!(false) {
            Ok(endpoint)
        } else {
            Err(endpoint)
        }
    })
    .await;
    assert_eq!(endpoint["disabled_reason"], "failures");
    assert_eq!(endpoint["consecutive_failures"], 3);
    assert!(endpoint["disabled_at"].is_string());
    let attempts = w.attempts("alice", &down).await;
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    for (n, a) in attempts.iter().enumerate() {
        assert_eq!(a["attempt"], json!(n + 1));
        assert_eq!(a["outcome"], "network_error", "{a}");
        assert_eq!(a["status_code"], Value::Null);
        assert!(!a["error"].as_str().unwrap().contains("/hook"), "{a}");
    }

    // The owner's other endpoint hears of it: `webhook.disabled`, signed.
    let told = wait::until("webhook.disabled delivered", WAIT, || {
        let got = watcher.acknowledged();
        async move { got.into_iter().next().ok_or(()) }
    })
    .await;
    assert!(told.signed_with(&watcher_secret));
    let body = told.json();
    assert_eq!(body["type"], "webhook.disabled");
    assert_eq!(body["stream_id"], Value::Null);
    assert_eq!(body["data"], json!({ "webhook_id": down, "failures": 3 }));

    // And the audit trail says Nova did it.
    let mut audit = AuditServiceClient::with_interceptor(
        clients::channel(&w.ctx.url()).await,
        Credentials::new(Some(&w.ctx.token), Some("alice")),
    );
    let records = audit
        .list_audit_records(ListAuditRecordsRequest {
            owner: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .records;
    let disabled = records
        .iter()
        .find(|r| r.action() == AuditAction::WebhookDisabled)
        .expect("a webhook_disabled record");
    assert_eq!(
        (
            disabled.actor.as_str(),
            disabled.service.as_str(),
            disabled.resource.clone()
        ),
        ("nova", "system", format!("webhooks/{down}"))
    );
    assert_eq!(disabled.fields, vec!["enabled".to_owned()]);

    // Pointed at a live receiver and enabled again, it gets what it missed.
    let back = Receiver::start(&[]).await;
    let patched = w
        .rest(
            "alice",
            "PATCH",
            &format!("/webhooks/{down}"),
            Some(json!({ "url": back.url("/again"), "enabled": true })),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.json);
    assert_eq!(patched.json["webhook"]["enabled"], true);
    assert_eq!(patched.json["webhook"]["disabled_reason"], Value::Null);
    assert_eq!(patched.json["webhook"]["consecutive_failures"], 0);
    let missed = wait::until("the missed events delivered", WAIT, || {
        let got = back.acknowledged();
        async move {
            if got.len() >= 2 {
                Ok(got)
            } else {
                Err(got.len())
            }
        }
    })
    .await;
    let types: Vec<String> = missed.iter().map(|d| d.event_type.clone()).collect();
    assert_eq!(types, ["stream.created", "webhook.disabled"]);

    let metrics = nova_tests::http::get(&w.ctx.metrics_url())
        .await
        .unwrap()
        .text();
    assert!(
        metrics.contains("nova_streaming_webhook_endpoints_disabled_total 1"),
        "{metrics}"
    );
    // The names and types of every webhook metric (docs/MONITORING.md).
    for (family, kind) in [
        ("nova_streaming_webhook_deliveries_total", "counter"),
        (
            "nova_streaming_webhook_delivery_duration_seconds",
            "histogram",
        ),
        ("nova_streaming_webhook_events_abandoned_total", "counter"),
        ("nova_streaming_webhook_endpoints_disabled_total", "counter"),
        ("nova_streaming_webhook_lag_seconds", "gauge"),
        ("nova_streaming_webhook_failing_endpoints", "gauge"),
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {family} {kind}\n")),
            "{family} {kind}: {metrics}"
        );
    }
    assert!(
        metrics.contains(r#"nova_streaming_webhook_deliveries_total{outcome="network_error"} 3"#)
    );
    w.shutdown().await;
}
