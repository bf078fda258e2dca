//! Start-up and shutdown of the edge.

use std::{net::SocketAddr, time::Duration};

use tokio::{net::TcpListener, task::JoinHandle};

use crate::{
    auth::{JwtRules, JwtVerifier},
    config::Config,
    metrics::EdgeMetrics,
    routes, shutdown,
    state::AppState,
    upstream::Upstream,
    ws,
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
        &config.control_plane.url,
        config.control_plane.ca.as_deref(),
        config.control_plane.service_token.expose(),
    )?;
    let jwt = JwtVerifier::new(&jwt_rules(config))?;
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
    let tasks = state.tasks.clone();
    tasks.spawn(ws::watch::run(upstream, state.hub.clone(), signal.clone()));
    tasks.spawn(
        state
            .limits
            .clone()
            .run_pruning(Duration::from_secs(60), signal.clone()),
    );
    tasks.spawn(
        state
            .sessions
            .clone()
            .run_heartbeats(config.session_heartbeat, signal.clone()),
    );
    let app = routes::router(state.clone());
    let limits = config.http;
    let registry = state.metrics.registry().clone();
    let drain = config.drain_timeout;
    let task = tokio::spawn(async move {
        let stopped = signal.clone().wait();
        let serving = nova_runtime::http::serve(listener, app, signal.wait(), limits, &registry);
        tokio::pin!(serving);
        let served = tokio::select! {
            () = &mut serving => true,
            () = stopped => false,
        };
        // From here every socket is sending its close frame (1001) and leaving its
        // session; the background tasks are stopping. All of it within the deadline.
        let deadline = tokio::time::Instant::now() + drain;
        if !served && tokio::time::timeout_at(deadline, serving).await.is_err() {
            tracing::warn!("HTTP connections still open at the drain deadline");
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tasks.join(left).await {
            Ok(()) => tracing::info!("drained: every socket closed and left its session"),
            Err(unfinished) => {
                tracing::warn!(error = %unfinished, "drain deadline passed; exiting")
            }
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

/// Returns the bearer-token rules `config` sets.
fn jwt_rules(config: &Config) -> JwtRules<'_> {
    JwtRules {
        hs256_secrets: config.jwt_hs256_secret.as_ref().map(|s| s.expose()),
        rs256_public_key: config.jwt_rs256_public_key.as_deref(),
        issuer: config.jwt_issuer.as_deref(),
        audience: config.jwt_audience.as_deref(),
        max_lifetime: config.jwt_max_lifetime,
    }
}

impl Edge {
    /// Closes every socket (1001 with a reconnect hint), stops serving and waits for
    /// the sockets to leave their sessions and the background tasks to end, at most
    /// `NOVA_EDGE_DRAIN_TIMEOUT`.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.trigger.fire();
        self.task.await?
    }
}
