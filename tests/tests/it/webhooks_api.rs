//! The webhook endpoints' API, REST and gRPC: create (the secret shown once),
//! read, list in pages, update, rotate, delete, for their owner only (another owner
//! gets 404 and sees nothing), every change audited without a secret, the per-owner
//! limit, and who may call WebhookService.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use nova_proto::v1::{
    AuditAction, GetWebhookRequest, ListAuditRecordsRequest, ListWebhooksRequest,
    UpdateWebhookRequest, Webhook, audit_service_client::AuditServiceClient,
    webhook_service_client::WebhookServiceClient,
};
use nova_tests::{
    clients::{self, Credentials},
    edge::call,
    webhook_receiver::Receiver,
    webhooks::World,
};
use serde_json::{Value, json};
use tonic::Code;

#[tokio::test(flavor = "multi_thread")]
async fn an_owner_creates_reads_lists_updates_rotates_and_deletes_endpoints() {
    let w = World::start(|_| {}).await;
    let receiver = Receiver::start(&[]).await;
    let url = receiver.url("/hooks/nova");
    let created = w
        .rest(
            "alice",
            "POST",
            "/webhooks",
            Some(json!({ "url": url, "events": ["stream.active", "stream.completed"] })),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.json);
    assert_eq!(created.headers["cache-control"], "no-store");
    let hook = created.json["webhook"].clone();
    let id = hook["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.headers["location"],
        format!("/api/v1/webhooks/{id}")
    );
    let secret = created.json["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 49,
        "{secret}"
    );
    assert_eq!(hook["name"], format!("webhooks/{id}"));
    assert_eq!(hook["url"], url);
    assert_eq!(hook["events"], json!(["stream.active", "stream.completed"]));
    assert_eq!(hook["enabled"], true);
    assert_eq!(hook["disabled_reason"], Value::Null);
    assert_eq!(hook["consecutive_failures"], 0);
    let (all_events, _) = w.register("alice", &receiver.url("/all"), None).await;

    // Reads never show the secret.
    let got = w
        .rest("alice", "GET", &format!("/webhooks/{id}"), None)
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.headers["cache-control"], "no-store");
    assert_eq!(got.json["webhook"], hook);
    let listed = w.rest("alice", "GET", "/webhooks", None).await;
    let ids: Vec<&str> = listed.json["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str(), all_events.as_str()], "oldest first");
    assert_eq!(listed.json["webhooks"][1]["events"], json!([]));
    for text in [got.json.to_string(), listed.json.to_string()] {
        assert!(!text.contains("whsec_"), "{text}");
    }
    let first = w.rest("alice", "GET", "/webhooks?page_size=1", None).await;
    let token = first.json["next_page_token"].as_str().unwrap();
    assert_eq!(first.json["webhooks"].as_array().unwrap().len(), 1);
    let second = w
        .rest(
            "alice",
            "GET",
            &format!("/webhooks?page_size=1&page_token={token}"),
            None,
        )
        .await;
    assert_eq!(second.json["webhooks"][0]["id"], json!(all_events));
    assert_eq!(second.json["next_page_token"], "");
    let foreign = w
        .rest("bob", "GET", &format!("/webhooks?page_token={token}"), None)
        .await;
    assert_eq!(foreign.status, 400, "another owner's page token");

    // Updates: types, state, URL; nothing named, unknown types and fields refused.
    let path = format!("/webhooks/{id}");
    let patch = |body: Value| w.rest("alice", "PATCH", &path, Some(body));
    let changed = patch(json!({ "events": ["stream.created"] })).await;
    assert_eq!(changed.status, 200, "{:?}", changed.json);
    assert_eq!(changed.json["webhook"]["events"], json!(["stream.created"]));
    let off = patch(json!({ "enabled": false })).await;
    assert_eq!(off.json["webhook"]["enabled"], false);
    assert_eq!(off.json["webhook"]["disabled_reason"], "owner");
    assert!(off.json["webhook"]["disabled_at"].is_string());
    let on = patch(json!({ "enabled": true, "url": receiver.url("/moved") })).await;
    assert_eq!(on.json["webhook"]["enabled"], true);
    assert_eq!(on.json["webhook"]["url"], receiver.url("/moved"));
    assert_eq!(on.json["webhook"]["disabled_at"], Value::Null);
    for (body, status) in [
        (json!({}), 400),
        (json!({ "events": ["stream.started"] }), 400),
        (json!({ "events": null }), 422),
        (json!({ "colour": "red" }), 422),
    ] {
        let refused = patch(body.clone()).await;
        assert_eq!(refused.status, status, "{body}: {:?}", refused.json);
    }

    // Rotation: a new secret, shown once.
    let rotated = w
        .rest(
            "alice",
            "POST",
            &format!("/webhooks/{id}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.json);
    assert_eq!(rotated.headers["cache-control"], "no-store");
    let new_secret = rotated.json["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_"));
    assert_ne!(new_secret, secret);

    // Bob sees nothing of alice's and changes nothing.
    let bob_list = w.rest("bob", "GET", "/webhooks", None).await;
    assert_eq!(bob_list.json["webhooks"], json!([]));
    for (method, path, body) in [
        ("GET", format!("/webhooks/{id}"), None),
        (
            "PATCH",
            format!("/webhooks/{id}"),
            Some(json!({ "enabled": false })),
        ),
        ("DELETE", format!("/webhooks/{id}"), None),
        ("POST", format!("/webhooks/{id}/rotate-secret"), None),
        ("GET", format!("/webhooks/{id}/attempts"), None),
        (
            "POST",
            format!("/webhooks/{id}/redeliver"),
            Some(json!({ "event_id": "1" })),
        ),
    ] {
        let refused = w.rest("bob", method, &path, body).await;
        assert_eq!(
            refused.status, 404,
            "bob {method} {path}: {:?}",
            refused.json
        );
        assert_eq!(refused.json["error"]["code"], "NOT_FOUND");
    }
    assert_eq!(w.webhook("alice", &id).await["enabled"], true);
    // Without a token: 401; a malformed id: 400.
    let anonymous = call("GET", &format!("{}/webhooks", w.api), None, None).await;
    assert_eq!(anonymous.status, 401);
    let malformed = w.rest("alice", "GET", "/webhooks/not-a-uuid", None).await;
    assert_eq!(malformed.status, 400);

    let deleted = w
        .rest("alice", "DELETE", &format!("/webhooks/{id}"), None)
        .await;
    assert_eq!(deleted.status, 204);
    let gone = w
        .rest("alice", "GET", &format!("/webhooks/{id}"), None)
        .await;
    assert_eq!(gone.status, 404);
    let again = w
        .rest("alice", "DELETE", &format!("/webhooks/{id}"), None)
        .await;
    assert_eq!(again.status, 404);
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_change_writes_one_audit_record_without_secrets() {
    let mut w = World::start(|_| {}).await;
    let receiver = Receiver::start(&[]).await;
    let (id, secret) = w
        .register("alice", &receiver.url("/a?token=t0ps3cret"), None)
        .await;
    let path = format!("/webhooks/{id}");
    for body in [
        json!({ "events": ["stream.created"], "enabled": false }),
        json!({ "enabled": true }),
    ] {
        assert_eq!(
            w.rest("alice", "PATCH", &path, Some(body)).await.status,
            200
        );
    }
    let rotated = w
        .rest("alice", "POST", &format!("{path}/rotate-secret"), None)
        .await;
    let new_secret = rotated.json["secret"].as_str().unwrap().to_owned();
    w.create_stream("audited").await;
    let log = nova_tests::webhooks::owner_log(&w.ctx, "alice").await;
    let redeliver = json!({ "event_id": log[0].id.to_string() });
    let queued = w
        .rest(
            "alice",
            "POST",
            &format!("{path}/redeliver"),
            Some(redeliver),
        )
        .await;
    assert_eq!(queued.status, 202, "{:?}", queued.json);
    // Refused changes write nothing.
    assert_eq!(w.rest("bob", "DELETE", &path, None).await.status, 404);
    let bad_url = json!({ "url": "ftp://x/" });
    assert_eq!(
        w.rest("alice", "PATCH", &path, Some(bad_url)).await.status,
        400
    );
    assert_eq!(w.rest("alice", "DELETE", &path, None).await.status, 204);

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
    let webhook_records: Vec<_> = records
        .iter()
        .rev()
        .filter(|r| r.resource == format!("webhooks/{id}"))
        .collect();
    let summary: Vec<(AuditAction, Vec<String>, String, String)> = webhook_records
        .iter()
        .map(|r| {
            (
                r.action(),
                r.fields.clone(),
                r.actor.clone(),
                r.service.clone(),
            )
        })
        .collect();
    let edge = |action, fields: &[&str]| {
        (
            action,
            fields.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>(),
            "alice".to_owned(),
            "edge".to_owned(),
        )
    };
    assert_eq!(
        summary,
        vec![
            edge(
                AuditAction::WebhookCreated,
                &["url", "event_types", "secret"]
            ),
            edge(AuditAction::WebhookUpdated, &["event_types", "enabled"]),
            edge(AuditAction::WebhookUpdated, &["enabled"]),
            edge(AuditAction::WebhookSecretRotated, &["secret"]),
            edge(AuditAction::WebhookRedeliveryRequested, &["event_id"]),
            edge(AuditAction::WebhookDeleted, &["webhook"]),
        ]
    );
    for r in &webhook_records {
        assert_eq!(r.stream, "", "an owner-level record");
        assert_eq!(r.client_ip, "127.0.0.1");
        let text = format!("{r:?}");
        for secret in [secret.as_str(), new_secret.as_str(), "t0ps3cret", "whsec_"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_owner_holds_at_most_twenty_endpoints() {
    let w = World::start(|_| {}).await;
    let receiver = Receiver::start(&[]).await;
    for n in 0..20 {
        w.register("alice", &receiver.url(&format!("/{n}")), None)
            .await;
    }
    let refused = w
        .rest(
            "alice",
            "POST",
            "/webhooks",
            Some(json!({ "url": receiver.url("/21") })),
        )
        .await;
    assert_eq!(refused.status, 400, "{:?}", refused.json);
    assert_eq!(refused.json["error"]["code"], "FAILED_PRECONDITION");
    // The limit is per owner.
    w.register("bob", &receiver.url("/bob"), None).await;
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_service_needs_a_principal_and_a_role_acting_for_users() {
    let w = World::start(|_| {}).await;
    let receiver = Receiver::start(&[]).await;
    let (id, _) = w.register("alice", &receiver.url("/"), None).await;
    let client = |token: &str, principal: Option<&str>| {
        let creds = Credentials::new(Some(token), principal);
        let url = w.ctx.url();
        async move { WebhookServiceClient::with_interceptor(clients::channel(&url).await, creds) }
    };
    let list = || ListWebhooksRequest::default();
    let mut edge = client(&w.ctx.edge_token, Some("alice")).await;
    let page = edge.list_webhooks(list()).await.unwrap().into_inner();
    assert_eq!(page.webhooks.len(), 1);
    assert_eq!(page.webhooks[0].owner, "alice");
    let mut ingest = client(&w.ctx.ingest_token, None).await;
    assert_eq!(
        ingest.list_webhooks(list()).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let mut admin = client(&w.ctx.token, None).await;
    assert_eq!(
        admin.list_webhooks(list()).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let mut alice = client(&w.ctx.token, Some("alice")).await;
    for name in ["", "webhooks/x", &id] {
        let status = alice
            .get_webhook(GetWebhookRequest { name: name.into() })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{name}");
    }
    for paths in [vec![], vec!["secret".to_owned()], vec!["owner".to_owned()]] {
        let status = alice
            .update_webhook(UpdateWebhookRequest {
                webhook: Some(Webhook {
                    name: format!("webhooks/{id}"),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: paths.clone(),
                }),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{paths:?}");
    }
    w.shutdown().await;
}
