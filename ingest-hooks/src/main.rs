//! `nova-ingest-hooks`: reads its config, answers nginx-rtmp callbacks until
//! SIGINT/SIGTERM.

use std::process::ExitCode;

use nova_ingest_hooks::{Config, shutdown, start, telemetry};

/// mimalloc, as the control plane (whose profile showed glibc's arena locks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::load() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("nova-ingest-hooks: {message}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log.format);
    let hooks = match start(&config).await {
        Ok(hooks) => hooks,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "start-up failed");
            return ExitCode::FAILURE;
        }
    };
    shutdown::os_signal().await;
    match hooks.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "server failed");
            ExitCode::FAILURE
        }
    }
}
