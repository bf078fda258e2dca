//! The whole local stack: `up` (detached or foreground), `down`, and the engines-only
//! environment the test suite runs in.

use std::{
    env, fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Child,
    time::Duration,
};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;

use crate::{
    env_file, jwt,
    nginx::{self, Nginx, NginxSettings, Vod},
    postgres::{self, Postgres},
    process::{self, Attach, Service},
    redis::Redis,
    wait,
};

/// Where the stack keeps its files: everything under `<project>/.nova/` (git-ignored).
#[derive(Debug, Clone)]
pub struct Layout {
    /// `<project>/.nova`.
    pub nova: PathBuf,
}

impl Layout {
    /// Lays the stack out under `project/.nova`.
    pub fn new(project: &Path) -> anyhow::Result<Self> {
        let project = project
            .canonicalize()
            .with_context(|| format!("no such project folder: {}", project.display()))?;
        Ok(Self {
            nova: project.join(".nova"),
        })
    }

    /// Pid files of running services.
    pub fn run_dir(&self) -> PathBuf {
        self.nova.join("run")
    }

    /// Service logs.
    pub fn log_dir(&self) -> PathBuf {
        self.nova.join("logs")
    }

    /// The addresses file, `.nova/stack.env`.
    pub fn env_file(&self) -> PathBuf {
        self.nova.join("stack.env")
    }

    /// Redis files.
    fn redis_dir(&self) -> PathBuf {
        self.nova.join("redis")
    }

    /// PostgreSQL files: `.nova/pg`, or, when the `postgres` user cannot reach the
    /// project (a closed home folder), a folder under /var/tmp that `.nova/pg` links to.
    fn pg_dir(&self) -> anyhow::Result<PathBuf> {
        let local = self.nova.join("pg");
        if local.is_symlink() {
            return Ok(fs::read_link(&local)?);
        }
        if postgres::reachable_by_server_user(&self.nova) {
            return Ok(local);
        }
        let mut tag = [0u8; 6];
        rand::rng().fill_bytes(&mut tag);
        let outside = PathBuf::from(format!("/var/tmp/nova-pg-{}", URL_SAFE_NO_PAD.encode(tag)));
        std::os::unix::fs::symlink(&outside, &local)?;
        Ok(outside)
    }

    /// nginx's live output: `.nova/media`, a link to a folder on tmpfs
    /// ([`nginx::live_scratch`]) so a slow disk cannot stall the broadcasts; a plain
    /// folder where the machine has no tmpfs. From a plain `.nova/media` left by an
    /// older stack, recorded pieces not handed over yet move to `.nova/nginx/recordings`
    /// (where recordings now live, on disk) and the old live output is removed.
    fn media_dir(&self) -> anyhow::Result<PathBuf> {
        let local = self.nova.join("media");
        let scratch = nginx::live_scratch();
        if scratch == env::temp_dir() {
            fs::create_dir_all(&local)?;
            return Ok(local);
        }
        let name = self.nova.to_string_lossy().replace(['/', '.'], "-");
        let outside = scratch.join(format!("nova{name}-media"));
        fs::create_dir_all(&outside)?;
        match fs::symlink_metadata(&local) {
            Ok(meta) if meta.is_symlink() => {
                if fs::read_link(&local)? == outside {
                    return Ok(local);
                }
                fs::remove_file(&local)?;
            }
            Ok(_) => {
                let pieces = local.join("recordings");
                let kept = self.nova.join("nginx/recordings");
                if pieces.is_dir() && !kept.exists() {
                    fs::create_dir_all(self.nova.join("nginx"))?;
                    fs::rename(&pieces, &kept).with_context(|| {
                        format!("move {} to {}", pieces.display(), kept.display())
                    })?;
                }
                if pieces.exists() {
                    // Both places hold pieces: lose none, leave the old folder aside.
                    let aside = self.nova.join("media.on-disk");
                    fs::rename(&local, &aside)
                        .with_context(|| format!("move {} aside", local.display()))?;
                    eprintln!(
                        "nova-stack: {} holds recorded pieces not handed over; kept as {}",
                        pieces.display(),
                        aside.display()
                    );
                } else {
                    fs::remove_dir_all(&local)
                        .with_context(|| format!("remove the old {}", local.display()))?;
                }
                eprintln!(
                    "nova-stack: live output moves to {} (tmpfs); recorded pieces stay on disk in {}",
                    outside.display(),
                    kept.display()
                );
            }
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&outside, &local)?;
        Ok(local)
    }
}

/// Ports of the local stack, each overridable by an environment variable. The
/// engines' defaults are below 32768, outside Linux's ephemeral range (32768–60999),
/// so no outgoing connection of another program can hold one when the stack starts
/// (55432 did, on a busy machine); gRPC keeps its conventional 50051.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// PostgreSQL (`NOVA_STACK_PG_PORT`, default 15432).
    pub postgres: u16,
    /// Redis (`NOVA_STACK_REDIS_PORT`, default 16379).
    pub redis: u16,
    /// Control-plane gRPC (`NOVA_STACK_GRPC_PORT`, default 50051).
    pub grpc: u16,
    /// RTMP ingest (`NOVA_STACK_RTMP_PORT`, default 1935).
    pub rtmp: u16,
    /// HLS/DASH origin (`NOVA_STACK_HLS_PORT`, default 8088).
    pub http: u16,
    /// Private nginx /stat (`NOVA_STACK_STAT_PORT`, default 8089).
    pub stat: u16,
    /// ingest-hooks (`NOVA_STACK_HOOKS_PORT`, default 8090).
    pub hooks: u16,
    /// Edge: REST, WebSocket, viewer page (`NOVA_STACK_EDGE_PORT`, default 8080).
    pub edge: u16,
    /// Control-plane `/metrics` (`NOVA_STACK_METRICS_PORT`, default 9464).
    pub metrics: u16,
}

impl Ports {
    /// Reads the ports from the environment, with the defaults above.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            postgres: port_var("NOVA_STACK_PG_PORT", 15432)?,
            redis: port_var("NOVA_STACK_REDIS_PORT", 16379)?,
            grpc: port_var("NOVA_STACK_GRPC_PORT", 50051)?,
            rtmp: port_var("NOVA_STACK_RTMP_PORT", 1935)?,
            http: port_var("NOVA_STACK_HLS_PORT", 8088)?,
            stat: port_var("NOVA_STACK_STAT_PORT", 8089)?,
            hooks: port_var("NOVA_STACK_HOOKS_PORT", 8090)?,
            edge: port_var("NOVA_STACK_EDGE_PORT", 8080)?,
            metrics: port_var("NOVA_STACK_METRICS_PORT", 9464)?,
        })
    }
}

fn port_var(name: &str, default: u16) -> anyhow::Result<u16> {
    match env::var(name) {
        Ok(raw) => raw
            .parse()
            .with_context(|| format!("{name}={raw:?} is not a port number")),
        Err(_) => Ok(default),
    }
}

/// A started local stack.
#[derive(Debug)]
pub struct Running {
    /// The addresses written to `.nova/stack.env`.
    pub vars: Vec<(&'static str, String)>,
    /// Service processes we started (only kept for foreground runs).
    pub children: Vec<(&'static str, Child)>,
}

/// Starts the whole stack after stopping leftovers of an earlier run, waits until
/// every service is ready and writes `.nova/stack.env`. With `abr`, nginx transcodes
/// every broadcast into renditions.
pub fn up(layout: &Layout, ports: Ports, attach: Attach, abr: bool) -> anyhow::Result<Running> {
    down(layout)?;
    fs::create_dir_all(&layout.nova)?;
    let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    for (port, var) in [
        (ports.grpc, "NOVA_STACK_GRPC_PORT"),
        (ports.rtmp, "NOVA_STACK_RTMP_PORT"),
        (ports.http, "NOVA_STACK_HLS_PORT"),
        (ports.stat, "NOVA_STACK_STAT_PORT"),
        (ports.hooks, "NOVA_STACK_HOOKS_PORT"),
        (ports.edge, "NOVA_STACK_EDGE_PORT"),
        (ports.metrics, "NOVA_STACK_METRICS_PORT"),
    ] {
        if wait::accepts(loopback(port)) {
            bail!("port {port} is taken by another program; set {var}");
        }
    }

    let pg = Postgres::new(&layout.pg_dir()?, ports.postgres)?;
    pg.start()?;
    pg.create_database("nova")?;
    let redis = Redis::new(&layout.redis_dir(), ports.redis);
    redis.start()?;

    // One token per calling service; NOVA_SERVICE_TOKEN is the admin's (grpcurl, demo).
    let token = stored_secret(&layout.nova, "service-token", "nova_svc_")?;
    let edge_token = stored_secret(&layout.nova, "edge-service-token", "nova_svc_edge_")?;
    let ingest_token = stored_secret(&layout.nova, "ingest-service-token", "nova_svc_ingest_")?;
    let hooks_secret = stored_secret(&layout.nova, "hooks-secret", "nova_hook_")?;
    let jwt_secret = stored_secret(&layout.nova, "jwt-secret", "nova_jwt_")?;
    let edge_addr = loopback(ports.edge);
    let web_dir = layout
        .nova
        .parent()
        .map(|p| p.join("edge/web"))
        .unwrap_or_default();
    // Recordings: a file store under .nova/assets, served by nginx at /vod.
    let assets = layout.nova.join("assets");
    fs::create_dir_all(&assets)?;
    let asset_store = format!("file://{}", assets.display());
    let nginx = Nginx::new(
        &layout.nova.join("nginx"),
        &layout.media_dir()?,
        NginxSettings {
            rtmp_port: ports.rtmp,
            http_port: ports.http,
            stat_port: ports.stat,
            hooks_url: format!("http://127.0.0.1:{}/rtmp", ports.hooks),
            hooks_secret: hooks_secret.clone(),
            rtmp_playback: std::env::var("NOVA_STACK_RTMP_PLAYBACK").is_ok_and(|v| v == "1"),
            update_interval: "2s".into(),
            abr,
            vod: Vod::File(assets.clone()),
        },
    );
    let grpc_addr = loopback(ports.grpc);
    let services = [
        (
            Service {
                name: "control-plane",
                program: sibling_binary("nova-control-plane")?,
                env: vec![
                    ("NOVA_GRPC_ADDR".into(), grpc_addr.to_string()),
                    ("NOVA_DATABASE_URL".into(), pg.url("nova")),
                    ("NOVA_REDIS_URL".into(), redis.url()),
                    ("NOVA_SERVICE_TOKEN".into(), token.clone()),
                    ("NOVA_EDGE_SERVICE_TOKEN".into(), edge_token.clone()),
                    ("NOVA_INGEST_SERVICE_TOKEN".into(), ingest_token.clone()),
                    ("NOVA_RTMP_URL".into(), nginx.rtmp_url()),
                    (
                        "NOVA_METRICS_ADDR".into(),
                        loopback(ports.metrics).to_string(),
                    ),
                    // nginx sends on_update every 2 s: three missed updates mean gone.
                    ("NOVA_INGEST_TIMEOUT".into(), "6s".into()),
                    // Webhooks may reach a receiver on this machine (docs/webhooks.md).
                    ("NOVA_WEBHOOK_ALLOW_PRIVATE".into(), "true".into()),
                    ("NOVA_ASSET_STORE".into(), asset_store.clone()),
                    ("NOVA_VOD_URL".into(), nginx.vod_url()),
                    (
                        "NOVA_REMUX_DIR".into(),
                        layout.nova.join("remux").to_string_lossy().into_owned(),
                    ),
                ],
            },
            grpc_addr,
        ),
        (
            Service {
                name: "ingest-hooks",
                program: sibling_binary("nova-ingest-hooks")?,
                env: vec![
                    ("NOVA_HOOKS_ADDR".into(), loopback(ports.hooks).to_string()),
                    ("NOVA_HOOKS_SECRET".into(), hooks_secret),
                    (
                        "NOVA_CONTROL_PLANE_URL".into(),
                        format!("http://{grpc_addr}"),
                    ),
                    ("NOVA_SERVICE_TOKEN".into(), ingest_token),
                    ("NOVA_ORIGIN_URL".into(), nginx.origin_url()),
                    ("NOVA_RELAY_URL".into(), nginx.relay_url()),
                    ("NOVA_STAT_URL".into(), nginx.stat_url()),
                    ("NOVA_ABR".into(), abr.to_string()),
                    (
                        "NOVA_HLS_DIR".into(),
                        layout.nova.join("media/hls").to_string_lossy().into_owned(),
                    ),
                    ("NOVA_RECORD_URL".into(), nginx.record_url()),
                    (
                        "NOVA_RECORD_DIR".into(),
                        nginx.record_dir().to_string_lossy().into_owned(),
                    ),
                    ("NOVA_ASSET_STORE".into(), asset_store),
                ],
            },
            loopback(ports.hooks),
        ),
        (
            Service {
                name: "edge",
                program: sibling_binary("nova-edge")?,
                env: vec![
                    ("NOVA_EDGE_ADDR".into(), edge_addr.to_string()),
                    (
                        "NOVA_CONTROL_PLANE_URL".into(),
                        format!("http://{grpc_addr}"),
                    ),
                    ("NOVA_SERVICE_TOKEN".into(), edge_token),
                    ("NOVA_JWT_HS256_SECRET".into(), jwt_secret.clone()),
                    // The dev JWT below carries iss=nova-stack and lives 30 days.
                    ("NOVA_JWT_ISSUER".into(), "nova-stack".into()),
                    ("NOVA_JWT_MAX_LIFETIME".into(), "744h".into()),
                    (
                        "NOVA_WEB_DIR".into(),
                        web_dir.to_string_lossy().into_owned(),
                    ),
                ],
            },
            edge_addr,
        ),
    ];
    let mut children = Vec::new();
    for (service, addr) in &services {
        children.push((service.name, start_service(layout, service, *addr, attach)?));
    }
    nginx.start()?;

    let vars = vec![
        ("NOVA_EDGE_URL", format!("http://{edge_addr}")),
        (
            "NOVA_DEV_JWT",
            jwt::mint_hs256(&jwt_secret, "demo", 30 * 24 * 3600)?,
        ),
        ("NOVA_GRPC_ADDR", grpc_addr.to_string()),
        ("NOVA_SERVICE_TOKEN", token),
        ("NOVA_RTMP_URL", nginx.rtmp_url()),
        ("NOVA_HLS_URL", format!("{}/hls", nginx.origin_url())),
        ("NOVA_DASH_URL", format!("{}/dash", nginx.origin_url())),
        ("NOVA_VOD_URL", nginx.vod_url()),
        ("NOVA_DATABASE_URL", pg.url("nova")),
        ("NOVA_REDIS_URL", redis.url()),
        (
            "NOVA_METRICS_URLS",
            format!(
                "http://{}/metrics,http://{edge_addr}/metrics,http://{}/metrics",
                loopback(ports.metrics),
                loopback(ports.hooks)
            ),
        ),
    ];
    env_file::write(&layout.env_file(), &vars)?;
    if attach == Attach::Detached {
        children.clear();
    }
    Ok(Running { vars, children })
}

/// Spawns a service and waits (at most 60 s) until it accepts connections on `addr`.
fn start_service(
    layout: &Layout,
    service: &Service,
    addr: SocketAddr,
    attach: Attach,
) -> anyhow::Result<Child> {
    let mut child = process::spawn(service, &layout.run_dir(), &layout.log_dir(), attach)?;
    let ready = wait::until(
        &format!("{} on {addr}", service.name),
        Duration::from_secs(60),
        || wait::accepts(addr) || matches!(child.try_wait(), Ok(Some(_))),
    );
    if let Ok(Some(status)) = child.try_wait() {
        bail!(
            "{} exited at start-up ({status}){}",
            service.name,
            log_hint(layout, service.name, attach)
        );
    }
    ready.with_context(|| log_hint(layout, service.name, attach))?;
    Ok(child)
}

/// Stops every service recorded in `.nova/run`, then Redis and PostgreSQL. Safe to
/// run when nothing is up.
pub fn down(layout: &Layout) -> anyhow::Result<()> {
    let nginx_pid = layout.nova.join("nginx/nginx.pid");
    process::stop_pid_file(&nginx_pid, Duration::from_secs(10))?;
    if let Ok(entries) = fs::read_dir(layout.run_dir()) {
        for entry in entries.filter_map(Result::ok) {
            if entry.path().extension().is_some_and(|e| e == "pid") {
                process::stop_pid_file(&entry.path(), Duration::from_secs(15))?;
            }
        }
    }
    Redis::new(&layout.redis_dir(), 0).stop()?;
    let pg_dir = layout.nova.join("pg");
    if pg_dir.exists() {
        Postgres::new(&pg_dir.canonicalize()?, 0)?.stop()?;
    }
    let _ = fs::remove_file(layout.env_file());
    Ok(())
}

/// Returns the secret stored in `.nova/<name>`, generating it (`prefix` + 256 random
/// bits, mode 0600) on the first run so it stays the same across restarts.
fn stored_secret(nova: &Path, name: &str, prefix: &str) -> anyhow::Result<String> {
    let path = nova.join(name);
    if let Ok(token) = fs::read_to_string(&path) {
        let token = token.trim().to_owned();
        if token.len() >= 16 {
            return Ok(token);
        }
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    env_file::write(&path, &[])?;
    fs::write(&path, &token)?;
    Ok(token)
}

/// Finds a binary built next to the running one (`target/<profile>/`).
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = env::current_exe()?;
    let mut dir = exe.parent().context("executable has no folder")?;
    // Test binaries live one level deeper, in target/<profile>/deps.
    if dir.ends_with("deps") {
        dir = dir.parent().context("deps has no parent")?;
    }
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build it first with `cargo build --workspace --bins`",
            path.display()
        );
    }
    Ok(path)
}

fn log_hint(layout: &Layout, name: &str, attach: Attach) -> String {
    match attach {
        Attach::Foreground => String::new(),
        Attach::Detached => {
            let log = layout.log_dir().join(format!("{name}.log"));
            let tail: String = fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .map(|l| format!("\n  {l}"))
                .collect();
            format!("; last lines of {}:{tail}", log.display())
        }
    }
}

/// Engines for the test suite: a private PostgreSQL and Redis in a temporary folder,
/// stopped and removed on drop.
#[derive(Debug)]
pub struct TestEngines {
    /// The PostgreSQL server.
    pub postgres: Postgres,
    /// The Redis server.
    pub redis: Redis,
    /// Keeps the folder alive until drop.
    _dir: tempfile::TempDir,
}

impl TestEngines {
    /// Starts both engines on free loopback ports.
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("nova-test-")
            .tempdir_in("/tmp")?;
        fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
        let postgres = Postgres::new(&dir.path().join("pg"), wait::free_port()?)?;
        postgres.start()?;
        let redis = Redis::new(&dir.path().join("redis"), wait::free_port()?);
        if let Err(err) = redis.start() {
            let _ = postgres.stop();
            return Err(err);
        }
        Ok(Self {
            postgres,
            redis,
            _dir: dir,
        })
    }

    /// Environment variables telling tests where the engines are.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("NOVA_TEST_DATABASE_URL", self.postgres.url("postgres")),
            ("NOVA_TEST_REDIS_URL", self.redis.url()),
        ]
    }
}

impl Drop for TestEngines {
    fn drop(&mut self) {
        let _ = self.redis.stop();
        let _ = self.postgres.stop();
    }
}
