//! Router tests through `tower::ServiceExt::oneshot`, over a control plane in the
//! test process: bearer tokens (missing, malformed, expired), the JSON error shapes,
//! and the stream routes answered through the fake upstream.

use std::net::SocketAddr;

use axum::{
    Router,
    body::Body,
    extract::connect_info::MockConnectInfo,
    http::{Request, StatusCode, header},
};
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::router;
use crate::fake_control_plane::{FakeControlPlane, SECRET, VIEWERS};

/// The router of an edge over `upstream`, its clients all at one loopback address.
fn app(upstream: &FakeControlPlane, args: &[&str]) -> Router {
    let (state, _trigger) = upstream.edge(args);
    router(state).layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))))
}

/// A bearer token for `sub` signed with `secret`, issued `age` seconds ago and
/// living `ttl` seconds from then.
fn token(secret: &str, sub: &str, age: i64, ttl: i64) -> String {
    let iat = chrono::Utc::now().timestamp() - age;
    let claims = json!({ "sub": sub, "iat": iat, "exp": iat + ttl });
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Sends `request`; returns the status, the `Retry-After` header and the JSON body.
async fn call(app: &Router, request: Request<Body>) -> (StatusCode, Option<String>, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let retry = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, retry, body)
}

fn get(uri: &str, bearer: Option<&str>) -> Request<Body> {
    let mut request = Request::get(uri);
    if let Some(value) = bearer {
        request = request.header(header::AUTHORIZATION, value);
    }
    request.body(Body::empty()).unwrap()
}

fn post_json(uri: &str, bearer: Option<&str>, body: &str) -> Request<Body> {
    let mut request = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(value) = bearer {
        request = request.header(header::AUTHORIZATION, value);
    }
    request.body(Body::from(body.to_owned())).unwrap()
}

fn error(code: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message } })
}

#[tokio::test]
async fn a_mutation_without_a_valid_bearer_token_is_401_with_the_json_error() {
    let upstream = FakeControlPlane::start().await;
    let app = app(&upstream, &[]);
    let body = r#"{"title":"t"}"#;
    let expired = format!("Bearer {}", token(SECRET, "alice", 7200, 3600));
    let foreign = format!(
        "Bearer {}",
        token("another-secret-0123456789abcdefghijkl", "alice", 0, 600)
    );
    for (bearer, message) in [
        (None, "this call needs `Authorization: Bearer <JWT>`"),
        (
            Some("Basic YWxpY2U6c2VjcmV0"),
            "the Authorization header must be `Bearer <JWT>`",
        ),
        (Some("Bearer not-a-jwt"), "malformed bearer token"),
        (Some(foreign.as_str()), "invalid bearer token"),
        (Some(expired.as_str()), "the bearer token has expired"),
    ] {
        let (status, _, got) = call(&app, post_json("/api/v1/streams", bearer, body)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bearer:?}");
        assert_eq!(got, error("UNAUTHENTICATED", message), "{bearer:?}");
    }
}

#[tokio::test]
async fn a_read_with_a_bad_bearer_token_is_refused_not_served_anonymously() {
    let upstream = FakeControlPlane::start().await;
    let id = upstream.add_stream("alice");
    let app = app(&upstream, &[]);
    let (status, _, got) = call(
        &app,
        get(&format!("/api/v1/streams/{id}"), Some("Bearer not-a-jwt")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(got, error("UNAUTHENTICATED", "malformed bearer token"));
}

#[tokio::test]
async fn bad_ids_bodies_and_routes_answer_the_json_error_shape() {
    let upstream = FakeControlPlane::start().await;
    let app = app(&upstream, &[]);
    let bearer = format!("Bearer {}", token(SECRET, "alice", 0, 600));

    let (status, _, got) = call(&app, get("/api/v1/streams/not-a-uuid", None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        got,
        error("INVALID_ARGUMENT", "id: must be a stream id (a UUID)")
    );

    let (status, _, got) = call(&app, get("/api/v1/no-such-thing", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(got, error("NOT_FOUND", "no such API route"));

    let (status, _, got) = call(&app, get("/api/v1/streams?status=sideways", None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        got,
        error(
            "INVALID_ARGUMENT",
            "status: must be live, active, pending, interrupted, completed or all"
        )
    );

    let (status, _, got) = call(
        &app,
        post_json(
            "/api/v1/streams",
            Some(&bearer),
            r#"{"title":"t","colour":1}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(got["error"]["code"], "INVALID_ARGUMENT");
    assert!(
        got["error"]["message"].as_str().unwrap().contains("colour"),
        "{got}"
    );

    let (status, _, got) = call(
        &app,
        post_json("/api/v1/streams", Some(&bearer), "{not json"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(got["error"]["code"], "INVALID_ARGUMENT");

    let (status, _, got) = call(
        &app,
        get(
            "/api/v1/streams/00000000-0000-0000-0000-000000000000/ws",
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UPGRADE_REQUIRED);
    assert_eq!(got["error"]["code"], "FAILED_PRECONDITION");
}

#[tokio::test]
async fn a_stream_the_control_plane_does_not_know_is_404() {
    let upstream = FakeControlPlane::start().await;
    let app = app(&upstream, &[]);
    let id = uuid::Uuid::new_v4();
    let (status, _, got) = call(&app, get(&format!("/api/v1/streams/{id}"), None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        got,
        error(
            "NOT_FOUND",
            &format!("stream {}{id} not found", nova_proto::STREAM_NAME_PREFIX)
        )
    );
}

#[tokio::test]
async fn a_stream_reads_through_the_control_plane_in_the_public_or_the_owners_view() {
    let upstream = FakeControlPlane::start().await;
    let id = upstream.add_stream("alice");
    let app = app(&upstream, &[]);
    let uri = format!("/api/v1/streams/{id}");

    let (status, _, public) = call(&app, get(&uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{public}");
    let stream = &public["stream"];
    assert_eq!(stream["id"], id.to_string());
    assert_eq!(stream["title"], "alice's stream");
    assert_eq!(stream["status"], "active");
    assert_eq!(stream["viewer_count"], VIEWERS);
    assert!(stream.get("owner").is_none(), "{public}");
    assert!(stream.get("ingest_node").is_none(), "{public}");

    let alice = format!("Bearer {}", token(SECRET, "alice", 0, 600));
    let (status, _, own) = call(&app, get(&uri, Some(&alice))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(own["stream"]["owner"], "alice");
    assert_eq!(own["stream"]["ingest_node"], "edge-node-1");

    let bob = format!("Bearer {}", token(SECRET, "bob", 0, 600));
    let (_, _, other) = call(&app, get(&uri, Some(&bob))).await;
    assert!(other["stream"].get("owner").is_none(), "{other}");
}

#[tokio::test]
async fn the_public_list_reads_through_the_control_plane_with_counts() {
    let upstream = FakeControlPlane::start().await;
    let id = upstream.add_stream("alice");
    let app = app(&upstream, &[]);

    let (status, _, list) = call(&app, get("/api/v1/streams", None)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["next_page_token"], "");
    let streams = list["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "{list}");
    assert_eq!(streams[0]["id"], id.to_string());
    assert_eq!(streams[0]["viewer_count"], VIEWERS);
    assert!(streams[0].get("owner").is_none(), "{list}");

    let (status, _, got) = call(&app, get("/api/v1/streams?owner=alice", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        got,
        error(
            "UNAUTHENTICATED",
            "listing by owner needs the owner's `Authorization: Bearer <JWT>`"
        )
    );
    let bob = format!("Bearer {}", token(SECRET, "bob", 0, 600));
    let (status, _, got) = call(&app, get("/api/v1/streams?owner=alice", Some(&bob))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        got,
        error(
            "PERMISSION_DENIED",
            "a token lists only its own streams by owner"
        )
    );
}

#[tokio::test]
async fn reads_over_the_clients_limit_are_429_with_retry_after() {
    let upstream = FakeControlPlane::start().await;
    // Ten a minute in bursts of one.
    let app = app(&upstream, &["--reads-per-minute", "10"]);
    let (status, _, _) = call(&app, get("/api/v1/streams/not-a-uuid", None)).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the first read is admitted"
    );
    let (status, retry, got) = call(&app, get("/api/v1/streams/not-a-uuid", None)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        got,
        error("RESOURCE_EXHAUSTED", "too many requests; slow down")
    );
    let retry: u64 = retry.expect("a Retry-After header").parse().unwrap();
    assert!((1..=6).contains(&retry), "{retry}");
}
