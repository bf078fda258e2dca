//! Shared state of the edge.

use std::sync::Arc;

use nova_runtime::shutdown;

use crate::{
    auth::JwtVerifier,
    cache::AnswerCache,
    config::Config,
    metrics::EdgeMetrics,
    ratelimit::Limits,
    upstream::Upstream,
    ws::{hub::Hub, sessions::ViewerSessions, slots::Slots},
};

/// Most distinct anonymous list queries cached at once.
const LIST_KEYS: usize = 256;
/// Most streams whose public view is cached at once.
const STREAM_KEYS: usize = 4096;

/// Everything handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    /// Configuration.
    config: Config,
    /// Control-plane clients.
    upstream: Upstream,
    /// Bearer-token verification.
    jwt: JwtVerifier,
    /// Per-client rate limits.
    limits: Limits,
    /// The short cache of anonymous stream lists.
    lists: AnswerCache,
    /// The short cache of anonymous single-stream reads.
    streams: AnswerCache,
    /// Sockets by stream.
    hub: Hub,
    /// The cap on open sockets.
    slots: Slots,
    /// Viewer sessions of this edge's sockets.
    sessions: ViewerSessions,
    /// Edge figures.
    metrics: EdgeMetrics,
    /// Tells sockets to close on shutdown.
    stop: shutdown::Signal,
    /// Background tasks and open sockets, joined on shutdown.
    tasks: shutdown::Tasks,
}

impl AppState {
    /// Assembles the state.
    pub fn new(
        config: Config,
        upstream: Upstream,
        jwt: JwtVerifier,
        metrics: EdgeMetrics,
        stop: shutdown::Signal,
    ) -> Self {
        let sessions = ViewerSessions::new(
            upstream.clone(),
            config.node.clone(),
            config.service_token.expose(),
            config.stream_cache,
        );
        Self(Arc::new(Inner {
            limits: Limits::new(
                config.mutations_per_minute,
                config.reads_per_minute,
                config.ws_opens_per_minute,
            ),
            lists: AnswerCache::new(config.list_cache, LIST_KEYS),
            streams: AnswerCache::new(config.stream_cache, STREAM_KEYS),
            slots: Slots::new(config.ws_max_sockets, config.ws_max_sockets_per_ip),
            config,
            upstream,
            jwt,
            hub: Hub::default(),
            sessions,
            metrics,
            stop,
            tasks: shutdown::Tasks::new(),
        }))
    }

    /// Returns the configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// Returns the control-plane clients.
    pub fn upstream(&self) -> &Upstream {
        &self.0.upstream
    }

    /// Returns the JWT verifier.
    pub fn jwt(&self) -> &JwtVerifier {
        &self.0.jwt
    }

    /// Returns the cap on open sockets.
    pub fn slots(&self) -> &Slots {
        &self.0.slots
    }

    /// Returns the per-client rate limits.
    pub fn limits(&self) -> &Limits {
        &self.0.limits
    }

    /// Returns the anonymous stream-list cache.
    pub fn lists(&self) -> &AnswerCache {
        &self.0.lists
    }

    /// Returns the anonymous single-stream cache.
    pub fn streams(&self) -> &AnswerCache {
        &self.0.streams
    }

    /// Returns the socket hub.
    pub fn hub(&self) -> &Hub {
        &self.0.hub
    }

    /// Returns the viewer sessions.
    pub fn sessions(&self) -> &ViewerSessions {
        &self.0.sessions
    }

    /// Returns the edge figures.
    pub fn metrics(&self) -> &EdgeMetrics {
        &self.0.metrics
    }

    /// Returns the shutdown signal.
    pub fn stop(&self) -> shutdown::Signal {
        self.0.stop.clone()
    }

    /// Returns the background tasks and open sockets that shutdown joins.
    pub fn tasks(&self) -> &shutdown::Tasks {
        &self.0.tasks
    }
}
