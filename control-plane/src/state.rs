//! Shared application state: built once at start-up, cloned cheaply into services.

use std::sync::Arc;

use crate::{
    auth::Authenticator,
    config::Config,
    db::DbPool,
    service::{ingest::Ingest, reaper::ReaperSettings, streams::Streams},
};

/// Everything the services share.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    /// Service-token check applied to every nova service.
    authenticator: Authenticator,
    /// Connection pool.
    pool: DbPool,
    /// Stream rules.
    streams: Streams,
    /// Ingest rules.
    ingest: Ingest,
    /// Reaper timing.
    reaper: ReaperSettings,
    /// RTMP ingest address handed to broadcasters.
    rtmp_url: String,
}

impl AppState {
    /// Assembles the state.
    pub fn new(pool: DbPool, authenticator: Authenticator, config: &Config) -> Self {
        Self(Arc::new(Inner {
            authenticator,
            streams: Streams::new(pool.clone()),
            ingest: Ingest::new(pool.clone(), config.reconnect_window, config.ingest_timeout),
            reaper: ReaperSettings {
                interval: config.reaper_interval,
                ingest_timeout: config.ingest_timeout,
                reconnect_window: config.reconnect_window,
            },
            pool,
            rtmp_url: config.rtmp_url.clone(),
        }))
    }

    /// Returns the connection pool.
    pub fn pool(&self) -> &DbPool {
        &self.0.pool
    }

    /// Returns the ingest rules.
    pub fn ingest(&self) -> &Ingest {
        &self.0.ingest
    }

    /// Returns the reaper timing.
    pub fn reaper(&self) -> ReaperSettings {
        self.0.reaper
    }

    /// Returns the service-token check.
    pub fn authenticator(&self) -> Authenticator {
        self.0.authenticator.clone()
    }

    /// Returns the stream rules.
    pub fn streams(&self) -> &Streams {
        &self.0.streams
    }

    /// Returns the RTMP ingest address.
    pub fn rtmp_url(&self) -> &str {
        &self.0.rtmp_url
    }
}
