//! StreamService against a real PostgreSQL: create, get, list, end, rotate, and
//! every bad input named.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use diesel::sql_types::{Bytea, Text};
use diesel_async::RunQueryDsl;
use nova_proto::v1::{
    CreateStreamRequest, EndStreamRequest, GetStreamRequest, ListStreamsRequest,
    RotateStreamKeyRequest, Stream, StreamStatus,
};
use nova_tests::{TestContext, clients};
use sha2::{Digest, Sha256};
use tonic::Code;
use tonic_types::StatusExt;

fn create(title: &str) -> CreateStreamRequest {
    CreateStreamRequest {
        stream: Some(Stream {
            title: title.into(),
            ..Default::default()
        }),
    }
}

fn field_of(status: &tonic::Status) -> String {
    let details = status.get_error_details();
    let bad = details.bad_request().expect("BadRequest details");
    bad.field_violations[0].field.clone()
}

#[derive(diesel::QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = Bytea)]
    key_hash: Vec<u8>,
    #[diesel(sql_type = Text)]
    row_json: String,
}

async fn stored_key(ctx: &TestContext, stream_id: &str) -> KeyRow {
    let mut db = ctx.db().await;
    diesel::sql_query(
        "SELECT key_hash, row_to_json(s)::text AS row_json FROM streams s WHERE id = $1::uuid",
    )
    .bind::<Text, _>(stream_id)
    .get_result(&mut db)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn create_get_end_round_trip_keeps_only_the_key_hash() {
    let ctx = TestContext::start().await;
    let mut alice = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await;

    let created = alice
        .create_stream(create("  Morning show  "))
        .await
        .unwrap()
        .into_inner();
    let stream = created.stream.unwrap();
    assert!(created.stream_key.starts_with("sk_live_"), "key prefix");
    assert_eq!(created.stream_key.len(), "sk_live_".len() + 43);
    assert_eq!(created.ingest_url, "rtmp://127.0.0.1:1935/live");
    assert_eq!(stream.title, "Morning show");
    assert_eq!(stream.owner, "alice");
    assert_eq!(stream.status(), StreamStatus::Pending);
    assert_eq!(stream.name, format!("streams/{}", stream.stream_id));
    assert!(stream.create_time.is_some() && stream.start_time.is_none());

    let stored = stored_key(&ctx, &stream.stream_id).await;
    assert_eq!(
        stored.key_hash,
        Sha256::digest(created.stream_key.as_bytes()).to_vec()
    );
    assert!(
        !stored.row_json.contains(&created.stream_key),
        "plain key stored"
    );

    let got = alice
        .get_stream(GetStreamRequest {
            name: stream.name.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    assert_eq!(got, stream);

    let ended = alice
        .end_stream(EndStreamRequest {
            name: stream.name.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    assert_eq!(ended.status(), StreamStatus::Completed);
    assert!(ended.end_time.is_some());

    // Ending again is a no-op returning the same stream.
    let again = alice
        .end_stream(EndStreamRequest {
            name: stream.name.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    assert_eq!(again, ended);

    #[derive(diesel::QueryableByName)]
    struct Event {
        #[diesel(sql_type = Text)]
        kind: String,
        #[diesel(sql_type = Text)]
        payload: String,
    }
    let mut db = ctx.db().await;
    let events: Vec<Event> = diesel::sql_query(
        "SELECT kind, payload::text AS payload FROM stream_events \
         WHERE stream_id = $1::uuid AND kind <> 'stream_created' ORDER BY id",
    )
    .bind::<Text, _>(&stream.stream_id)
    .load(&mut db)
    .await
    .unwrap();
    assert_eq!(events.len(), 1, "one event for one transition");
    assert_eq!(events[0].kind, "stream_ended");
    assert_eq!(
        events[0].payload,
        r#"{"reason": "ended_by_owner", "status": "completed"}"#
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_replaces_the_key_and_is_refused_once_completed() {
    let ctx = TestContext::start().await;
    let mut alice = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await;
    let created = alice
        .create_stream(create("Rotating"))
        .await
        .unwrap()
        .into_inner();
    let name = created.stream.as_ref().unwrap().name.clone();
    let stream_id = created.stream.as_ref().unwrap().stream_id.clone();

    let rotated = alice
        .rotate_stream_key(RotateStreamKeyRequest { name: name.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(rotated.stream_key, created.stream_key);
    assert!(rotated.stream_key.starts_with("sk_live_"));
    let stored = stored_key(&ctx, &stream_id).await;
    assert_eq!(
        stored.key_hash,
        Sha256::digest(rotated.stream_key.as_bytes()).to_vec()
    );
    let before = created.stream.unwrap().key_issue_time.unwrap();
    let after = rotated.stream.unwrap().key_issue_time.unwrap();
    assert!((after.seconds, after.nanos) > (before.seconds, before.nanos));

    alice
        .end_stream(EndStreamRequest { name: name.clone() })
        .await
        .unwrap();
    let refused = alice
        .rotate_stream_key(RotateStreamKeyRequest { name })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_pages_newest_first_and_filters() {
    let ctx = TestContext::start().await;
    let mut alice = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await;
    let mut bob = clients::streams(&ctx.url(), Some(&ctx.token), Some("bob")).await;
    let mut alice_names = Vec::new();
    for i in 0..7 {
        let s = alice
            .create_stream(create(&format!("a{i}")))
            .await
            .unwrap()
            .into_inner();
        alice_names.push(s.stream.unwrap().name);
    }
    let bobs = bob
        .create_stream(create("b0"))
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    bob.end_stream(EndStreamRequest {
        name: bobs.name.clone(),
    })
    .await
    .unwrap();

    // All of alice's, three at a time, newest first.
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = alice
            .list_streams(ListStreamsRequest {
                page_size: 3,
                page_token: token.clone(),
                owner: "alice".into(),
                statuses: vec![],
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.streams.len() <= 3);
        seen.extend(page.streams.into_iter().map(|s| s.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    let mut newest_first = alice_names.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    // Status filter.
    let completed = alice
        .list_streams(ListStreamsRequest {
            statuses: vec![StreamStatus::Completed.into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(completed.streams.len(), 1);
    assert_eq!(completed.streams[0].name, bobs.name);
    let pending = alice
        .list_streams(ListStreamsRequest {
            statuses: vec![StreamStatus::Pending.into(), StreamStatus::Active.into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pending.streams.len(), 7);

    // A token is bound to its filters.
    let first = alice
        .list_streams(ListStreamsRequest {
            page_size: 2,
            owner: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let err = alice
        .list_streams(ListStreamsRequest {
            page_size: 2,
            owner: "bob".into(),
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(field_of(&err), "page_token");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_with_the_field_named() {
    let ctx = TestContext::start().await;
    let mut alice = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await;

    let cases: Vec<(tonic::Status, &str)> = vec![
        (
            alice.create_stream(create("   ")).await.unwrap_err(),
            "stream.title",
        ),
        (
            alice
                .create_stream(create(&"x".repeat(201)))
                .await
                .unwrap_err(),
            "stream.title",
        ),
        (
            alice.create_stream(create("tab\there")).await.unwrap_err(),
            "stream.title",
        ),
        (
            alice
                .create_stream(CreateStreamRequest { stream: None })
                .await
                .unwrap_err(),
            "stream",
        ),
        (
            alice
                .get_stream(GetStreamRequest {
                    name: "streams/nope".into(),
                })
                .await
                .unwrap_err(),
            "name",
        ),
        (
            alice
                .get_stream(GetStreamRequest {
                    name: String::new(),
                })
                .await
                .unwrap_err(),
            "name",
        ),
        (
            alice
                .end_stream(EndStreamRequest {
                    name: "channels/1".into(),
                })
                .await
                .unwrap_err(),
            "name",
        ),
        (
            alice
                .list_streams(ListStreamsRequest {
                    page_size: 5000,
                    ..Default::default()
                })
                .await
                .unwrap_err(),
            "page_size",
        ),
        (
            alice
                .list_streams(ListStreamsRequest {
                    page_size: -1,
                    ..Default::default()
                })
                .await
                .unwrap_err(),
            "page_size",
        ),
        (
            alice
                .list_streams(ListStreamsRequest {
                    page_token: "%%%".into(),
                    ..Default::default()
                })
                .await
                .unwrap_err(),
            "page_token",
        ),
        (
            alice
                .list_streams(ListStreamsRequest {
                    statuses: vec![99],
                    ..Default::default()
                })
                .await
                .unwrap_err(),
            "statuses",
        ),
    ];
    for (status, field) in cases {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(field_of(&status), field, "{status:?}");
        assert!(
            status.message().starts_with(&format!("{field}: ")),
            "{}",
            status.message()
        );
    }

    let missing = format!("streams/{}", uuid::Uuid::now_v7());
    let err = alice
        .get_stream(GetStreamRequest {
            name: missing.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), format!("{missing} not found"));
    let err = alice
        .end_stream(EndStreamRequest { name: missing })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

/// GetStream reads through a short row cache (`NOVA_STREAM_CACHE`): a replica's own
/// changes are visible to it at once, and a lifecycle change made on another replica
/// reaches it through the event log, not the cache's age (here ten minutes).
#[tokio::test(flavor = "multi_thread")]
async fn cached_stream_reads_see_own_writes_and_other_replicas_lifecycle_changes() {
    use std::time::Duration;

    use nova_proto::v1::{AuthorizePublishRequest, UpdateStreamRequest};

    let ctx = TestContext::start_with(|c| c.stream_cache = Duration::from_secs(600)).await;
    let replica = ctx.replica().await;
    let mut a = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await;
    let b_url = format!("http://{}", replica.addr);
    let b = clients::streams(&b_url, Some(&ctx.token), Some("alice")).await;
    let get = |mut client: clients::Streams, name: String| async move {
        client
            .get_stream(GetStreamRequest { name })
            .await
            .unwrap()
            .into_inner()
            .stream
            .unwrap()
    };

    let created = a
        .create_stream(create("cached"))
        .await
        .unwrap()
        .into_inner();
    let stream = created.stream.unwrap();
    let name = stream.name.clone();
    // Both replicas cache the PENDING row.
    assert_eq!(
        get(a.clone(), name.clone()).await.status(),
        StreamStatus::Pending
    );
    assert_eq!(
        get(b.clone(), name.clone()).await.status(),
        StreamStatus::Pending
    );

    // Own writes: a title change and going live are visible on A at once.
    a.update_stream(UpdateStreamRequest {
        stream: Some(Stream {
            name: name.clone(),
            title: "renamed".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["title".into()],
        }),
    })
    .await
    .unwrap();
    assert_eq!(get(a.clone(), name.clone()).await.title, "renamed");
    clients::ingest(&ctx.url(), &ctx.token)
        .await
        .authorize_publish(AuthorizePublishRequest {
            stream_key: created.stream_key.clone(),
            client_addr: "127.0.0.1".into(),
            app: "live".into(),
            ingest_node: "ingest-a".into(),
            origin_url: "http://127.0.0.1:8088".into(),
            abr: false,
            client_id: "1".into(),
            recording: false,
        })
        .await
        .unwrap();
    assert_eq!(
        get(a.clone(), name.clone()).await.status(),
        StreamStatus::Active
    );

    // Another replica's cached row follows the event log.
    wait_for_status(&b, &name, StreamStatus::Active).await;
    a.end_stream(EndStreamRequest { name: name.clone() })
        .await
        .unwrap();
    assert_eq!(
        get(a.clone(), name.clone()).await.status(),
        StreamStatus::Completed
    );
    wait_for_status(&b, &name, StreamStatus::Completed).await;
    replica.shutdown().await.unwrap();
}

/// Waits (at most 10 s) until `client` reads stream `name` in `status`.
async fn wait_for_status(client: &clients::Streams, name: &str, status: StreamStatus) {
    nova_tests::wait::until(
        &format!("{name} to be {status:?} on that replica"),
        std::time::Duration::from_secs(10),
        || {
            let (mut client, name) = (client.clone(), name.to_owned());
            async move {
                let seen = client
                    .get_stream(GetStreamRequest { name })
                    .await
                    .unwrap()
                    .into_inner()
                    .stream
                    .unwrap()
                    .status();
                if seen == status { Ok(()) } else { Err(seen) }
            }
        },
    )
    .await;
}
