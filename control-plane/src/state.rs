//! Shared application state: built once at start-up, cloned cheaply into services.

use std::sync::Arc;

use crate::{
    auth::Authenticator,
    config::Config,
    db::DbPool,
    metrics::CpMetrics,
    redis::{Keys, Redis, Target, availability::Availability, sessions::SessionStore},
    service::{
        analytics::Analytics,
        assets::Assets,
        audit::Audit,
        ingest::Ingest,
        live::Hub,
        playback::Playback,
        publish::{Drain, Publisher},
        reaper::ReaperSettings,
        recording::Recordings,
        sessions::Sessions,
        stream_cache::StreamCache,
        streams::Streams,
        watch::Watches,
        webhooks::{AddressPolicy, Webhooks},
    },
    shutdown,
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
    /// Publishes committed events.
    publisher: Publisher,
    /// Viewer sessions.
    sessions: Sessions,
    /// Sampler and metric queries.
    analytics: Analytics,
    /// Live events of this replica.
    hub: Hub,
    /// Event watching (WatchEvents).
    watches: Watches,
    /// Playback tokens, signing keys and verifier rules.
    playback: Playback,
    /// The audit trail's listing.
    audit: Audit,
    /// Background tasks (hub, cache follower, publisher, watches), joined on shutdown.
    tasks: shutdown::Tasks,
    /// RTMP ingest address handed to broadcasters.
    rtmp_url: String,
    /// Whether Redis answers now.
    redis_availability: Availability,
    /// Redis connections (for the availability probe).
    redis: Redis,
    /// Webhook endpoint rules.
    webhooks: Webhooks,
    /// Where webhooks may go.
    webhook_policy: Arc<AddressPolicy>,
    /// Asset rules.
    assets: Assets,
    /// Recorded pieces.
    recordings: Recordings,
    /// The asset store; `None` when recording is off.
    store: Option<nova_store::AssetStore>,
}

impl AppState {
    /// Assembles the state and starts the live hub (event-log follower and Redis
    /// subscription), the stream cache's follower and the event publisher, which run
    /// until `stop`, tracked by `tasks` (joined on shutdown). `redis` is where Redis
    /// is and the connections to it; it need not answer: `availability` says whether
    /// it does.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pool: DbPool,
        (target, redis): (Target, Redis),
        availability: Availability,
        authenticator: Authenticator,
        metrics: CpMetrics,
        asset_store: Option<nova_store::AssetStore>,
        config: &Config,
        (stop, tasks): (shutdown::Signal, &shutdown::Tasks),
    ) -> Self {
        let keys = Keys::new(&config.redis_prefix);
        let ttl_ms = i64::try_from(config.session_ttl.as_millis()).unwrap_or(i64::MAX);
        let store = SessionStore::new(redis.clone(), keys.clone(), ttl_ms, availability.clone());
        let hub = Hub::start(
            pool.clone(),
            target,
            keys.clone(),
            config.count_window,
            (stop.clone(), tasks),
        );
        let analytics = Analytics::new(
            pool.clone(),
            store.clone(),
            metrics.clone(),
            config.sample_interval,
        );
        let drain = Drain {
            redis: redis.clone(),
            keys,
            availability: availability.clone(),
            hub: hub.clone(),
            analytics: analytics.clone(),
        };
        let cache = StreamCache::new(config.stream_cache);
        tasks.spawn(cache.clone().follow(hub.clone(), stop.clone()));
        let publisher = Publisher::start(drain, cache.clone(), metrics.clone(), (stop, tasks));
        let webhook_policy = Arc::new(AddressPolicy::new(
            config.webhooks.allow_private,
            config.webhooks.allowed_cidrs.clone(),
        ));
        let sessions = Sessions::new(pool.clone(), store.clone(), cache.clone());
        Self(Arc::new(Inner {
            webhooks: Webhooks::new(
                pool.clone(),
                webhook_policy.clone(),
                config.webhooks.secret_grace,
            ),
            webhook_policy,
            authenticator,
            streams: Streams::new(
                pool.clone(),
                publisher.clone(),
                cache.clone(),
                asset_store.is_some(),
            ),
            assets: Assets::new(pool.clone(), asset_store.clone(), config.vod_url.clone()),
            recordings: Recordings::new(pool.clone()),
            store: asset_store,
            ingest: Ingest::new(
                pool.clone(),
                publisher.clone(),
                config.reconnect_window,
                config.ingest_timeout,
            ),
            reaper: ReaperSettings {
                interval: config.reaper_interval,
                ingest_timeout: config.ingest_timeout,
                reconnect_window: config.reconnect_window,
                ingest_lost_window: config.ingest_lost_window.max(config.reconnect_window),
            },
            sessions: sessions.clone(),
            playback: Playback::new(pool.clone(), sessions),
            audit: Audit::new(pool.clone()),
            watches: Watches::new(pool.clone(), hub.clone()),
            analytics,
            publisher,
            hub,
            tasks: tasks.clone(),
            pool,
            rtmp_url: config.rtmp_url.clone(),
            redis_availability: availability,
            redis,
        }))
    }

    /// Returns whether Redis answers now.
    pub fn redis_availability(&self) -> &Availability {
        &self.0.redis_availability
    }

    /// Returns the Redis connections.
    pub fn redis(&self) -> &Redis {
        &self.0.redis
    }

    /// Returns the event publisher.
    pub fn publisher(&self) -> &Publisher {
        &self.0.publisher
    }

    /// Returns the session rules.
    pub fn sessions(&self) -> &Sessions {
        &self.0.sessions
    }

    /// Returns the analytics.
    pub fn analytics(&self) -> &Analytics {
        &self.0.analytics
    }

    /// Returns the live hub.
    pub fn hub(&self) -> &Hub {
        &self.0.hub
    }

    /// Returns the background tasks joined on shutdown (WatchEvents calls' tasks
    /// join them).
    pub fn tasks(&self) -> &shutdown::Tasks {
        &self.0.tasks
    }

    /// Returns event watching.
    pub fn watches(&self) -> &Watches {
        &self.0.watches
    }

    /// Returns the playback rules.
    pub fn playback(&self) -> &Playback {
        &self.0.playback
    }

    /// Returns the audit trail's listing.
    pub fn audit(&self) -> &Audit {
        &self.0.audit
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

    /// Returns the webhook endpoint rules.
    pub fn webhooks(&self) -> &Webhooks {
        &self.0.webhooks
    }

    /// Returns where webhooks may go.
    pub fn webhook_policy(&self) -> Arc<AddressPolicy> {
        self.0.webhook_policy.clone()
    }

    /// Returns the asset rules.
    pub fn assets(&self) -> &Assets {
        &self.0.assets
    }

    /// Returns the recorded-piece rules.
    pub fn recordings(&self) -> &Recordings {
        &self.0.recordings
    }

    /// Returns the asset store, if recording is on.
    pub fn store(&self) -> Option<&nova_store::AssetStore> {
        self.0.store.as_ref()
    }

    /// Returns the RTMP ingest address.
    pub fn rtmp_url(&self) -> &str {
        &self.0.rtmp_url
    }
}
