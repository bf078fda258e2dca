//! `nova.streaming.v1.AnalyticsService` over [`crate::service::analytics`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use nova_proto::v1::{
    GetStreamMetricsRequest, GetStreamMetricsResponse, MetricPoint, MetricsSummary,
    analytics_service_server::AnalyticsService,
};
use tonic::{Request, Response, Status};

use crate::{
    error::Error,
    grpc::{convert::timestamp, name::parse_stream_name, session_service::duration_ms},
    service::analytics::Analytics,
    state::AppState,
};

/// gRPC face of analytics.
pub struct AnalyticsApi {
    /// The rules.
    analytics: Analytics,
}

impl AnalyticsApi {
    /// Builds the service from the shared state.
    pub fn new(state: &AppState) -> Self {
        Self {
            analytics: state.analytics().clone(),
        }
    }
}

#[tonic::async_trait]
impl AnalyticsService for AnalyticsApi {
    async fn get_stream_metrics(
        &self,
        request: Request<GetStreamMetricsRequest>,
    ) -> Result<Response<GetStreamMetricsResponse>, Status> {
        let req = request.into_inner();
        let stream = parse_stream_name("name", &req.name)?;
        let start = req.start_time.map(|t| time("start_time", t)).transpose()?;
        let end = req.end_time.map(|t| time("end_time", t)).transpose()?;
        let step = req
            .step
            .map(|d| {
                u64::try_from(d.seconds)
                    .ok()
                    .filter(|_| d.nanos >= 0)
                    .map(|s| Duration::new(s, d.nanos.unsigned_abs()))
                    .ok_or_else(|| Error::invalid("step", "must be positive"))
            })
            .transpose()?;
        let report = self.analytics.report(stream, start, end, step).await?;
        Ok(Response::new(GetStreamMetricsResponse {
            points: report
                .points
                .iter()
                .map(|p| MetricPoint {
                    time: Some(timestamp(p.bucket)),
                    viewers: i64::from(p.viewers),
                    ingest_bitrate_kbps: p.bitrate,
                })
                .collect(),
            summary: Some(MetricsSummary {
                peak_viewers: report.peak_viewers,
                unique_viewers: report.unique_viewers,
                total_watch_time: Some(duration_ms(
                    i64::try_from(report.watch_time.as_millis()).unwrap_or(i64::MAX),
                )),
                duration: Some(duration_ms(
                    i64::try_from(report.duration.as_millis()).unwrap_or(i64::MAX),
                )),
            }),
        }))
    }
}

fn time(field: &'static str, t: prost_types::Timestamp) -> Result<DateTime<Utc>, Error> {
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(u32::MAX))
        .ok_or_else(|| Error::invalid(field, "is not a valid timestamp"))
}
