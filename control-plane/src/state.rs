//! Shared application state: built once at start-up, cloned cheaply into services.

use std::sync::Arc;

use crate::{auth::Authenticator, db::DbPool, service::streams::Streams};

/// Everything the services share.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    /// Service-token check applied to every nova service.
    authenticator: Authenticator,
    /// Stream rules.
    streams: Streams,
    /// RTMP ingest address handed to broadcasters.
    rtmp_url: String,
}

impl AppState {
    /// Assembles the state.
    pub fn new(pool: DbPool, authenticator: Authenticator, rtmp_url: String) -> Self {
        Self(Arc::new(Inner {
            authenticator,
            streams: Streams::new(pool),
            rtmp_url,
        }))
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
