//! A private nginx + nginx-rtmp ingest node rendered from `deploy/nginx/`.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, bail};
use nix::unistd::{Uid, User};

use crate::{process, wait};

/// The template, shared with Kubernetes (deploy/k8s).
pub const TEMPLATE: &str = include_str!("../../deploy/nginx/nginx.conf.template");
/// ABR transcoder block, included when ABR is on.
pub const ABR_ON: &str = include_str!("../../deploy/nginx/abr-on.conf.template");
/// Empty ABR block.
pub const ABR_OFF: &str = include_str!("../../deploy/nginx/abr-off.conf");
/// VOD origin reading asset files from the file store's folder.
pub const VOD_FILE: &str = include_str!("../../deploy/nginx/vod-file.conf.template");
/// VOD origin proxying presigned GETs to an S3 endpoint.
pub const VOD_S3: &str = include_str!("../../deploy/nginx/vod-s3.conf.template");
/// No asset store: asset files are not served.
pub const VOD_OFF: &str = include_str!("../../deploy/nginx/vod-off.conf");
/// Where Debian's libnginx-mod-rtmp puts the module.
pub const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
/// Loopback address nginx's own relays connect to (the template listens on it): the
/// one address [`relay_quick_acks`] gives immediate ACKs.
pub const RELAY_HOST: &str = "127.0.0.2";

/// Addresses and settings of one ingest node.
#[derive(Debug, Clone)]
pub struct NginxSettings {
    /// RTMP port on 127.0.0.1.
    pub rtmp_port: u16,
    /// HLS/DASH origin port on 127.0.0.1.
    pub http_port: u16,
    /// Private /stat port on 127.0.0.1.
    pub stat_port: u16,
    /// ingest-hooks callback base URL (`http://host:port/rtmp`); each callback kind
    /// gets its own path under it.
    pub hooks_url: String,
    /// Shared secret nginx passes to ingest-hooks (and marks the ABR transcoder with).
    pub hooks_secret: String,
    /// Whether players outside loopback may play the internal application over RTMP.
    pub rtmp_playback: bool,
    /// on_update period, e.g. `2s`.
    pub update_interval: String,
    /// Whether to transcode into renditions.
    pub abr: bool,
    /// Where the VOD origin reads asset files.
    pub vod: Vod,
}

/// Where the VOD origin reads asset files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Vod {
    /// No asset store: `/vod/…` is a 404.
    #[default]
    Off,
    /// The file store's folder (the root of `file://…`).
    File(PathBuf),
    /// An S3 endpoint (`http://host:port` or `https://host`), fetched with presigned
    /// GETs.
    S3(String),
}

impl Vod {
    /// Returns the include file's name and content.
    fn include(&self) -> anyhow::Result<(&'static str, String)> {
        Ok(match self {
            Vod::Off => ("vod-off.conf", VOD_OFF.to_owned()),
            Vod::File(root) => (
                "vod-file.conf",
                render(VOD_FILE, &[("VOD_ROOT", path(root)?)])?,
            ),
            Vod::S3(endpoint) => {
                let (scheme, rest) = endpoint
                    .split_once("://")
                    .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
                    .with_context(|| format!("S3 endpoint {endpoint}: not an http(s):// URL"))?;
                let host = rest.trim_end_matches('/').to_owned();
                if host.is_empty() || host.contains('/') {
                    bail!("S3 endpoint {endpoint}: a host (and port), no path");
                }
                let name = host
                    .rsplit_once(':')
                    .map_or(host.as_str(), |(h, _)| h)
                    .to_owned();
                let resolver = if name.parse::<std::net::IpAddr>().is_ok() {
                    format!("# {name} is an address: no resolver needed")
                } else {
                    let conf = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
                    let server = conf
                        .lines()
                        .find_map(|l| l.strip_prefix("nameserver"))
                        .map(str::trim)
                        .with_context(|| {
                            format!("S3 endpoint {endpoint}: no DNS resolver in /etc/resolv.conf")
                        })?;
                    format!("resolver {server} valid=60s;")
                };
                (
                    "vod-s3.conf",
                    render(
                        VOD_S3,
                        &[
                            ("VOD_S3_RESOLVER", resolver),
                            ("VOD_S3_ORIGIN", format!("{scheme}://{host}")),
                            ("VOD_S3_HOST", host.clone()),
                            ("VOD_S3_SERVER_NAME", name),
                        ],
                    )?,
                )
            }
        })
    }
}

/// A private nginx.
#[derive(Debug)]
pub struct Nginx {
    /// Folder with nginx.conf, pid, logs, temp, and recordings/ (the recording
    /// application's pieces, which must outlive a reboot until handed over).
    prefix: PathBuf,
    /// Folder with hls/, dash/, abr/: live output, best on tmpfs ([`live_scratch`]).
    media: PathBuf,
    /// What it serves.
    settings: NginxSettings,
}

impl Nginx {
    /// Describes an nginx with its files (recorded pieces included) under `prefix` and
    /// live output under `media`.
    pub fn new(prefix: &Path, media: &Path, settings: NginxSettings) -> Self {
        Self {
            prefix: prefix.to_owned(),
            media: media.to_owned(),
            settings,
        }
    }

    /// Returns the settings.
    pub fn settings(&self) -> &NginxSettings {
        &self.settings
    }

    /// Returns nginx's error log.
    pub fn error_log(&self) -> PathBuf {
        self.prefix.join("logs/error.log")
    }

    /// Returns the media folder (hls/, dash/, abr/).
    pub fn media(&self) -> &Path {
        &self.media
    }

    /// Returns the folder the recording application writes pieces to.
    pub fn record_dir(&self) -> PathBuf {
        Self::record_dir_in(&self.prefix)
    }

    /// Returns the folder the recording application of an nginx with its files under
    /// `prefix` writes pieces to (for configs made before the [`Nginx`] is).
    pub fn record_dir_in(prefix: &Path) -> PathBuf {
        prefix.join("recordings")
    }

    /// Returns the recording application's URL ingest-hooks relays recorded streams to.
    pub fn record_url(&self) -> String {
        format!("rtmp://{RELAY_HOST}:{}/record", self.settings.rtmp_port)
    }

    /// Returns the VOD origin's base URL (`…/vod`).
    pub fn vod_url(&self) -> String {
        format!("{}/vod", self.origin_url())
    }

    /// Returns the RTMP ingest URL broadcasters publish to (append `/<key>`).
    pub fn rtmp_url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live", self.settings.rtmp_port)
    }

    /// Returns the origin's base URL.
    pub fn origin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.settings.http_port)
    }

    /// Returns the internal relay URL ingest-hooks redirects accepted publishes to.
    pub fn relay_url(&self) -> String {
        format!("rtmp://{RELAY_HOST}:{}/stream", self.settings.rtmp_port)
    }

    /// Returns the private /stat URL.
    pub fn stat_url(&self) -> String {
        format!("http://127.0.0.1:{}/stat", self.settings.stat_port)
    }

    /// Renders the template for this node.
    pub fn render(&self) -> anyhow::Result<String> {
        let user = User::from_uid(Uid::effective())?
            .map(|u| u.name)
            .unwrap_or_else(|| "nobody".into());
        let abr_include = self.prefix.join(if self.settings.abr {
            "abr-on.conf"
        } else {
            "abr-off.conf"
        });
        let rtmp_port = self.settings.rtmp_port.to_string();
        let stream_play = if self.settings.rtmp_playback {
            "allow play all;"
        } else {
            "allow play 127.0.0.1; deny play all;"
        };
        let (vod_include, _) = self.settings.vod.include()?;
        let vars: [(&str, String); 15] = [
            ("RTMP_MODULE", RTMP_MODULE.into()),
            ("USER", user),
            ("PREFIX", path(&self.prefix)?),
            ("MEDIA", path(&self.media)?),
            ("RTMP_LISTEN", format!("127.0.0.1:{rtmp_port}")),
            ("RTMP_PORT", rtmp_port),
            (
                "HTTP_LISTEN",
                format!("127.0.0.1:{}", self.settings.http_port),
            ),
            (
                "STAT_LISTEN",
                format!("127.0.0.1:{}", self.settings.stat_port),
            ),
            ("HOOKS_URL", self.settings.hooks_url.clone()),
            ("HOOKS_SECRET", self.settings.hooks_secret.clone()),
            ("STREAM_PLAY", stream_play.into()),
            ("UPDATE_INTERVAL", self.settings.update_interval.clone()),
            ("ABR_INCLUDE", path(&abr_include)?),
            ("RECORD_PATH", path(&self.record_dir())?),
            ("VOD_INCLUDE", path(&self.prefix.join(vod_include))?),
        ];
        render(TEMPLATE, &vars)
    }

    /// Writes the config, checks it with `nginx -t`, starts nginx and waits (at most
    /// 20 s) until RTMP and HTTP accept connections.
    pub fn start(&self) -> anyhow::Result<()> {
        if !Path::new(RTMP_MODULE).exists() {
            bail!("{RTMP_MODULE} is missing: install libnginx-mod-rtmp (scripts/install-deps.sh)");
        }
        if let Err(why) = relay_quick_acks() {
            eprintln!(
                "nova-stack: {RELAY_HOST} keeps delayed ACKs ({why}): a broadcast's first \
                 playlist may come one keyframe interval later (docs/deploy.md)"
            );
        }
        for dir in ["logs", "tmp"] {
            fs::create_dir_all(self.prefix.join(dir))?;
        }
        for dir in ["hls", "dash", "abr"] {
            fs::create_dir_all(self.media.join(dir))?;
        }
        fs::create_dir_all(self.record_dir())?;
        let (vod_include, content) = self.settings.vod.include()?;
        fs::write(self.prefix.join(vod_include), content)?;
        let port = self.settings.rtmp_port.to_string();
        fs::write(
            self.prefix.join("abr-on.conf"),
            render(
                ABR_ON,
                &[
                    ("RTMP_PORT", port),
                    ("HOOKS_SECRET", self.settings.hooks_secret.clone()),
                ],
            )?,
        )?;
        fs::write(self.prefix.join("abr-off.conf"), ABR_OFF)?;
        let conf = self.prefix.join("nginx.conf");
        fs::write(&conf, self.render()?)?;
        let check = self
            .command(&conf)
            .arg("-t")
            .output()
            .context("cannot run nginx")?;
        if !check.status.success() {
            bail!(
                "nginx rejected {}: {}",
                conf.display(),
                String::from_utf8_lossy(&check.stderr).trim()
            );
        }
        let started = self.command(&conf).output()?;
        if !started.status.success() {
            bail!(
                "nginx did not start: {}",
                String::from_utf8_lossy(&started.stderr).trim()
            );
        }
        for port in [
            self.settings.rtmp_port,
            self.settings.http_port,
            self.settings.stat_port,
        ] {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            wait::until(
                &format!(
                    "nginx on {addr} (log: {})",
                    self.prefix.join("logs/error.log").display()
                ),
                Duration::from_secs(20),
                || wait::accepts(addr),
            )?;
        }
        Ok(())
    }

    /// Stops nginx if its pid file names a live process.
    pub fn stop(&self) -> anyhow::Result<()> {
        process::stop_pid_file(&self.prefix.join("nginx.pid"), Duration::from_secs(10))
    }

    fn command(&self, conf: &Path) -> Command {
        let mut cmd = Command::new("nginx");
        cmd.arg("-p").arg(&self.prefix).arg("-c").arg(conf);
        cmd
    }
}

/// Makes sure [`RELAY_HOST`] has a local route with `quickack 1`, so TCP on the
/// relay's loopback connections ACKs at once and nginx-rtmp's relay is up within a
/// few ms of an accepted publish instead of stalling on delayed ACKs (see the
/// template's header). Adds the route once per boot (as root; it then stays, and
/// only concerns connections to that address); leaves an existing route of that
/// address alone. Errs with why the ACKs stay delayed.
pub fn relay_quick_acks() -> anyhow::Result<()> {
    let target = format!("{RELAY_HOST}/32");
    let ip = |args: &[&str]| -> anyhow::Result<std::process::Output> {
        Command::new("ip")
            .args(args)
            .output()
            .context("`ip` (iproute2) cannot run")
    };
    let route = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).into_owned();
    let shown = ip(&["route", "show", "table", "local", &target])?;
    let existing = route(&shown);
    if existing.contains("quickack 1") {
        return Ok(());
    }
    if !existing.trim().is_empty() {
        bail!("its route is someone else's: {}", existing.trim());
    }
    let added = ip(&[
        "route", "add", "local", &target, "dev", "lo", "table", "local", "quickack", "1",
    ])?;
    if added.status.success() {
        return Ok(());
    }
    // Another stack may have added it meanwhile.
    if route(&ip(&["route", "show", "table", "local", &target])?).contains("quickack 1") {
        return Ok(());
    }
    bail!(
        "ip route add: {}",
        String::from_utf8_lossy(&added.stderr).trim()
    )
}

/// Folder for nginx's live output (HLS, DASH, ABR renditions):
/// `/dev/shm` when it is a tmpfs, else the system's temp folder.
///
/// nginx-rtmp writes segments and playlists from its one worker, synchronously: a
/// file system that is slow to create files (seen here: ext4 scanning recently
/// deleted inodes after a build, ~0.9 s of a core in the kernel) stalls every
/// broadcast, its heartbeats time out, and nginx drops the broadcasters. Live output
/// is a few seconds per stream and cleaned by nginx, so RAM is the right place
/// (docs/deploy.md, "Live output on tmpfs").
pub fn live_scratch() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let on_tmpfs = fs::read_to_string("/proc/mounts").is_ok_and(|m| is_tmpfs(&m, shm));
    let writable = fs::metadata(shm).is_ok_and(|m| m.is_dir() && !m.permissions().readonly());
    if on_tmpfs && writable {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// Tells whether `mounts` (the text of `/proc/mounts`) mounts a tmpfs at `point`.
fn is_tmpfs(mounts: &str, point: &Path) -> bool {
    mounts.lines().any(|line| {
        let mut fields = line.split_whitespace().skip(1);
        fields.next().map(Path::new) == Some(point) && fields.next() == Some("tmpfs")
    })
}

/// Replaces every `{{NAME}}` in `template`; fails on a placeholder left unfilled.
pub fn render(template: &str, vars: &[(&str, String)]) -> anyhow::Result<String> {
    let mut out = template.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    let body: String = out
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    if let Some(start) = body.find("{{") {
        let rest = &body[start..];
        let end = rest.find("}}").map_or(rest.len(), |e| e + 2);
        bail!("template placeholder {} has no value", &rest[..end]);
    }
    Ok(out)
}

fn path(p: &Path) -> anyhow::Result<String> {
    p.to_str()
        .map(str::to_owned)
        .with_context(|| format!("path is not UTF-8: {}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_fills_every_placeholder_or_names_the_missing_one() {
        assert_eq!(render("a {{X}} b", &[("X", "1".into())]).unwrap(), "a 1 b");
        let err = render("a {{X}} {{Y}}", &[("X", "1".into())]).unwrap_err();
        assert!(err.to_string().contains("{{Y}}"), "{err}");
    }

    #[test]
    fn the_template_renders_completely() {
        let nginx = Nginx::new(
            Path::new("/tmp/p"),
            Path::new("/tmp/m"),
            NginxSettings {
                rtmp_port: 1935,
                http_port: 8088,
                stat_port: 8089,
                hooks_url: "http://127.0.0.1:8090/rtmp".into(),
                hooks_secret: "s".into(),
                rtmp_playback: false,
                update_interval: "2s".into(),
                abr: true,
                vod: Vod::S3("http://127.0.0.1:9000".into()),
            },
        );
        let conf = nginx.render().unwrap();
        assert!(conf.contains("on_publish http://127.0.0.1:8090/rtmp/publish?secret=s;"));
        assert!(conf.contains("on_play_done http://127.0.0.1:8090/rtmp/play_done?secret=s;"));
        assert!(conf.contains("allow play 127.0.0.1; deny play all;"));
        assert!(conf.contains("include /tmp/p/abr-on.conf;"));
        assert!(conf.contains("record_path /tmp/p/recordings;"));
        assert!(conf.contains("push rtmp://127.0.0.2:1935/stream;"));
        assert!(conf.contains("listen 127.0.0.2:1935;"));
        assert!(conf.contains("include /tmp/p/vod-s3.conf;"));
        let (_, location) = nginx.settings().vod.include().unwrap();
        assert!(location.contains("set $nova_vod_s3 http://127.0.0.1:9000;"));
        assert!(location.contains("proxy_pass $nova_vod_s3$nova_vod_path;"));
        assert!(location.contains("proxy_set_header Host 127.0.0.1:9000;"));
        assert!(location.contains("no resolver needed"));
        let abr = render(
            ABR_ON,
            &[("RTMP_PORT", "1935".into()), ("HOOKS_SECRET", "s".into())],
        )
        .unwrap();
        assert!(abr.contains("/stream/$name?nova_internal=s"));
    }

    #[test]
    fn live_output_goes_to_dev_shm_only_when_it_is_a_tmpfs() {
        let shm = Path::new("/dev/shm");
        let tmpfs = "sysfs /sys sysfs rw 0 0\ntmpfs /dev/shm tmpfs rw,nosuid,nodev 0 0\n";
        assert!(is_tmpfs(tmpfs, shm));
        // A disk mounted there, a tmpfs elsewhere, a longer path, a torn line: no.
        assert!(!is_tmpfs("/dev/vda /dev/shm ext4 rw 0 0\n", shm));
        assert!(!is_tmpfs("tmpfs /run tmpfs rw 0 0\n", shm));
        assert!(!is_tmpfs("tmpfs /dev/shm/x tmpfs rw 0 0\n", shm));
        assert!(!is_tmpfs("tmpfs /dev/shm\n", shm));
        assert!(!is_tmpfs("", shm));
    }
}
