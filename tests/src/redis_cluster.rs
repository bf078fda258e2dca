//! A private Redis Cluster for one test: three masters and three replicas
//! (`redis-server --cluster-enabled yes` on free loopback ports, joined by
//! `redis-cli --cluster create … --cluster-replicas 1`), no persistence, a short node
//! timeout so a killed master fails over in a few seconds. Stopped when dropped.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use nova_stack::wait::free_port;

use crate::wait;

/// How long a node may be unreachable before the cluster fails it over. Short, so a
/// failover takes seconds; the tests never load the machine enough to trip it.
const NODE_TIMEOUT_MS: u32 = 1000;
/// Longest wait for any step of forming the cluster.
const FORM_TIMEOUT: Duration = Duration::from_secs(30);

/// One node.
struct Node {
    /// Client port on 127.0.0.1.
    port: u16,
    /// Its folder (pid file, log, nodes.conf).
    dir: PathBuf,
}

impl Node {
    fn pid_file(&self) -> PathBuf {
        self.dir.join("redis.pid")
    }
}

/// A running 3-master, 3-replica cluster.
pub struct RedisCluster {
    /// The six nodes, in the order given to `--cluster create` (masters first).
    nodes: Vec<Node>,
    /// Holds the nodes' folders.
    _dir: tempfile::TempDir,
}

/// Runs `redis-cli -p port args…` and returns its stdout (trimmed), or why not.
pub fn cli(port: u16, args: &[&str]) -> Result<String, String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .map_err(|e| format!("redis-cli: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "redis-cli -p {port} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Returns `field` of an `INFO`/`CLUSTER INFO` answer.
fn info_field(text: &str, field: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{field}:")))
        .map(str::to_owned)
}

impl RedisCluster {
    /// Starts six nodes, forms the cluster, and waits until every node says
    /// `cluster_state:ok` and every replica's link to its master is up.
    pub async fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("nova-redis-cluster-")
            .tempdir()
            .expect("temp dir");
        let nodes: Vec<Node> = (0..6)
            .map(|i| Node {
                port: free_port().expect("free port"),
                dir: dir.path().join(format!("node{i}")),
            })
            .collect();
        for node in &nodes {
            start_node(node);
        }
        for node in &nodes {
            wait::until(
                &format!("redis-server on port {} to answer PING", node.port),
                FORM_TIMEOUT,
                || async {
                    if !node.pid_file().exists() {
                        return Err("no pid file yet".to_owned());
                    }
                    cli(node.port, &["PING"]).and_then(pong)
                },
            )
            .await;
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Self { nodes, _dir: dir };
        cluster.wait_healthy(FORM_TIMEOUT).await;
        cluster
    }

    /// Returns the control plane's URL of this cluster: every node a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}/", seeds.join(","))
    }

    /// Returns the ports of the nodes still running.
    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.pid_file().exists())
            .map(|n| n.port)
            .collect()
    }

    /// Waits (at most `timeout`) until every running node says `cluster_state:ok`,
    /// every slot is served, and every running replica's link to its master is up.
    pub async fn wait_healthy(&self, timeout: Duration) {
        wait::until("the Redis Cluster to be healthy", timeout, || async {
            for port in self.live_ports() {
                let info = cli(port, &["CLUSTER", "INFO"])?;
                if info_field(&info, "cluster_state").as_deref() != Some("ok")
                    || info_field(&info, "cluster_slots_ok").as_deref() != Some("16384")
                {
                    return Err(format!("node {port}: {info}"));
                }
                let replication = cli(port, &["INFO", "replication"])?;
                if info_field(&replication, "role").as_deref() == Some("slave")
                    && info_field(&replication, "master_link_status").as_deref() != Some("up")
                {
                    return Err(format!("replica {port}: {replication}"));
                }
            }
            Ok(())
        })
        .await;
    }

    /// Returns the port of the master serving `key`'s slot, as `CLUSTER NODES` on a
    /// running node says.
    pub fn master_of(&self, key: &str) -> Result<u16, String> {
        let any = *self.live_ports().first().ok_or("no node running")?;
        let slot: u16 = cli(any, &["CLUSTER", "KEYSLOT", key])?
            .parse()
            .map_err(|e| format!("CLUSTER KEYSLOT: {e}"))?;
        let nodes = cli(any, &["CLUSTER", "NODES"])?;
        nodes
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() >= 8 && f[2].contains("master") && !f[2].contains("fail"))
            .find(|f| f[8..].iter().any(|range| in_range(range, slot)))
            .and_then(|f| port_of(f[1]))
            .ok_or_else(|| format!("no master serves slot {slot}: {nodes}"))
    }

    /// Returns the port of a replica of the master on `master_port`.
    pub fn replica_of(&self, master_port: u16) -> Result<u16, String> {
        let nodes = cli(master_port, &["CLUSTER", "NODES"])?;
        let lines: Vec<Vec<&str>> = nodes
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        let id = lines
            .iter()
            .find(|f| f.len() > 2 && f[2].contains("myself"))
            .map(|f| f[0])
            .ok_or("CLUSTER NODES names no myself")?;
        lines
            .iter()
            .find(|f| f.len() > 3 && f[2].contains("slave") && f[3] == id)
            .and_then(|f| port_of(f[1]))
            .ok_or_else(|| format!("no replica of {master_port}: {nodes}"))
    }

    /// Waits (at most `timeout`) until the replica on `replica_port` has every write
    /// its master (`master_port`) had taken when this was called.
    pub async fn wait_replicated(&self, master_port: u16, replica_port: u16, timeout: Duration) {
        let master = cli(master_port, &["INFO", "replication"]).expect("INFO of the master");
        let target: u64 = info_field(&master, "master_repl_offset")
            .and_then(|v| v.parse().ok())
            .expect("master_repl_offset");
        wait::until(
            &format!("replica {replica_port} to reach offset {target} of {master_port}"),
            timeout,
            || async {
                let info = cli(replica_port, &["INFO", "replication"])?;
                match info_field(&info, "slave_repl_offset").and_then(|v| v.parse::<u64>().ok()) {
                    Some(offset) if offset >= target => Ok(()),
                    other => Err(format!("offset {other:?}")),
                }
            },
        )
        .await;
    }

    /// Kills the node on `port` with SIGKILL, as a crash would (no failover
    /// handshake, no goodbye to clients).
    pub fn kill(&self, port: u16) {
        let node = self
            .nodes
            .iter()
            .find(|n| n.port == port)
            .expect("a node of this cluster");
        kill_node(node);
    }

    /// Waits (at most `timeout`) until the node on `port` is a master.
    pub async fn wait_master(&self, port: u16, timeout: Duration) {
        wait::until(
            &format!("node {port} to be promoted to master"),
            timeout,
            || async {
                let role = cli(port, &["ROLE"])?;
                if role.lines().next() == Some("master") {
                    Ok(())
                } else {
                    Err(role)
                }
            },
        )
        .await;
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            kill_node(node);
        }
    }
}

fn pong(answer: String) -> Result<(), String> {
    if answer == "PONG" {
        Ok(())
    } else {
        Err(answer)
    }
}

/// Whether a `CLUSTER NODES` slot field (`5461-10922` or `42`) holds `slot`.
fn in_range(range: &str, slot: u16) -> bool {
    let (lo, hi) = range.split_once('-').unwrap_or((range, range));
    matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if (lo..=hi).contains(&slot))
}

/// Port of a `CLUSTER NODES` address field (`127.0.0.1:7001@17001`).
fn port_of(addr: &str) -> Option<u16> {
    addr.split('@').next()?.rsplit(':').next()?.parse().ok()
}

fn start_node(node: &Node) {
    std::fs::create_dir_all(&node.dir).expect("node folder");
    let bus = free_port().expect("free port");
    let dir: &Path = &node.dir;
    let status = Command::new("redis-server")
        .args(["--port", &node.port.to_string()])
        .args([
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            &bus.to_string(),
        ])
        .arg("--cluster-config-file")
        .arg(dir.join("nodes.conf"))
        .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
        // A replica may always take over, however long it was cut off.
        .args(["--cluster-replica-validity-factor", "0"])
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--daemonize", "yes"])
        .arg("--dir")
        .arg(dir)
        .arg("--pidfile")
        .arg(node.pid_file())
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .status()
        .expect("run redis-server");
    assert!(
        status.success(),
        "redis-server on port {} failed",
        node.port
    );
}

fn kill_node(node: &Node) {
    let Ok(pid) = std::fs::read_to_string(node.pid_file()) else {
        return;
    };
    if let Ok(pid) = pid.trim().parse::<i32>() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = std::fs::remove_file(node.pid_file());
}
