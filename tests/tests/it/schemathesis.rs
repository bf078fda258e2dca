//! The REST contract: schemathesis (`st run docs/openapi.yaml --checks all`) against a
//! real edge on a real control plane. The answers the edge gives by design (426 on
//! the WebSocket URL, 400 for `start == end`, for foreign page tokens and for a key
//! rotation of a completed stream, 200 for a stream read after it was ended) are
//! listed with their reasons in `tests/schemathesis.toml`; any other report fails the
//! test.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use nova_tests::{
    TestContext,
    edge::{self, jwt},
    tools::workspace_root,
};

/// The seed of the run, so a failure replays; `NOVA_ST_SEED` picks another.
const SEED: &str = "20261201";

#[tokio::test(flavor = "multi_thread")]
async fn the_edge_conforms_to_its_openapi_document() {
    let root = workspace_root();
    let st = root.join(".nova/tools/venv/bin/st");
    assert!(
        st.exists(),
        "{} missing: run `make deps` (scripts/install-deps.sh)",
        st.display()
    );
    // Webhook endpoints on loopback are allowed (the document's `local` example, on a
    // port nothing listens on), so the stateful phase has endpoints to work on.
    let ctx = TestContext::start_with(|config| {
        config.webhooks.allowed_cidrs = vec!["127.0.0.0/8".parse().expect("a CIDR")];
    })
    .await;
    let e = edge::start(&ctx, "edge-schemathesis").await;
    let seed = std::env::var("NOVA_ST_SEED").unwrap_or_else(|_| SEED.into());
    // schemathesis keeps a cache and reports in its working directory.
    let scratch = tempfile::tempdir().expect("temp dir");

    let mut command = tokio::process::Command::new(&st);
    command
        .arg("--config-file")
        .arg(root.join("tests/schemathesis.toml"))
        .arg("run")
        .arg(root.join("docs/openapi.yaml"))
        .args(["--url", &format!("http://{}", e.addr)])
        .args(["--checks", "all", "--seed", &seed, "--no-color"])
        // By design, see tests/schemathesis.toml: an ended stream stays readable.
        .args(["--exclude-checks", "use_after_free"])
        // The bearer token reaches schemathesis through its config, never argv.
        .env("NOVA_ST_TOKEN", jwt("demo"))
        .current_dir(scratch.path())
        .kill_on_drop(true);
    let limit = Duration::from_secs(180);
    let out = tokio::time::timeout(limit, command.output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis did not finish within {limit:?}"))
        .expect("run schemathesis");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Shown with --no-capture (or on failure): the summary and schemathesis' warnings.
    println!("{report}");
    assert!(
        out.status.success(),
        "schemathesis reported a mismatch between the edge and docs/openapi.yaml \
         (seed {seed}; by-design exceptions are in tests/schemathesis.toml):\n{report}"
    );
    assert!(
        report.contains("Tested: 26"),
        "every operation was tested:\n{report}"
    );
    e.shutdown().await.expect("edge stops");
}
