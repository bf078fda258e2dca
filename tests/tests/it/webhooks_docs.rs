//! docs/webhooks.md's signature verification examples, run as written with Debian's
//! python3 and with node against real deliveries: they accept what Nova signed (with
//! the new or the old secret during a rotation's grace period) and refuse a changed
//! body, a wrong secret, and a signature older than the replay window.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use hmac::{Hmac, Mac};
use nova_tests::{
    tools::workspace_root,
    wait,
    webhook_receiver::{Delivery, Receiver},
    webhooks::{WAIT, World},
};
use sha2::Sha256;

/// Returns the first code block of `language` in docs/webhooks.md.
fn example(language: &str) -> String {
    let doc = std::fs::read_to_string(workspace_root().join("docs/webhooks.md")).unwrap();
    let fence = format!("```{language}\n");
    let start = doc.find(&fence).unwrap() + fence.len();
    let end = start + doc[start..].find("```").unwrap();
    doc[start..end].to_owned()
}

/// Runs `program script secret header body` and returns whether it exited 0 saying ok.
async fn verifies(program: &str, script: &Path, secret: &str, header: &str, body: &[u8]) -> bool {
    let dir = script.parent().unwrap();
    let file = dir.join("body.json");
    std::fs::write(&file, body).unwrap();
    let out = tokio::process::Command::new(program)
        .arg(script)
        .args([secret, header])
        .arg(&file)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let ok = out.status.success();
    if ok {
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    } else {
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("invalid or expired signature"),
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    ok
}

/// Our own `Nova-Signature` of `body` at `t` (to forge an old one).
fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_and_node_examples_verify_real_deliveries() {
    let mut w = World::start(|_| {}).await;
    let receiver = Receiver::start(&[]).await;
    let (hook, secret) = w.register("alice", &receiver.url("/nova"), None).await;
    w.create_stream("documented").await;
    let first: Delivery = wait::until("a delivery", WAIT, || {
        let got = receiver.acknowledged();
        async move { got.into_iter().next().ok_or(()) }
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let python = dir.path().join("verify_nova.py");
    std::fs::write(&python, example("python")).unwrap();
    let node = dir.path().join("verify_nova.js");
    std::fs::write(&node, example("js")).unwrap();
    // Debian's interpreter, not the tools venv that `make test` puts first on PATH.
    let runs = [
        ("/usr/bin/python3", python.as_path()),
        ("node", node.as_path()),
    ];

    let mut changed = first.body.to_vec();
    changed[2] ^= 1;
    let now = chrono::Utc::now().timestamp();
    let stale = signature(&secret, now - 600, &first.body);
    let fresh = signature(&secret, now, &first.body);
    for (program, script) in runs {
        let header = first.signature.as_str();
        assert!(
            verifies(program, script, &secret, header, &first.body).await,
            "{program}: a real delivery"
        );
        assert!(
            !verifies(program, script, &secret, header, &changed).await,
            "{program}: a changed body"
        );
        assert!(
            !verifies(program, script, "whsec_wrong", header, &first.body).await,
            "{program}: a wrong secret"
        );
        assert!(
            !verifies(program, script, &secret, &stale, &first.body).await,
            "{program}: ten minutes old"
        );
        assert!(
            verifies(program, script, &secret, &fresh, &first.body).await,
            "{program}: the same, now"
        );
        assert!(
            !verifies(program, script, &secret, "v1=00", &first.body).await,
            "{program}: no timestamp"
        );
    }

    // After a rotation, deliveries verify with the new secret and, for the grace
    // period, with the old one.
    let rotated = w
        .rest(
            "alice",
            "POST",
            &format!("/webhooks/{hook}/rotate-secret"),
            None,
        )
        .await;
    let new_secret = rotated.json["secret"].as_str().unwrap().to_owned();
    w.create_stream("after the rotation").await;
    let second = wait::until("a delivery after the rotation", WAIT, || {
        let got = receiver.acknowledged();
        async move { got.into_iter().nth(1).ok_or(()) }
    })
    .await;
    assert_eq!(
        second.signature.matches("v1=").count(),
        2,
        "{}",
        second.signature
    );
    for (program, script) in runs {
        for key in [&new_secret, &secret] {
            assert!(
                verifies(program, script, key, &second.signature, &second.body).await,
                "{program}: either secret during the grace period"
            );
        }
    }
    w.shutdown().await;
}
