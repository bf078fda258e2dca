//! `docs/examples/client-js.html` in headless Chromium against a real edge process:
//! when the edge stops (1001) and stays down, the page reconnects with jittered
//! exponential backoff, takes the new snapshot once the edge is back, and goes on
//! applying lifecycle events after its cursor, each once; a 4410 (completed) or 4404
//! (unknown stream) close ends it without a reconnect.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::{process::Stdio, time::Duration};

use nova_tests::{edge, tools::workspace_root, webhooks::World};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdout},
};

/// The browser's output: one JSON line per step, then its result.
struct Browser {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Browser {
    /// Returns the next line the browser prints; panics on a failure it reports.
    async fn next(&mut self, what: &str) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("the browser reached `{what}` within 60 s"))
            .expect("read the browser's output")
            .unwrap_or_else(|| panic!("the browser exited before `{what}`"));
        println!("{line}");
        let value: Value = serde_json::from_str(&line).expect("a JSON line");
        assert_ne!(
            value["ok"], false,
            "the browser failed before `{what}`: {value}"
        );
        value
    }

    /// Waits for the browser to report `step`.
    async fn step(&mut self, step: &str) {
        let got = self.next(step).await;
        assert_eq!(got["step"], step, "{got}");
    }

    /// Tells the browser to go on.
    async fn go(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("the browser's stdin");
        stdin
            .write_all(b"go\n")
            .await
            .expect("write to the browser");
        stdin.flush().await.expect("write to the browser");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_example_reconnects_with_backoff_resumes_and_stops_on_4404_and_4410() {
    let mut w = World::start(|_| {}).await;
    let port = nova_stack::wait::free_port().expect("a free port");
    let (mut edge_process, base) = edge::spawn_process_on(&w.ctx, "edge-client", port, &[]);
    let (stream, key) = w.create_stream("client-js").await;
    let root = workspace_root();
    let page = format!(
        "file://{}?base={base}&stream={}",
        root.join("docs/examples/client-js.html").display(),
        stream.stream_id
    );
    let mut child = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/client-js.mjs"))
        .arg(&page)
        .arg("00000000-0000-7000-8000-000000000000")
        .env(
            "PLAYWRIGHT_CORE",
            root.join(".nova/tools/node_modules/playwright-core/index.mjs"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (scripts/install-deps.sh installs playwright-core)");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut browser = Browser { child, lines };

    browser.step("snapshot").await;
    w.publish(&key).await;
    browser.go().await;

    // The edge stops (SIGTERM: 1001 to its sockets) and stays down until the page
    // has scheduled a second reconnect.
    browser.step("started").await;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(edge_process.id().unwrap()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let exited = tokio::time::timeout(Duration::from_secs(30), edge_process.wait())
        .await
        .expect("the edge exits within 30 s of SIGTERM")
        .expect("wait for the edge");
    assert!(exited.success(), "the edge drains and exits 0: {exited}");
    browser.go().await;

    browser.step("down").await;
    let (restarted, _) = edge::spawn_process_on(&w.ctx, "edge-client", port, &[]);
    edge_process = restarted;
    browser.go().await;

    // Back on the restarted edge: the publisher leaves and comes back.
    browser.step("back").await;
    w.leave(&key).await;
    w.publish(&key).await;
    browser.go().await;

    browser.step("resumed").await;
    w.end(&stream.name).await;
    browser.go().await;

    let result = browser.next("the end").await;
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["state"], "closed", "{result}");
    let trace = result["trace"].as_array().unwrap();
    assert_backoff(trace);
    assert_each_event_applied_once(trace);
    // 4410 and 4404 are final: no reconnect is scheduled after them (the page decides
    // in the close handler, before the next entry).
    for code in [4410, 4404] {
        let at = trace
            .iter()
            .position(|e| e["kind"] == "close" && e["code"] == code)
            .unwrap_or_else(|| panic!("a {code} close: {trace:?}"));
        assert!(
            trace[at + 1..].iter().all(|e| e["kind"] != "retry"),
            "a reconnect after {code}: {trace:?}"
        );
    }
    let out = tokio::time::timeout(Duration::from_secs(30), browser.child.wait())
        .await
        .expect("the browser exits")
        .unwrap();
    assert!(out.success());
    edge_process.kill().await.unwrap();
    w.shutdown().await;
}

/// Each scheduled reconnect waits a random half of its step (0.5 s doubling, at most
/// 30 s) and counts up from 0 until a snapshot arrives; the stop of the edge gave at
/// least two.
fn assert_backoff(trace: &[Value]) {
    let mut expected = 0;
    let mut retries = 0;
    for entry in trace {
        if entry["kind"] == "retry" {
            let attempt = entry["attempt"].as_i64().unwrap();
            let delay = entry["delay"].as_f64().unwrap();
            assert_eq!(attempt, expected, "attempts count up: {trace:?}");
            let step = (500.0 * 2f64.powi(i32::try_from(attempt).unwrap())).min(30_000.0);
            assert!(
                (step / 2.0..=step).contains(&delay),
                "reconnect {attempt} after {delay} ms, not in [{}, {step}]",
                step / 2.0
            );
            expected += 1;
            retries += 1;
        } else if entry["kind"] == "applied" && entry["type"] == "snapshot" {
            expected = 0;
        }
    }
    assert!(
        retries >= 2,
        "two reconnects while the edge was down: {trace:?}"
    );
    let first_close = trace.iter().find(|e| e["kind"] == "close").unwrap();
    assert_eq!(first_close["code"], 1001, "the edge said it was stopping");
}

/// The lifecycle frames applied are exactly the stream's four events, in order, with
/// growing cursors: none lost across the reconnect, none applied twice.
fn assert_each_event_applied_once(trace: &[Value]) {
    let applied: Vec<&Value> = trace
        .iter()
        .filter(|e| e["kind"] == "applied" && !e["cursor"].is_null())
        .collect();
    let kinds: Vec<(&str, &Value, &Value)> = applied
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), &e["status"], &e["resumed"]))
        .collect();
    assert_eq!(
        kinds,
        [
            ("stream_started", &Value::Null, &Value::Bool(false)),
            ("stream_ended", &"interrupted".into(), &Value::Null),
            ("stream_started", &Value::Null, &Value::Bool(true)),
            ("stream_ended", &"completed".into(), &Value::Null),
        ],
        "{trace:?}"
    );
    let cursors: Vec<u64> = applied
        .iter()
        .map(|e| e["cursor"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]),
        "cursors grow: {cursors:?}"
    );
}
