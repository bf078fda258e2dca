//! The runnable examples in `docs/examples`, run as a user would run them, against
//! real services: `curl-tests.sh` against an edge, `broadcaster.py` through an edge,
//! a control plane, ingest-hooks and nginx-rtmp with real ffmpeg.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{path::PathBuf, process::Output, time::Duration};

use tokio::io::{AsyncBufReadExt, BufReader};

use nova_tests::{
    TestContext,
    edge::{self, call, jwt},
    frames,
    live::{LiveOptions, LiveStack},
    tools::workspace_root,
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

#[tokio::test(flavor = "multi_thread")]
async fn curl_tests_pass_against_a_real_edge_and_stop_at_the_first_failure() {
    let ctx = TestContext::start().await;
    let e = edge::start(&ctx, "edge-curl").await;
    let url = format!("http://{}", e.addr);
    let token = jwt("demo");
    let bash = PathBuf::from("bash");
    let script = example("curl-tests.sh");

    let out = run(
        &bash,
        &[&script],
        &[("NOVA_EDGE_URL", &url), ("NOVA_DEV_JWT", &token)],
        Duration::from_secs(60),
    )
    .await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "curl-tests.sh failed ({}):\n{stdout}{stderr}",
        out.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("curl-tests: ") && last.ends_with(" checks passed"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(&token) && !stderr.contains(&token),
        "the token is never printed"
    );

    // A token the edge does not accept: the first authenticated call fails, and the
    // script says which, with what, and exits 1.
    let wrong =
        nova_stack::jwt::mint_hs256("another-secret-0123456789abcdef0123456789", "demo", 600)
            .expect("mint a JWT");
    let out = run(
        &bash,
        &[&script],
        &[("NOVA_EDGE_URL", &url), ("NOVA_TOKEN", &wrong)],
        Duration::from_secs(60),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("curl-tests: FAIL: POST /api/v1/streams (auth): HTTP 401, expected 400"),
        "{stderr}"
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
    config.control_plane_url = format!("http://{}", replica.addr);
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
