//! Service processes: spawn detached or attached, record pid files, stop by pid file.

use std::{
    fs::{self, File},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::Context;
pub use nix::unistd::Pid;
use nix::{
    errno::Errno,
    sys::signal::{Signal, kill},
};

/// How a service's output is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// Output goes to the terminal; the process shares our process group, so Ctrl-C
    /// reaches it too (`make dev`).
    Foreground,
    /// Output goes to a log file; the process gets its own process group and outlives
    /// us (`make up`).
    Detached,
}

/// A service to run.
#[derive(Debug)]
pub struct Service {
    /// Short name, used for the pid and log files.
    pub name: &'static str,
    /// Executable path.
    pub program: PathBuf,
    /// Environment variables to set.
    pub env: Vec<(String, String)>,
}

/// Starts `service`, writing `<run_dir>/<name>.pid` and, when detached,
/// `<log_dir>/<name>.log`.
pub fn spawn(
    service: &Service,
    run_dir: &Path,
    log_dir: &Path,
    attach: Attach,
) -> anyhow::Result<Child> {
    fs::create_dir_all(run_dir)?;
    fs::create_dir_all(log_dir)?;
    let mut cmd = Command::new(&service.program);
    cmd.envs(service.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    if attach == Attach::Detached {
        let log = File::create(log_dir.join(format!("{}.log", service.name)))?;
        cmd.stdout(log.try_clone()?).stderr(log).process_group(0);
    }
    let child = cmd.spawn().with_context(|| {
        format!(
            "cannot start {} ({})",
            service.name,
            service.program.display()
        )
    })?;
    fs::write(
        run_dir.join(format!("{}.pid", service.name)),
        child.id().to_string(),
    )?;
    Ok(child)
}

/// Sends SIGTERM to the process named in `pid_file`, waits up to `grace` for it to
/// exit, then SIGKILLs it; removes the pid file. A missing file or dead process is fine.
pub fn stop_pid_file(pid_file: &Path, grace: Duration) -> anyhow::Result<()> {
    let Ok(raw) = fs::read_to_string(pid_file) else {
        return Ok(());
    };
    if let Ok(pid) = raw.trim().parse::<i32>() {
        stop_pid(Pid::from_raw(pid), grace);
    }
    let _ = fs::remove_file(pid_file);
    Ok(())
}

/// Stops one process: SIGTERM, up to `grace` to exit, then SIGKILL.
pub fn stop_pid(pid: Pid, grace: Duration) {
    if kill(pid, Signal::SIGTERM) == Err(Errno::ESRCH) {
        return;
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !alive(pid) {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = kill(pid, Signal::SIGKILL);
}

/// Tells whether `pid` names a live (non-zombie) process.
pub fn alive(pid: Pid) -> bool {
    if kill(pid, None).is_err() {
        return false;
    }
    // A zombie still answers kill(0); it is dead for our purposes.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}
