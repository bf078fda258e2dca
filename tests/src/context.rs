//! One test's world: engines, its own database, a running control plane.

use std::{net::SocketAddr, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use nova_control_plane::{Config, ControlPlane};
use nova_stack::stack::TestEngines;
use rand::RngCore;

/// Where the engines of this test run are.
pub struct Engines {
    /// Admin URL (database `postgres`) of the PostgreSQL server.
    pub database_admin_url: String,
    /// Redis URL.
    pub redis_url: String,
    /// Engines this test started itself (when not run under `nova-stack test-env`).
    _own: Option<TestEngines>,
}

impl Engines {
    /// Uses the shared engines when the environment names them, else starts private ones.
    pub fn get() -> Self {
        match (
            std::env::var("NOVA_TEST_DATABASE_URL"),
            std::env::var("NOVA_TEST_REDIS_URL"),
        ) {
            (Ok(database_admin_url), Ok(redis_url)) => Self {
                database_admin_url,
                redis_url,
                _own: None,
            },
            _ => {
                let own = TestEngines::start().expect("start private PostgreSQL and Redis");
                Self {
                    database_admin_url: own.postgres.url("postgres"),
                    redis_url: own.redis.url(),
                    _own: Some(own),
                }
            }
        }
    }

    /// Uses the engines at these URLs (e.g. private ones a test restarts).
    pub fn at(database_admin_url: String, redis_url: String) -> Self {
        Self {
            database_admin_url,
            redis_url,
            _own: None,
        }
    }

    /// Creates an empty database with a unique name and returns its URL.
    pub async fn fresh_database(&self) -> String {
        let name = format!("nova_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = AsyncPgConnection::establish(&self.database_admin_url)
            .await
            .expect("connect to the PostgreSQL admin database");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let base = self
            .database_admin_url
            .rsplit_once('/')
            .map(|(base, _)| base)
            .expect("admin URL ends with /<db>");
        format!("{base}/{name}")
    }
}

/// Returns the PostgreSQL URL `url` with its `host:port` replaced by `addr` (e.g. a
/// chaos proxy in front of the server).
pub fn with_address(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("URL has a scheme");
    let (authority, path) = rest.split_once('/').expect("URL has a database path");
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    format!("{scheme}://{}{addr}/{path}", &authority[..host_start])
}

/// Returns the `host:port` of a loopback PostgreSQL or Redis URL.
pub fn address_of(url: &str) -> SocketAddr {
    let (_, rest) = url.split_once("://").expect("URL has a scheme");
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    host.replace("localhost", "127.0.0.1")
        .parse()
        .expect("URL names 127.0.0.1:<port>")
}

/// A random service token.
pub fn random_token() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    format!("test_svc_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A control plane on a fresh database, stopped when the context is shut down.
pub struct TestContext {
    /// The engines (kept alive for the test).
    pub engines: Engines,
    /// URL of this test's database.
    pub database_url: String,
    /// The admin service token (every method, may act for users).
    pub token: String,
    /// The edge role's service token.
    pub edge_token: String,
    /// The ingest role's service token (ingest-hooks).
    pub ingest_token: String,
    /// The running control plane.
    control_plane: Option<ControlPlane>,
    /// The control plane's configuration, for starting replicas.
    pub config: Config,
    /// Holds the asset store (`store/`, a `file://` store unless the test chose
    /// another) and the remux work folders (`remux/`).
    pub assets_dir: tempfile::TempDir,
}

impl TestContext {
    /// Starts engines (or uses the shared ones), a fresh database and a control plane.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`TestContext::start`], with the control-plane config adjusted by `adjust`.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_on(Engines::get(), adjust).await
    }

    /// Like [`TestContext::start_with`], on the given engines.
    pub async fn start_on(engines: Engines, adjust: impl FnOnce(&mut Config)) -> Self {
        if std::env::var_os("NOVA_TEST_LOG").is_some() {
            // The in-process services' logs, for one test at a time (`--nocapture`).
            nova_runtime::telemetry::init(nova_runtime::LogFormat::Text);
        }
        let database_url = engines.fresh_database().await;
        let token = random_token();
        let mut config = engines.config(&database_url, &token);
        let assets_dir = tempfile::Builder::new()
            .prefix("nova-assets-")
            .tempdir()
            .expect("temp dir for the asset store");
        config.store = nova_control_plane::config::StoreArgs::at(format!(
            "file://{}",
            assets_dir.path().join("store").display()
        ));
        config.remux_dir = Some(assets_dir.path().join("remux"));
        let (edge_token, ingest_token) = (random_token(), random_token());
        config.edge_service_token = Some(edge_token.as_str().into());
        config.ingest_service_token = Some(ingest_token.as_str().into());
        adjust(&mut config);
        let control_plane = nova_control_plane::start(&config)
            .await
            .expect("start the control plane");
        Self {
            engines,
            database_url,
            token,
            edge_token,
            ingest_token,
            control_plane: Some(control_plane),
            config,
            assets_dir,
        }
    }

    /// Starts another control-plane replica on the same database and Redis prefix.
    pub async fn replica(&self) -> ControlPlane {
        nova_control_plane::start(&self.config)
            .await
            .expect("start a control-plane replica")
    }

    /// Returns the control plane's gRPC address.
    pub fn addr(&self) -> SocketAddr {
        self.control_plane
            .as_ref()
            .expect("control plane running")
            .addr
    }

    /// Returns the control plane's `/metrics` URL.
    pub fn metrics_url(&self) -> String {
        format!(
            "http://{}/metrics",
            self.control_plane
                .as_ref()
                .expect("control plane running")
                .metrics_addr
        )
    }

    /// Returns the control plane's `http://` URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Opens a direct connection to this test's database.
    pub async fn db(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.database_url)
            .await
            .expect("connect to the test database")
    }

    /// Stops the control plane, waits `down`, and starts it again on the same gRPC
    /// address, as a restart of its process would (its clients reconnect by
    /// themselves).
    pub async fn restart(&mut self, down: Duration) {
        self.restart_while(tokio::time::sleep(down)).await;
    }

    /// Stops the control plane, runs `during` while it is down (say, calls to a
    /// replica), and starts it again on the same gRPC address; returns what `during`
    /// returned.
    pub async fn restart_while<T>(&mut self, during: impl std::future::Future<Output = T>) -> T {
        let addr = self.addr();
        self.shutdown().await.expect("stop the control plane");
        let out = during.await;
        let mut config = self.config.clone();
        config.grpc_addr = addr;
        self.control_plane = Some(
            nova_control_plane::start(&config)
                .await
                .expect("restart the control plane on its address"),
        );
        out
    }

    /// Shuts the control plane down and returns its outcome.
    pub async fn shutdown(&mut self) -> anyhow::Result<()> {
        match self.control_plane.take() {
            Some(cp) => cp.shutdown().await,
            None => Ok(()),
        }
    }
}

impl Engines {
    /// Builds a control-plane config for tests: free port, the given database and
    /// token, these engines' Redis under a prefix of its own.
    pub fn config(&self, database_url: &str, token: &str) -> Config {
        config(database_url, &self.redis_url, token)
    }
}

fn config(database_url: &str, redis_url: &str, token: &str) -> Config {
    Config {
        grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        metrics_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: database_url.into(),
        db_pool_size: 4,
        redis_url: redis_url.into(),
        redis_prefix: format!("test{}", uuid::Uuid::new_v4().simple()),
        session_ttl: Duration::from_secs(30),
        sample_interval: Duration::from_secs(5),
        count_window: Duration::from_millis(250),
        service_token: Some(token.into()),
        edge_service_token: None,
        ingest_service_token: None,
        rtmp_url: "rtmp://127.0.0.1:1935/live".into(),
        reconnect_window: Duration::from_secs(30),
        ingest_timeout: Duration::from_secs(15),
        ingest_lost_window: Duration::ZERO,
        stream_cache: Duration::from_secs(1),
        reaper_interval: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(2),
        webhooks: nova_control_plane::config::WebhookConfig::default(),
        log: nova_runtime::LogArgs::default(),
        migrate_only: false,
        tls_cert: None,
        tls_key: None,
        store: Default::default(),
        vod_url: "http://127.0.0.1:9/vod".into(),
        asset_retention: None,
        recording_wait: Duration::from_secs(600),
        remux_attempts: 3,
        remux_lease: Duration::from_secs(30),
        remux_timeout: Duration::from_secs(600),
        remux_dir: None,
        ffmpeg: "ffmpeg".into(),
    }
}
