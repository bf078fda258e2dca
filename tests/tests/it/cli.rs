//! Every binary answers `--help` and `--version` on stdout with exit 0, and a flag it
//! does not know with usage on stderr and exit 2, without needing any engine.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{process::Output, time::Duration};

const BINARIES: [&str; 4] = [
    "nova-control-plane",
    "nova-edge",
    "nova-ingest-hooks",
    "nova-stack",
];

/// Runs `binary args` with no NOVA_* environment, bounded to 30 s.
async fn run(binary: &str, args: &[&str]) -> Output {
    let path = nova_stack::stack::sibling_binary(binary).expect("binary built");
    let mut command = tokio::process::Command::new(path);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .unwrap_or_else(|_| panic!("{binary} {args:?} did not exit within 30 s"))
        .unwrap()
}

#[tokio::test]
async fn help_and_version_go_to_stdout_with_exit_0() {
    for binary in BINARIES {
        let help = run(binary, &["--help"]).await;
        let stdout = String::from_utf8_lossy(&help.stdout);
        assert_eq!(help.status.code(), Some(0), "{binary} --help: {help:?}");
        assert!(
            stdout.contains("Usage:"),
            "{binary} --help stdout: {stdout}"
        );
        assert!(help.stderr.is_empty(), "{binary} --help wrote to stderr");

        let version = run(binary, &["--version"]).await;
        let stdout = String::from_utf8_lossy(&version.stdout);
        assert_eq!(
            version.status.code(),
            Some(0),
            "{binary} --version: {version:?}"
        );
        assert_eq!(
            stdout.trim(),
            format!("{binary} {}", env!("CARGO_PKG_VERSION")),
            "{binary} --version"
        );
    }
}

#[tokio::test]
async fn an_unknown_flag_is_a_usage_error_on_stderr_with_exit_2() {
    for binary in BINARIES {
        let out = run(binary, &["--no-such-flag"]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{binary}: {out:?}");
        assert!(
            stderr.contains("--no-such-flag"),
            "{binary} stderr: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{binary} wrote the error to stdout");
    }
}
