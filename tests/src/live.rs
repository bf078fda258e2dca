//! A live ingest path for scenario tests: the control plane, ingest-hooks and a
//! private nginx-rtmp rendered from `deploy/nginx/` (the same template as the local
//! stack), all on free loopback ports.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use nova_ingest_hooks::IngestHooks;
use nova_proto::v1::{GetStreamRequest, Stream, StreamStatus};
use nova_stack::{
    nginx::{Nginx, NginxSettings, Vod, live_scratch},
    wait::free_port,
};

use crate::{TestContext, clients, context::random_token, wait};

/// Knobs of a live stack.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Transcode into renditions.
    pub abr: bool,
    /// Reconnect window of interrupted streams.
    pub reconnect_window: Duration,
    /// nginx's on_update period.
    pub update_interval: Duration,
    /// Refused publishes one address may make before it is refused at once.
    pub publish_failures: std::num::NonZeroU32,
    /// How long admitted broadcasters stay on air while the control plane is away.
    pub update_grace: Duration,
    /// An active stream without ingest updates for this long is interrupted; `None`
    /// for five update intervals (room for callbacks slowed by a loaded test machine).
    pub ingest_timeout: Option<Duration>,
    /// Reach PostgreSQL through this proxy (its upstream is set to the server).
    pub database_proxy: Option<std::sync::Arc<crate::proxy::ChaosProxy>>,
    /// Use this Redis instead of the test engines' one.
    pub redis_url: Option<String>,
    /// ingest-hooks reach the control plane through this proxy (its upstream is set).
    pub control_plane_proxy: Option<std::sync::Arc<crate::proxy::ChaosProxy>>,
    /// Reconnect window of streams interrupted for ingest silence; `None` for the
    /// ordinary reconnect window.
    pub ingest_lost_window: Option<Duration>,
    /// The asset store of the control plane and ingest-hooks; `None` for a `file://`
    /// store in the test's temporary folder.
    pub store: Option<nova_control_plane::config::StoreArgs>,
    /// How long a completed stream's asset waits for missing pieces.
    pub recording_wait: Option<Duration>,
    /// How long a remux job stays its worker's without a renewal.
    pub remux_lease: Option<Duration>,
    /// The ffmpeg the remux worker runs.
    pub remux_ffmpeg: Option<PathBuf>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            abr: false,
            reconnect_window: Duration::from_secs(30),
            update_interval: Duration::from_secs(1),
            publish_failures: std::num::NonZeroU32::new(1000).unwrap_or(std::num::NonZeroU32::MIN),
            update_grace: Duration::from_secs(300),
            ingest_timeout: None,
            database_proxy: None,
            redis_url: None,
            control_plane_proxy: None,
            ingest_lost_window: None,
            store: None,
            recording_wait: None,
            remux_lease: None,
            remux_ffmpeg: None,
        }
    }
}

/// The running ingest path.
pub struct LiveStack {
    /// Control plane and engines.
    pub ctx: TestContext,
    /// The hooks service.
    pub hooks: Option<IngestHooks>,
    /// The nginx ingest node.
    pub nginx: Nginx,
    /// Owner-side StreamService client (principal `alice`).
    pub streams: clients::Streams,
    /// The hooks' configuration, for restarting them on their address.
    hooks_config: nova_ingest_hooks::Config,
    /// The options it was started with, for more nodes.
    options: LiveOptions,
    /// Keeps nginx's folders alive.
    _dir: tempfile::TempDir,
}

/// One ingest node: a private nginx-rtmp and its ingest-hooks, reporting as one node
/// id to a control plane.
pub struct IngestNode {
    /// The hooks service (`None` once stopped).
    pub hooks: Option<IngestHooks>,
    /// The nginx of this node.
    pub nginx: Nginx,
    /// Keeps nginx's folders alive.
    _dir: tempfile::TempDir,
}

impl IngestNode {
    /// Starts nginx and ingest-hooks as node `node` against `ctx`'s control plane.
    pub async fn start(ctx: &TestContext, options: &LiveOptions, node: &str) -> Self {
        let (hooks, nginx, _, dir) = launch(ctx, options, node, free_port().unwrap()).await;
        Self {
            hooks,
            nginx,
            _dir: dir,
        }
    }

    /// Returns the RTMP URL to publish `key` to on this node.
    pub fn publish_url(&self, key: &str) -> String {
        format!("{}/{key}", self.nginx.rtmp_url())
    }

    /// Stops this node the way a crash would look to broadcasters: nginx goes first,
    /// then its hooks.
    pub async fn shutdown(&mut self) {
        let _ = self.nginx.stop();
        if let Some(hooks) = self.hooks.take() {
            let _ = hooks.shutdown().await;
        }
    }
}

impl Drop for IngestNode {
    fn drop(&mut self) {
        let _ = self.nginx.stop();
    }
}

impl LiveStack {
    /// Starts everything.
    pub async fn start(options: LiveOptions) -> Self {
        // The origin's port is chosen first: the control plane hands out its VOD URLs.
        let http_port = free_port().unwrap();
        let ctx = TestContext::start_with(|c| {
            c.vod_url = format!("http://127.0.0.1:{http_port}/vod");
            if let Some(store) = &options.store {
                c.store = store.clone();
            }
            if let Some(wait) = options.recording_wait {
                c.recording_wait = wait;
            }
            if let Some(lease) = options.remux_lease {
                c.remux_lease = lease;
            }
            if let Some(ffmpeg) = &options.remux_ffmpeg {
                c.ffmpeg = ffmpeg.clone();
            }
            c.reconnect_window = options.reconnect_window;
            c.ingest_timeout = options
                .ingest_timeout
                .unwrap_or(options.update_interval * 5);
            if let Some(proxy) = &options.database_proxy {
                let url = c.database_url.expose().to_owned();
                proxy.set_upstream(crate::context::address_of(&url));
                c.database_url = crate::context::with_address(&url, proxy.addr)
                    .as_str()
                    .into();
            }
            if let Some(url) = &options.redis_url {
                c.redis_url = url.as_str().into();
            }
            c.ingest_lost_window = options.ingest_lost_window.unwrap_or_default();
        })
        .await;
        let (hooks, nginx, hooks_config, dir) =
            launch(&ctx, &options, "ingest-test", http_port).await;
        let streams = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await;
        Self {
            ctx,
            hooks,
            nginx,
            streams,
            hooks_config,
            options,
            _dir: dir,
        }
    }

    /// Starts another ingest node (nginx + ingest-hooks) named `node` against the same
    /// control plane, with the same options.
    pub async fn add_node(&self, node: &str) -> IngestNode {
        IngestNode::start(&self.ctx, &self.options, node).await
    }

    /// Creates a stream owned by `alice`; returns it and its key.
    pub async fn create_stream(&mut self, title: &str) -> (Stream, String) {
        clients::create_titled(&mut self.streams, title).await
    }

    /// Returns the RTMP URL to publish `key` to.
    pub fn publish_url(&self, key: &str) -> String {
        format!("{}/{key}", self.nginx.rtmp_url())
    }

    /// Returns the media folder (hls/, dash/, abr/).
    pub fn media(&self) -> PathBuf {
        self.nginx.media().to_owned()
    }

    /// Returns the stream now.
    pub async fn get(&self, name: &str) -> Stream {
        self.streams
            .clone()
            .get_stream(GetStreamRequest { name: name.into() })
            .await
            .expect("get the stream")
            .into_inner()
            .stream
            .expect("stream")
    }

    /// Waits (at most `timeout`) until the stream reaches `status`; returns it.
    pub async fn wait_for_status(
        &self,
        name: &str,
        status: StreamStatus,
        timeout: Duration,
    ) -> Stream {
        wait::until(&format!("{name} to become {status:?}"), timeout, || async {
            let stream = self.get(name).await;
            if stream.status() == status {
                Ok(stream)
            } else {
                Err(stream.status())
            }
        })
        .await
    }

    /// Returns the live viewer count of stream `name`, as the control plane knows it.
    pub async fn viewer_count(&self, name: &str) -> Result<i64, String> {
        clients::sessions(&self.ctx.url(), &self.ctx.token)
            .await
            .get_viewer_count(nova_proto::v1::GetViewerCountRequest { name: name.into() })
            .await
            .map(|r| r.into_inner().viewer_count)
            .map_err(|e| e.to_string())
    }

    /// Waits (at most `timeout`) until stream `name` has `count` live viewers.
    pub async fn wait_for_viewers(&self, name: &str, count: i64, timeout: Duration) {
        wait::until(
            &format!("{name} to have {count} viewer(s)"),
            timeout,
            || async {
                match self.viewer_count(name).await? {
                    n if n == count => Ok(()),
                    n => Err(format!("{n} viewers")),
                }
            },
        )
        .await;
    }

    /// Waits (at most `timeout`) until `url` answers 200; returns the body.
    pub async fn wait_for_url(&self, url: &str, timeout: Duration) -> crate::http::Answer {
        wait::until(&format!("{url} to be served"), timeout, || async {
            match crate::http::get(url).await {
                Ok(answer) if answer.status == 200 => Ok(answer),
                Ok(answer) => Err(format!("HTTP {}", answer.status)),
                Err(err) => Err(err.to_string()),
            }
        })
        .await
    }

    /// Returns the hooks secret nginx and ingest-hooks share.
    pub fn hooks_secret(&self) -> String {
        self.hooks_config
            .secret
            .as_ref()
            .map(|s| s.expose().to_owned())
            .unwrap_or_default()
    }

    /// Stops ingest-hooks, waits `down`, and starts them again on the same address,
    /// as a restart of their process would.
    pub async fn restart_hooks(&mut self, down: Duration) {
        if let Some(hooks) = self.hooks.take() {
            hooks.shutdown().await.expect("stop ingest-hooks");
        }
        tokio::time::sleep(down).await;
        self.hooks = Some(
            nova_ingest_hooks::start(&self.hooks_config)
                .await
                .expect("restart ingest-hooks on their address"),
        );
    }

    /// Stops hooks and nginx (the control plane stops with the context).
    pub async fn shutdown(&mut self) {
        let _ = self.nginx.stop();
        if let Some(hooks) = self.hooks.take() {
            let _ = hooks.shutdown().await;
        }
    }
}

impl Drop for LiveStack {
    fn drop(&mut self) {
        let _ = self.nginx.stop();
    }
}

/// Starts nginx and ingest-hooks as node `node`; returns the hooks, nginx, the hooks'
/// configuration (bound address filled in) and the folder holding nginx's files.
async fn launch(
    ctx: &TestContext,
    options: &LiveOptions,
    node: &str,
    http_port: u16,
) -> (
    Option<IngestHooks>,
    Nginx,
    nova_ingest_hooks::Config,
    tempfile::TempDir,
) {
    let dir = tempfile::Builder::new()
        .prefix("nova-live-")
        .tempdir_in(live_scratch())
        .expect("temp dir");
    let (rtmp_port, stat_port) = (free_port().unwrap(), free_port().unwrap());
    let secret = random_token();
    // Where nginx's own relays connect (the template listens there too).
    let relay_base = format!("rtmp://{}:{rtmp_port}", nova_stack::nginx::RELAY_HOST);
    let hooks_config = nova_ingest_hooks::Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        metrics_addr: None,
        secret: Some(secret.as_str().into()),
        control_plane: nova_runtime::UpstreamArgs {
            url: match &options.control_plane_proxy {
                Some(proxy) => {
                    proxy.set_upstream(ctx.addr());
                    format!("http://{}", proxy.addr)
                }
                None => ctx.url(),
            },
            ca: None,
            service_token: ctx.ingest_token.as_str().into(),
        },
        ingest_node: node.into(),
        origin_url: format!("http://127.0.0.1:{http_port}"),
        relay_url: format!("{relay_base}/stream"),
        ingest_app: "live".into(),
        abr: options.abr,
        stat_url: format!("http://127.0.0.1:{stat_port}/stat"),
        stat_interval: Duration::from_secs(1),
        upstream_timeout: Duration::from_secs(2),
        update_grace: options.update_grace,
        publish_failures: options.publish_failures,
        publish_failure_refill: Duration::from_secs(6),
        hls_dir: Some(dir.path().join("media/hls")),
        record_url: format!("{relay_base}/record"),
        record_dir: Some(Nginx::record_dir_in(&dir.path().join("nginx"))),
        store: ctx.config.store.clone(),
        log: nova_runtime::LogArgs::default(),
    };
    let hooks = nova_ingest_hooks::start(&hooks_config)
        .await
        .expect("start ingest-hooks");
    let nginx = Nginx::new(
        &dir.path().join("nginx"),
        &dir.path().join("media"),
        NginxSettings {
            rtmp_port,
            http_port,
            stat_port,
            hooks_url: format!("http://{}/rtmp", hooks.addr),
            hooks_secret: secret.clone(),
            rtmp_playback: false,
            update_interval: format!("{}ms", options.update_interval.as_millis()),
            abr: options.abr,
            vod: vod_of(&ctx.config.store),
        },
    );
    nginx.start().expect("start nginx");
    let mut hooks_config = hooks_config;
    hooks_config.listen = hooks.addr;
    (Some(hooks), nginx, hooks_config, dir)
}

/// Where the origin reads asset files of `store`.
fn vod_of(store: &nova_control_plane::config::StoreArgs) -> Vod {
    match store.asset_store.as_deref() {
        Some(url) if url.starts_with("file://") => {
            Vod::File(PathBuf::from(url.trim_start_matches("file://")))
        }
        Some(url) if url.starts_with("s3://") => Vod::S3(
            store
                .asset_s3_endpoint
                .clone()
                .expect("an s3:// store in the tests names its endpoint"),
        ),
        _ => Vod::Off,
    }
}
