//! A real Prometheus (Debian's) for tests: scrapes given targets every second,
//! loads our rules, and answers queries over its HTTP API.

use std::{path::Path, process::Stdio, time::Duration};

use serde_json::Value;

use crate::{http, tools::workspace_root, wait};

/// A running Prometheus, killed on drop.
pub struct Prometheus {
    /// The process.
    _child: tokio::process::Child,
    /// Base URL of its HTTP API.
    pub url: String,
    /// Keeps its data folder alive.
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `jobs` (name, `host:port`) every second with
    /// `deploy/prometheus/rules.yml` loaded; waits until it answers.
    pub async fn start(jobs: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let rules = workspace_root().join("deploy/prometheus/rules.yml");
        let mut config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n",
            rules.display()
        );
        for (job, target) in jobs {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
            ));
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let port = nova_stack::wait::free_port().expect("a free port");
        let child = tokio::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("prometheus is installed (scripts/install-deps.sh)");
        let url = format!("http://127.0.0.1:{port}");
        let ready = format!("{url}/-/ready");
        wait::until(
            "Prometheus to be ready",
            Duration::from_secs(30),
            || async {
                match http::get(&ready).await {
                    Ok(a) if a.status == 200 => Ok(()),
                    Ok(a) => Err(format!("HTTP {}", a.status)),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await;
        Self {
            _child: child,
            url,
            _dir: dir,
        }
    }

    /// GETs an API path and returns its `data`, or the error Prometheus gave.
    pub async fn api(&self, path_and_query: &str) -> Result<Value, String> {
        let answer = http::get(&format!("{}{path_and_query}", self.url))
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = serde_json::from_slice(&answer.body).map_err(|e| e.to_string())?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }

    /// Evaluates an instant query; returns its result vector.
    pub async fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let data = self
            .api(&format!("/api/v1/query?query={}", encode(promql)))
            .await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }
}

/// Percent-encodes a query parameter.
pub fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Returns every PromQL expression of a Grafana dashboard with its panel title,
/// `$__rate_interval` replaced by `interval`.
pub fn dashboard_queries(path: &Path, interval: &str) -> Vec<(String, String)> {
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read the dashboard"))
            .expect("the dashboard is JSON");
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push((
                    panel["title"].as_str().unwrap_or_default().to_owned(),
                    expr.replace("$__rate_interval", interval),
                ));
            }
        }
    }
    out
}
