//! The runnable examples in `docs/examples`, run as a user would run them, against
//! real services: `curl-tests.sh` against an edge (with a real webhook receiver, and
//! naming every operation of docs/openapi.yaml), `broadcaster.py` through an edge, a
//! control plane, ingest-hooks and nginx-rtmp with real ffmpeg.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{collections::BTreeSet, path::PathBuf, process::Output, time::Duration};

use nova_edge::ws::origin::AllowedOrigins;
use tokio::io::{AsyncBufReadExt, BufReader};

use nova_tests::{
    TestContext,
    edge::{self, call, jwt},
    frames,
    live::{LiveOptions, LiveStack},
    tools::workspace_root,
    webhook_receiver::Receiver,
};

/// Runs `program args` with `env`, failing the test if it takes over `timeout`.
async fn run(program: &PathBuf, args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Output {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_remove("NOVA_TOKEN")
        .env_remove("NOVA_EDGE_URL")
        .env_remove("NOVA_DEV_JWT")
        .envs(env.iter().copied())
        .current_dir(workspace_root())
        .kill_on_drop(true);
    tokio::time::timeout(timeout, command.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} {args:?} did not finish within {timeout:?}",
                program.display()
            )
        })
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()))
}

/// Returns the example's path.
fn example(name: &str) -> String {
    workspace_root()
        .join("docs/examples")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// The Origin the curl test's edge lets open WebSockets.
const ORIGIN: &str = "https://watch.example.com";

/// Runs curl-tests.sh with `env`; returns (exit code, stdout, stderr).
async fn curl_tests(env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = run(
        &PathBuf::from("bash"),
        &[&example("curl-tests.sh")],
        env,
        Duration::from_secs(90),
    )
    .await;
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Fails if `printed` carries a secret: the token, or an unmasked stream key, webhook
/// secret or private key.
fn assert_no_secret(printed: &str, token: &str) {
    assert!(!printed.contains(token), "the token is printed:\n{printed}");
    for prefix in ["sk_live_", "whsec_"] {
        assert!(
            printed
                .match_indices(prefix)
                .all(|(at, _)| printed[at + prefix.len()..].starts_with('…')),
            "an unmasked {prefix} secret is printed:\n{printed}"
        );
    }
    assert!(!printed.contains("PRIVATE KEY-----\\n"), "{printed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_tests_pass_against_a_real_edge_and_stop_at_the_first_failure() {
    // Loopback receivers are allowed, as on `make up`, so the script's webhook
    // endpoint (a real receiver on 127.0.0.1) gets its deliveries.
    let ctx = TestContext::start_with(nova_tests::webhooks::fast).await;
    let receiver = Receiver::start(&[]).await;
    let hook_url = receiver.url("/nova");
    let mut config = edge::config(&ctx, "edge-curl");
    config.ws_allowed_origins = Some(AllowedOrigins::parse(ORIGIN).unwrap());
    let guarded = nova_edge::start(&config).await.expect("start an edge");
    let guarded_url = format!("http://{}", guarded.addr);
    let token = jwt("demo");

    // Everything, with a receiver and the Origin the edge allows.
    let (code, stdout, stderr) = curl_tests(&[
        ("NOVA_EDGE_URL", &guarded_url),
        ("NOVA_DEV_JWT", &token),
        ("NOVA_ORIGIN", ORIGIN),
        ("NOVA_WEBHOOK_RECEIVER_URL", &hook_url),
    ])
    .await;
    assert_eq!(code, Some(0), "curl-tests.sh failed:\n{stdout}{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("curl-tests: ") && last.ends_with(" checks passed"),
        "{stdout}"
    );
    assert!(!stdout.contains("(skipped)"), "{stdout}");
    assert_no_secret(&format!("{stdout}{stderr}"), &token);
    // The stream's events reached the receiver, and the one redelivered twice.
    let delivered = receiver.acknowledged();
    assert!(
        delivered.iter().any(|d| d.event_type == "stream.created"),
        "{delivered:?}"
    );
    let counts = receiver.acknowledged_counts();
    assert!(
        counts.values().any(|&n| n >= 2),
        "one event delivered, then redelivered: {counts:?}"
    );
    // It left nothing behind.
    let api = format!("{guarded_url}/api/v1");
    let hooks = call("GET", &format!("{api}/webhooks"), Some(&token), None).await;
    assert_eq!(hooks.json["webhooks"], serde_json::json!([]), "{hooks:?}");
    let keys = call("GET", &format!("{api}/signing-keys"), Some(&token), None).await;
    assert_eq!(keys.json["signing_keys"], serde_json::json!([]), "{keys:?}");

    // Without the Origin that edge wants: its WebSocket URL answers 403, the script says
    // so, ends its stream and exits 1.
    let (code, stdout, stderr) =
        curl_tests(&[("NOVA_EDGE_URL", &guarded_url), ("NOVA_DEV_JWT", &token)]).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("/ws (anon): HTTP 403, expected 426")
            && stderr.contains("this origin may not open WebSockets"),
        "{stderr}"
    );
    let pending = call(
        "GET",
        &format!("{api}/streams?owner=demo&status=pending"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        pending.json["streams"],
        serde_json::json!([]),
        "{pending:?}"
    );

    // Without a receiver, on an edge that takes any Origin: the rest passes and the
    // script says what it skipped.
    let open = edge::start(&ctx, "edge-curl-open").await;
    let open_url = format!("http://{}", open.addr);
    let (code, stdout, stderr) =
        curl_tests(&[("NOVA_EDGE_URL", &open_url), ("NOVA_DEV_JWT", &token)]).await;
    assert_eq!(code, Some(0), "curl-tests.sh failed:\n{stdout}{stderr}");
    assert!(
        stdout.contains("curl-tests: webhooks: set NOVA_WEBHOOK_RECEIVER_URL"),
        "{stdout}"
    );
    assert_no_secret(&format!("{stdout}{stderr}"), &token);

    // A token the edge does not accept: the first authenticated call fails, and the
    // script says which, with what, and exits 1.
    let wrong =
        nova_stack::jwt::mint_hs256("another-secret-0123456789abcdef0123456789", "demo", 600)
            .expect("mint a JWT");
    let (code, _, stderr) =
        curl_tests(&[("NOVA_EDGE_URL", &open_url), ("NOVA_TOKEN", &wrong)]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "curl-tests: FAIL: GET /api/v1/webhooks?page_size=5 (auth): HTTP 401, expected 200"
        ),
        "{stderr}"
    );
}

#[test]
fn curl_tests_name_every_operation_of_the_openapi_document() {
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join("docs/openapi.yaml")).unwrap();
    let doc: serde_json::Value = serde_norway::from_str(&text).unwrap();
    let mut operations = BTreeSet::new();
    for item in doc["paths"].as_object().expect("paths").values() {
        for op in item.as_object().unwrap().values() {
            if let Some(id) = op.get("operationId").and_then(|v| v.as_str()) {
                operations.insert(id.to_owned());
            }
        }
    }
    assert!(operations.len() >= 20, "{operations:?}");
    let script = std::fs::read_to_string(example("curl-tests.sh")).unwrap();
    // A tag counts on a line that runs something, not in a comment.
    let tagged: BTreeSet<String> = script
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once("# op: ").map(|(_, tag)| tag))
        .map(|tag| tag.split_whitespace().next().unwrap_or_default().to_owned())
        .collect();
    let missing: Vec<_> = operations.difference(&tagged).collect();
    assert!(
        missing.is_empty(),
        "curl-tests.sh calls no line tagged `# op: <id>` for {missing:?}"
    );
    let unknown: Vec<_> = tagged.difference(&operations).collect();
    assert!(
        unknown.is_empty(),
        "curl-tests.sh tags operations docs/openapi.yaml does not have: {unknown:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn broadcaster_goes_live_prints_every_event_and_ends_the_stream_on_ctrl_c_or_a_timer() {
    let python = workspace_root().join(".nova/tools/venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run `make deps` (scripts/install-deps.sh)",
        python.display()
    );
    let mut stack = LiveStack::start(LiveOptions::default()).await;
    // The REST answer's ingest_url comes from the control plane's NOVA_RTMP_URL: a
    // replica (same database and Redis) told this test's nginx address serves the edge.
    stack.ctx.config.rtmp_url = stack.nginx.rtmp_url();
    let replica = stack.ctx.replica().await;
    let mut config = edge::config(&stack.ctx, "edge-broadcaster");
    config.control_plane.url = format!("http://{}", replica.addr);
    let e = nova_edge::start(&config).await.expect("start an edge");
    let url = format!("http://{}", e.addr);
    let token = jwt("demo");
    let script = example("broadcaster.py");
    let env = [
        ("NOVA_EDGE_URL", url.as_str()),
        ("NOVA_DEV_JWT", token.as_str()),
    ];

    // With a timer, as scripts run it.
    let out = run(
        &python,
        &[&script, "--title", "timed run", "--seconds", "2"],
        &env,
        Duration::from_secs(90),
    )
    .await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "broadcaster.py --seconds 2 failed ({}):\n{stdout}{stderr}",
        out.status
    );
    let id = assert_broadcast(&stdout, &stderr, &token);
    let stream = call("GET", &format!("{url}/api/v1/streams/{id}"), None, None).await;
    assert_eq!(stream.json["stream"]["status"], "completed");

    // With Ctrl-C (SIGINT) once it is live, as a person runs it.
    let mut child = tokio::process::Command::new(&python)
        .args([&script, "--title", "interrupted run"])
        .env_remove("NOVA_TOKEN")
        .envs(env)
        .current_dir(workspace_root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start broadcaster.py");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    let live = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read its output") {
            stdout.push_str(&line);
            stdout.push('\n');
            if line.starts_with("event stream_started:") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(
        live,
        "broadcaster.py printed no stream_started within 30 s:\n{stdout}"
    );
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read its output") {
            stdout.push_str(&line);
            stdout.push('\n');
        }
        child
            .wait_with_output()
            .await
            .expect("broadcaster.py exits")
    })
    .await
    .expect("broadcaster.py exits within 30 s of Ctrl-C");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "broadcaster.py failed after Ctrl-C ({}):\n{stdout}{stderr}",
        out.status
    );
    let id = assert_broadcast(&stdout, &stderr, &token);
    let stream = call("GET", &format!("{url}/api/v1/streams/{id}"), None, None).await;
    assert_eq!(stream.json["stream"]["status"], "completed");

    e.shutdown().await.expect("edge stops");
    replica.shutdown().await.expect("replica stops");
    stack.shutdown().await;
}

/// Checks what one run of broadcaster.py printed: every event a frame the contract
/// allows, a snapshot first, the stream going live, `stream_ended` (completed by its
/// owner) last, and no secret; returns the stream's id.
fn assert_broadcast(stdout: &str, stderr: &str, token: &str) -> String {
    let mut events = Vec::new();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("event ") {
            let (kind, text) = rest.split_once(": ").expect("event <type>: <json>");
            let frame: serde_json::Value = serde_json::from_str(text).expect("a JSON frame");
            assert_eq!(frame["type"], kind);
            frames::assert_valid(&frame);
            events.push(frame);
        }
    }
    let kinds: Vec<&str> = events.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"snapshot"), "{stdout}");
    assert!(kinds.contains(&"stream_started"), "{stdout}");
    let end = events.last().unwrap();
    assert_eq!(end["type"], "stream_ended", "{stdout}");
    assert_eq!(end["status"], "completed", "{stdout}");
    assert_eq!(end["reason"], "ended_by_owner", "{stdout}");
    let id = end["stream_id"].as_str().unwrap().to_owned();
    assert!(stdout.contains(&format!("created stream {id}")), "{stdout}");
    assert!(
        stdout.contains(&format!("ended stream {id}: status completed")),
        "{stdout}"
    );
    for printed in [stdout, stderr] {
        assert!(
            !printed.contains(token)
                && printed
                    .match_indices("sk_live_")
                    .all(|(at, _)| printed[at + 8..].starts_with('…')),
            "no secret is printed:\n{printed}"
        );
    }
    id
}
