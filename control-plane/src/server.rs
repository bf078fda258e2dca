//! Start-up and shutdown of the gRPC server: migrate, bind, serve, drain.

use std::{net::SocketAddr, time::Duration};

use tokio::{net::TcpListener, task::JoinHandle};
use tonic::transport::{Identity, Server, ServerTlsConfig, server::TcpIncoming};

use crate::{
    auth::Authenticator,
    config::Config,
    db, grpc,
    health::{self, RedisProbe},
    metrics::CpMetrics,
    redis::{self, availability::Availability},
    service::{
        analytics, reaper, remux,
        webhooks::{dispatcher::Dispatcher, rules::Rules},
    },
    shutdown,
    state::AppState,
};

/// A running control plane.
pub struct ControlPlane {
    /// Address the gRPC server listens on (useful when the config asked for port 0).
    pub addr: SocketAddr,
    /// Address `/metrics` is served on.
    pub metrics_addr: SocketAddr,
    /// Fires the shutdown.
    trigger: shutdown::Trigger,
    /// The serving task.
    task: JoinHandle<anyhow::Result<()>>,
    /// The reaper, the sampler, the webhook dispatcher, the remux worker, the live
    /// hub, the event publisher, the stream cache's follower and each WatchEvents
    /// call's task, joined on shutdown.
    tasks: shutdown::Tasks,
    /// How long shutdown waits for them.
    grace: Duration,
}

/// Migrates the database, binds the listener and starts serving. Returns once the
/// server accepts connections and reports SERVING. Redis need not answer: the server
/// starts degraded (health `nova.redis` NOT_SERVING) and recovers when it does.
pub async fn start(config: &Config) -> anyhow::Result<ControlPlane> {
    let tokens = config.service_tokens()?;
    let builder = server_builder(config)?;
    let applied = db::migrate(config.database_url.expose()).await?;
    tracing::info!(migrations.applied = applied, "database migrated");
    let pool = db::connect(config.database_url.expose(), config.db_pool_size).await?;
    // Redis is not needed to start: connections are made lazily and the probe reports.
    let target = redis::Target::parse(config.redis_url.expose())
        .map_err(|e| anyhow::anyhow!("NOVA_REDIS_URL: {e}"))?;
    let redis = redis::Redis::new(&target, config.db_pool_size)
        .map_err(|e| anyhow::anyhow!("NOVA_REDIS_URL: {e}"))?;
    let availability = match redis.ping(health::PROBE_TIMEOUT).await {
        Ok(()) => Availability::new(true),
        Err(err) => {
            tracing::warn!(error = %err, "Redis unavailable at start-up: serving without sessions and counts until it answers");
            Availability::new(false)
        }
    };
    let store = nova_store::AssetStore::open(&config.store).map_err(|e| anyhow::anyhow!(e))?;
    match &store {
        Some(store) => tracing::info!(asset.store = %store.describe(), "recording on"),
        None => tracing::info!("recording off: no asset store (NOVA_ASSET_STORE)"),
    }
    let (trigger, signal) = shutdown::channel();
    let metrics = CpMetrics::new().map_err(|e| anyhow::anyhow!(e))?;
    let metrics_addr = metrics.serve(config.metrics_addr, signal.clone()).await?;
    let tasks = shutdown::Tasks::new();
    let state = AppState::new(
        pool,
        (target, redis),
        availability,
        Authenticator::new(tokens, metrics.clone()),
        metrics.clone(),
        store,
        config,
        (signal.clone(), &tasks),
    );

    let (reporter, health) = tonic_health::server::health_reporter();
    let probe = RedisProbe {
        redis: state.redis().clone(),
        availability: state.redis_availability().clone(),
        hub: state.hub().clone(),
        reporter: reporter.clone(),
        metrics: metrics.clone(),
    };
    let dispatcher = Dispatcher::new(
        state.pool().clone(),
        state.webhook_policy(),
        Rules::from_config(&config.webhooks),
        metrics.clone(),
    )?;
    let routes = grpc::routes(&state, health, signal.clone())?;
    let listener = TcpListener::bind(config.grpc_addr).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {} (NOVA_GRPC_ADDR): {e}",
            config.grpc_addr
        )
    })?;
    let addr = listener.local_addr()?;
    grpc::mark_serving(&reporter).await;
    probe.report().await;

    tasks.spawn(probe.run(signal.clone()));
    tasks.spawn(reaper::run(
        state.pool().clone(),
        state.publisher().clone(),
        state.reaper(),
        signal.clone(),
    ));
    tasks.spawn(analytics::run(
        state.analytics().clone(),
        config.sample_interval,
        signal.clone(),
    ));
    tasks.spawn(dispatcher.run(state.hub().clone(), signal.clone()));
    if let Some(store) = state.store() {
        let remuxer = remux::Remuxer::new(
            state.pool().clone(),
            store.clone(),
            state.publisher().clone(),
            metrics.clone(),
            config.remux(),
        );
        tasks.spawn(remux::run(remuxer, signal.clone()));
    }
    let grace = config.shutdown_grace;
    let task = tokio::spawn(async move {
        let drained = signal.clone().wait();
        let serve = builder
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .layer(metrics.grpc_layer())
            .add_routes(routes)
            // TCP_NODELAY on every accepted connection: without it a response written
            // in several pieces waits for the client's delayed ACK (a flat 40 ms).
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                async move {
                    signal.wait().await;
                    grpc::mark_not_serving(&reporter).await;
                    tracing::info!("shutting down: draining calls");
                },
            );
        tokio::pin!(serve);
        tokio::select! {
            result = &mut serve => return result.map_err(Into::into),
            () = drained => {}
        }
        match tokio::time::timeout(grace, serve).await {
            Ok(result) => result.map_err(Into::into),
            Err(_) => {
                tracing::warn!(
                    grace_s = grace.as_secs_f64(),
                    "calls still open after the grace period; closing them"
                );
                Ok(())
            }
        }
    });
    tracing::info!(grpc.addr = %addr, grpc.tls = config.tls_cert.is_some(), "control plane serving");
    Ok(ControlPlane {
        addr,
        metrics_addr,
        trigger,
        task,
        tasks,
        grace,
    })
}

/// The gRPC server builder, with TLS from `NOVA_TLS_CERT` / `NOVA_TLS_KEY` when given.
/// Built first thing, so a bad certificate or key stops start-up before anything else
/// happens, with the variables named.
fn server_builder(config: &Config) -> anyhow::Result<Server> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(Server::builder());
    };
    let read = |path: &std::path::Path, var: &str| {
        std::fs::read(path).map_err(|e| anyhow::anyhow!("{var} {}: {e}", path.display()))
    };
    let identity = Identity::from_pem(read(cert, "NOVA_TLS_CERT")?, read(key, "NOVA_TLS_KEY")?);
    // A client that opens TCP and never finishes the handshake is dropped.
    let tls = ServerTlsConfig::new()
        .identity(identity)
        .timeout(Duration::from_secs(10));
    Server::builder().tls_config(tls).map_err(|e| {
        anyhow::anyhow!(
            "NOVA_TLS_CERT / NOVA_TLS_KEY: not a usable certificate and key ({})",
            nova_runtime::causes(&e)
        )
    })
}

impl ControlPlane {
    /// Stops accepting calls, lets open ones finish within the grace period, joins
    /// the reaper and the sampler (within the grace too), and returns the server's
    /// outcome.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.trigger.fire();
        let served = self.task.await?;
        if let Err(unfinished) = self.tasks.join(self.grace).await {
            tracing::warn!(error = %unfinished, "background tasks abandoned");
        }
        served
    }
}
