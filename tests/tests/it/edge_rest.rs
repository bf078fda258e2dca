//! The edge's REST API with a real control plane: JWT-guarded mutations, public
//! reads, grpc-gateway error mapping, body limits, CORS, rate limits.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use nova_tests::{
    TestContext,
    edge::{self, call, call_with, jwt},
};

#[tokio::test(flavor = "multi_thread")]
async fn streams_can_be_created_read_listed_rotated_and_ended_over_rest() {
    let ctx = TestContext::start().await;
    let e = edge::start(&ctx, "edge-a").await;
    let base = format!("http://{}/api/v1", e.addr);
    let alice = jwt("alice");

    let created = call(
        "POST",
        &format!("{base}/streams"),
        Some(&alice),
        Some(r#"{"title":"REST show"}"#),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.json);
    assert_eq!(created.headers["cache-control"], "no-store");
    let id = created.json["stream"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created.headers["location"], format!("/api/v1/streams/{id}"));
    assert!(
        created.json["stream_key"]
            .as_str()
            .unwrap()
            .starts_with("sk_live_")
    );
    assert_eq!(created.json["stream"]["owner"], "alice");
    assert_eq!(created.json["stream"]["status"], "pending");

    let got = call("GET", &format!("{base}/streams/{id}"), None, None).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json["stream"]["title"], "REST show");
    assert_eq!(got.json["stream"]["viewer_count"], 0);
    assert!(
        got.json.to_string().find("sk_live_").is_none(),
        "reads never carry a key"
    );

    // Live streams by default: a pending one is not listed; its owner sees it.
    let live = call("GET", &format!("{base}/streams"), None, None).await;
    assert_eq!(live.json["streams"].as_array().unwrap().len(), 0);
    let all = call(
        "GET",
        &format!("{base}/streams?status=all&owner=alice"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(all.json["streams"][0]["id"], id.as_str());

    let rotated = call(
        "POST",
        &format!("{base}/streams/{id}/rotate-key"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(rotated.status, 200);
    assert_ne!(rotated.json["stream_key"], created.json["stream_key"]);

    let metrics = call("GET", &format!("{base}/streams/{id}/metrics"), None, None).await;
    assert_eq!(metrics.status, 200, "{:?}", metrics.json);
    assert_eq!(metrics.json["summary"]["peak_viewers"], 0);

    let forbidden = call(
        "DELETE",
        &format!("{base}/streams/{id}"),
        Some(&jwt("mallory")),
        None,
    )
    .await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.json["error"]["code"], "PERMISSION_DENIED");
    let ended = call(
        "DELETE",
        &format!("{base}/streams/{id}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(ended.status, 200);
    assert_eq!(ended.json["stream"]["status"], "completed");
    e.shutdown().await.unwrap();
}

/// One bad request: method, path under /api/v1, bearer, body, status, error code.
type Case<'a> = (
    &'a str,
    String,
    Option<&'a str>,
    Option<&'a str>,
    u16,
    &'a str,
);

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_json_errors_with_the_right_status() {
    let ctx = TestContext::start().await;
    let e = edge::start(&ctx, "edge-a").await;
    let base = format!("http://{}/api/v1", e.addr);
    let alice = jwt("alice");
    let other_secret =
        nova_stack::jwt::mint_hs256("another-secret-0123456789abcdef01", "alice", 60).unwrap();
    let long_title = format!(r#"{{"title":"{}"}}"#, "x".repeat(20_000));
    let ghost = uuid::Uuid::now_v7();
    let x = Some(r#"{"title":"x"}"#);
    let (me, invalid) = (Some(alice.as_str()), "INVALID_ARGUMENT");
    let table: Vec<Case> = vec![
        ("POST", "/streams".into(), None, x, 401, "UNAUTHENTICATED"),
        (
            "POST",
            "/streams".into(),
            Some("not.a.jwt"),
            x,
            401,
            "UNAUTHENTICATED",
        ),
        (
            "POST",
            "/streams".into(),
            Some(&other_secret),
            x,
            401,
            "UNAUTHENTICATED",
        ),
        (
            "POST",
            "/streams".into(),
            me,
            Some(r#"{"title":""}"#),
            400,
            invalid,
        ),
        (
            "POST",
            "/streams".into(),
            me,
            Some("{not json"),
            400,
            invalid,
        ),
        (
            "POST",
            "/streams".into(),
            me,
            Some(r#"{"title":"x","extra":1}"#),
            422,
            invalid,
        ),
        (
            "POST",
            "/streams".into(),
            me,
            Some(&long_title),
            413,
            invalid,
        ),
        ("POST", "/streams".into(), me, None, 415, invalid),
        (
            "GET",
            "/streams/not-a-uuid".into(),
            None,
            None,
            400,
            invalid,
        ),
        (
            "GET",
            format!("/streams/{ghost}"),
            None,
            None,
            404,
            "NOT_FOUND",
        ),
        (
            "GET",
            "/streams?status=sleeping".into(),
            None,
            None,
            400,
            invalid,
        ),
        (
            "GET",
            "/streams?page_token=garbage".into(),
            None,
            None,
            400,
            invalid,
        ),
        (
            "GET",
            "/streams?page_size=ten".into(),
            None,
            None,
            400,
            invalid,
        ),
        (
            "GET",
            format!("/streams/{ghost}/metrics?step=often"),
            None,
            None,
            400,
            invalid,
        ),
        ("GET", "/nothing-here".into(), None, None, 404, "NOT_FOUND"),
        (
            "GET",
            format!("/streams/{ghost}/ws?viewer="),
            None,
            None,
            400,
            invalid,
        ),
        (
            "GET",
            format!("/streams/{ghost}/ws"),
            None,
            None,
            426,
            "FAILED_PRECONDITION",
        ),
    ];
    let mut replies = Vec::new();
    for (i, (method, path, bearer, body, status, code)) in table.into_iter().enumerate() {
        let reply = call(method, &format!("{base}{path}"), bearer, body).await;
        assert_eq!(
            reply.status, status,
            "case {i} {method} {path}: {:?}",
            reply.json
        );
        assert_eq!(
            reply.json["error"]["code"], code,
            "case {i}: {:?}",
            reply.json
        );
        assert!(
            reply.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "case {i}"
        );
        replies.push(reply);
    }
    let not_websocket = replies.last().unwrap();
    assert_eq!(not_websocket.headers["upgrade"], "websocket");
    assert_eq!(not_websocket.headers["sec-websocket-version"], "13");
    let title = call(
        "POST",
        &format!("{base}/streams"),
        Some(&alice),
        Some(r#"{"title":""}"#),
    )
    .await;
    assert_eq!(
        title.json["error"]["message"],
        "stream.title: must not be empty"
    );
    e.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn mutations_are_rate_limited_per_address_and_cors_preflights_pass() {
    let ctx = TestContext::start().await;
    let mut config = edge::config(&ctx, "edge-a");
    config.mutations_per_minute = 3;
    let e = nova_edge::start(&config).await.unwrap();
    let url = format!("http://{}/api/v1/streams", e.addr);
    let alice = jwt("alice");
    for _ in 0..3 {
        assert_eq!(
            call("POST", &url, Some(&alice), Some(r#"{"title":"x"}"#))
                .await
                .status,
            201
        );
    }
    let limited = call("POST", &url, Some(&alice), Some(r#"{"title":"x"}"#)).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.json["error"]["code"], "RESOURCE_EXHAUSTED");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    // Reads are not limited, and a caller without a token learns that first.
    assert_eq!(call("GET", &url, None, None).await.status, 200);
    assert_eq!(
        call("POST", &url, None, Some(r#"{"title":"x"}"#))
            .await
            .status,
        401
    );

    let answer = nova_tests::http::client()
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://viewer.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
    assert_eq!(answer.headers()["access-control-allow-origin"], "*");

    // Without trusted proxies a forged X-Forwarded-For does not buy a fresh bucket.
    let forged = call_with(
        "POST",
        &url,
        Some(&alice),
        Some(r#"{"title":"x"}"#),
        &[("x-forwarded-for", "198.51.100.1")],
    )
    .await;
    assert_eq!(forged.status, 429, "X-Forwarded-For from an untrusted peer");
    e.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
    let ctx = TestContext::start().await;
    let mut config = edge::config(&ctx, "edge-a");
    config.mutations_per_minute = 2;
    config.trusted_proxies = nova_edge::ratelimit::TrustedProxies::parse("127.0.0.0/8").unwrap();
    let e = nova_edge::start(&config).await.unwrap();
    let url = format!("http://{}/api/v1/streams", e.addr);
    let alice = jwt("alice");
    let post = |client: &'static str| {
        let (url, alice) = (url.clone(), alice.clone());
        async move {
            call_with(
                "POST",
                &url,
                Some(&alice),
                Some(r#"{"title":"x"}"#),
                &[("x-forwarded-for", client)],
            )
            .await
            .status
        }
    };
    assert_eq!(post("198.51.100.1").await, 201);
    assert_eq!(post("198.51.100.1").await, 201);
    assert_eq!(post("198.51.100.1").await, 429, "client 1 used its two");
    assert_eq!(
        post("198.51.100.2").await,
        201,
        "client 2 has a bucket of its own"
    );
    assert_eq!(
        post("198.51.100.1, 203.0.113.9").await,
        201,
        "the right-most untrusted hop is the client, not what it claims before it"
    );
    e.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_can_move_off_the_public_listener() {
    let ctx = TestContext::start().await;
    let mut config = edge::config(&ctx, "edge-a");
    config.metrics_addr = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let e = nova_edge::start(&config).await.unwrap();
    let private = e.metrics_addr.expect("a private metrics listener");
    let scraped = nova_tests::http::get(&format!("http://{private}/metrics"))
        .await
        .unwrap();
    assert_eq!(scraped.status, 200);
    assert!(
        scraped
            .text()
            .contains("nova_streaming_websocket_connections"),
        "{}",
        scraped.text()
    );
    let public = call("GET", &format!("http://{}/metrics", e.addr), None, None).await;
    assert_eq!(public.status, 404);
    assert_eq!(public.json["error"]["code"], "NOT_FOUND");
    e.shutdown().await.unwrap();
}

/// Anonymous reads of one stream share a short cache (`NOVA_STREAM_CACHE`); the owner
/// always reads through, so a change is visible to them at once.
#[tokio::test(flavor = "multi_thread")]
async fn anonymous_stream_reads_are_cached_and_the_owner_reads_through() {
    let ctx = TestContext::start().await;
    let mut config = edge::config(&ctx, "edge-cache");
    config.stream_cache = std::time::Duration::from_secs(600);
    let e = nova_edge::start(&config).await.unwrap();
    let base = format!("http://{}/api/v1", e.addr);
    let alice = jwt("alice");
    let created = call(
        "POST",
        &format!("{base}/streams"),
        Some(&alice),
        Some(r#"{"title":"before"}"#),
    )
    .await;
    let id = created.json["stream"]["id"].as_str().unwrap().to_owned();
    let url = format!("{base}/streams/{id}");

    let anonymous = call("GET", &url, None, None).await;
    assert_eq!(anonymous.json["stream"]["title"], "before");
    assert!(
        anonymous.json["stream"].get("owner").is_none(),
        "public view"
    );
    let renamed = call("PATCH", &url, Some(&alice), Some(r#"{"title":"after"}"#)).await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.json);

    let owner = call("GET", &url, Some(&alice), None).await;
    assert_eq!(
        owner.json["stream"]["title"], "after",
        "the owner reads through"
    );
    assert_eq!(owner.json["stream"]["owner"], "alice");
    let cached = call("GET", &url, None, None).await;
    assert_eq!(
        cached.json["stream"]["title"], "before",
        "anonymous reads are cached"
    );
    let other = call("GET", &url, Some(&jwt("mallory")), None).await;
    assert_eq!(other.json["stream"]["title"], "after");
    assert!(
        other.json["stream"].get("owner").is_none(),
        "not the owner: public view"
    );
}
