//! Shared state of the edge: one `Arc` at the router ([`AppState`]), and each piece
//! of it reachable on its own through axum's [`FromRef`], so a handler or an
//! extractor names only what it uses (`State<Arc<Upstream>>`, `JwtVerifier` for
//! [`crate::auth::Owner`], `Limits` for [`crate::ratelimit::Admitted`]) and can be
//! tested with a state holding just that piece.

use std::{ops::Deref, sync::Arc};

use axum::extract::FromRef;
use nova_runtime::shutdown;

use crate::{
    auth::JwtVerifier,
    cache::AnswerCache,
    config::Config,
    metrics::EdgeMetrics,
    ratelimit::{Limits, TrustedProxies},
    upstream::Upstream,
    ws::{hub::Hub, sessions::ViewerSessions, slots::Slots},
};

/// Most distinct anonymous list queries cached at once.
const LIST_KEYS: usize = 256;
/// Most streams whose public view is cached at once.
const STREAM_KEYS: usize = 4096;

/// Everything handlers share, behind one `Arc` (axum clones the router's state for
/// every request); its fields are the [`Shared`] pieces.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The pieces of [`AppState`]; each is cheap to clone (an `Arc`, or a few).
pub struct Shared {
    /// Configuration.
    pub config: Arc<Config>,
    /// Control-plane clients.
    pub upstream: Arc<Upstream>,
    /// Bearer-token verification.
    pub jwt: JwtVerifier,
    /// Per-client rate limits.
    pub limits: Limits,
    /// The short caches of anonymous answers.
    pub caches: Caches,
    /// Sockets by stream.
    pub hub: Hub,
    /// The cap on open sockets.
    pub slots: Slots,
    /// Viewer sessions of this edge's sockets.
    pub sessions: ViewerSessions,
    /// Edge figures.
    pub metrics: Arc<EdgeMetrics>,
    /// Tells sockets to close on shutdown.
    pub stop: shutdown::Signal,
    /// Background tasks and open sockets, joined on shutdown.
    pub tasks: shutdown::Tasks,
}

/// The short caches of anonymous answers (`NOVA_LIST_CACHE`, `NOVA_STREAM_CACHE`).
#[derive(Clone)]
pub struct Caches {
    /// Anonymous stream lists, by query.
    pub lists: AnswerCache,
    /// The public view of one stream, by stream.
    pub streams: AnswerCache,
}

impl Caches {
    /// Builds both caches from their configured lifetimes.
    pub fn new(config: &Config) -> Self {
        Self {
            lists: AnswerCache::new(config.list_cache, LIST_KEYS),
            streams: AnswerCache::new(config.stream_cache, STREAM_KEYS),
        }
    }
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
            config.control_plane.service_token.expose(),
            config.stream_cache,
        );
        Self(Arc::new(Shared {
            limits: Limits::new(
                config.mutations_per_minute,
                config.reads_per_minute,
                config.ws_opens_per_minute,
            ),
            caches: Caches::new(&config),
            slots: Slots::new(config.ws_max_sockets, config.ws_max_sockets_per_ip),
            config: Arc::new(config),
            upstream: Arc::new(upstream),
            jwt,
            hub: Hub::default(),
            sessions,
            metrics: Arc::new(metrics),
            stop,
            tasks: shutdown::Tasks::new(),
        }))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl FromRef<AppState> for Arc<Config> {
    fn from_ref(state: &AppState) -> Self {
        state.config.clone()
    }
}

impl FromRef<AppState> for Arc<Upstream> {
    fn from_ref(state: &AppState) -> Self {
        state.upstream.clone()
    }
}

impl FromRef<AppState> for JwtVerifier {
    fn from_ref(state: &AppState) -> Self {
        state.jwt.clone()
    }
}

impl FromRef<AppState> for Limits {
    fn from_ref(state: &AppState) -> Self {
        state.limits.clone()
    }
}

impl FromRef<AppState> for TrustedProxies {
    fn from_ref(state: &AppState) -> Self {
        state.config.trusted_proxies.clone()
    }
}

impl FromRef<AppState> for Caches {
    fn from_ref(state: &AppState) -> Self {
        state.caches.clone()
    }
}

impl FromRef<AppState> for Arc<EdgeMetrics> {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}
