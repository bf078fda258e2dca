//! Owner decisions the ingest path could not hear (issue 10): while the control plane
//! the hooks talk to is away, the owner ends one stream and rotates another's key
//! through a second replica, and ends a third right after it returns. The hooks
//! vouch for all three broadcasters while they cannot ask; once the control plane
//! answers again each is cut off at its next nginx update (1 s here). The bound
//! asserted only catches a hang; the measured figures are printed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::time::Duration;

use nova_proto::v1::{EndStreamRequest, RotateStreamKeyRequest};
use nova_tests::{
    clients,
    live::{LiveOptions, LiveStack},
    on_air::{on_air, still_on_air},
    publisher::{PublishTask, RtmpError},
};
use tokio::time::Instant;

/// Waits (at most 10 s, a hang-catching bound) until nginx cuts `task` off; returns
/// how long after `since` it was.
async fn cut_after(task: &mut PublishTask, since: Instant, what: &str) -> Duration {
    let result = task.ended_within(Duration::from_secs(10)).await;
    assert!(
        matches!(result, Err(RtmpError::Closed)),
        "{what}: not cut off: {result:?}"
    );
    since.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn end_and_key_rotation_during_an_outage_cut_the_broadcaster_off_once_it_answers() {
    let mut live = LiveStack::start(LiveOptions {
        ingest_timeout: Some(Duration::from_secs(10)),
        ..LiveOptions::default()
    })
    .await;
    let (ended, mut task_ended) = on_air(&mut live, "ended during the outage").await;
    let (rotated, mut task_rotated) = on_air(&mut live, "key rotated during the outage").await;
    let (after, mut task_after) = on_air(&mut live, "ended right after").await;
    let replica = live.ctx.replica().await;
    let mut owner = clients::streams(
        &format!("http://{}", replica.addr),
        Some(&live.ctx.token),
        Some("alice"),
    )
    .await;

    live.ctx
        .restart_while(async {
            owner
                .end_stream(EndStreamRequest {
                    name: ended.clone(),
                })
                .await
                .expect("EndStream on the replica");
            owner
                .rotate_stream_key(RotateStreamKeyRequest {
                    name: rotated.clone(),
                })
                .await
                .expect("RotateStreamKey on the replica");
            // Nobody the hooks can ask knows yet: both stay on air meanwhile.
            let window = Duration::from_secs(3);
            let what = "while the control plane was away";
            tokio::join!(
                still_on_air(&mut task_ended, window, what),
                still_on_air(&mut task_rotated, window, what)
            );
        })
        .await;
    let back = Instant::now();
    let mut main = clients::streams(&live.ctx.url(), Some(&live.ctx.token), Some("alice")).await;
    main.end_stream(EndStreamRequest {
        name: after.clone(),
    })
    .await
    .expect("EndStream right after the restart");
    let (cut_ended, cut_rotated, cut_after_end) = tokio::join!(
        cut_after(&mut task_ended, back, "ended during the outage"),
        cut_after(&mut task_rotated, back, "key rotated during the outage"),
        cut_after(&mut task_after, back, "ended right after the restart"),
    );
    println!(
        "cut off after the control plane answered again (nginx update interval 1 s): ended during the outage {:.2} s, key rotated during the outage {:.2} s, ended right after the restart {:.2} s",
        cut_ended.as_secs_f64(),
        cut_rotated.as_secs_f64(),
        cut_after_end.as_secs_f64()
    );
    replica.shutdown().await.expect("stop the replica");
    live.shutdown().await;
}
