//! The fault table, measured (issue 10): the whole platform runs as separate
//! real processes (PostgreSQL, redis-server, `nova-control-plane`,
//! `nova-ingest-hooks`, `nova-edge`, nginx-rtmp), one broadcaster (the in-tree RTMP
//! publisher) is on air through nginx, three real WebSocket viewers watch on the
//! edge, and a gRPC WatchEvents follower (resuming after its last cursor, as a
//! consumer does) watches every stream. Each row kills one process with SIGKILL
//! (PostgreSQL: `pg_ctl stop -m immediate`, every server process at once) and starts
//! it again 2 s later with the same command line and environment, then asserts: the
//! broadcaster is still on air 12 s after the kill (nginx: it is dropped, the stream
//! turns INTERRUPTED, and it is ACTIVE again once the broadcaster reconnects), the
//! stream is ACTIVE, the follower holds exactly the durable log (no lifecycle event
//! lost or repeated), and every socket shows 3 viewers again. The rows share one
//! stack, in the order; the measured table is printed at the end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use nova_proto::v1::{CreateStreamRequest, Stream, StreamStatus};
use nova_tests::{
    clients,
    figures::active_streams,
    follower::Follower,
    on_air::{republish, still_on_air},
    processes::{ProcessOptions, ProcessStack},
    publisher::{Flv, PublishTask, RtmpError, publish},
    stream_probe::Probe,
    ws_viewers::WsViewers,
};
use tokio::time::Instant;

/// How long the killed process stays dead.
const DOWN: Duration = Duration::from_secs(2);
/// The broadcaster must still be on air this long after the kill.
const ON_AIR: Duration = Duration::from_secs(12);
/// Viewers on the edge's sockets.
const VIEWERS: i64 = 3;

/// The process a row kills.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Killed {
    ControlPlane,
    IngestHooks,
    Redis,
    Postgres,
    Edge,
    Nginx,
}

impl Killed {
    fn label(self) -> &'static str {
        match self {
            Self::ControlPlane => "nova-control-plane (SIGKILL)",
            Self::IngestHooks => "nova-ingest-hooks (SIGKILL)",
            Self::Redis => "redis-server (SIGKILL, back empty)",
            Self::Postgres => "postgres (pg_ctl stop -m immediate)",
            Self::Edge => "nova-edge (SIGKILL)",
            Self::Nginx => "nginx, master and workers (SIGKILL)",
        }
    }
}

/// One measured row of the table.
struct Row {
    killed: Killed,
    broadcaster: String,
    stream: String,
    count: String,
    events: String,
}

/// The broadcast under test.
struct Broadcast {
    name: String,
    key: String,
    task: PublishTask,
}

/// Everything a row acts on.
struct World {
    stack: ProcessStack,
    probe: Probe,
    follower: Follower,
    viewers: WsViewers,
    broadcast: Broadcast,
    ingest_timeout: Duration,
}

impl World {
    async fn db(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.stack.database_url())
            .await
            .expect("connect to the control plane's database")
    }

    async fn kill(&mut self, killed: Killed) {
        match killed {
            Killed::ControlPlane => self.stack.control_plane.kill().await,
            Killed::IngestHooks => self.stack.hooks.kill().await,
            Killed::Redis => self.stack.kill_redis(),
            Killed::Postgres => self.stack.crash_postgres(),
            Killed::Edge => self.stack.edge.kill().await,
            Killed::Nginx => self.stack.kill_nginx(),
        }
    }

    async fn restart(&mut self, killed: Killed) {
        match killed {
            Killed::ControlPlane => self.stack.control_plane.start().await,
            Killed::IngestHooks => self.stack.hooks.start().await,
            Killed::Redis => self.stack.redis.start().expect("start redis-server again"),
            Killed::Postgres => self.stack.postgres.start().expect("start PostgreSQL again"),
            Killed::Edge => self.stack.edge.start().await,
            Killed::Nginx => self.stack.nginx.start().expect("start nginx again"),
        }
    }

    /// Runs one row: kill, 2 s down, restart, then every check; returns the figures.
    async fn row(&mut self, killed: Killed) -> Row {
        let logged_before = self.follower.lifecycle().len();
        let breaks_before = self.follower.breaks();
        let killed_at = Instant::now();
        self.kill(killed).await;
        tokio::time::sleep(DOWN).await; // the outage itself, as the issue defines it
        self.restart(killed).await;
        let restarted = killed_at.elapsed();
        let what = format!("after {} was killed", killed.label());
        let url = self.stack.publish_url(&self.broadcast.key);
        let ((broadcaster, stream), converged) = tokio::join!(
            keep_on_air(
                &mut self.broadcast,
                &self.probe,
                &url,
                (killed, killed_at, self.ingest_timeout),
                &what
            ),
            converged(&self.viewers, &self.probe, killed_at)
        );
        // And still 3 once the row is over (the TTL of a killed edge's sessions passed).
        self.viewers
            .until_count(VIEWERS, Duration::from_secs(15))
            .await;
        self.probe
            .wait_for_count(VIEWERS, Duration::from_secs(5))
            .await;
        let connects: usize = self.viewers.shown().iter().map(|s| s.connects).sum();

        let log = self
            .follower
            .assert_exactly_the_log(&mut self.db().await, Duration::from_secs(15))
            .await;
        let new: Vec<&str> = log[logged_before..]
            .iter()
            .map(|(_, kind, _)| kind.as_str())
            .filter(|kind| *kind != "quality_changed")
            .collect();
        let expected: &[&str] = if killed == Killed::Nginx {
            &["stream_ended", "stream_started"]
        } else {
            &[]
        };
        assert_eq!(new, expected, "lifecycle events of the row {what}");
        let events = if new.is_empty() {
            "none lost or repeated; no lifecycle event".to_owned()
        } else {
            format!("none lost or repeated; {} (once each)", new.join(", "))
        };
        let events = match self.follower.breaks() - breaks_before {
            0 => events,
            n => format!("{events}; the WatchEvents call broke {n}x and resumed after its cursor"),
        };
        Row {
            killed,
            broadcaster,
            stream,
            count: format!(
                "{VIEWERS} on every socket and in GetViewerCount {:.1} s after the kill (back up at {:.1} s; {connects} sockets opened so far)",
                converged.as_secs_f64(),
                restarted.as_secs_f64()
            ),
            events,
        }
    }
}

/// Asserts the broadcaster is on air `ON_AIR` after the kill (nginx: it is dropped,
/// the stream turns INTERRUPTED, and the broadcaster's reconnect makes it ACTIVE
/// again) and the stream is ACTIVE; returns the broadcaster and stream columns.
async fn keep_on_air(
    broadcast: &mut Broadcast,
    probe: &Probe,
    url: &str,
    (killed, killed_at, ingest_timeout): (Killed, Instant, Duration),
    what: &str,
) -> (String, String) {
    if killed != Killed::Nginx {
        still_on_air(
            &mut broadcast.task,
            ON_AIR.saturating_sub(killed_at.elapsed()),
            what,
        )
        .await;
        probe
            .wait_for_status(StreamStatus::Active, Duration::from_secs(10))
            .await;
        return ("on air".to_owned(), "ACTIVE".to_owned());
    }
    // nginx held the broadcaster's TCP connection: it is dropped, and the control
    // plane learns of it from the silence (no on_publish_done was sent).
    if let Err(RtmpError::Timeout(_)) = broadcast.task.ended_within(Duration::from_secs(5)).await {
        panic!("the broadcaster outlived nginx");
    }
    probe
        .wait_for_status(
            StreamStatus::Interrupted,
            ingest_timeout + Duration::from_secs(10),
        )
        .await;
    let interrupted = killed_at.elapsed();
    broadcast.task = republish(url, Duration::from_secs(20)).await;
    probe
        .wait_for_status(StreamStatus::Active, Duration::from_secs(10))
        .await;
    let back = killed_at.elapsed();
    let window = ON_AIR
        .saturating_sub(killed_at.elapsed())
        .max(Duration::from_secs(3));
    still_on_air(&mut broadcast.task, window, what).await;
    (
        format!(
            "dropped with nginx; reconnected: on air again {:.1} s after the kill and still at {:.1} s",
            back.as_secs_f64(),
            killed_at.elapsed().as_secs_f64()
        ),
        format!(
            "INTERRUPTED at {:.1} s (ingest timeout), ACTIVE on the reconnect",
            interrupted.as_secs_f64()
        ),
    )
}

/// Waits (at most 20 s) until every socket open now shows 3 viewers and the control
/// plane counts 3; returns how long after the kill that was.
async fn converged(viewers: &WsViewers, probe: &Probe, killed_at: Instant) -> Duration {
    viewers.until_count(VIEWERS, Duration::from_secs(20)).await;
    probe.wait_for_count(VIEWERS, Duration::from_secs(20)).await;
    killed_at.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_any_one_process_keeps_the_broadcast_on_air_and_loses_no_event() {
    let options = ProcessOptions::default();
    let stack = ProcessStack::start(&options).await;
    let url = stack.url();
    let streams = clients::streams(&url, Some(&stack.token), Some("alice")).await;
    let sessions = clients::sessions(&url, &stack.token).await;
    let follower = Follower::start(&url, &stack.token).await;
    let created = streams
        .clone()
        .create_stream(CreateStreamRequest {
            stream: Some(Stream {
                title: "the fault table".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("CreateStream")
        .into_inner();
    let stream = created.stream.expect("stream");
    let task = publish(&stack.publish_url(&created.stream_key))
        .await
        .expect("publish accepted")
        .spawn(Flv::fixture(), Duration::from_secs(3600));
    let viewers = WsViewers::connect(&stack.edge_url(), &stream.stream_id, 3).await;
    let mut world = World {
        stack,
        probe: Probe {
            streams,
            sessions,
            name: stream.name.clone(),
        },
        follower,
        viewers,
        broadcast: Broadcast {
            name: stream.name,
            key: created.stream_key,
            task,
        },
        ingest_timeout: options.ingest_timeout,
    };
    world
        .probe
        .wait_for_status(StreamStatus::Active, Duration::from_secs(10))
        .await;
    world
        .viewers
        .until_count(VIEWERS, Duration::from_secs(10))
        .await;
    world
        .follower
        .assert_exactly_the_log(&mut world.db().await, Duration::from_secs(10))
        .await;

    let mut table = Vec::new();
    for killed in [
        Killed::ControlPlane,
        Killed::IngestHooks,
        Killed::Redis,
        Killed::Postgres,
        Killed::Edge,
        Killed::Nginx,
    ] {
        let row = world.row(killed).await;
        println!(
            "row done: {} — {}; {}; {}; {}",
            row.killed.label(),
            row.broadcaster,
            row.stream,
            row.count,
            row.events
        );
        table.push(row);
    }

    // Nothing is left stuck: the owner ends the stream and nginx cuts the broadcaster.
    nova_tests::on_air::end_via(
        &world.probe.streams,
        &world.broadcast.name,
        &mut world.broadcast.task,
    )
    .await;
    assert_eq!(
        active_streams(&mut world.db().await).await,
        0,
        "nothing stuck ACTIVE"
    );
    world
        .follower
        .assert_exactly_the_log(&mut world.db().await, Duration::from_secs(10))
        .await;

    println!("\n| killed | broadcaster 12 s later | stream | count | events |");
    println!("|---|---|---|---|---|");
    for row in &table {
        println!(
            "| {} | {} | {} | {} | {} |",
            row.killed.label(),
            row.broadcaster,
            row.stream,
            row.count,
            row.events
        );
    }
    println!(
        "(each process killed and started again {} s later with the same command line and environment)",
        DOWN.as_secs()
    );
}
