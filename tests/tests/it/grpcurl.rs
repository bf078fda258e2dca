//! The real `nova-control-plane` binary driven by the real grpcurl: reflection,
//! create, get, list, rotate, end; then SIGTERM; and no key in its debug log.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    fs,
    net::SocketAddr,
    process::{Command, Stdio},
    time::Duration,
};

use nova_stack::{stack::sibling_binary, wait};
use nova_tests::{context, tools};
use serde_json::Value;

struct Grpcurl {
    addr: SocketAddr,
    token: String,
}

impl Grpcurl {
    /// Runs `grpcurl -plaintext <flags> <addr> <rest>`.
    fn exec(&self, flags: &[&str], rest: &[&str]) -> std::process::Output {
        Command::new(tools::grpcurl())
            .args(["-plaintext", "-max-time", "10"])
            .args(flags)
            .arg(self.addr.to_string())
            .args(rest)
            .output()
            .expect("run grpcurl")
    }

    fn list_services(&self) -> String {
        let out = self.exec(&[], &["list"]);
        assert!(
            out.status.success(),
            "grpcurl list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Calls `method` as `principal` with JSON `body`; returns the JSON answer.
    fn call(&self, principal: &str, method: &str, body: &str) -> Value {
        let auth = format!("authorization: Bearer {}", self.token);
        let who = format!("x-nova-principal: {principal}");
        let method = format!("nova.streaming.v1.StreamService/{method}");
        let out = self.exec(&["-H", &auth, "-H", &who, "-d", body], &[&method]);
        assert!(
            out.status.success(),
            "grpcurl {method} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("grpcurl printed JSON")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_drives_the_real_binary_and_the_log_never_shows_a_key() {
    let engines = context::Engines::get();
    let database_url = engines.fresh_database().await;
    let token = context::random_token();
    let addr = SocketAddr::from(([127, 0, 0, 1], wait::free_port().unwrap()));
    let dir = tempfile_dir();
    let log_path = dir.join("control-plane.log");
    let log = fs::File::create(&log_path).unwrap();
    let mut child = Command::new(sibling_binary("nova-control-plane").unwrap())
        .env("NOVA_GRPC_ADDR", addr.to_string())
        // Its own metrics port, so a `make up` stack on 9464 does not stop it.
        .env(
            "NOVA_METRICS_ADDR",
            format!("127.0.0.1:{}", wait::free_port().unwrap()),
        )
        .env("NOVA_DATABASE_URL", &database_url)
        .env("NOVA_REDIS_URL", &engines.redis_url)
        .env("NOVA_SERVICE_TOKEN", &token)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let ready = wait::until(
        "the control plane to listen",
        Duration::from_secs(60),
        || wait::accepts(addr) || matches!(child.try_wait(), Ok(Some(_))),
    );
    assert!(
        ready.is_ok() && child.try_wait().unwrap().is_none(),
        "control plane did not start: {}",
        fs::read_to_string(&log_path).unwrap()
    );

    let grpcurl = Grpcurl { addr, token };
    let services = grpcurl.list_services();
    for service in nova_control_plane::grpc::SERVICE_NAMES {
        assert!(
            services.lines().any(|l| l == service),
            "{service} not listed:\n{services}"
        );
    }

    let created = grpcurl.call(
        "alice",
        "CreateStream",
        r#"{"stream": {"title": "grpcurl show"}}"#,
    );
    let key = created["streamKey"].as_str().unwrap().to_owned();
    let name = created["stream"]["name"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk_live_"));
    assert_eq!(created["stream"]["status"], "STREAM_STATUS_PENDING");

    let got = grpcurl.call("bob", "GetStream", &format!(r#"{{"name": "{name}"}}"#));
    assert_eq!(got["stream"]["title"], "grpcurl show");
    assert_eq!(got["stream"]["owner"], "alice");

    let listed = grpcurl.call(
        "alice",
        "ListStreams",
        r#"{"statuses": ["STREAM_STATUS_PENDING"]}"#,
    );
    assert_eq!(listed["streams"][0]["name"], name.as_str());

    let rotated = grpcurl.call(
        "alice",
        "RotateStreamKey",
        &format!(r#"{{"name": "{name}"}}"#),
    );
    let new_key = rotated["streamKey"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);

    let ended = grpcurl.call("alice", "EndStream", &format!(r#"{{"name": "{name}"}}"#));
    assert_eq!(ended["stream"]["status"], "STREAM_STATUS_COMPLETED");

    // Graceful stop on SIGTERM, exit code 0.
    nova_stack::process::stop_pid(
        nova_stack::process::Pid::from_raw(child.id() as i32),
        Duration::from_secs(15),
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "control plane exited with {status}");

    let log = fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("stream created"), "debug log is empty?\n{log}");
    for secret in [&key, &new_key, &grpcurl.token] {
        assert!(
            !log.contains(secret.as_str()),
            "a secret leaked into the log"
        );
    }
    assert!(
        !log.contains("sk_live_"),
        "something key-shaped is in the log"
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nova-grpcurl-{}", uuid::Uuid::new_v4().simple()));
    fs::create_dir_all(&dir).unwrap();
    dir
}
