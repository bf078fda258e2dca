//! Shared state of the hooks service.

use std::sync::Arc;

use crate::{
    budget::PublishBudget,
    callback::Insiders,
    config::Config,
    metrics::HooksMetrics,
    playback::{PlaybackRules, viewers::Viewers},
    recordings::Recorder,
    upstream::Upstream,
};

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
    /// nginx's own connections, as the callback parser recognises them.
    insiders: Insiders,
    /// Failed-publish budget per peer address.
    budget: PublishBudget,
    /// What the playback verifier checks tokens against.
    playback: PlaybackRules,
    /// Viewer sessions of token playback.
    viewers: Viewers,
    /// RTMP players on this node: nginx client id → viewer session id.
    players: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Hands recorded pieces over; `None` when this node does not record.
    recorder: Option<Recorder>,
    /// The asset store the VOD origin reads; `None` without one.
    store: Option<nova_store::AssetStore>,
}

/// What a node records and serves on demand, for [`AppState::new`].
#[derive(Clone, Default)]
pub struct Recording {
    /// Hands recorded pieces over; `None` when this node does not record.
    pub recorder: Option<Recorder>,
    /// The asset store the VOD origin reads.
    pub store: Option<nova_store::AssetStore>,
}

impl AppState {
    /// Assembles the state.
    pub fn new(
        config: Config,
        upstream: Upstream,
        metrics: HooksMetrics,
        playback: PlaybackRules,
        viewers: Viewers,
        recording: Recording,
    ) -> Self {
        let insiders = Insiders::new(
            &[&config.relay_url, &config.record_url],
            config.secret.as_ref().map(|s| s.expose().to_owned()),
        );
        let budget = PublishBudget::new(config.publish_failures, config.publish_failure_refill);
        Self(Arc::new(Inner {
            insiders,
            budget,
            config,
            upstream,
            metrics,
            playback,
            viewers,
            players: std::sync::Mutex::default(),
            recorder: recording.recorder,
            store: recording.store,
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

    /// Returns the recorder, when this node records.
    pub fn recorder(&self) -> Option<&Recorder> {
        self.0.recorder.as_ref()
    }

    /// Returns the asset store the VOD origin reads, if any.
    pub fn store(&self) -> Option<&nova_store::AssetStore> {
        self.0.store.as_ref()
    }

    /// Returns the viewer sessions of token playback.
    pub fn viewers(&self) -> &Viewers {
        &self.0.viewers
    }

    /// Returns the playback rules.
    pub fn playback(&self) -> &PlaybackRules {
        &self.0.playback
    }

    /// Returns what the callback parser needs to recognise nginx's own connections.
    pub fn insiders(&self) -> &Insiders {
        &self.0.insiders
    }

    /// Returns the failed-publish budget.
    pub fn budget(&self) -> &PublishBudget {
        &self.0.budget
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
