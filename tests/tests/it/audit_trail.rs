//! The audit trail through the edge (issue 14, item 3): every mutation writes exactly
//! one record (who, through which service, from which client address, which fields,
//! never a secret); refused mutations and no-ops write none; only the owner lists a
//! stream's records. gRPC listing, paging and rollback: `audit_listing.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use nova_proto::v1::{
    AuditAction, ListAuditRecordsRequest, audit_service_client::AuditServiceClient,
};
use nova_tests::{
    TestContext,
    clients::{self, Credentials},
    edge::{self, call, call_with, jwt},
};
use serde_json::Value;
use tonic::{service::interceptor::InterceptedService, transport::Channel};

type Audit = AuditServiceClient<InterceptedService<Channel, Credentials>>;

async fn audit(ctx: &TestContext, token: &str, principal: Option<&str>) -> Audit {
    AuditServiceClient::with_interceptor(
        clients::channel(&ctx.url()).await,
        Credentials::new(Some(token), principal),
    )
}

fn list(stream: &str, owner: &str, page_size: i32, page_token: &str) -> ListAuditRecordsRequest {
    ListAuditRecordsRequest {
        stream: stream.into(),
        owner: owner.into(),
        page_size,
        page_token: page_token.into(),
    }
}

/// Returns (action, actor, service, client_ip, fields) of each REST record.
fn summary(records: &Value) -> Vec<(String, String, String, Value, Vec<String>)> {
    records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["actor"].as_str().unwrap().to_owned(),
                r["service"].as_str().unwrap().to_owned(),
                r["client_ip"].clone(),
                r["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rest_mutation_writes_one_record_with_actor_service_and_client_address() {
    let mut ctx = TestContext::start().await;
    let mut config = edge::config(&ctx, "edge-a");
    config.trusted_proxies = nova_edge::ratelimit::TrustedProxies::parse("127.0.0.1").unwrap();
    let e = nova_edge::start(&config).await.unwrap();
    let base = format!("http://{}/api/v1", e.addr);
    let (alice, bob) = (jwt("alice"), jwt("bob"));
    let from = [("x-forwarded-for", "198.51.100.23")];
    let send = |method: &'static str, path: String, bearer: String, body: Option<&'static str>| {
        let url = format!("{base}{path}");
        async move { call_with(method, &url, Some(&bearer), body, &from).await }
    };

    let created = send(
        "POST",
        "/streams".into(),
        alice.clone(),
        Some(r#"{"title":"audited","max_viewers":5}"#),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.json);
    let id = created.json["stream"]["id"].as_str().unwrap().to_owned();
    let first_key = created.json["stream_key"].as_str().unwrap().to_owned();
    let patched = send(
        "PATCH",
        format!("/streams/{id}"),
        alice.clone(),
        Some(r#"{"title":"renamed","playback_policy":"signed"}"#),
    )
    .await;
    assert_eq!(patched.status, 200, "{:?}", patched.json);
    let rotated = send(
        "POST",
        format!("/streams/{id}/rotate-key"),
        alice.clone(),
        None,
    )
    .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.json);
    let second_key = rotated.json["stream_key"].as_str().unwrap().to_owned();
    let token = send(
        "POST",
        format!("/streams/{id}/playback-tokens"),
        alice.clone(),
        None,
    )
    .await;
    assert_eq!(token.status, 201, "{:?}", token.json);
    let playback_token = token.json["token"].as_str().unwrap().to_owned();
    let key = send("POST", "/signing-keys".into(), alice.clone(), None).await;
    assert_eq!(key.status, 201, "{:?}", key.json);
    let pem = key.json["private_key_pem"].as_str().unwrap().to_owned();
    let key_id = key.json["signing_key"]["id"].as_str().unwrap().to_owned();
    let deleted = send(
        "DELETE",
        format!("/signing-keys/{key_id}"),
        alice.clone(),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204);

    // Refused mutations write nothing.
    let refused = send(
        "PATCH",
        format!("/streams/{id}"),
        bob.clone(),
        Some(r#"{"title":"mine now"}"#),
    )
    .await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        send(
            "POST",
            format!("/streams/{id}/rotate-key"),
            bob.clone(),
            None
        )
        .await
        .status,
        403
    );
    assert_eq!(
        send("DELETE", format!("/streams/{id}"), bob.clone(), None)
            .await
            .status,
        403
    );
    assert_eq!(
        send(
            "DELETE",
            format!("/signing-keys/{key_id}"),
            alice.clone(),
            None
        )
        .await
        .status,
        404
    );
    let empty_title = send(
        "PATCH",
        format!("/streams/{id}"),
        alice.clone(),
        Some(r#"{"title":"","max_viewers":3}"#),
    )
    .await;
    assert_eq!(empty_title.status, 400);

    let ended = send("DELETE", format!("/streams/{id}"), alice.clone(), None).await;
    assert_eq!(ended.status, 200);
    // Ending a completed stream changes nothing and writes nothing; changes to it are
    // refused and write nothing either.
    assert_eq!(
        send("DELETE", format!("/streams/{id}"), alice.clone(), None)
            .await
            .status,
        200
    );
    assert_ne!(
        send(
            "POST",
            format!("/streams/{id}/rotate-key"),
            alice.clone(),
            None
        )
        .await
        .status,
        200
    );

    let listed = call(
        "GET",
        &format!("{base}/streams/{id}/audit"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(listed.status, 200, "{:?}", listed.json);
    assert_eq!(listed.headers["cache-control"], "no-store");
    let ip = Value::from("198.51.100.23");
    let row = |action: &str, fields: &[&str]| {
        (
            action.to_owned(),
            "alice".to_owned(),
            "edge".to_owned(),
            ip.clone(),
            fields.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        summary(&listed.json["records"]),
        vec![
            row("stream_ended", &["status"]),
            row("stream_key_rotated", &["stream_key"]),
            row("stream_updated", &["title", "playback_policy"]),
            row(
                "stream_created",
                &["title", "playback_policy", "max_viewers"]
            ),
        ]
    );
    assert_eq!(listed.json["next_page_token"], "");
    for record in listed.json["records"].as_array().unwrap() {
        assert_eq!(record["stream_id"], id.as_str());
        assert_eq!(record["resource"], format!("streams/{id}"));
        assert_eq!(record["owner"], "alice");
    }

    // Signing keys are the owner's, not a stream's: the owner-wide listing has them.
    let mut admin = audit(&ctx, &ctx.token, None).await;
    let all = admin
        .list_audit_records(list("", "alice", 0, ""))
        .await
        .unwrap()
        .into_inner();
    let actions: Vec<AuditAction> = all.records.iter().map(|r| r.action()).collect();
    assert_eq!(
        actions,
        vec![
            AuditAction::StreamEnded,
            AuditAction::SigningKeyDeleted,
            AuditAction::SigningKeyCreated,
            AuditAction::StreamKeyRotated,
            AuditAction::StreamUpdated,
            AuditAction::StreamCreated,
        ]
    );
    for r in &all.records[1..3] {
        assert_eq!(r.resource, format!("signingKeys/{key_id}"));
        assert_eq!((r.stream.as_str(), r.stream_id.as_str()), ("", ""));
        assert_eq!((r.actor.as_str(), r.service.as_str()), ("alice", "edge"));
        assert_eq!(r.client_ip, "198.51.100.23");
        assert_eq!(r.fields, vec!["signing_key".to_owned()]);
    }

    // No secret appears anywhere in a listing.
    let serialized = format!("{:?}\n{}", all, listed.json);
    for secret in [
        first_key.as_str(),
        second_key.as_str(),
        playback_token.as_str(),
        pem.as_str(),
        alice.as_str(),
        ctx.token.as_str(),
        ctx.edge_token.as_str(),
        "sk_live_",
        "PRIVATE KEY",
    ] {
        assert!(!serialized.contains(secret), "a secret leaked: {secret}");
    }

    // Only the owner lists a stream's records.
    let other = call(
        "GET",
        &format!("{base}/streams/{id}/audit"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(other.status, 403, "{:?}", other.json);
    let anonymous = call("GET", &format!("{base}/streams/{id}/audit"), None, None).await;
    assert_eq!(anonymous.status, 401, "{:?}", anonymous.json);
    let bad = call(
        "GET",
        &format!("{base}/streams/{id}/audit?page_size=5000"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(bad.status, 400, "{:?}", bad.json);
    e.shutdown().await.unwrap();
    ctx.shutdown().await.unwrap();
}
