//! `nova-edge`: reads its config, serves REST and WebSockets until SIGINT/SIGTERM.

use std::process::ExitCode;

use nova_edge::{Config, malloc, shutdown, start, telemetry};

fn main() -> ExitCode {
    malloc::one_arena();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run()),
        Err(err) => {
            eprintln!("nova-edge: cannot start the async runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
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
