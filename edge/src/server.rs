//! Start-up and shutdown of the edge.

use std::{net::SocketAddr, time::Duration};

use tokio::{net::TcpListener, task::JoinHandle};

use crate::{
    auth::JwtVerifier, config::Config, metrics::EdgeMetrics, routes, shutdown, state::AppState,
    upstream::Upstream, ws,
};

/// A running edge.
pub struct Edge {
    /// Address it listens on.
    pub addr: SocketAddr,
    /// The private `/metrics` listener, when `NOVA_EDGE_METRICS_ADDR` asked for one.
    pub metrics_addr: Option<SocketAddr>,
    /// Fires the shutdown.
    trigger: shutdown::Trigger,
    /// The serving task.
    task: JoinHandle<anyhow::Result<()>>,
    /// Shared state (for tests: open sockets and sessions).
    pub state: AppState,
}

/// Binds, starts the upstream event stream and the session heartbeats, and serves.
pub async fn start(config: &Config) -> anyhow::Result<Edge> {
    config.validate().map_err(|e| anyhow::anyhow!(e))?;
    let upstream = Upstream::new(
        &config.control_plane_url,
        config.control_plane_ca.as_deref(),
        config.service_token.expose(),
    )?;
    let jwt = JwtVerifier::from_config(config)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} (NOVA_EDGE_ADDR): {e}", config.listen))?;
    let addr = listener.local_addr()?;
    let (trigger, signal) = shutdown::channel();
    let metrics = EdgeMetrics::new().map_err(|e| anyhow::anyhow!(e))?;
    let metrics_addr = match config.metrics_addr {
        Some(addr) => Some(
            nova_runtime::metrics::serve_with_limits(
                metrics.registry().clone(),
                addr,
                "NOVA_EDGE_METRICS_ADDR",
                signal.clone(),
                config.http,
            )
            .await
            .map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    let state = AppState::new(
        config.clone(),
        upstream.clone(),
        jwt,
        metrics,
        signal.clone(),
    );
    tokio::spawn(ws::hub::run_upstream(
        upstream,
        state.hub().clone(),
        signal.clone(),
    ));
    tokio::spawn(
        state
            .limits()
            .clone()
            .run_pruning(Duration::from_secs(60), signal.clone()),
    );
    tokio::spawn(
        state
            .sessions()
            .clone()
            .run_heartbeats(config.session_heartbeat, signal.clone()),
    );
    let app = routes::router(state.clone());
    let sessions = state.sessions().clone();
    let limits = config.http;
    let registry = state.metrics().registry().clone();
    let task = tokio::spawn(async move {
        nova_runtime::http::serve(listener, app, signal.clone().wait(), limits, &registry).await;
        // Sockets got their close frames; let them leave their sessions.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !sessions.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    });
    tracing::info!(edge.addr = %addr, "edge serving");
    Ok(Edge {
        addr,
        metrics_addr,
        trigger,
        task,
        state,
    })
}

impl Edge {
    /// Closes every socket (1001), stops serving and waits.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.trigger.fire();
        self.task.await?
    }
}
