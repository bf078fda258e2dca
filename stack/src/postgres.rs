//! A private PostgreSQL instance: `initdb` once, `pg_ctl start/stop`, TCP on loopback
//! only (no Unix socket). PostgreSQL refuses to run as root, so as root the server
//! runs as the `postgres` system user, which must be able to reach the data folder.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};
use nix::unistd::{Uid, User, chown};

/// A private PostgreSQL server.
#[derive(Debug)]
pub struct Postgres {
    /// Folder holding `data/` and `postgres.log`, owned by the server's user.
    root: PathBuf,
    /// TCP port on 127.0.0.1.
    port: u16,
    /// Folder with `initdb`, `pg_ctl`, `postgres`.
    bin: PathBuf,
    /// Server certificate and key (PEM) when TLS is on.
    tls: Option<(PathBuf, PathBuf)>,
}

impl Postgres {
    /// Describes a server with its files under `root`, listening on `port`.
    pub fn new(root: &Path, port: u16) -> anyhow::Result<Self> {
        Ok(Self {
            root: root.to_owned(),
            port,
            bin: bin_dir()?,
            tls: None,
        })
    }

    /// Turns TLS on (`ssl=on`) with this certificate and key (PEM) and refuses
    /// plaintext connections (`hostssl` only).
    #[must_use]
    pub fn with_tls(mut self, cert: &Path, key: &Path) -> Self {
        self.tls = Some((cert.to_owned(), key.to_owned()));
        self
    }

    /// Returns the port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns the URL of database `db` as the `postgres` superuser.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates the cluster if needed and starts the server; waits until it accepts
    /// connections (pg_ctl -w, bounded by 60 s).
    pub fn start(&self) -> anyhow::Result<()> {
        let data = self.root.join("data");
        fs::create_dir_all(&self.root)?;
        self.give_to_server_user(&self.root)?;
        if !data.join("PG_VERSION").exists() {
            self.run(
                "initdb",
                &[
                    "-D",
                    path_str(&data)?,
                    "--auth=trust",
                    "--username=postgres",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
            )
            .context("initdb failed")?;
        }
        let mut options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' \
             -c max_connections=300 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off",
            self.port
        );
        if let Some((cert, key)) = &self.tls {
            // The server insists on a key only its user can read.
            let (cert_copy, key_copy) =
                (self.root.join("server.crt"), self.root.join("server.key"));
            fs::copy(cert, &cert_copy)?;
            fs::copy(key, &key_copy)?;
            fs::set_permissions(&key_copy, fs::Permissions::from_mode(0o600))?;
            let hba = self.root.join("pg_hba_tls.conf");
            fs::write(
                &hba,
                "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
            )?;
            for file in [&cert_copy, &key_copy, &hba] {
                self.give_file_to_server_user(file)?;
            }
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c hba_file={}",
                path_str(&cert_copy)?,
                path_str(&key_copy)?,
                path_str(&hba)?
            ));
        }
        let log = self.root.join("postgres.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        )
        .with_context(|| {
            format!(
                "PostgreSQL did not start on port {}; see {}",
                self.port,
                log.display()
            )
        })
    }

    /// Stops the server if it runs (fast mode: open sessions are cut).
    pub fn stop(&self) -> anyhow::Result<()> {
        let data = self.root.join("data");
        if !data.join("postmaster.pid").exists() {
            return Ok(());
        }
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-m",
                "fast",
                "-w",
                "-t",
                "30",
                "stop",
            ],
        )
        .or_else(|err| {
            // A stale pid file from a crash: nothing is running.
            if data.join("postmaster.pid").exists() && !self.running()? {
                return Ok(());
            }
            Err(err)
        })
    }

    /// Stops the server in immediate mode, as a crash would: every server process
    /// quits at once without a checkpoint, and the next start runs crash recovery.
    pub fn stop_immediate(&self) -> anyhow::Result<()> {
        let data = self.root.join("data");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-m",
                "immediate",
                "-w",
                "-t",
                "30",
                "stop",
            ],
        )
    }

    /// Tells whether a server runs on this cluster.
    pub fn running(&self) -> anyhow::Result<bool> {
        let data = self.root.join("data");
        Ok(self
            .command("pg_ctl", &["-D", path_str(&data)?, "status"])?
            .output()?
            .status
            .success())
    }

    /// Creates database `name` unless it exists.
    pub fn create_database(&self, name: &str) -> anyhow::Result<()> {
        let port = self.port.to_string();
        let exists = self
            .command(
                "psql",
                &[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                    "-tAc",
                    &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
                ],
            )?
            .output()?;
        if String::from_utf8_lossy(&exists.stdout).trim() == "1" {
            return Ok(());
        }
        self.run(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", name],
        )
    }

    fn command(&self, tool: &str, args: &[&str]) -> anyhow::Result<Command> {
        let program = self.bin.join(tool);
        let mut cmd = if Uid::effective().is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        cmd.args(args).current_dir("/");
        Ok(cmd)
    }

    fn run(&self, tool: &str, args: &[&str]) -> anyhow::Result<()> {
        let out = self
            .command(tool, args)?
            .output()
            .with_context(|| format!("cannot run {tool}"))?;
        if !out.status.success() {
            bail!(
                "{tool} exited with {}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// As root, hands `file` to the `postgres` user.
    fn give_file_to_server_user(&self, file: &Path) -> anyhow::Result<()> {
        if !Uid::effective().is_root() {
            return Ok(());
        }
        let user = User::from_name("postgres")?
            .context("the `postgres` system user is missing: install the postgresql package")?;
        chown(file, Some(user.uid), Some(user.gid))?;
        Ok(())
    }

    /// As root, hands `dir` to the `postgres` user and checks that user can reach it.
    fn give_to_server_user(&self, dir: &Path) -> anyhow::Result<()> {
        if !Uid::effective().is_root() {
            return Ok(());
        }
        self.give_file_to_server_user(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        let reachable = Command::new("runuser")
            .args(["-u", "postgres", "--", "test", "-w"])
            .arg(dir)
            .status()?
            .success();
        if !reachable {
            bail!(
                "the postgres user cannot reach {}: a parent folder is closed to other users",
                dir.display()
            );
        }
        Ok(())
    }
}

/// Tells whether the `postgres` system user can reach (traverse into) `dir`.
pub fn reachable_by_server_user(dir: &Path) -> bool {
    if !Uid::effective().is_root() {
        return true;
    }
    Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(dir)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Finds the newest installed PostgreSQL's binaries (`/usr/lib/postgresql/<v>/bin`).
fn bin_dir() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .context(
            "PostgreSQL is not installed (no /usr/lib/postgresql); run scripts/install-deps.sh",
        )?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .context("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("path is not UTF-8: {}", path.display()))
}
