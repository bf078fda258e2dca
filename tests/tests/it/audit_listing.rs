//! The audit trail over gRPC (issue 14, item 3): ListAuditRecords is scoped to the
//! caller's own records, pages are stable newest-first keyset pages, a client address
//! is believed only from the edge, and a change whose record cannot be written rolls
//! back with it. REST and every mutation's record: `audit_trail.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use nova_proto::v1::{
    AuditAction, CreateStreamRequest, ListAuditRecordsRequest, Stream, UpdateStreamRequest,
    audit_service_client::AuditServiceClient,
};
use nova_tests::{
    TestContext,
    clients::{self, Credentials},
};
use tonic::{Code, Request, service::interceptor::InterceptedService, transport::Channel};

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

#[tokio::test(flavor = "multi_thread")]
async fn grpc_listing_is_owner_scoped_and_pages_are_stable() {
    let mut ctx = TestContext::start().await;
    let mut streams = clients::streams(&ctx.url(), Some(&ctx.token), Some("carol")).await;
    // An admin call's claimed client address is not believed: only the edge's is.
    let mut create = Request::new(CreateStreamRequest {
        stream: Some(Stream {
            title: "paged".into(),
            ..Default::default()
        }),
    });
    create
        .metadata_mut()
        .insert("x-nova-client-ip", "203.0.113.9".parse().unwrap());
    let stream = streams
        .create_stream(create)
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    for n in 0..11 {
        streams
            .update_stream(UpdateStreamRequest {
                stream: Some(Stream {
                    name: stream.name.clone(),
                    title: format!("title {n}"),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["title".into()],
                }),
            })
            .await
            .unwrap();
    }

    let mut carol = audit(&ctx, &ctx.token, Some("carol")).await;
    let whole = carol
        .list_audit_records(list(&stream.name, "", 100, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(whole.records.len(), 12);
    assert_eq!(whole.next_page_token, "");
    let created = whole.records.last().unwrap();
    assert_eq!(created.action(), AuditAction::StreamCreated);
    assert_eq!(
        (created.actor.as_str(), created.service.as_str()),
        ("carol", "admin")
    );
    assert_eq!(created.client_ip, "", "only the edge's address is believed");
    assert!(
        whole.records[..11]
            .iter()
            .all(|r| r.action() == AuditAction::StreamUpdated && r.fields == ["title"])
    );
    let key = |r: &nova_proto::v1::AuditRecord| {
        let t = r.create_time.unwrap();
        (t.seconds, t.nanos, r.id.clone())
    };
    assert!(
        whole.records.windows(2).all(|w| key(&w[0]) > key(&w[1])),
        "newest first, strictly"
    );

    // Pages of 5: 5 + 5 + 2, the same records in the same order, even with records
    // of other streams written between pages.
    let mut paged = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = carol
            .list_audit_records(list(&stream.name, "", 5, &token))
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        paged.extend(page.records);
        streams
            .create_stream(CreateStreamRequest {
                stream: Some(Stream {
                    title: format!("noise {pages}"),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(paged, whole.records);

    // A token is bound to its filters.
    let first = carol
        .list_audit_records(list(&stream.name, "", 5, ""))
        .await
        .unwrap()
        .into_inner();
    let err = carol
        .list_audit_records(list("", "carol", 5, &first.next_page_token))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());

    // Another owner sees none of it, by stream or by owner; the edge must name a user.
    let mut dave = audit(&ctx, &ctx.token, Some("dave")).await;
    for request in [list(&stream.name, "", 0, ""), list("", "carol", 0, "")] {
        let err = dave.list_audit_records(request).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{}", err.message());
    }
    let own = dave
        .list_audit_records(list("", "", 0, ""))
        .await
        .unwrap()
        .into_inner();
    assert!(own.records.is_empty());
    let mut edge_anonymous = audit(&ctx, &ctx.edge_token, None).await;
    let err = edge_anonymous
        .list_audit_records(list("", "", 0, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = carol
        .list_audit_records(list(
            "streams/00000000-0000-7000-8000-000000000000",
            "",
            0,
            "",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    ctx.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_whose_record_cannot_be_written_does_not_happen() {
    use diesel_async::RunQueryDsl;
    let mut ctx = TestContext::start().await;
    let mut erin = clients::streams(&ctx.url(), Some(&ctx.token), Some("erin")).await;
    let stream = erin
        .create_stream(CreateStreamRequest {
            stream: Some(Stream {
                title: "before".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    // From now on the database refuses every audit record of an update.
    let mut db = ctx.db().await;
    diesel::sql_query(
        "ALTER TABLE audit_records ADD CONSTRAINT no_updates CHECK (action <> 'stream_updated')",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let err = erin
        .update_stream(UpdateStreamRequest {
            stream: Some(Stream {
                name: stream.name.clone(),
                title: "after".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["title".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{}", err.message());
    let got = erin
        .get_stream(nova_proto::v1::GetStreamRequest {
            name: stream.name.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    assert_eq!(
        got.title, "before",
        "the change rolled back with its record"
    );
    let mut admin = audit(&ctx, &ctx.token, None).await;
    let records = admin
        .list_audit_records(list(&stream.name, "", 0, ""))
        .await
        .unwrap()
        .into_inner()
        .records;
    let actions: Vec<AuditAction> = records.iter().map(|r| r.action()).collect();
    assert_eq!(actions, vec![AuditAction::StreamCreated]);
    ctx.shutdown().await.unwrap();
}
