//! Playback tokens and signing keys (issue 13, item 2): tokens the platform signs for
//! a stream's owner (gRPC and REST), ES256 signing keys owners sign their own tokens
//! with (created with the private key shown once, listed, deleted), and the rules
//! verifiers read (every public key, the streams to check).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use nova_proto::v1::{
    CreatePlaybackTokenRequest, CreateStreamRequest, EndStreamRequest, GetPlaybackRulesRequest,
    GetPlaybackRulesResponse, PlaybackPolicy, Stream,
    playback_service_client::PlaybackServiceClient,
};
use nova_tests::{
    TestContext, clients,
    edge::{self, call, jwt},
};
use serde_json::Value;
use tonic::Code;

async fn playback(
    ctx: &TestContext,
    token: &str,
    principal: Option<&str>,
) -> PlaybackServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        clients::Credentials,
    >,
> {
    PlaybackServiceClient::with_interceptor(
        clients::channel(&ctx.url()).await,
        clients::Credentials::new(Some(token), principal),
    )
}

async fn rules(ctx: &TestContext) -> GetPlaybackRulesResponse {
    playback(ctx, &ctx.ingest_token, None)
        .await
        .get_playback_rules(GetPlaybackRulesRequest {})
        .await
        .unwrap()
        .into_inner()
}

fn decode(token: &str, point: &[u8]) -> Value {
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["nova-playback"]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_ec_der(point), &validation)
        .unwrap()
        .claims
}

#[tokio::test(flavor = "multi_thread")]
async fn the_platform_signs_tokens_for_the_owner_only_within_limits() {
    let mut ctx = TestContext::start().await;
    let mut streams = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await;
    let create = |policy: PlaybackPolicy| CreateStreamRequest {
        stream: Some(Stream {
            title: "t".into(),
            playback_policy: policy.into(),
            ..Default::default()
        }),
    };
    let signed = streams
        .create_stream(create(PlaybackPolicy::Signed))
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    let public = streams
        .create_stream(create(PlaybackPolicy::Public))
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    let mut alice = playback(&ctx, &ctx.edge_token, Some("alice")).await;
    let request = |ttl: Option<i64>, sid: &str| CreatePlaybackTokenRequest {
        name: signed.name.clone(),
        ttl: ttl.map(|seconds| prost_types::Duration { seconds, nanos: 0 }),
        session_id: sid.into(),
        ..Default::default()
    };
    let issued = alice
        .create_playback_token(request(None, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(issued.session_id.len(), 32, "a random session id");
    assert_eq!(issued.hls_url, "", "no origin before the stream went live");
    let header = jsonwebtoken::decode_header(&issued.token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    let kid = header.kid.unwrap();

    // The platform key is in the rules with no owner; the signed pending stream is
    // there with its owner, the public pending one is not.
    let r = rules(&ctx).await;
    let key = r.keys.iter().find(|k| k.key_id == kid).unwrap();
    assert_eq!(key.owner, "");
    let claims = decode(&issued.token, &key.public_key);
    assert_eq!(claims["sub"], signed.stream_id.as_str());
    assert_eq!(claims["sid"], issued.session_id.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(
        issued.expire_time.unwrap().seconds,
        claims["exp"].as_i64().unwrap()
    );
    let listed: Vec<_> = r.streams.iter().map(|s| s.stream_id.as_str()).collect();
    assert_eq!(listed, vec![signed.stream_id.as_str()]);
    assert_eq!(r.streams[0].owner, "alice");
    assert_eq!(r.streams[0].playback_policy(), PlaybackPolicy::Signed);

    let chosen = alice
        .create_playback_token(request(Some(60), "page-42"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(chosen.session_id, "page-42");
    let claims = decode(&chosen.token, &key.public_key);
    assert_eq!(claims["sid"], "page-42");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        60
    );
    let second = rules(&ctx).await;
    assert_eq!(second.keys.len(), 1, "one platform key, created once");

    for (req, message) in [
        (
            request(Some(86_401), ""),
            "ttl: must be between 1 second and 86400 seconds",
        ),
        (
            request(None, "a/b"),
            "session_id: must be 1 to 64 characters of A-Z a-z 0-9 _ -",
        ),
    ] {
        let err = alice.create_playback_token(req).await.unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (Code::InvalidArgument, message)
        );
    }
    let mut bob = playback(&ctx, &ctx.edge_token, Some("bob")).await;
    let err = bob
        .create_playback_token(request(None, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // The ingest role reads rules and nothing else; the edge role does not read them.
    let mut ingest = playback(&ctx, &ctx.ingest_token, None).await;
    let err = ingest
        .create_playback_token(request(None, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = playback(&ctx, &ctx.edge_token, None)
        .await
        .get_playback_rules(GetPlaybackRulesRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Public streams get tokens too (they count viewers); completed ones do not.
    let public_token = alice
        .create_playback_token(CreatePlaybackTokenRequest {
            name: public.name.clone(),
            ..Default::default()
        })
        .await;
    assert!(public_token.is_ok());
    streams
        .end_stream(EndStreamRequest {
            name: signed.name.clone(),
        })
        .await
        .unwrap();
    let err = alice
        .create_playback_token(request(None, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    // A signed stream stays in the rules for a while after it completed.
    assert_eq!(rules(&ctx).await.streams.len(), 1);
    ctx.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn owners_create_list_and_delete_signing_keys_over_rest() {
    let mut ctx = TestContext::start().await;
    let e = edge::start(&ctx, "edge-a").await;
    let base = format!("http://{}/api/v1", e.addr);
    let alice = jwt("alice");

    let created = call("POST", &format!("{base}/signing-keys"), Some(&alice), None).await;
    assert_eq!(created.status, 201, "{:?}", created.json);
    assert_eq!(created.headers["cache-control"], "no-store");
    let id = created.json["signing_key"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let private = created.json["private_key_pem"].as_str().unwrap().to_owned();
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let public = created.json["signing_key"]["public_key_pem"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));

    // A token signed with the private key verifies with the listed public key.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(id.clone());
    let now = chrono::Utc::now().timestamp();
    let token = jsonwebtoken::encode(
        &header,
        &serde_json::json!({"aud": "nova-playback", "sub": "x", "exp": now + 60}),
        &EncodingKey::from_ec_pem(private.as_bytes()).unwrap(),
    )
    .unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["nova-playback"]);
    jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_ec_pem(public.as_bytes()).unwrap(),
        &validation,
    )
    .unwrap();

    let listed = call("GET", &format!("{base}/signing-keys"), Some(&alice), None).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json["signing_keys"].as_array().unwrap().len(), 1);
    assert_eq!(listed.json["signing_keys"][0]["id"], id.as_str());
    assert_eq!(
        listed.json["signing_keys"][0]["public_key_pem"],
        public.as_str()
    );
    assert!(
        !listed.json.to_string().contains("PRIVATE"),
        "a private key is shown once"
    );
    let r = rules(&ctx).await;
    assert!(r.keys.iter().any(|k| k.key_id == id && k.owner == "alice"));

    let bob = jwt("bob");
    let theirs = call("GET", &format!("{base}/signing-keys"), Some(&bob), None).await;
    assert_eq!(theirs.json["signing_keys"].as_array().unwrap().len(), 0);
    let stolen = call(
        "DELETE",
        &format!("{base}/signing-keys/{id}"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(stolen.status, 404);
    assert_eq!(
        call("GET", &format!("{base}/signing-keys"), None, None)
            .await
            .status,
        401
    );
    let deleted = call(
        "DELETE",
        &format!("{base}/signing-keys/{id}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204);
    let again = call(
        "DELETE",
        &format!("{base}/signing-keys/{id}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(again.status, 404);
    assert!(!rules(&ctx).await.keys.iter().any(|k| k.key_id == id));
    let bad = call(
        "DELETE",
        &format!("{base}/signing-keys/signingKeys%2F{id}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(bad.status, 400);

    // At most 20 keys each.
    for _ in 0..20 {
        let r = call("POST", &format!("{base}/signing-keys"), Some(&alice), None).await;
        assert_eq!(r.status, 201);
    }
    let full = call("POST", &format!("{base}/signing-keys"), Some(&alice), None).await;
    assert_eq!(full.status, 400);
    assert_eq!(full.json["error"]["code"], "FAILED_PRECONDITION");

    // Tokens over REST: the owner gets one with its session id; others get 403.
    let stream = call(
        "POST",
        &format!("{base}/streams"),
        Some(&alice),
        Some(r#"{"title":"t","playback_policy":"signed"}"#),
    )
    .await;
    let sid = stream.json["stream"]["id"].as_str().unwrap().to_owned();
    let url = format!("{base}/streams/{sid}/playback-tokens");
    let issued = call(
        "POST",
        &url,
        Some(&alice),
        Some(r#"{"ttl_seconds":120,"session_id":"tab-1"}"#),
    )
    .await;
    assert_eq!(issued.status, 201, "{:?}", issued.json);
    assert_eq!(issued.headers["cache-control"], "no-store");
    assert_eq!(issued.json["session_id"], "tab-1");
    assert_eq!(issued.json["hls_url"], "");
    assert!(issued.json["expire_time"].is_string());
    let bare = call("POST", &url, Some(&alice), None).await;
    assert_eq!(bare.status, 201, "no body means every default");
    let theirs = call("POST", &url, Some(&bob), None).await;
    assert_eq!(theirs.status, 403);
    let garbage = call("POST", &url, Some(&alice), Some(r#"{"ttl":1}"#)).await;
    assert_eq!(garbage.status, 400);
    e.shutdown().await.unwrap();
    ctx.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_limit_holds_against_concurrent_creations() {
    let mut ctx = TestContext::start().await;
    let carol = playback(&ctx, &ctx.token, Some("carol")).await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..25 {
        let mut client = carol.clone();
        calls.spawn(async move {
            client
                .create_signing_key(nova_proto::v1::CreateSigningKeyRequest {})
                .await
                .map(|_| ())
                .map_err(|status| status.code())
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = calls.join_next().await {
        answers.push(answer.unwrap());
    }
    let created = answers.iter().filter(|a| a.is_ok()).count();
    let refused = answers
        .iter()
        .filter(|a| **a == Err(Code::FailedPrecondition))
        .count();
    assert_eq!((created, refused), (20, 5), "{answers:?}");
    let listed = carol
        .clone()
        .list_signing_keys(nova_proto::v1::ListSigningKeysRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.signing_keys.len(), 20);
    ctx.shutdown().await.unwrap();
}
