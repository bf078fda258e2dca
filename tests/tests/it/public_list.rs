//! The anonymous stream list (public view, one batched count call proven by the
//! control plane's per-method gRPC counters, a short cache),
//! BatchGetViewerCounts itself, forged bearer tokens, and titles with bidi controls.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header, encode};
use nova_proto::v1::{AuthorizePublishRequest, BatchGetViewerCountsRequest, JoinSessionRequest};
use nova_tests::{
    TestContext, clients,
    edge::{self, JWT_SECRET, call, jwt},
    figures,
};
use serde_json::{Value, json};

/// Creates a stream over REST as `owner`; returns its id and key.
async fn create(base: &str, owner: &str, title: &str) -> (String, String) {
    let created = call(
        "POST",
        &format!("{base}/api/v1/streams"),
        Some(&jwt(owner)),
        Some(&json!({ "title": title }).to_string()),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.json);
    (
        created.json["stream"]["id"].as_str().unwrap().to_owned(),
        created.json["stream_key"].as_str().unwrap().to_owned(),
    )
}

async fn go_live(ctx: &TestContext, key: &str) {
    clients::ingest(&ctx.url(), &ctx.ingest_token)
        .await
        .authorize_publish(AuthorizePublishRequest {
            stream_key: key.into(),
            client_addr: "127.0.0.1".into(),
            app: "live".into(),
            ingest_node: "ingest-secret-node".into(),
            origin_url: "http://127.0.0.1:8088".into(),
            abr: false,
            client_id: "1".into(),
            recording: false,
        })
        .await
        .expect("the stream goes live");
}

fn ids(list: &Value) -> Vec<&str> {
    list["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_anonymous_list_hides_pending_streams_owners_and_nodes_and_is_cached() {
    let ctx = TestContext::start().await;
    let mut config = edge::config(&ctx, "edge-list");
    config.list_cache = Duration::from_secs(3600); // long enough to observe, never waited for
    let e = nova_edge::start(&config).await.unwrap();
    let base = format!("http://{}", e.addr);
    let (live_id, live_key) = create(&base, "alice", "on air").await;
    let (pending_id, _) = create(&base, "alice", "not yet").await;
    go_live(&ctx, &live_key).await;

    let public = call(
        "GET",
        &format!("{base}/api/v1/streams?status=all"),
        None,
        None,
    )
    .await;
    assert_eq!(public.status, 200, "{:?}", public.json);
    assert_eq!(
        ids(&public.json),
        vec![live_id.as_str()],
        "no PENDING stream"
    );
    let shown = &public.json["streams"][0];
    assert!(
        shown.get("owner").is_none() && shown.get("ingest_node").is_none(),
        "{shown}"
    );
    assert_eq!(
        shown["viewer_count"], 0,
        "counts come from the batched call"
    );
    assert!(!public.json.to_string().contains("ingest-secret-node"));

    let single = call(
        "GET",
        &format!("{base}/api/v1/streams/{live_id}"),
        None,
        None,
    )
    .await;
    assert!(
        single.json["stream"].get("owner").is_none(),
        "{}",
        single.json
    );
    let own = call(
        "GET",
        &format!("{base}/api/v1/streams/{live_id}"),
        Some(&jwt("alice")),
        None,
    )
    .await;
    assert_eq!(own.json["stream"]["owner"], "alice");
    assert_eq!(own.json["stream"]["ingest_node"], "ingest-secret-node");

    for (query, bearer, status) in [
        ("status=pending", None, 401),
        ("owner=alice", None, 401),
        ("owner=alice", Some(jwt("bob")), 403),
        (
            "owner=alice&status=all",
            Some("forged.token.here".to_owned()),
            401,
        ),
    ] {
        let refused = call(
            "GET",
            &format!("{base}/api/v1/streams?{query}"),
            bearer.as_deref(),
            None,
        )
        .await;
        assert_eq!(refused.status, status, "{query}: {:?}", refused.json);
        assert!(refused.json["error"]["code"].is_string());
    }
    let mine = call(
        "GET",
        &format!("{base}/api/v1/streams?owner=alice&status=pending"),
        Some(&jwt("alice")),
        None,
    )
    .await;
    assert_eq!(ids(&mine.json), vec![pending_id.as_str()]);
    assert_eq!(mine.json["streams"][0]["owner"], "alice");

    // A viewer joins: the owner's (uncached) list shows it; the anonymous one is
    // the cached answer until it expires.
    clients::sessions(&ctx.url(), &ctx.token)
        .await
        .join_session(JoinSessionRequest {
            name: format!("streams/{live_id}"),
            viewer_id: "v1".into(),
            kind: 1,
            node: "edge-list".into(),
        })
        .await
        .unwrap();
    let fresh = call(
        "GET",
        &format!("{base}/api/v1/streams?owner=alice"),
        Some(&jwt("alice")),
        None,
    )
    .await;
    assert_eq!(fresh.json["streams"][0]["viewer_count"], 1);
    let cached = call(
        "GET",
        &format!("{base}/api/v1/streams?status=all"),
        None,
        None,
    )
    .await;
    assert_eq!(cached.json, public.json, "served from the cache");
    e.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_anonymous_list_counts_viewers_of_every_stream_in_one_batched_call() {
    const SINGLE: &str = "/nova.streaming.v1.SessionService/GetViewerCount";
    const BATCH: &str = "/nova.streaming.v1.SessionService/BatchGetViewerCounts";
    let ctx = TestContext::start().await;
    let mut config = edge::config(&ctx, "edge-batched");
    config.list_cache = Duration::from_secs(3600); // one miss, then never asked again
    let e = nova_edge::start(&config).await.unwrap();
    let base = format!("http://{}", e.addr);
    let mut live = Vec::new();
    for title in ["one", "two", "three", "four"] {
        let (id, key) = create(&base, "alice", title).await;
        go_live(&ctx, &key).await;
        live.push(id);
    }
    let (single, batch) = (
        figures::grpc_calls(&ctx, SINGLE).await,
        figures::grpc_calls(&ctx, BATCH).await,
    );
    let public = call(
        "GET",
        &format!("{base}/api/v1/streams?status=all"),
        None,
        None,
    )
    .await;
    assert_eq!(public.status, 200, "{:?}", public.json);
    let mut shown = ids(&public.json);
    shown.sort_unstable();
    live.sort_unstable();
    assert_eq!(shown, live, "every live stream is listed");
    assert!(
        public.json["streams"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["viewer_count"] == 0),
        "each stream carries its count: {}",
        public.json
    );
    assert_eq!(
        figures::grpc_calls(&ctx, SINGLE).await,
        single,
        "no GetViewerCount per stream"
    );
    assert_eq!(
        figures::grpc_calls(&ctx, BATCH).await,
        batch + 1,
        "exactly one BatchGetViewerCounts for the whole page"
    );
    e.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_get_viewer_counts_answers_in_order_in_one_call() {
    let ctx = TestContext::start().await;
    let e = edge::start(&ctx, "edge-batch").await;
    let base = format!("http://{}", e.addr);
    let (a, a_key) = create(&base, "alice", "a").await;
    let (b, b_key) = create(&base, "alice", "b").await;
    go_live(&ctx, &a_key).await;
    go_live(&ctx, &b_key).await;
    let mut sessions = clients::sessions(&ctx.url(), &ctx.token).await;
    for (stream, viewers) in [(&a, 2), (&b, 1)] {
        for v in 0..viewers {
            sessions
                .join_session(JoinSessionRequest {
                    name: format!("streams/{stream}"),
                    viewer_id: format!("v{v}"),
                    kind: 1,
                    node: "edge-batch".into(),
                })
                .await
                .unwrap();
        }
    }
    let ghost = format!("streams/{}", uuid::Uuid::now_v7());
    let names = vec![
        format!("streams/{b}"),
        ghost.clone(),
        format!("streams/{a}"),
    ];
    let counts = sessions
        .batch_get_viewer_counts(BatchGetViewerCountsRequest {
            names: names.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .viewer_counts;
    let got: Vec<(String, i64, i64)> = counts
        .into_iter()
        .map(|c| (c.name, c.viewer_count, c.peak_viewers))
        .collect();
    assert_eq!(
        got,
        vec![
            (names[0].clone(), 1, 1),
            (ghost, 0, 0),
            (names[2].clone(), 2, 2)
        ]
    );
    for bad in [vec!["nope".to_owned()], vec![format!("streams/{a}"); 1001]] {
        let err = sessions
            .batch_get_viewer_counts(BatchGetViewerCountsRequest { names: bad })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    }
    e.shutdown().await.unwrap();
}

fn token(claims: Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_token_claims_are_refused_and_titles_lose_bidi_controls() {
    let ctx = TestContext::start().await;
    let mut config = edge::config(&ctx, "edge-jwt");
    config.jwt_issuer = Some("https://id.example".into());
    config.jwt_audience = Some("nova".into());
    config.jwt_max_lifetime = Duration::from_secs(3600);
    let e = nova_edge::start(&config).await.unwrap();
    let url = format!("http://{}/api/v1/streams", e.addr);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let good = json!({ "sub": "alice", "iss": "https://id.example", "aud": "nova", "iat": now, "exp": now + 600 });
    let with = |changes: Value| {
        let mut claims = good.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        token(claims)
    };
    let body = Some(r#"{"title":"x"}"#);
    for (case, forged) in [
        ("not yet valid (nbf)", with(json!({ "nbf": now + 3600 }))),
        ("expired", with(json!({ "exp": now - 3600 }))),
        ("lives too long", with(json!({ "exp": now + 7200 }))),
        (
            "long without iat",
            with(json!({ "iat": null, "exp": now + 86_400 })),
        ),
        (
            "issued in the future",
            with(json!({ "iat": now + 3600, "exp": now + 4000 })),
        ),
        (
            "other issuer",
            with(json!({ "iss": "https://evil.example" })),
        ),
        ("no issuer", with(json!({ "iss": null }))),
        ("other audience", with(json!({ "aud": "someone-else" }))),
        ("no audience", with(json!({ "aud": null }))),
        ("no exp", with(json!({ "exp": null }))),
    ] {
        let refused = call("POST", &url, Some(&forged), body).await;
        assert_eq!(refused.status, 401, "{case}: {:?}", refused.json);
        assert_eq!(refused.json["error"]["code"], "UNAUTHENTICATED", "{case}");
    }
    let title = "Live \u{202E}gnp.exe\u{202C} \u{2066}show\u{2069}\u{200B}";
    let created = call(
        "POST",
        &url,
        Some(&with(json!({}))),
        Some(&json!({ "title": title }).to_string()),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.json);
    assert_eq!(created.json["stream"]["title"], "Live gnp.exe show");
    let control = call(
        "POST",
        &url,
        Some(&with(json!({}))),
        Some(&json!({ "title": "beep\u{1b}[2J" }).to_string()),
    )
    .await;
    assert_eq!(control.status, 400, "{:?}", control.json);
    e.shutdown().await.unwrap();
}
