//! Recording rules over gRPC and PostgreSQL, without nginx (as ingest-hooks and the
//! remux worker see them): `record` on streams, pieces handed over, an asset whose
//! pieces never come, retention, and a deployment without an asset store.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use diesel_async::RunQueryDsl;
use nova_proto::v1::{
    AssetStatus, AuditAction, AuthorizePublishRequest, CreateStreamRequest, EndStreamRequest,
    GetAssetRequest, ListAuditRecordsRequest, PublishEndedRequest, ReportRecordingRequest, Stream,
    UpdateStreamRequest, audit_service_client::AuditServiceClient,
};
use nova_tests::{
    TestContext,
    clients::{self, Credentials},
    events, vod, wait,
};
use tonic::Code;

/// Creates a stream of `alice` (`record` as given); returns it and its key.
async fn create(ctx: &TestContext, record: bool) -> Result<(Stream, String), tonic::Status> {
    let created = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice"))
        .await
        .create_stream(CreateStreamRequest {
            stream: Some(Stream {
                title: "recorded".into(),
                record,
                ..Default::default()
            }),
        })
        .await?
        .into_inner();
    Ok((created.stream.unwrap(), created.stream_key))
}

/// Publishes with `key` from a node that records, then leaves.
async fn publish_once(ctx: &TestContext, key: &str) {
    let mut ingest = clients::ingest(&ctx.url(), &ctx.ingest_token).await;
    ingest
        .authorize_publish(AuthorizePublishRequest {
            stream_key: key.into(),
            ingest_node: "ingest-rec".into(),
            origin_url: "http://127.0.0.1:8088".into(),
            client_id: "7".into(),
            recording: true,
            ..Default::default()
        })
        .await
        .expect("the publish is accepted");
    ingest
        .publish_ended(PublishEndedRequest {
            stream_key: key.into(),
            ingest_node: "ingest-rec".into(),
            client_id: "7".into(),
        })
        .await
        .expect("the broadcaster leaves");
}

fn piece(name: &str, key: &str) -> ReportRecordingRequest {
    ReportRecordingRequest {
        name: name.into(),
        ingest_node: "ingest-rec".into(),
        object_key: key.into(),
        size_bytes: 512,
        start_time: Some(prost_types::Timestamp {
            seconds: 1_764_000_000,
            nanos: 0,
        }),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn recording_flag_pieces_and_an_asset_whose_pieces_never_come() {
    let ctx = TestContext::start_with(|c| c.recording_wait = Duration::from_secs(1)).await;
    let (stream, key) = create(&ctx, true).await.unwrap();
    assert!(stream.record);
    let mut streams = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await;
    let off = streams
        .update_stream(UpdateStreamRequest {
            stream: Some(Stream {
                name: stream.name.clone(),
                record: false,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["record".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    assert!(!off.record);
    let mut update = UpdateStreamRequest {
        stream: Some(Stream {
            name: stream.name.clone(),
            record: true,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["record".into()],
        }),
    };
    assert!(
        streams
            .update_stream(update.clone())
            .await
            .unwrap()
            .into_inner()
            .stream
            .unwrap()
            .record
    );

    // A piece before any recorded publish: no asset wants it.
    let mut ingest = clients::ingest(&ctx.url(), &ctx.ingest_token).await;
    let key_of = |n: &str| format!("recordings/{}/{n}.flv", stream.stream_id);
    let early = ingest
        .report_recording(piece(&stream.name, &key_of("n_1_c1")))
        .await
        .unwrap();
    assert!(!early.into_inner().accepted);
    // Keys outside the stream's folder, or not plain names, are refused.
    for bad in [
        format!("recordings/{}/x.flv", uuid::Uuid::now_v7()),
        format!("recordings/{}/../x.flv", stream.stream_id),
        format!("assets/{}/x.flv", stream.stream_id),
        key_of("a b"),
    ] {
        let err = ingest
            .report_recording(piece(&stream.name, &bad))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
    }
    // The edge may not hand pieces over.
    let mut edge_ingest = clients::ingest(&ctx.url(), &ctx.edge_token).await;
    let denied = edge_ingest
        .report_recording(piece(&stream.name, &key_of("n_1_c1")))
        .await;
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);

    // Two recorded publishes; one piece arrives (twice: counted once).
    publish_once(&ctx, &key).await;
    publish_once(&ctx, &key).await;
    for _ in 0..2 {
        let taken = ingest
            .report_recording(piece(&stream.name, &key_of("n_1_c7")))
            .await
            .unwrap();
        assert!(taken.into_inner().accepted);
    }
    let assets = vod::list_in(&ctx, &stream.name).await;
    assert_eq!(assets.len(), 1);
    assert_eq!(assets[0].status(), AssetStatus::Preparing);
    assert!(assets[0].playback.is_none());

    // The stream ends; the second piece never comes; after NOVA_RECORDING_WAIT the
    // worker remuxes what it has: half a KiB, no media, so the asset is ERRORED.
    streams
        .end_stream(EndStreamRequest {
            name: stream.name.clone(),
        })
        .await
        .unwrap();
    let errored = wait::until("the asset to error", Duration::from_secs(30), || async {
        let assets = vod::list_in(&ctx, &stream.name).await;
        match <[_]>::first(&assets) {
            Some(a) if a.status() == AssetStatus::Errored => Ok(a.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(errored.error_reason, "the recording is empty");
    let mut db = ctx.db().await;
    let logged = events::of_stream(&mut db, &stream.stream_id).await;
    let last = logged.last().unwrap();
    assert_eq!(last.kind, "asset_errored");
    assert!(last.payload.contains(&errored.asset_id), "{last:?}");
    // The piece it did get is deleted with the failure.
    assert!(
        !vod::files_under(&ctx.assets_dir.path().join("store"))
            .iter()
            .any(|f| f.starts_with("recordings/"))
    );

    // A completed stream's setting cannot change any more.
    update.stream.as_mut().unwrap().record = false;
    assert_eq!(
        streams.update_stream(update).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    // Only the owner reads an asset.
    let other = vod::assets(&ctx.url(), &ctx.token, Some("mallory"))
        .await
        .get_asset(GetAssetRequest {
            name: errored.name.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread")]
async fn recording_retention_deletes_old_assets_with_an_audit_record() {
    let ctx =
        TestContext::start_with(|c| c.asset_retention = Some(Duration::from_secs(3600))).await;
    let (stream, _) = create(&ctx, true).await.unwrap();
    let store = ctx.assets_dir.path().join("store");
    let mut db = ctx.db().await;
    let mut ids = Vec::new();
    for age_hours in [2, 0] {
        let (id, version) = (uuid::Uuid::now_v7(), uuid::Uuid::new_v4());
        let prefix = format!("assets/{id}/{version}");
        std::fs::create_dir_all(store.join(&prefix)).unwrap();
        std::fs::write(store.join(&prefix).join("index.m3u8"), "#EXTM3U\n").unwrap();
        diesel::sql_query(format!(
            "INSERT INTO assets (id, stream_id, status, prefix, duration_ms, size_bytes, created_at, ready_at) \
             VALUES ('{id}', '{}', 'ready', '{prefix}', 1000, 8, now() - interval '{age_hours} hours', now())",
            stream.stream_id
        ))
        .execute(&mut db)
        .await
        .unwrap();
        ids.push(id);
    }
    let (old, fresh) = (ids[0], ids[1]);
    wait::until(
        "the old asset to expire",
        Duration::from_secs(30),
        || async {
            let listed = vod::list_in(&ctx, &stream.name).await;
            if listed.len() == 1 {
                Ok(())
            } else {
                Err(listed.len())
            }
        },
    )
    .await;
    let listed = vod::list_in(&ctx, &stream.name).await;
    assert_eq!(listed[0].asset_id, fresh.to_string());
    let files = vod::files_under(&store);
    assert!(
        files
            .iter()
            .all(|f| f.starts_with(&format!("assets/{fresh}/"))),
        "{files:?}"
    );
    assert!(!files.is_empty());
    let records = AuditServiceClient::with_interceptor(
        clients::channel(&ctx.url()).await,
        Credentials::new(Some(&ctx.token), Some("alice")),
    )
    .list_audit_records(ListAuditRecordsRequest {
        stream: stream.name.clone(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .records;
    let expired = records
        .iter()
        .find(|r| r.action() == AuditAction::AssetExpired)
        .expect("an asset_expired record");
    assert_eq!(expired.resource, format!("assets/{old}"));
    assert_eq!(
        (expired.actor.as_str(), expired.service.as_str()),
        ("nova", "system")
    );
    assert_eq!(expired.owner, "alice");
}

#[tokio::test(flavor = "multi_thread")]
async fn recording_needs_an_asset_store() {
    let ctx = TestContext::start_with(|c| c.store = Default::default()).await;
    let refused = create(&ctx, true).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("NOVA_ASSET_STORE"),
        "{refused:?}"
    );
    let (plain, _) = create(&ctx, false).await.unwrap();
    assert!(!plain.record);
}
