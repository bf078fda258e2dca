//! What a test reads back about streams and the control plane: persisted viewer
//! figures, the analytics summary, how many streams are ACTIVE, the Redis gauge and
//! how many calls of a gRPC method the control plane answered.

use nova_proto::v1::GetStreamMetricsRequest;

use crate::{TestContext, clients};

/// Returns the persisted `(peak, uniques, watch ms)` of a stream.
pub async fn persisted(ctx: &TestContext, name: &str) -> Option<(i64, i64, i64)> {
    use diesel::sql_types::{BigInt, Text};
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        peak_viewers: i64,
        #[diesel(sql_type = BigInt)]
        unique_viewers: i64,
        #[diesel(sql_type = BigInt)]
        watch_ms: i64,
    }
    let id = name.trim_start_matches("streams/");
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT peak_viewers, unique_viewers, watch_ms FROM stream_analytics WHERE stream_id = $1::uuid",
    )
    .bind::<Text, _>(id)
    .load(&mut ctx.db().await)
    .await
    .expect("read stream_analytics");
    <[Row]>::first(&rows).map(|r| (r.peak_viewers, r.unique_viewers, r.watch_ms))
}

/// Returns GetStreamMetrics' `(peak, uniques, watch ms)`.
pub async fn summary(ctx: &TestContext, name: &str) -> (i64, i64, i64) {
    let mut analytics = clients::analytics(&ctx.url(), &ctx.token).await;
    let s = analytics
        .get_stream_metrics(GetStreamMetricsRequest {
            name: name.into(),
            ..Default::default()
        })
        .await
        .expect("GetStreamMetrics")
        .into_inner()
        .summary
        .unwrap();
    let watch = s.total_watch_time.unwrap_or_default();
    (
        s.peak_viewers,
        s.unique_viewers,
        watch.seconds * 1000 + i64::from(watch.nanos) / 1_000_000,
    )
}

/// Returns how many streams are ACTIVE.
pub async fn active_streams(db: &mut diesel_async::AsyncPgConnection) -> i64 {
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let row: Row = diesel::sql_query("SELECT count(*) AS n FROM streams WHERE status = 'active'")
        .get_result(db)
        .await
        .expect("count active streams");
    row.n
}

/// Returns the value of `nova_streaming_redis_up` on the control plane's `/metrics`.
pub async fn redis_up(ctx: &TestContext) -> String {
    let text = crate::http::get(&ctx.metrics_url())
        .await
        .expect("scrape /metrics")
        .text();
    text.lines()
        .find(|l| l.starts_with("nova_streaming_redis_up"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or("missing")
        .to_owned()
}

/// Returns how many calls of gRPC `method` (`/nova.streaming.v1.Service/Method`) the
/// control plane has answered, whatever their code, from its `/metrics`
/// (`nova_streaming_grpc_server_requests_total`).
pub async fn grpc_calls(ctx: &TestContext, method: &str) -> u64 {
    let text = crate::http::get(&ctx.metrics_url())
        .await
        .expect("scrape the control plane's /metrics")
        .text();
    let label = format!("method=\"{method}\"");
    text.lines()
        .filter(|l| l.starts_with("nova_streaming_grpc_server_requests_total{"))
        .filter(|l| l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
