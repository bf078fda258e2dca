//! The HTTP surface: `/api/v1` (streams, signing keys, webhooks), health, the
//! WebSocket, the viewer page.

pub mod assets;
pub mod audit;
pub mod health;
pub mod list;
pub mod playback;
pub mod streams;
pub mod webhooks;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderValue, Method, header},
    routing::get,
};
use tower_http::{
    cors::{AllowOrigin, Any, CorsLayer},
    services::ServeDir,
};

use crate::{metrics::EdgeMetrics, state::AppState, ws};

/// Builds the router.
pub fn router(state: AppState) -> Router {
    let config = state.config.clone();
    let api = Router::new()
        .route("/streams", get(list::list).post(streams::create))
        .route(
            "/streams/{id}",
            get(streams::get)
                .delete(streams::end)
                .patch(streams::update),
        )
        .route(
            "/streams/{id}/rotate-key",
            axum::routing::post(streams::rotate_key),
        )
        .route("/streams/{id}/metrics", get(streams::metrics))
        .route("/streams/{id}/audit", get(audit::list))
        .route("/streams/{id}/assets", get(assets::list))
        .route("/assets/{id}", get(assets::get).delete(assets::delete))
        .route(
            "/streams/{id}/playback-tokens",
            axum::routing::post(playback::create_token),
        )
        .route(
            "/signing-keys",
            get(playback::list_keys).post(playback::create_key),
        )
        .route(
            "/signing-keys/{id}",
            axum::routing::delete(playback::delete_key),
        )
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/webhooks/{id}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route(
            "/webhooks/{id}/rotate-secret",
            axum::routing::post(webhooks::rotate_secret),
        )
        .route("/webhooks/{id}/attempts", get(webhooks::attempts))
        .route(
            "/webhooks/{id}/redeliver",
            axum::routing::post(webhooks::redeliver),
        )
        .route("/streams/{id}/ws", get(ws::socket::upgrade))
        .fallback(|| async { crate::error::ApiError::not_found("no such API route") });
    let web = ServeDir::new(&config.web_dir).append_index_html_on_directories(true);
    let mut router = Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    if config.metrics_addr.is_none() {
        router = router.route("/metrics", get(metrics));
    } else {
        router = router.route(
            "/metrics",
            get(|| async { crate::error::ApiError::not_found("metrics are served privately") }),
        );
    }
    router
        .fallback_service(web)
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.http(),
            nova_runtime::metrics::track_http,
        ))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(cors(&config.cors_origins))
        .with_state(state)
}

async fn metrics(
    axum::extract::State(metrics): axum::extract::State<Arc<EdgeMetrics>>,
) -> axum::response::Response {
    nova_runtime::metrics::exposition(metrics.registry())
}

fn cors(origins: &str) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(3600));
    if origins.trim() == "*" {
        return layer.allow_origin(Any);
    }
    let list: Vec<HeaderValue> = origins
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    layer.allow_origin(AllowOrigin::list(list))
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
