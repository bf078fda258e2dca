//! The whole stack as separate processes for G6 and G7, so each tier's CPU and
//! memory can be read from /proc: the control plane, ingest-hooks and `nova-edge`
//! binaries of this build, a private nginx-rtmp from `deploy/nginx/`, and the
//! PostgreSQL and Redis of `nova-stack test-env`. Logs go to `target/bench/g6-*.log`.

use std::{net::SocketAddr, path::Path, process::Stdio, time::Duration};

use nova_stack::{
    nginx::{Nginx, NginxSettings},
    wait::{accepts, free_port, until},
};
use nova_tests::{
    context::{Engines, address_of, random_token},
    edge::JWT_SECRET,
    tools::workspace_root,
};
use tokio::process::{Child, Command};

use crate::procstat::{Tier, listening_on, with_children};

/// The running stack.
pub struct BenchStack {
    /// Control-plane URL.
    pub grpc_url: String,
    /// Admin service token.
    pub token: String,
    /// The ingest node.
    pub nginx: Nginx,
    /// Edge processes and their base URLs.
    pub edges: Vec<(Child, String)>,
    /// The control-plane process.
    control_plane: Child,
    /// The ingest-hooks process.
    hooks: Child,
    /// PostgreSQL and Redis ports (their processes are found by port).
    engine_ports: (u16, u16),
    /// Keeps the engines (when started here) alive.
    _engines: Engines,
    /// nginx's folders.
    _dir: tempfile::TempDir,
}

impl Drop for BenchStack {
    fn drop(&mut self) {
        let _ = self.nginx.stop();
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port().expect("a free port")))
}

/// Spawns `binary` with `env`, its output in `target/bench/<log>.log`, and waits
/// until it accepts on `addr`.
fn spawn(binary: &str, log: &str, env: &[(&str, String)], addr: SocketAddr) -> Child {
    let dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let file = std::fs::File::create(dir.join(format!("{log}.log"))).unwrap();
    let child = Command::new(nova_stack::stack::sibling_binary(binary).expect("built"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(Stdio::null())
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {binary}: {e}"));
    until(
        &format!("{binary} on {addr}"),
        Duration::from_secs(60),
        || accepts(addr),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    child
}

impl BenchStack {
    /// Starts everything with `edges` edge processes, each allowing `sockets`.
    pub async fn start(edges: usize, sockets: usize) -> Self {
        Self::start_with(edges, sockets, false).await
    }

    /// Like [`BenchStack::start`]; with `abr`, nginx transcodes every broadcast into
    /// the template's renditions and playback URLs name the master playlist.
    pub async fn start_with(edges: usize, sockets: usize, abr: bool) -> Self {
        let engines = Engines::get();
        let database_url = engines.fresh_database().await;
        let engine_ports = (
            address_of(&database_url).port(),
            address_of(&engines.redis_url).port(),
        );
        let (token, edge_token, ingest_token) = (random_token(), random_token(), random_token());
        let dir = tempfile::Builder::new()
            .prefix("nova-bench-")
            .tempdir_in(nova_stack::nginx::live_scratch())
            .unwrap();
        let (rtmp_port, http_port, stat_port) = (
            free_port().unwrap(),
            free_port().unwrap(),
            free_port().unwrap(),
        );
        let (grpc, metrics, hooks_addr) = (loopback(), loopback(), loopback());
        let secret = random_token();
        let nginx = Nginx::new(
            &dir.path().join("nginx"),
            &dir.path().join("media"),
            NginxSettings {
                rtmp_port,
                http_port,
                stat_port,
                hooks_url: format!("http://{hooks_addr}/rtmp"),
                hooks_secret: secret.clone(),
                rtmp_playback: false,
                update_interval: "2s".into(),
                abr,
                vod: Default::default(),
            },
        );
        let control_plane = spawn(
            "nova-control-plane",
            "g6-control-plane",
            &[
                ("NOVA_GRPC_ADDR", grpc.to_string()),
                ("NOVA_METRICS_ADDR", metrics.to_string()),
                ("NOVA_DATABASE_URL", database_url),
                ("NOVA_REDIS_URL", engines.redis_url.clone()),
                (
                    "NOVA_REDIS_PREFIX",
                    format!("bench{}", uuid::Uuid::new_v4().simple()),
                ),
                ("NOVA_SERVICE_TOKEN", token.clone()),
                ("NOVA_EDGE_SERVICE_TOKEN", edge_token.clone()),
                ("NOVA_INGEST_SERVICE_TOKEN", ingest_token.clone()),
                ("NOVA_RTMP_URL", nginx.rtmp_url()),
                // As on `make up`: nginx updates every 2 s, three missed mean gone.
                ("NOVA_INGEST_TIMEOUT", "6s".into()),
            ],
            grpc,
        );
        let grpc_url = format!("http://{grpc}");
        let hooks = spawn(
            "nova-ingest-hooks",
            "g6-ingest-hooks",
            &[
                ("NOVA_HOOKS_ADDR", hooks_addr.to_string()),
                ("NOVA_HOOKS_SECRET", secret),
                ("NOVA_CONTROL_PLANE_URL", grpc_url.clone()),
                ("NOVA_SERVICE_TOKEN", ingest_token),
                ("NOVA_ORIGIN_URL", nginx.origin_url()),
                ("NOVA_RELAY_URL", nginx.relay_url()),
                ("NOVA_STAT_URL", nginx.stat_url()),
                ("NOVA_ABR", abr.to_string()),
                ("NOVA_HLS_DIR", path(&nginx.media().join("hls"))),
            ],
            hooks_addr,
        );
        nginx.start().expect("start nginx");
        let edges = (0..edges)
            .map(|i| {
                let addr = loopback();
                let child = spawn(
                    "nova-edge",
                    &format!("g6-edge-{i}"),
                    &[
                        ("NOVA_EDGE_ADDR", addr.to_string()),
                        ("NOVA_CONTROL_PLANE_URL", grpc_url.clone()),
                        ("NOVA_SERVICE_TOKEN", edge_token.clone()),
                        ("NOVA_EDGE_NODE", format!("bench-edge-{i}")),
                        ("NOVA_JWT_HS256_SECRET", JWT_SECRET.into()),
                        ("NOVA_WEB_DIR", path(&workspace_root().join("edge/web"))),
                        ("NOVA_WS_MAX_SOCKETS", (sockets + 100).to_string()),
                        ("NOVA_WS_MAX_SOCKETS_PER_IP", (sockets + 100).to_string()),
                        ("NOVA_WS_OPENS_PER_MINUTE", "100000000".into()),
                        ("NOVA_READS_PER_MINUTE", "100000000".into()),
                    ],
                    addr,
                );
                (child, format!("http://{addr}"))
            })
            .collect();
        Self {
            grpc_url,
            token,
            nginx,
            edges,
            control_plane,
            hooks,
            engine_ports,
            _engines: engines,
            _dir: dir,
        }
    }

    /// Starts sampling every tier (the benchmark process itself included: it runs
    /// the publishers and the viewers' sockets).
    pub fn tiers(&self) -> Vec<Tier> {
        // nginx's prefix holds logs/error.log and nginx.pid.
        let log = self.nginx.error_log();
        let nginx_pid = log
            .parent()
            .and_then(Path::parent)
            .and_then(|prefix| std::fs::read_to_string(prefix.join("nginx.pid")).ok())
            .and_then(|p| p.trim().parse().ok());
        let mut tiers = vec![
            Tier::new(
                "nginx-rtmp (master + workers)",
                nginx_pid.map(with_children).unwrap_or_default(),
            ),
            Tier::new(
                "control plane",
                self.control_plane.id().into_iter().collect(),
            ),
            Tier::new("ingest-hooks", self.hooks.id().into_iter().collect()),
        ];
        for (i, (child, _)) in self.edges.iter().enumerate() {
            tiers.push(Tier::new(
                format!("edge {i}"),
                child.id().into_iter().collect(),
            ));
        }
        tiers.push(Tier::new(
            "PostgreSQL (all backends)",
            listening_on(self.engine_ports.0)
                .map(with_children)
                .unwrap_or_default(),
        ));
        tiers.push(Tier::new(
            "Redis",
            listening_on(self.engine_ports.1).into_iter().collect(),
        ));
        tiers.push(Tier::new(
            "benchmark client (publishers, viewers)",
            vec![std::process::id()],
        ));
        tiers
    }
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
