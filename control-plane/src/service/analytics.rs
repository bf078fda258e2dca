//! Analytics: the sampler that writes viewers and ingest bitrate of live streams to
//! PostgreSQL (one replica at a time, under an advisory lock), and the window queries
//! behind GetStreamMetrics.
//!
//! The sampler also persists each followed stream's peak, unique viewers (with the
//! HyperLogLog itself) and watch time to `stream_analytics`, after seeding Redis
//! back from them if Redis lost them since (see [`SessionStore::snapshot`]): a
//! Redis restart or flush loses at most one sampling interval of figures.
//! GetStreamMetrics reports the greater of the live and the persisted figures, and
//! the persisted ones alone while Redis is away. A stream's figures are also persisted
//! the moment it completes (by the event publisher, [`Analytics::persist_completed`]).

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use diesel::{sql_query, sql_types::Bool};
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::{
        DbPool,
        analytics::{self as persisted, Persisted},
        metrics::{self, Point, Sample},
        streams,
    },
    error::{Error, Result},
    metrics::CpMetrics,
    redis::sessions::{Figures, Seed, SessionStore},
    shutdown,
};

/// Advisory lock key of the sampler ("novasamp").
const SAMPLER_LOCK: i64 = 0x6e6f_7661_7361_6d70;
/// Most points a window may have.
pub const MAX_POINTS: i64 = 10_000;
/// Points of a window when the caller gives no step.
const DEFAULT_POINTS: i64 = 300;
/// Sampling intervals a completed stream's figures are still persisted for.
const AFTER_COMPLETION: i32 = 3;

/// A stream's metrics over a window.
#[derive(Debug, Clone)]
pub struct Report {
    /// The series.
    pub points: Vec<Point>,
    /// Highest concurrent viewers ever.
    pub peak_viewers: i64,
    /// Approximate distinct viewers.
    pub unique_viewers: i64,
    /// Total watch time.
    pub watch_time: Duration,
    /// Time live, first publish to completion (or now).
    pub duration: Duration,
}

/// Analytics over PostgreSQL and Redis.
#[derive(Clone)]
pub struct Analytics {
    /// PostgreSQL.
    pool: DbPool,
    /// Live figures.
    store: SessionStore,
    /// Live gauges and the viewers histogram.
    metrics: CpMetrics,
    /// Sampling interval.
    interval: Duration,
}

#[derive(diesel::QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

impl Analytics {
    /// Builds the service; the sampler runs every `interval`.
    pub fn new(pool: DbPool, store: SessionStore, metrics: CpMetrics, interval: Duration) -> Self {
        Self {
            pool,
            store,
            metrics,
            interval,
        }
    }

    /// Reads every live stream's viewers and updates this replica's gauges; if no
    /// other replica is sampling, also persists the figures of every followed stream
    /// (seeding Redis back first if it lost them), writes the samples and feeds the
    /// viewers histogram. Returns how many samples were written.
    pub async fn sample(&self) -> Result<usize> {
        let mut conn = self.pool.get().await?;
        let gauges = self.metrics.clone();
        conn.transaction(async |conn| {
            let lock: Locked = sql_query(format!(
                "SELECT pg_try_advisory_xact_lock({SAMPLER_LOCK}) AS locked"
            ))
            .get_result(conn)
            .await?;
            let at = Utc::now();
            let active = metrics::active_streams(conn).await?;
            let counts = if lock.locked {
                self.persist(conn, at).await?
            } else {
                HashMap::new()
            };
            let mut samples = Vec::with_capacity(active.len());
            let mut audiences = Vec::with_capacity(active.len());
            for (stream_id, health) in &active {
                let figures = match counts.get(stream_id) {
                    Some(figures) => *figures,
                    None => self.store.figures(&stream_id.to_string()).await?,
                };
                audiences.push(figures.count);
                let bitrate = health
                    .as_ref()
                    .and_then(|h| h.get("bitrate_kbps"))
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or(0);
                samples.push(Sample {
                    stream_id: *stream_id,
                    at,
                    viewers: i32::try_from(figures.count).unwrap_or(i32::MAX),
                    ingest_bitrate_kbps: i32::try_from(bitrate).unwrap_or(i32::MAX),
                });
            }
            gauges.live(audiences);
            if !lock.locked || samples.is_empty() {
                return Ok::<_, Error>(0);
            }
            for sample in &samples {
                gauges.viewers(i64::from(sample.viewers));
            }
            Ok(metrics::insert(conn, &samples).await?)
        })
        .await
    }

    /// Persists the final figures of stream `id`, which has just completed, so they
    /// survive a Redis loss right after its end (the sampler persists them too, for a
    /// few more intervals, but only at its next tick).
    pub async fn persist_completed(&self, id: Uuid) -> Result<()> {
        let mut conn = self.pool.get().await?;
        self.persist_streams(&mut conn, vec![id]).await?;
        Ok(())
    }

    /// Seeds and snapshots every followed stream's figures and persists them;
    /// returns the figures by stream.
    async fn persist(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        at: DateTime<Utc>,
    ) -> Result<HashMap<Uuid, Figures>> {
        let window = chrono::Duration::from_std(self.interval).unwrap_or_default();
        let followed = persisted::followed_streams(conn, at - window * AFTER_COMPLETION).await?;
        self.persist_streams(conn, followed).await
    }

    /// Seeds and snapshots the figures of streams `followed` and persists them;
    /// returns the figures by stream.
    async fn persist_streams(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        followed: Vec<Uuid>,
    ) -> Result<HashMap<Uuid, Figures>> {
        let stored: HashMap<Uuid, Persisted> = persisted::load(conn, &followed)
            .await?
            .into_iter()
            .map(|row| (row.stream_id, row))
            .collect();
        let mut figures = HashMap::with_capacity(followed.len());
        let mut rows = Vec::with_capacity(followed.len());
        for id in followed {
            let seed = stored
                .get(&id)
                .map(|row| Seed {
                    peak: row.peak_viewers,
                    watch_ms: row.watch_ms,
                    uniques_hll: row.uniques_hll.clone().unwrap_or_default(),
                })
                .unwrap_or_default();
            let snapshot = self.store.snapshot(&id.to_string(), &seed).await?;
            let f = snapshot.figures;
            rows.push(Persisted {
                stream_id: id,
                peak_viewers: f.peak.max(0),
                unique_viewers: f.uniques.max(0),
                watch_ms: f.watch_ms.max(0),
                uniques_hll: (!snapshot.uniques_hll.is_empty()).then_some(snapshot.uniques_hll),
            });
            figures.insert(id, f);
        }
        persisted::upsert(conn, &rows).await?;
        Ok(figures)
    }

    /// Returns the series of a stream over `[start, end)` with `step`, defaults
    /// filled in (stream creation, now, about 300 points), and its summary.
    pub async fn report(
        &self,
        stream_id: Uuid,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
        step: Option<Duration>,
    ) -> Result<Report> {
        let mut conn = self.pool.get().await?;
        let row = streams::find(&mut conn, stream_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("streams/{stream_id}")))?;
        let now = Utc::now();
        let start = start.unwrap_or(row.created_at);
        let end = end.unwrap_or(now);
        if end <= start {
            return Err(Error::invalid("end_time", "must be after start_time"));
        }
        let span_s = (end - start).num_milliseconds() as f64 / 1000.0;
        let step_s = match step {
            Some(step) if step < Duration::from_secs(1) => {
                return Err(Error::invalid("step", "must be at least 1 s"));
            }
            Some(step) => step.as_secs_f64(),
            None => (span_s / DEFAULT_POINTS as f64).ceil().max(1.0),
        };
        if span_s / step_s > MAX_POINTS as f64 {
            return Err(Error::invalid(
                "step",
                format!("the window would have more than {MAX_POINTS} points; use a larger step"),
            ));
        }
        let points = metrics::series(&mut conn, stream_id, start, end, step_s).await?;
        let sampled_peak = metrics::peak(&mut conn, stream_id).await?.unwrap_or(0);
        let stored = persisted::find(&mut conn, stream_id)
            .await?
            .unwrap_or_default();
        drop(conn);
        let live = match self.store.figures(&stream_id.to_string()).await {
            Ok(figures) => figures,
            Err(err) => {
                tracing::warn!(stream.id = %stream_id, error = %err, "live figures unavailable; reporting the persisted ones");
                Figures::default()
            }
        };
        let figures = Figures {
            count: live.count,
            peak: live.peak.max(stored.peak_viewers),
            uniques: live.uniques.max(stored.unique_viewers),
            watch_ms: live.watch_ms.max(stored.watch_ms),
        };
        let duration = row
            .started_at
            .map(|started| {
                (row.ended_at.unwrap_or(now) - started)
                    .to_std()
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        Ok(Report {
            points,
            peak_viewers: figures.peak.max(i64::from(sampled_peak)),
            unique_viewers: figures.uniques,
            watch_time: Duration::from_millis(u64::try_from(figures.watch_ms).unwrap_or(0)),
            duration,
        })
    }
}

/// Samples every `interval` (the first one `interval` after start) and sweeps expired
/// sessions every second until shutdown.
pub async fn run(analytics: Analytics, interval: Duration, stop: shutdown::Signal) {
    let mut sample = shutdown::steady(interval);
    // The first sample one period after start, not at once: a replica that starts
    // has nothing newer to persist than what completion and its peers stored.
    sample.reset();
    let mut sweep = shutdown::steady(Duration::from_secs(1));
    let stopped = stop.wait();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            () = &mut stopped => return,
            _ = sample.tick() => {
                if let Err(err) = analytics.sample().await {
                    tracing::warn!(error = %err, "metrics sample failed; retrying next tick");
                }
            }
            _ = sweep.tick() => {
                if let Err(err) = analytics.store.sweep().await {
                    tracing::warn!(error = %err, "session sweep failed; retrying next tick");
                }
            }
        }
    }
}
