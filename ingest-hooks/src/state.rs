//! Shared state of the hooks service.

use std::sync::Arc;

use crate::{config::Config, metrics::HooksMetrics, upstream::Upstream};

/// Everything the handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    /// The configuration.
    config: Config,
    /// Control-plane client.
    upstream: Upstream,
    /// Instruments.
    metrics: HooksMetrics,
    /// RTMP players on this node: nginx client id → viewer session id.
    players: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl AppState {
    /// Assembles the state.
    pub fn new(config: Config, upstream: Upstream, metrics: HooksMetrics) -> Self {
        Self(Arc::new(Inner {
            config,
            upstream,
            metrics,
            players: std::sync::Mutex::default(),
        }))
    }

    /// Records the session of an RTMP player.
    pub fn add_player(&self, client_id: &str, session_id: String) {
        self.players().insert(client_id.to_owned(), session_id);
    }

    /// Returns the session of an RTMP player.
    pub fn player(&self, client_id: &str) -> Option<String> {
        self.players().get(client_id).cloned()
    }

    /// Forgets an RTMP player; returns its session.
    pub fn remove_player(&self, client_id: &str) -> Option<String> {
        self.players().remove(client_id)
    }

    fn players(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, String>> {
        self.0.players.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns the instruments.
    pub fn metrics(&self) -> &HooksMetrics {
        &self.0.metrics
    }

    /// Returns the configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// Returns the control-plane client.
    pub fn upstream(&self) -> &Upstream {
        &self.0.upstream
    }
}
