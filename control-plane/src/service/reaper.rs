//! The reaper: closes streams whose ingest went quiet and whose reconnect window
//! closed. Every replica runs the loop; a PostgreSQL advisory lock taken per batch
//! (transaction-scoped, so a dead replica never holds it) lets one sweep at a time.
//! A sweep works in small batches, one short transaction each, so it never holds the
//! event-log append lock for long while ingest callbacks wait.
//!
//! A replica judges ingest silence only once it has been up for `ingest_timeout`:
//! after a restart of the control plane (or of every replica), the silence it finds
//! is its own absence, and the ingest nodes, which kept their broadcasters on air,
//! get one full timeout to be heard again before anything is declared lost.

use std::time::Duration;

use chrono::Utc;
use diesel::{sql_query, sql_types::Bool};
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::{
    db::{DbPool, streams},
    error::{Error, Result},
    service::events::Outbox,
    service::lifecycle::{self, EndReason},
    service::publish::Publisher,
    shutdown,
};

/// Advisory lock key of the reaper ("novareap").
const REAPER_LOCK: i64 = 0x6e6f_7661_7265_6170;
/// Most streams handled per batch and kind (one transaction).
const BATCH: i64 = 25;
/// Most batches per sweep; the next sweep takes the rest.
const MAX_BATCHES: usize = 40;

/// When streams are reaped.
#[derive(Debug, Clone, Copy)]
pub struct ReaperSettings {
    /// Time between sweeps.
    pub interval: Duration,
    /// An active stream without ingest updates for this long is INTERRUPTED.
    pub ingest_timeout: Duration,
    /// How long an interrupted stream waits for its broadcaster.
    pub reconnect_window: Duration,
    /// How long a stream interrupted for ingest silence waits: a silent ingest may be
    /// one that ingest-hooks keep on air through a control-plane outage or partition
    /// (their `NOVA_UPDATE_GRACE`), whose next heartbeat resumes the stream.
    pub ingest_lost_window: Duration,
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    /// Whether this replica held the lock (otherwise it did nothing).
    pub led: bool,
    /// Active streams turned INTERRUPTED because their ingest went quiet.
    pub interrupted: usize,
    /// Interrupted streams turned COMPLETED because their window closed.
    pub completed: usize,
}

#[derive(diesel::QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Runs one sweep if no other replica is sweeping: batches until one finds less
/// than a full batch of either kind (at most `MAX_BATCHES`). Silent ingests are
/// declared lost only when `judge_silence` (see the module docs).
pub async fn sweep(
    pool: &DbPool,
    publisher: &Publisher,
    settings: &ReaperSettings,
    judge_silence: bool,
) -> Result<Sweep> {
    let mut total = Sweep::default();
    for _ in 0..MAX_BATCHES {
        let batch = sweep_batch(pool, publisher, settings, judge_silence).await?;
        if !batch.led {
            break;
        }
        total.led = true;
        total.interrupted += batch.interrupted;
        total.completed += batch.completed;
        let full = usize::try_from(BATCH).unwrap_or(usize::MAX);
        if batch.interrupted < full && batch.completed < full {
            break;
        }
    }
    Ok(total)
}

/// One batch in one transaction; its events are published after commit.
async fn sweep_batch(
    pool: &DbPool,
    publisher: &Publisher,
    settings: &ReaperSettings,
    judge_silence: bool,
) -> Result<Sweep> {
    let mut conn = pool.get().await?;
    let mut out = Outbox::new();
    let result = conn
        .transaction(async |conn| {
            let lock: Locked = sql_query(format!(
                "SELECT pg_try_advisory_xact_lock({REAPER_LOCK}) AS locked"
            ))
            .get_result(conn)
            .await?;
            if !lock.locked {
                return Ok::<_, Error>(Sweep::default());
            }
            let now = Utc::now();
            let quiet_since =
                now - chrono::Duration::from_std(settings.ingest_timeout).unwrap_or_default();
            let deadline =
                now + chrono::Duration::from_std(settings.ingest_lost_window).unwrap_or_default();
            let mut sweep = Sweep {
                led: true,
                ..Sweep::default()
            };
            let lost = if judge_silence {
                streams::lock_ingest_lost(conn, quiet_since, BATCH).await?
            } else {
                Vec::new()
            };
            for id in lost {
                lifecycle::interrupt(conn, &mut out, id, deadline, EndReason::IngestLost).await?;
                tracing::info!(stream.id = %id, "ingest lost; reconnect window open");
                sweep.interrupted += 1;
            }
            for id in streams::lock_window_closed(conn, now, BATCH).await? {
                lifecycle::complete(conn, &mut out, id, EndReason::ReconnectWindowClosed).await?;
                sweep.completed += 1;
            }
            Ok(sweep)
        })
        .await?;
    publisher.publish(&out);
    Ok(result)
}

/// Sweeps every `settings.interval` until shutdown; failures are logged and retried.
pub async fn run(
    pool: DbPool,
    publisher: Publisher,
    settings: ReaperSettings,
    stop: shutdown::Signal,
) {
    let started = std::time::Instant::now();
    let mut ticker = shutdown::Ticker::new(settings.interval, stop);
    while ticker.tick().await {
        let judge_silence = started.elapsed() >= settings.ingest_timeout;
        if let Err(err) = sweep(&pool, &publisher, &settings, judge_silence).await {
            tracing::warn!(error = %err, "reaper sweep failed; retrying next tick");
        }
    }
}
