//! Faults while a broadcaster is on air, through real nginx-rtmp, ingest-hooks and the
//! control plane on real PostgreSQL and Redis: a restart of the control plane, a
//! restart of ingest-hooks, a control-plane outage longer than the grace, and a
//! restart of nginx itself (which drops its broadcasters; they resume the stream). An
//! admitted broadcaster stays on air through a restart, the event log shows no
//! spurious interruption, and EndStream still cuts it off once the control plane
//! answers again; new publishes fail closed during the outage.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::time::Duration;

use nova_proto::v1::StreamStatus;
use nova_tests::{
    events,
    live::{LiveOptions, LiveStack},
    on_air::{end_and_cut, on_air_with_id, still_on_air},
    publisher::{Flv, RtmpError, publish},
};
use tokio::time::Instant;

const LONG: Duration = Duration::from_secs(3600);

/// Returns the stream's logged lifecycle, e.g. `["started resumed=false"]`.
async fn lifecycle(live: &LiveStack, stream_id: &str) -> Vec<String> {
    events::lifecycle(&mut live.ctx.db().await, stream_id).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broadcaster_stays_on_air_through_a_control_plane_restart() {
    // ingest timeout 3 s: the 4 s outage outlasts it, so only the reaper's start-up
    // grace keeps the stream from being declared lost when the control plane is back.
    let mut live = LiveStack::start(LiveOptions {
        ingest_timeout: Some(Duration::from_secs(3)),
        ..LiveOptions::default()
    })
    .await;
    let (name, id, mut task) = on_air_with_id(&mut live, "control plane restart").await;

    live.ctx.restart(Duration::from_secs(4)).await;
    // While it was down, the hooks vouched for the admitted broadcaster; now its
    // heartbeats reach the control plane again.
    still_on_air(
        &mut task,
        Duration::from_secs(6),
        "after the control plane came back",
    )
    .await;
    assert_eq!(live.get(&name).await.status(), StreamStatus::Active);
    assert_eq!(
        lifecycle(&live, &id).await,
        ["started resumed=false"],
        "no spurious interruption in the event log"
    );
    let cut = end_and_cut(&live, &name, &mut task).await;
    println!(
        "control plane restart: on air; EndStream cut off after {:.2} s",
        cut.as_secs_f64()
    );
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broadcaster_stays_on_air_through_an_ingest_hooks_restart() {
    let mut live = LiveStack::start(LiveOptions {
        update_interval: Duration::from_secs(2),
        ..LiveOptions::default()
    })
    .await;
    let (name, id, mut task) = on_air_with_id(&mut live, "hooks restart").await;

    live.restart_hooks(Duration::from_secs(2)).await;
    still_on_air(
        &mut task,
        Duration::from_secs(6),
        "after ingest-hooks came back",
    )
    .await;
    // nginx logged the failed updates of the outage, without the hooks secret.
    let log = std::fs::read_to_string(live.nginx.error_log()).expect("nginx error log");
    assert!(
        log.contains("/nova/update"),
        "the outage shows in nginx's error log"
    );
    assert!(
        !log.contains(&live.hooks_secret()) && !log.contains("secret="),
        "the hooks secret must never reach nginx's logs"
    );
    assert_eq!(live.get(&name).await.status(), StreamStatus::Active);
    assert_eq!(lifecycle(&live, &id).await, ["started resumed=false"]);
    let cut = end_and_cut(&live, &name, &mut task).await;
    println!(
        "ingest-hooks restart: on air; EndStream cut off after {:.2} s",
        cut.as_secs_f64()
    );
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_longer_than_the_grace_cuts_broadcasters_and_new_publishes_fail_closed() {
    let mut live = LiveStack::start(LiveOptions {
        update_grace: Duration::from_secs(3),
        ..LiveOptions::default()
    })
    .await;
    let (_, _, mut task) = on_air_with_id(&mut live, "long outage").await;
    let (_, other_key) = live.create_stream("not yet live").await;

    let down = Instant::now();
    live.ctx.shutdown().await.expect("stop the control plane");
    let refused = publish(&live.publish_url(&other_key)).await;
    assert!(
        refused.is_err(),
        "a new publish fails closed while the control plane is away"
    );
    still_on_air(&mut task, Duration::from_secs(2), "inside the grace").await;
    let result = task.ended_within(Duration::from_secs(10)).await;
    assert!(
        matches!(result, Err(RtmpError::Closed)),
        "cut off once the grace is over: {result:?}"
    );
    println!(
        "control plane away: broadcaster kept {:.2} s (grace 3 s, 1 s updates)",
        down.elapsed().as_secs_f64()
    );
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_nginx_restart_interrupts_the_stream_and_the_broadcaster_resumes_it() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let (stream, key) = live.create_stream("nginx restart").await;
    let mut task = publish(&live.publish_url(&key))
        .await
        .expect("publish accepted")
        .spawn(Flv::fixture(), LONG);
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(10))
        .await;

    // nginx holds the broadcaster's TCP connection: restarting it drops them.
    live.nginx.stop().expect("stop nginx");
    let result = task.ended_within(Duration::from_secs(10)).await;
    assert!(
        matches!(result, Err(RtmpError::Closed) | Err(RtmpError::Io(_))),
        "dropped with nginx: {result:?}"
    );
    live.nginx.start().expect("start nginx again");
    live.wait_for_status(
        &stream.name,
        StreamStatus::Interrupted,
        Duration::from_secs(15),
    )
    .await;

    // The broadcaster reconnects within the window: the same stream resumes.
    let again = publish(&live.publish_url(&key))
        .await
        .expect("republish after the restart")
        .spawn(Flv::fixture(), LONG);
    let resumed = live
        .wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(10))
        .await;
    assert_eq!(resumed.stream_id, stream.stream_id);
    let logged = lifecycle(&live, &stream.stream_id).await;
    assert_eq!(
        logged.first().map(String::as_str),
        Some("started resumed=false")
    );
    assert_eq!(
        logged.last().map(String::as_str),
        Some("started resumed=true")
    );
    assert_eq!(
        logged.iter().filter(|e| e.starts_with("ended")).count(),
        1,
        "one interruption: {logged:?}"
    );
    again.stop().await;
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hooks_partition_longer_than_the_reconnect_window_never_completes_a_kept_stream() {
    // The control plane stays up and its reaper judges the silence: the stream goes
    // INTERRUPTED (ingest_lost), but its window is NOVA_INGEST_LOST_WINDOW, not the
    // 2 s reconnect window, so the broadcaster the hooks keep on air resumes it.
    let proxy = std::sync::Arc::new(nova_tests::proxy::ChaosProxy::start(None).await);
    let mut live = LiveStack::start(LiveOptions {
        reconnect_window: Duration::from_secs(2),
        ingest_timeout: Some(Duration::from_secs(3)),
        ingest_lost_window: Some(Duration::from_secs(60)),
        control_plane_proxy: Some(proxy.clone()),
        ..LiveOptions::default()
    })
    .await;
    let (name, id, mut task) = on_air_with_id(&mut live, "hooks partitioned").await;

    proxy.cut();
    live.wait_for_status(&name, StreamStatus::Interrupted, Duration::from_secs(15))
        .await;
    // Well past the 2 s reconnect window: still kept, still not completed.
    still_on_air(&mut task, Duration::from_secs(4), "during the partition").await;
    assert_eq!(live.get(&name).await.status(), StreamStatus::Interrupted);

    proxy.heal();
    live.wait_for_status(&name, StreamStatus::Active, Duration::from_secs(10))
        .await;
    still_on_air(
        &mut task,
        Duration::from_secs(2),
        "after the partition healed",
    )
    .await;
    assert_eq!(
        lifecycle(&live, &id).await,
        [
            "started resumed=false",
            "ended interrupted ingest_lost",
            "started resumed=true"
        ]
    );
    let cut = end_and_cut(&live, &name, &mut task).await;
    println!(
        "hooks partitioned past the reconnect window: kept on air, resumed; EndStream cut off after {:.2} s",
        cut.as_secs_f64()
    );
    live.shutdown().await;
}
