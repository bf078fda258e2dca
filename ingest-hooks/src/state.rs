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
}

impl AppState {
    /// Assembles the state.
    pub fn new(config: Config, upstream: Upstream, metrics: HooksMetrics) -> Self {
        Self(Arc::new(Inner {
            config,
            upstream,
            metrics,
        }))
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
