//! Queries on the `stream_metrics` time series.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{BigInt, Double, Integer, Nullable, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    schema::{stream_metrics, streams},
    status::StreamStatus,
};

/// One sample to store.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = stream_metrics)]
pub struct Sample {
    /// Stream.
    pub stream_id: Uuid,
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// Live viewers.
    pub viewers: i32,
    /// Ingest bitrate, kb/s.
    pub ingest_bitrate_kbps: i32,
}

/// One step of a series.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct Point {
    /// Start of the step.
    #[diesel(sql_type = Timestamptz)]
    pub bucket: DateTime<Utc>,
    /// Highest viewer count in the step.
    #[diesel(sql_type = Integer)]
    pub viewers: i32,
    /// Mean ingest bitrate in the step.
    #[diesel(sql_type = BigInt)]
    pub bitrate: i64,
}

/// Returns the active streams with their latest ingest bitrate (kb/s), for sampling.
pub async fn active_streams(
    conn: &mut AsyncPgConnection,
) -> QueryResult<Vec<(Uuid, Option<serde_json::Value>)>> {
    streams::table
        .filter(streams::status.eq(StreamStatus::Active.as_db()))
        .select((streams::id, streams::ingest_health))
        .load(conn)
        .await
}

/// Stores samples; a sample already stored for the same stream and time is kept.
pub async fn insert(conn: &mut AsyncPgConnection, samples: &[Sample]) -> QueryResult<usize> {
    diesel::insert_into(stream_metrics::table)
        .values(samples)
        .on_conflict_do_nothing()
        .execute(conn)
        .await
}

/// Returns the series of a stream in `[start, end)`, one point per `step_s` seconds
/// aligned on `start`; steps without samples are left out.
pub async fn series(
    conn: &mut AsyncPgConnection,
    stream_id: Uuid,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step_s: f64,
) -> QueryResult<Vec<Point>> {
    diesel::sql_query(
        "SELECT date_bin(make_interval(secs => $2), at, $3) AS bucket, \
                max(viewers) AS viewers, avg(ingest_bitrate_kbps)::bigint AS bitrate \
         FROM stream_metrics \
         WHERE stream_id = $1 AND at >= $3 AND at < $4 \
         GROUP BY bucket ORDER BY bucket",
    )
    .bind::<SqlUuid, _>(stream_id)
    .bind::<Double, _>(step_s)
    .bind::<Timestamptz, _>(start)
    .bind::<Timestamptz, _>(end)
    .load(conn)
    .await
}

/// Returns the highest sampled viewer count of a stream, if any.
pub async fn peak(conn: &mut AsyncPgConnection, stream_id: Uuid) -> QueryResult<Option<i32>> {
    #[derive(QueryableByName)]
    struct Peak {
        #[diesel(sql_type = Nullable<Integer>)]
        peak: Option<i32>,
    }
    let row: Peak =
        diesel::sql_query("SELECT max(viewers) AS peak FROM stream_metrics WHERE stream_id = $1")
            .bind::<SqlUuid, _>(stream_id)
            .get_result(conn)
            .await?;
    Ok(row.peak)
}
