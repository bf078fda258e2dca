//! A stream's analytics outlive Redis from the moment it completes (issue 10): its
//! peak, unique viewers (the HyperLogLog) and watch time are persisted at completion,
//! not only by the sampler's next ticks, so a Redis flushed right after the end
//! loses none of them. The sampler is kept out of the way (its next tick is ten
//! minutes off) so only the completion can have persisted them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::time::Duration;

use nova_proto::v1::{AuthorizePublishRequest, CreateStreamRequest, EndStreamRequest, Stream};
use nova_tests::{
    TestContext,
    audience::Audience,
    clients,
    figures::{persisted, summary},
    private_redis::PrivateRedis,
    wait,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_completed_streams_figures_survive_a_redis_flush_right_after_its_end() {
    let redis = PrivateRedis::started();
    let url = redis.url();
    let mut ctx = TestContext::start_with(|c| {
        c.redis_url = url.as_str().into();
        c.sample_interval = Duration::from_secs(600);
    })
    .await;
    let mut streams = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await;
    let mut ingest = clients::ingest(&ctx.url(), &ctx.ingest_token).await;
    let sessions = clients::sessions(&ctx.url(), &ctx.edge_token).await;
    let created = streams
        .create_stream(CreateStreamRequest {
            stream: Some(Stream {
                title: "figures at the end".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("CreateStream")
        .into_inner();
    let (name, key) = (created.stream.unwrap().name, created.stream_key);
    ingest
        .authorize_publish(AuthorizePublishRequest {
            stream_key: key.clone(),
            client_addr: "127.0.0.1".into(),
            app: "live".into(),
            ingest_node: "ingest-test".into(),
            origin_url: "http://127.0.0.1:8088".into(),
            abr: false,
            client_id: "client-a".into(),
            recording: false,
        })
        .await
        .expect("AuthorizePublish");
    let audience = Audience::start(
        &sessions,
        &ingest,
        &name,
        &["v1", "v2", "v3"],
        &key,
        Duration::from_secs(1),
    )
    .await;
    let live = wait::until(
        "3 viewers with 3 s of watch time",
        Duration::from_secs(15),
        || async {
            match summary(&ctx, &name).await {
                f @ (3, 3, ms) if ms >= 3000 => Ok(f),
                other => Err(other),
            }
        },
    )
    .await;
    assert_eq!(
        persisted(&ctx, &name).await,
        None,
        "the sampler has not persisted anything while the stream was live"
    );

    streams
        .end_stream(EndStreamRequest { name: name.clone() })
        .await
        .expect("EndStream");
    let at_end = wait::until(
        "the figures persisted at completion",
        Duration::from_secs(5),
        || async { persisted(&ctx, &name).await.ok_or("nothing persisted") },
    )
    .await;
    audience.stop();
    redis.flush_all();

    let (peak, uniques, watch) = summary(&ctx, &name).await;
    assert_eq!((peak, uniques), (3, 3), "peak and unique viewers kept");
    assert!(
        watch >= live.2,
        "watch time kept: {watch} ms after the flush, {} ms while live",
        live.2
    );
    println!(
        "completion persisted peak {}, unique viewers {}, watch time {} ms; after FLUSHALL GetStreamMetrics says {peak}, {uniques}, {watch} ms",
        at_end.0, at_end.1, at_end.2
    );
    ctx.shutdown().await.expect("stop the control plane");
}
