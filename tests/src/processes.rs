//! The whole platform as separate real processes, for faults that kill one of them:
//! a private PostgreSQL and redis-server, the `nova-control-plane`, `nova-ingest-hooks`
//! and `nova-edge` binaries, and nginx-rtmp, each on a fixed loopback port so a
//! killed process is started again with the same command line and environment.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use nix::{
    sys::signal::{Signal, kill, killpg},
    unistd::Pid,
};
use nova_stack::{
    nginx::{Nginx, NginxSettings, Vod, live_scratch},
    postgres::Postgres,
    redis::Redis,
    wait::free_port,
};

use crate::{context::random_token, edge::JWT_SECRET};

/// Knobs of a process stack.
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// nginx's on_update period.
    pub update_interval: Duration,
    /// The control plane's `NOVA_INGEST_TIMEOUT`.
    pub ingest_timeout: Duration,
    /// The control plane's `NOVA_SESSION_TTL` (how long a killed edge's sessions count).
    pub session_ttl: Duration,
    /// The edge's `NOVA_SESSION_HEARTBEAT`.
    pub session_heartbeat: Duration,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        Self {
            update_interval: Duration::from_secs(1),
            ingest_timeout: Duration::from_secs(8),
            session_ttl: Duration::from_secs(3),
            session_heartbeat: Duration::from_secs(1),
        }
    }
}

/// One of our binaries: what it runs with, and the running child.
pub struct Service {
    /// Binary name (`nova-edge`, …), for messages.
    name: &'static str,
    /// The binary.
    program: PathBuf,
    /// Its whole environment besides the inherited one.
    env: Vec<(&'static str, String)>,
    /// The address it listens on (readiness).
    addr: SocketAddr,
    /// Where its stdout and stderr go (unless `NOVA_TEST_LOG` is set).
    log: PathBuf,
    /// The running process.
    child: Option<tokio::process::Child>,
}

impl Service {
    fn new(
        name: &'static str,
        dir: &Path,
        addr: SocketAddr,
        env: Vec<(&'static str, String)>,
    ) -> Self {
        Self {
            name,
            program: nova_stack::stack::sibling_binary(name)
                .unwrap_or_else(|e| panic!("{name} built (cargo build --workspace --bins): {e}")),
            env,
            addr,
            log: dir.join(format!("{name}.log")),
            child: None,
        }
    }

    /// Starts the binary and waits (at most 30 s) until it accepts connections.
    pub async fn start(&mut self) {
        let mut command = tokio::process::Command::new(&self.program);
        command.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        if std::env::var_os("NOVA_TEST_LOG").is_none() {
            // Kept with the stack's files; NOVA_TEST_LOG=1 shows them on stderr instead.
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .expect("open the service log");
            let err = log.try_clone().expect("clone the log handle");
            command.stdout(Stdio::from(log)).stderr(Stdio::from(err));
        }
        let mut child = command
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.name));
        let (addr, name) = (self.addr, self.name);
        crate::wait::until(
            &format!("{} on {addr} (log: {})", self.name, self.log.display()),
            Duration::from_secs(30),
            || {
                let exited = child.try_wait().ok().flatten();
                async move {
                    match exited {
                        Some(status) => panic!("{name} exited at start-up: {status}"),
                        None if nova_stack::wait::accepts(addr) => Ok(()),
                        None => Err("not listening yet"),
                    }
                }
            },
        )
        .await;
        self.child = Some(child);
    }

    /// Kills the process with SIGKILL and reaps it.
    pub async fn kill(&mut self) {
        let mut child = self.child.take().expect("the service runs");
        let pid = Pid::from_raw(child.id().expect("a live child") as i32);
        kill(pid, Signal::SIGKILL).expect("SIGKILL");
        child.wait().await.expect("reap the killed process");
    }

    /// Returns its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// The running platform.
pub struct ProcessStack {
    /// The private PostgreSQL server.
    pub postgres: Postgres,
    /// The private Redis server (no persistence: a restart comes back empty).
    pub redis: Redis,
    /// `nova-control-plane`.
    pub control_plane: Service,
    /// `nova-ingest-hooks`.
    pub hooks: Service,
    /// `nova-edge`.
    pub edge: Service,
    /// The nginx-rtmp ingest node.
    pub nginx: Nginx,
    /// The admin service token.
    pub token: String,
    /// The edge's service token.
    pub edge_token: String,
    /// Holds every file (under /tmp, reachable by the `postgres` user).
    dir: tempfile::TempDir,
    /// nginx's live output, on tmpfs where there is one ([`live_scratch`]).
    _media: tempfile::TempDir,
}

impl ProcessStack {
    /// Starts every engine and service.
    pub async fn start(options: &ProcessOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("nova-procs-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod the temp dir");
        let media = tempfile::Builder::new()
            .prefix("nova-procs-media-")
            .tempdir_in(live_scratch())
            .expect("temp dir for live output");
        let port = || free_port().expect("a free port");
        let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let postgres = Postgres::new(&dir.path().join("pg"), port()).expect("find PostgreSQL");
        postgres.start().expect("start PostgreSQL");
        postgres.create_database("nova").expect("create nova");
        let redis = Redis::new(&dir.path().join("redis"), port());
        redis.start().expect("start redis-server");

        let (token, edge_token, ingest_token) = (random_token(), random_token(), random_token());
        let hooks_secret = random_token();
        let (grpc, hooks_addr, edge_addr) = (loopback(port()), loopback(port()), loopback(port()));
        let nginx = Nginx::new(
            &dir.path().join("nginx"),
            media.path(),
            NginxSettings {
                rtmp_port: port(),
                http_port: port(),
                stat_port: port(),
                hooks_url: format!("http://{hooks_addr}/rtmp"),
                hooks_secret: hooks_secret.clone(),
                rtmp_playback: false,
                update_interval: format!("{}ms", options.update_interval.as_millis()),
                abr: false,
                vod: Vod::Off,
            },
        );
        let secs = |d: Duration| format!("{}ms", d.as_millis());
        let mut control_plane = Service::new(
            "nova-control-plane",
            dir.path(),
            grpc,
            vec![
                ("NOVA_GRPC_ADDR", grpc.to_string()),
                ("NOVA_METRICS_ADDR", loopback(port()).to_string()),
                ("NOVA_DATABASE_URL", postgres.url("nova")),
                ("NOVA_DB_POOL_SIZE", "4".into()),
                ("NOVA_REDIS_URL", redis.url()),
                ("NOVA_SERVICE_TOKEN", token.clone()),
                ("NOVA_EDGE_SERVICE_TOKEN", edge_token.clone()),
                ("NOVA_INGEST_SERVICE_TOKEN", ingest_token.clone()),
                ("NOVA_RTMP_URL", nginx.rtmp_url()),
                ("NOVA_INGEST_TIMEOUT", secs(options.ingest_timeout)),
                ("NOVA_SESSION_TTL", secs(options.session_ttl)),
                ("NOVA_SAMPLE_INTERVAL", "1s".into()),
                ("NOVA_REAPER_INTERVAL", "200ms".into()),
                ("NOVA_VOD_URL", format!("{}/vod", nginx.origin_url())),
            ],
        );
        let mut hooks = Service::new(
            "nova-ingest-hooks",
            dir.path(),
            hooks_addr,
            vec![
                ("NOVA_HOOKS_ADDR", hooks_addr.to_string()),
                ("NOVA_HOOKS_SECRET", hooks_secret),
                ("NOVA_CONTROL_PLANE_URL", format!("http://{grpc}")),
                ("NOVA_SERVICE_TOKEN", ingest_token),
                ("NOVA_INGEST_NODE", "ingest-table".into()),
                ("NOVA_ORIGIN_URL", nginx.origin_url()),
                ("NOVA_RELAY_URL", nginx.relay_url()),
                ("NOVA_STAT_URL", nginx.stat_url()),
                ("NOVA_STAT_INTERVAL", "1s".into()),
                ("NOVA_PUBLISH_FAILURES", "1000".into()),
                (
                    "NOVA_HLS_DIR",
                    nginx.media().join("hls").display().to_string(),
                ),
            ],
        );
        let mut edge = Service::new(
            "nova-edge",
            dir.path(),
            edge_addr,
            vec![
                ("NOVA_EDGE_ADDR", edge_addr.to_string()),
                ("NOVA_CONTROL_PLANE_URL", format!("http://{grpc}")),
                ("NOVA_SERVICE_TOKEN", edge_token.clone()),
                ("NOVA_EDGE_NODE", "edge-table".into()),
                ("NOVA_JWT_HS256_SECRET", JWT_SECRET.into()),
                ("NOVA_SESSION_HEARTBEAT", secs(options.session_heartbeat)),
                ("NOVA_WS_OPENS_PER_MINUTE", "6000".into()),
                (
                    "NOVA_WEB_DIR",
                    crate::tools::workspace_root()
                        .join("edge/web")
                        .display()
                        .to_string(),
                ),
            ],
        );
        control_plane.start().await;
        hooks.start().await;
        edge.start().await;
        nginx.start().expect("start nginx");
        Self {
            postgres,
            redis,
            control_plane,
            hooks,
            edge,
            nginx,
            token,
            edge_token,
            dir,
            _media: media,
        }
    }

    /// Returns the control plane's `http://` URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.control_plane.addr())
    }

    /// Returns the edge's `http://` base URL.
    pub fn edge_url(&self) -> String {
        format!("http://{}", self.edge.addr())
    }

    /// Returns the RTMP URL to publish `key` to.
    pub fn publish_url(&self, key: &str) -> String {
        format!("{}/{key}", self.nginx.rtmp_url())
    }

    /// Returns the URL of the control plane's database.
    pub fn database_url(&self) -> String {
        self.postgres.url("nova")
    }

    /// Kills redis-server with SIGKILL (it comes back empty: no persistence).
    pub fn kill_redis(&self) {
        kill_pid_file(&self.dir.path().join("redis/redis.pid"), false);
    }

    /// Stops PostgreSQL in immediate mode (every process quits without a checkpoint,
    /// as after a crash: the next start runs recovery).
    pub fn crash_postgres(&self) {
        self.postgres
            .stop_immediate()
            .expect("pg_ctl stop -m immediate");
    }

    /// Kills nginx's master and workers (one process group) with SIGKILL.
    pub fn kill_nginx(&self) {
        kill_pid_file(&self.dir.path().join("nginx/nginx.pid"), true);
        // A dead master leaves its pid file: the next start must not read it.
        let _ = std::fs::remove_file(self.dir.path().join("nginx/nginx.pid"));
    }
}

impl Drop for ProcessStack {
    fn drop(&mut self) {
        let _ = self.nginx.stop();
        let _ = self.redis.stop();
        let _ = self.postgres.stop();
    }
}

/// Sends SIGKILL to the process named by `pid_file` (its whole group with `group`)
/// and waits (at most 10 s) until it is gone.
fn kill_pid_file(pid_file: &Path, group: bool) {
    let text = std::fs::read_to_string(pid_file)
        .unwrap_or_else(|e| panic!("read {}: {e}", pid_file.display()));
    let pid = Pid::from_raw(text.trim().parse().expect("a pid"));
    if group {
        killpg(pid, Signal::SIGKILL).expect("SIGKILL the process group");
    } else {
        kill(pid, Signal::SIGKILL).expect("SIGKILL");
    }
    nova_stack::wait::until(
        &format!("pid {pid} gone after SIGKILL"),
        Duration::from_secs(10),
        || !nova_stack::process::alive(pid),
    )
    .expect("the killed process is gone");
}
