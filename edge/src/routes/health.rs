//! `/healthz` (the process lives) and `/readyz` (the control plane answers).

use std::{sync::Arc, time::Duration};

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};
use tonic_health_check::check;

use crate::upstream::Upstream;

/// Answers 200 while the process runs.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Answers 200 when the control plane reports SERVING, 503 otherwise.
pub async fn readyz(State(upstream): State<Arc<Upstream>>) -> (StatusCode, Json<Value>) {
    match tokio::time::timeout(Duration::from_secs(2), check(upstream.channel.clone())).await {
        Ok(Ok(true)) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "reason": "control plane not serving" })),
        ),
    }
}

/// A minimal grpc.health.v1 check over the shared channel.
mod tonic_health_check {
    use tonic::transport::Channel;

    /// Returns whether the control plane answers SERVING.
    pub(crate) async fn check(channel: Channel) -> Result<bool, tonic::Status> {
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let answer = client
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await?
            .into_inner();
        Ok(answer.status() == tonic_health::pb::health_check_response::ServingStatus::Serving)
    }
}
