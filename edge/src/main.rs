//! `nova-edge`: reads its config, serves REST and WebSockets until SIGINT/SIGTERM.

use std::process::ExitCode;

use nova_edge::{Config, shutdown, start, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::load() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("nova-edge: {message}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log.format);
    let edge = match start(&config).await {
        Ok(edge) => edge,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "start-up failed");
            return ExitCode::FAILURE;
        }
    };
    shutdown::os_signal().await;
    match edge.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "server failed");
            ExitCode::FAILURE
        }
    }
}
