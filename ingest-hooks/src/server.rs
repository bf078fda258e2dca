//! Start-up and shutdown of the hooks service.

use std::net::SocketAddr;

use tokio::{net::TcpListener, task::JoinHandle};

use crate::{
    config::Config,
    metrics::HooksMetrics,
    playback::{self, PlaybackRules, viewers::Viewers},
    recordings::Recorder,
    routes, segments, shutdown, stat,
    state::{AppState, Recording},
    upstream::{Node, Upstream},
};

/// A running hooks service.
pub struct IngestHooks {
    /// Address nginx should call.
    pub addr: SocketAddr,
    /// The private `/metrics` listener, when `NOVA_HOOKS_METRICS_ADDR` asked for one.
    pub metrics_addr: Option<SocketAddr>,
    /// Fires the shutdown.
    trigger: shutdown::Trigger,
    /// The serving task.
    task: JoinHandle<anyhow::Result<()>>,
    /// The /stat poller and the segment watcher, joined on shutdown.
    tasks: shutdown::Tasks,
    /// Token viewer sessions, left on shutdown once callbacks have drained.
    viewers: Viewers,
    /// The control plane, to leave them.
    upstream: Upstream,
}

/// How long shutdown waits for the background tasks (a /stat poll in flight is
/// bounded by its own interval).
const DRAIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// How long shutdown spends leaving the token viewer sessions, in all.
const LEAVE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

/// Binds the listener, starts the /stat poller and serves callbacks.
pub async fn start(config: &Config) -> anyhow::Result<IngestHooks> {
    config.validate().map_err(|e| anyhow::anyhow!(e))?;
    let store = nova_store::AssetStore::open(&config.store).map_err(|e| anyhow::anyhow!(e))?;
    let records = store.is_some() && config.record_dir.is_some();
    let upstream = Upstream::new(
        &config.control_plane.url,
        config.control_plane.ca.as_deref(),
        config.control_plane.service_token.expose(),
        config.upstream_timeout,
        Node {
            id: config.ingest_node.clone(),
            origin_url: config.origin_url.clone(),
            abr: config.abr,
            recording: records,
        },
    )?;
    let listener = TcpListener::bind(config.listen).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {} (NOVA_HOOKS_ADDR): {e}", config.listen)
    })?;
    let addr = listener.local_addr()?;
    let (trigger, signal) = shutdown::channel();
    let metrics = HooksMetrics::new().map_err(|e| anyhow::anyhow!(e))?;
    // NOVA_HTTP_* bound slow and idle clients on every listener.
    let limits = nova_runtime::http::HttpLimits::from_env()?;
    let metrics_addr = match config.metrics_addr {
        Some(addr) => Some(
            nova_runtime::metrics::serve_with_limits(
                metrics.registry().clone(),
                addr,
                "NOVA_HOOKS_METRICS_ADDR",
                signal.clone(),
                limits,
            )
            .await
            .map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    let tasks = shutdown::Tasks::new();
    if !config.stat_url.is_empty() {
        let public_app = config
            .relay_url
            .rsplit('/')
            .next()
            .unwrap_or("stream")
            .to_owned();
        tasks.spawn(stat::run(
            config.stat_url.clone(),
            config.stat_interval,
            (public_app, "abr".to_owned()),
            upstream.clone(),
            metrics.clone(),
            signal.clone(),
        ));
    }
    if let Some(dir) = &config.hls_dir {
        tasks.spawn(segments::run(
            dir.clone(),
            std::time::Duration::from_millis(500),
            metrics.clone(),
            signal.clone(),
        ));
    }
    let recorder = match (&store, &config.record_dir) {
        (Some(store), Some(dir)) => {
            let recorder = Recorder::new(
                dir,
                store.clone(),
                upstream.clone(),
                metrics.clone(),
                tasks.clone(),
            )
            .map_err(|e| anyhow::anyhow!("NOVA_RECORD_DIR {}: {e}", dir.display()))?;
            tasks.spawn(recorder.clone().run(signal.clone()));
            tracing::info!(asset.store = %store.describe(), record.dir = %dir.display(), "recording on");
            Some(recorder)
        }
        _ => None,
    };
    let rules = PlaybackRules::default();
    let viewers = Viewers::default();
    tasks.spawn(playback::viewers::run(
        viewers.clone(),
        upstream.clone(),
        signal.clone(),
    ));
    tasks.spawn(playback::run(
        rules.clone(),
        upstream.clone(),
        metrics.clone(),
        signal.clone(),
    ));
    // Every request carries ConnectInfo<SocketAddr>, as with
    // into_make_service_with_connect_info.
    let registry = metrics.registry().clone();
    let app = routes::router(AppState::new(
        config.clone(),
        upstream.clone(),
        metrics,
        rules,
        viewers.clone(),
        Recording { recorder, store },
    ));
    let task = tokio::spawn(async move {
        nova_runtime::http::serve(listener, app, signal.wait(), limits, &registry).await;
        Ok(())
    });
    tracing::info!(hooks.addr = %addr, ingest.node = %config.ingest_node, "ingest hooks serving");
    Ok(IngestHooks {
        addr,
        metrics_addr,
        trigger,
        task,
        tasks,
        viewers,
        upstream,
    })
}

impl IngestHooks {
    /// Stops serving, waits for in-flight callbacks, leaves the token viewer
    /// sessions (at most [`LEAVE_DEADLINE`]) and joins the background tasks.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.trigger.fire();
        let served = self.task.await;
        self.viewers.leave_all(&self.upstream, LEAVE_DEADLINE).await;
        let served = served?;
        if let Err(unfinished) = self.tasks.join(DRAIN_DEADLINE).await {
            tracing::warn!(error = %unfinished, "background tasks abandoned");
        }
        served
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};

    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let uri = format!("http://{addr}{path}").parse().unwrap();
        let response = tokio::time::timeout(std::time::Duration::from_secs(10), client.get(uri))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_metrics_address_moves_metrics_off_the_callback_port() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let control_plane = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let config = Config::try_parse_from([
            "nova-ingest-hooks",
            "--listen",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--service-token",
            "unit-test-service-token",
            "--control-plane-url",
            &control_plane,
            "--stat-url",
            "",
        ])
        .unwrap();
        let hooks = start(&config).await.unwrap();
        let private = hooks.metrics_addr.expect("a private metrics listener");
        let (status, body) = get(private, "/metrics").await;
        assert_eq!(status, 200);
        assert!(body.contains("nova_streaming_"), "{body}");
        assert_eq!(
            get(hooks.addr, "/metrics").await.0,
            404,
            "not on the callback port"
        );
        assert_eq!(get(hooks.addr, "/healthz").await.0, 200);
        assert_eq!(
            get(private, "/rtmp/playback").await.0,
            404,
            "only metrics there"
        );
        hooks.shutdown().await.unwrap();
    }
}
