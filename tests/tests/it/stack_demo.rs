//! The real `nova-stack up` / `down` on private ports, run again and again: every run
//! leaves exactly one open demo stream, and the key it printed publishes, also after
//! a `down` that cut a live broadcast (that stream is ended, not handed out again).
//! The live output goes to tmpfs; recorded pieces stay on disk.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{path::Path, process::Stdio, time::Duration};

use nova_proto::v1::{GetStreamRequest, ListStreamsRequest, StreamStatus};
use nova_stack::{env_file, stack::sibling_binary, wait::free_port};
use nova_tests::{clients, ffmpeg::Broadcaster, wait};

/// Ports of the stack, one variable each (`nova_stack::stack::Ports::from_env`).
const PORT_VARS: [&str; 9] = [
    "NOVA_STACK_PG_PORT",
    "NOVA_STACK_REDIS_PORT",
    "NOVA_STACK_GRPC_PORT",
    "NOVA_STACK_RTMP_PORT",
    "NOVA_STACK_HLS_PORT",
    "NOVA_STACK_STAT_PORT",
    "NOVA_STACK_HOOKS_PORT",
    "NOVA_STACK_EDGE_PORT",
    "NOVA_STACK_METRICS_PORT",
];

/// A stack in a temporary project folder on free ports; stopped on drop.
struct LocalStack {
    /// The project folder (`--root`); the stack lives in its `.nova/`.
    root: tempfile::TempDir,
    /// `NOVA_STACK_*_PORT` settings.
    ports: Vec<(&'static str, String)>,
}

/// What one `nova-stack up` printed about the demo stream.
struct Printed {
    /// `streams/<id>`.
    name: String,
    /// The stream key.
    key: String,
}

impl LocalStack {
    fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("nova-stack-demo-")
            .tempdir()
            .unwrap();
        // The edge serves the viewer page from <root>/edge/web.
        std::fs::create_dir_all(root.path().join("edge")).unwrap();
        let web = nova_tests::tools::workspace_root().join("edge/web");
        std::os::unix::fs::symlink(web, root.path().join("edge/web")).unwrap();
        let ports = PORT_VARS
            .iter()
            .map(|var| (*var, free_port().unwrap().to_string()))
            .collect();
        Self { root, ports }
    }

    /// Runs `nova-stack --root <root> <command>` (at most 180 s); returns its stdout.
    fn run(&self, command: &str) -> String {
        run_stack(self.root.path(), &self.ports, command)
    }

    /// Brings the stack up and returns the demo stream it printed.
    fn up(&self) -> Printed {
        let out = self.run("up");
        let name = out
            .lines()
            .find_map(|l| l.strip_prefix("Demo stream "))
            .and_then(|rest| rest.split_whitespace().next())
            .expect("`up` names the demo stream")
            .to_owned();
        let key = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("Stream Key:"))
            .expect("`up` prints the demo stream key")
            .trim()
            .to_owned();
        Printed { name, key }
    }

    fn var(&self, name: &str) -> String {
        env_file::read(&self.root.path().join(".nova/stack.env"))
            .unwrap()
            .into_iter()
            .find(|(k, _)| k == name)
            .unwrap_or_else(|| panic!("{name} in .nova/stack.env"))
            .1
    }

    /// A StreamService client acting for the demo user.
    async fn streams(&self) -> clients::Streams {
        clients::streams(
            &format!("http://{}", self.var("NOVA_GRPC_ADDR")),
            Some(&self.var("NOVA_SERVICE_TOKEN")),
            Some("demo"),
        )
        .await
    }

    /// Returns the open demo streams as `(name, status)`, newest first.
    async fn open_demo_streams(&self) -> Vec<(String, StreamStatus)> {
        let open = [
            StreamStatus::Pending,
            StreamStatus::Active,
            StreamStatus::Interrupted,
        ];
        self.streams()
            .await
            .list_streams(ListStreamsRequest {
                page_size: 1000,
                owner: "demo".into(),
                statuses: open.map(i32::from).to_vec(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .streams
            .into_iter()
            .map(|s| (s.name.clone(), s.status()))
            .collect()
    }

    /// Waits (at most `timeout`) until stream `name` is `status`.
    async fn wait_for(&self, name: &str, status: StreamStatus, timeout: Duration) {
        let streams = self.streams().await;
        wait::until(&format!("{name} to be {status:?}"), timeout, || {
            let mut streams = streams.clone();
            async move {
                let now = streams
                    .get_stream(GetStreamRequest { name: name.into() })
                    .await
                    .map_err(|e| e.code().to_string())?
                    .into_inner()
                    .stream
                    .unwrap_or_default()
                    .status();
                if now == status {
                    Ok(())
                } else {
                    Err(format!("{now:?}"))
                }
            }
        })
        .await;
    }

    /// Publishes the printed key with ffmpeg and waits until the stream is live.
    async fn go_live(&self, demo: &Printed) -> Broadcaster {
        let url = format!("{}/{}", self.var("NOVA_RTMP_URL"), demo.key);
        let ffmpeg = Broadcaster::start(&url, Duration::from_secs(120));
        self.wait_for(&demo.name, StreamStatus::Active, Duration::from_secs(30))
            .await;
        ffmpeg
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        // Best effort, also when the test failed half-way.
        if let Ok(program) = sibling_binary("nova-stack") {
            let _ = std::process::Command::new(program)
                .arg("--root")
                .arg(self.root.path())
                .arg("down")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // The live output on tmpfs outlives the project folder: free that RAM.
        if let Ok(target) = std::fs::read_link(self.root.path().join(".nova/media")) {
            let _ = std::fs::remove_dir_all(target);
        }
    }
}

/// Runs `nova-stack --root <root> <command>` with `ports`, bounded to 180 s; its
/// stdout goes through a file, since the services it leaves running inherit no pipe.
fn run_stack(root: &Path, ports: &[(&'static str, String)], command: &str) -> String {
    let out_file = root.join(format!("{command}.out"));
    let mut child = std::process::Command::new(sibling_binary("nova-stack").unwrap())
        .arg("--root")
        .arg(root)
        .arg(command)
        .envs(ports.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("NOVA_STACK_ABR")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            panic!("nova-stack {command} did not finish within 180 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    assert!(status.success(), "nova-stack {command}: {status}; {stderr}");
    std::fs::read_to_string(out_file).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_up_leaves_one_usable_demo_stream_even_after_a_down_cut_a_broadcast() {
    let stack = LocalStack::new();
    let first = stack.up();
    assert_eq!(
        stack.open_demo_streams().await,
        [(first.name.clone(), StreamStatus::Pending)]
    );

    // A second `up` hands out the same PENDING stream with a new key, and that key
    // publishes (the first one no longer does: it was shown once and replaced).
    let second = stack.up();
    assert_eq!(second.name, first.name, "the pending demo stream is reused");
    assert_ne!(second.key, first.key, "a fresh key");
    assert_eq!(
        stack.open_demo_streams().await,
        [(first.name.clone(), StreamStatus::Pending)]
    );
    let ffmpeg = stack.go_live(&second).await;

    // `up` again while it broadcasts: `up` stops the old stack first (the broadcast
    // is cut), then must not hand out that cut stream, which the reaper would end.
    let third = stack.up();
    drop(ffmpeg);
    assert_ne!(third.name, second.name, "the cut stream is not reused");
    assert_eq!(
        stack.open_demo_streams().await,
        [(third.name.clone(), StreamStatus::Pending)],
        "exactly one open demo stream"
    );
    stack
        .wait_for(
            &second.name,
            StreamStatus::Completed,
            Duration::from_secs(10),
        )
        .await;

    // The printed key publishes, and the stream stays live past the ingest timeout
    // (6 s) the reaper would have ended a stale stream after.
    let _ffmpeg = stack.go_live(&third).await;
    let mut streams = stack.streams().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while tokio::time::Instant::now() < deadline {
        let now = streams
            .get_stream(GetStreamRequest {
                name: third.name.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .stream
            .unwrap()
            .status();
        assert_eq!(now, StreamStatus::Active, "the demo stream stays live");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stack.run("down");
}

#[tokio::test(flavor = "multi_thread")]
async fn live_output_goes_to_tmpfs_and_an_older_stacks_pieces_stay_on_disk() {
    let stack = LocalStack::new();
    // What an older stack left: live output and a recorded piece not handed over,
    // both in a plain .nova/media.
    let nova = stack.root.path().join(".nova");
    std::fs::create_dir_all(nova.join("media/hls")).unwrap();
    std::fs::create_dir_all(nova.join("media/recordings/done")).unwrap();
    std::fs::write(nova.join("media/hls/old.m3u8"), "#EXTM3U\n").unwrap();
    std::fs::write(
        nova.join("media/recordings/done/piece.txt"),
        "not handed over",
    )
    .unwrap();

    let printed = stack.up();
    let scratch = nova_stack::nginx::live_scratch();
    let media = nova.join("media");
    if scratch == std::env::temp_dir() {
        assert!(media.is_dir(), "no tmpfs here: .nova/media stays a folder");
    } else {
        let target = std::fs::read_link(&media).expect(".nova/media is a link");
        assert!(
            target.starts_with(&scratch),
            "{} is not on tmpfs ({})",
            target.display(),
            scratch.display()
        );
        assert!(
            !media.join("hls/old.m3u8").exists(),
            "old live output is gone"
        );
    }
    assert_eq!(
        std::fs::read_to_string(nova.join("nginx/recordings/done/piece.txt")).unwrap(),
        "not handed over",
        "the piece moved to the recordings folder, on disk"
    );

    // A broadcast's playlist is written through the link.
    let stream = printed.name.trim_start_matches("streams/").to_owned();
    let _ffmpeg = stack.go_live(&printed).await;
    let playlist = media.join(format!("hls/{stream}.m3u8"));
    wait::until(
        "the demo stream's playlist under .nova/media/hls",
        Duration::from_secs(30),
        || async {
            if playlist.exists() {
                Ok(())
            } else {
                Err("no playlist yet")
            }
        },
    )
    .await;
}
