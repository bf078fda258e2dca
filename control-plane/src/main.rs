//! `nova-control-plane`: reads its config, serves gRPC until SIGINT/SIGTERM.

use std::process::ExitCode;

use nova_control_plane::{Config, shutdown, start, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::load() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("nova-control-plane: {message}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    let server = match start(&config).await {
        Ok(server) => server,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "start-up failed");
            return ExitCode::FAILURE;
        }
    };
    shutdown::os_signal().await;
    match server.shutdown().await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "server failed");
            ExitCode::FAILURE
        }
    }
}
