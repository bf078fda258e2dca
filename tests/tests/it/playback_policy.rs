//! Playback policies (issue 13, item 1): `public` by default or `signed`, set at
//! creation and changed later by the owner, over gRPC (UpdateStream with a field
//! mask) and REST (`playback_policy`, `PATCH /api/v1/streams/{id}`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use nova_proto::v1::{
    CreateStreamRequest, EndStreamRequest, GetStreamRequest, PlaybackPolicy, Stream,
    UpdateStreamRequest,
};
use nova_tests::{
    TestContext, clients,
    edge::{self, call, jwt},
};
use tonic::Code;

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn policies_are_set_at_creation_and_changed_by_the_owner_over_grpc() {
    let mut ctx = TestContext::start().await;
    let mut alice = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await;
    let mut bob = clients::streams(&ctx.url(), Some(&ctx.token), Some("bob")).await;
    let create = |title: &str, policy: PlaybackPolicy| CreateStreamRequest {
        stream: Some(Stream {
            title: title.into(),
            playback_policy: policy.into(),
            ..Default::default()
        }),
    };
    let public = alice
        .create_stream(create("open", PlaybackPolicy::Unspecified))
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    assert_eq!(public.playback_policy(), PlaybackPolicy::Public);
    let signed = alice
        .create_stream(create("closed", PlaybackPolicy::Signed))
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    assert_eq!(signed.playback_policy(), PlaybackPolicy::Signed);
    let got = alice
        .get_stream(GetStreamRequest {
            name: signed.name.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    assert_eq!(got.playback_policy(), PlaybackPolicy::Signed);
    let bad = alice
        .create_stream(CreateStreamRequest {
            stream: Some(Stream {
                title: "x".into(),
                playback_policy: 7,
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        bad.message(),
        "stream.playback_policy: unknown playback policy 7"
    );

    let update =
        |name: &str, policy: PlaybackPolicy, title: &str, paths: &[&str]| UpdateStreamRequest {
            stream: Some(Stream {
                name: name.into(),
                title: title.into(),
                playback_policy: policy.into(),
                ..Default::default()
            }),
            update_mask: mask(paths),
        };
    // Only the masked fields change.
    let changed = alice
        .update_stream(update(
            &public.name,
            PlaybackPolicy::Signed,
            "ignored",
            &["playback_policy"],
        ))
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    assert_eq!(changed.playback_policy(), PlaybackPolicy::Signed);
    assert_eq!(changed.title, "open");
    let renamed = alice
        .update_stream(update(
            &public.name,
            PlaybackPolicy::Public,
            " renamed ",
            &["title"],
        ))
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    assert_eq!(renamed.title, "renamed");
    assert_eq!(renamed.playback_policy(), PlaybackPolicy::Signed);

    for (request, code, message) in [
        (
            update(&public.name, PlaybackPolicy::Public, "", &[]),
            Code::InvalidArgument,
            "update_mask: must name at least one field",
        ),
        (
            update(&public.name, PlaybackPolicy::Public, "", &["owner"]),
            Code::InvalidArgument,
            "update_mask: may name only title, playback_policy, max_viewers and record",
        ),
        (
            update(
                &public.name,
                PlaybackPolicy::Unspecified,
                "",
                &["playback_policy"],
            ),
            Code::InvalidArgument,
            "stream.playback_policy: must be PLAYBACK_POLICY_PUBLIC or PLAYBACK_POLICY_SIGNED",
        ),
        (
            update(
                &public.stream_id,
                PlaybackPolicy::Public,
                "",
                &["playback_policy"],
            ),
            Code::InvalidArgument,
            "stream.name: must look like streams/{stream_id}",
        ),
    ] {
        let err = alice.update_stream(request).await.unwrap_err();
        assert_eq!((err.code(), err.message()), (code, message));
    }
    let err = bob
        .update_stream(update(
            &public.name,
            PlaybackPolicy::Public,
            "",
            &["playback_policy"],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    alice
        .end_stream(EndStreamRequest {
            name: signed.name.clone(),
        })
        .await
        .unwrap();
    let err = alice
        .update_stream(update(
            &signed.name,
            PlaybackPolicy::Public,
            "",
            &["playback_policy"],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    ctx.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_sets_and_changes_the_policy_and_shows_it() {
    let mut ctx = TestContext::start().await;
    let e = edge::start(&ctx, "edge-a").await;
    let base = format!("http://{}/api/v1", e.addr);
    let alice = jwt("alice");

    let created = call(
        "POST",
        &format!("{base}/streams"),
        Some(&alice),
        Some(r#"{"title":"members","playback_policy":"signed"}"#),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.json);
    assert_eq!(created.json["stream"]["playback_policy"], "signed");
    let id = created.json["stream"]["id"].as_str().unwrap().to_owned();
    let plain = call(
        "POST",
        &format!("{base}/streams"),
        Some(&alice),
        Some(r#"{"title":"open"}"#),
    )
    .await;
    assert_eq!(plain.json["stream"]["playback_policy"], "public");
    let bad = call(
        "POST",
        &format!("{base}/streams"),
        Some(&alice),
        Some(r#"{"title":"x","playback_policy":"private"}"#),
    )
    .await;
    assert_eq!(bad.status, 422, "{:?}", bad.json);
    assert_eq!(bad.json["error"]["code"], "INVALID_ARGUMENT");

    let got = call("GET", &format!("{base}/streams/{id}"), None, None).await;
    assert_eq!(got.json["stream"]["playback_policy"], "signed");

    let url = format!("{base}/streams/{id}");
    let patched = call(
        "PATCH",
        &url,
        Some(&alice),
        Some(r#"{"playback_policy":"public"}"#),
    )
    .await;
    assert_eq!(patched.status, 200, "{:?}", patched.json);
    assert_eq!(patched.json["stream"]["playback_policy"], "public");
    assert_eq!(patched.json["stream"]["title"], "members");
    let retitled = call("PATCH", &url, Some(&alice), Some(r#"{"title":"all"}"#)).await;
    assert_eq!(retitled.json["stream"]["title"], "all");
    assert_eq!(retitled.json["stream"]["playback_policy"], "public");

    let null = call(
        "PATCH",
        &url,
        Some(&alice),
        Some(r#"{"playback_policy":null}"#),
    )
    .await;
    assert_eq!(null.status, 400, "{:?}", null.json);
    let empty = call("PATCH", &url, Some(&alice), Some("{}")).await;
    assert_eq!(empty.status, 400);
    assert_eq!(
        empty.json["error"]["message"],
        "body: name at least one of title, playback_policy, max_viewers, record"
    );
    let anonymous = call("PATCH", &url, None, Some(r#"{"title":"x"}"#)).await;
    assert_eq!(anonymous.status, 401);
    let bob = call(
        "PATCH",
        &url,
        Some(&jwt("bob")),
        Some(r#"{"playback_policy":"signed"}"#),
    )
    .await;
    assert_eq!(bob.status, 403);
    let got = call("GET", &url, None, None).await;
    assert_eq!(got.json["stream"]["playback_policy"], "public");
    e.shutdown().await.unwrap();
    ctx.shutdown().await.unwrap();
}
