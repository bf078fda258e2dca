//! Service tokens and principals: who may call, and who may change a stream.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use nova_proto::v1::{
    CreateStreamRequest, EndStreamRequest, GetStreamRequest, ListStreamsRequest,
    RotateStreamKeyRequest, Stream,
};
use nova_tests::{TestContext, clients};
use tonic::Code;

fn create(title: &str) -> CreateStreamRequest {
    CreateStreamRequest {
        stream: Some(Stream {
            title: title.into(),
            ..Default::default()
        }),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_without_a_valid_token_are_unauthenticated() {
    let ctx = TestContext::start().await;
    let mut anonymous = clients::streams(&ctx.url(), None, Some("alice")).await;
    let err = anonymous
        .list_streams(ListStreamsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let wrong = "wrong-token-but-long-enough";
    let mut impostor = clients::streams(&ctx.url(), Some(wrong), Some("alice")).await;
    let err = impostor.create_stream(create("x")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(!err.message().contains(wrong), "the error echoes the token");
}

#[tokio::test(flavor = "multi_thread")]
async fn mutations_need_a_principal_and_only_the_owner_may_change_a_stream() {
    let ctx = TestContext::start().await;
    let mut service = clients::streams(&ctx.url(), Some(&ctx.token), None).await;
    let err = service
        .create_stream(create("no principal"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        err.message().contains("x-nova-principal"),
        "{}",
        err.message()
    );

    let mut alice = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await;
    let mut bob = clients::streams(&ctx.url(), Some(&ctx.token), Some("bob")).await;
    let name = alice
        .create_stream(create("alice's"))
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap()
        .name;

    // Reads are open to any authenticated caller.
    bob.get_stream(GetStreamRequest { name: name.clone() })
        .await
        .unwrap();
    service
        .get_stream(GetStreamRequest { name: name.clone() })
        .await
        .unwrap();

    let err = bob
        .end_stream(EndStreamRequest { name: name.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = bob
        .rotate_stream_key(RotateStreamKeyRequest { name: name.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = service
        .end_stream(EndStreamRequest { name: name.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // Nothing changed.
    let stream = alice
        .get_stream(GetStreamRequest { name })
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    assert_eq!(stream.status(), nova_proto::v1::StreamStatus::Pending);

    let mut shady = clients::streams(&ctx.url(), Some(&ctx.token), Some("bad principal")).await;
    let err = shady.create_stream(create("x")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("x-nova-principal: "),
        "{}",
        err.message()
    );
}
