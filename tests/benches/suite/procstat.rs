//! CPU and memory of processes, read from /proc: RSS, CPU ticks, the process that
//! listens on a port, a process's children; and percentiles.

use std::{fs, time::Duration};

/// Clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`, 100 on Linux).
const TICKS: f64 = 100.0;

/// Returns the resident set of `pid` in KiB (0 when it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Returns user + system CPU ticks of `pid` (0 when it is gone).
pub fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the command.
    field(11) + field(12)
}

fn parent(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Returns `pid` and every process whose parent is `pid` (nginx workers, PostgreSQL
/// backends).
pub fn with_children(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.filter_map(Result::ok) {
            if let Some(child) = entry.file_name().to_str().and_then(|n| n.parse().ok())
                && parent(child) == Some(pid)
            {
                out.push(child);
            }
        }
    }
    out
}

/// Returns the process listening on TCP `port` of loopback (via /proc/net/tcp and
/// the socket inodes under /proc/<pid>/fd).
pub fn listening_on(port: u16) -> Option<u32> {
    let table = fs::read_to_string("/proc/net/tcp").ok()?;
    let wanted = format!(":{port:04X}");
    let inode = table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // local address, state 0A = LISTEN, inode is field 9.
        (f.get(1)?.ends_with(&wanted) && *f.get(3)? == "0A")
            .then(|| f.get(9).map(|s| s.to_string()))?
    })?;
    let link = format!("socket:[{inode}]");
    for entry in fs::read_dir("/proc").ok()?.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.filter_map(Result::ok) {
            if fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == link) {
                return Some(pid);
            }
        }
    }
    None
}

/// A group of processes (one tier), sampled at the start and end of a window.
pub struct Tier {
    /// Name shown in the table.
    pub name: String,
    /// Its processes.
    pub pids: Vec<u32>,
    /// CPU ticks at the start.
    start: u64,
}

impl Tier {
    /// Starts sampling `pids`.
    pub fn new(name: impl Into<String>, pids: Vec<u32>) -> Self {
        let start = pids.iter().map(|p| cpu_ticks(*p)).sum();
        Self {
            name: name.into(),
            pids,
            start,
        }
    }

    /// Returns the CPU used since [`Tier::new`] over `window`, in % of one core, and
    /// the RSS now in MiB (summed over the processes; shared pages count once per
    /// process).
    pub fn sample(&self, window: Duration) -> (f64, f64) {
        let ticks: u64 = self.pids.iter().map(|p| cpu_ticks(*p)).sum();
        let cpu = ticks.saturating_sub(self.start) as f64 / TICKS / window.as_secs_f64() * 100.0;
        let rss: u64 = self.pids.iter().map(|p| rss_kib(*p)).sum();
        (cpu, rss as f64 / 1024.0)
    }
}

/// Returns the `q` quantile (0..=1) of sorted `samples` (0 when empty).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Sorts `samples` and returns (p50, p95, p99, max).
pub fn summary(samples: &mut [f64]) -> (f64, f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    (
        quantile(samples, 0.5),
        quantile(samples, 0.95),
        quantile(samples, 0.99),
        quantile(samples, 1.0),
    )
}

/// Reads `NOVA_BENCH_<name>` as a number, or `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(format!("NOVA_BENCH_{name}"))
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
