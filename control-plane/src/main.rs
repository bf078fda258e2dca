//! `nova-control-plane`: reads its config, serves gRPC until SIGINT/SIGTERM (or, with
//! `--migrate-only`, migrates the database and exits).

use std::process::ExitCode;

use nova_control_plane::{Config, db, shutdown, start, telemetry};

/// mimalloc: glibc's malloc serialises this many-threaded server on its arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::load() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("nova-control-plane: {message}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log.format);
    if config.migrate_only {
        return match db::migrate(config.database_url.expose()).await {
            Ok(applied) => {
                tracing::info!(migrations.applied = applied, "database migrated; exiting");
                ExitCode::SUCCESS
            }
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "migration failed");
                ExitCode::FAILURE
            }
        };
    }
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
