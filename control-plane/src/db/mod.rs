//! PostgreSQL access: the connection pool (TLS as libpq's `sslmode` says), embedded
//! migrations, and one module of queries per table.

pub mod analytics;
pub mod assets;
pub mod audit;
pub mod events;
pub mod garbage;
pub mod metrics;
pub mod playback_rules;
pub mod policy;
pub mod remux_jobs;
pub mod schema;
pub mod signing_keys;
pub mod status;
pub mod streams;
pub mod tls;
pub mod webhook_attempts;
pub mod webhook_leases;
pub mod webhook_redeliveries;
pub mod webhooks;

use std::time::Duration;

use diesel::{ConnectionError, ConnectionResult, RunQueryDsl as _, sql_query};
use diesel_async::{
    AsyncPgConnection,
    async_connection_wrapper::AsyncConnectionWrapper,
    pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, bb8::Pool},
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures::FutureExt;
use tokio_postgres::{
    Socket,
    tls::{MakeTlsConnect, TlsStream},
};

/// Migrations from the repository's `migrations/` folder, compiled in.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Advisory lock key that serialises migrations across replicas ("novamigr").
const MIGRATION_LOCK: i64 = 0x6e6f_7661_6d69_6772;

/// Pool of async PostgreSQL connections.
pub type DbPool = Pool<AsyncPgConnection>;

/// Opens one connection to `target`, over TLS when it asks for it.
pub async fn establish(target: &tls::Target) -> ConnectionResult<AsyncPgConnection> {
    match &target.tls {
        Some(tls) => connect_with(&target.url, tls.clone()).await,
        None => connect_with(&target.url, tokio_postgres::NoTls).await,
    }
}

async fn connect_with<T>(url: &str, tls: T) -> ConnectionResult<AsyncPgConnection>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: TlsStream + Unpin + Send + 'static,
{
    let (client, connection) = tokio_postgres::connect(url, tls)
        .await
        .map_err(|e| ConnectionError::BadConnection(nova_runtime::causes(&e)))?;
    AsyncPgConnection::try_from_client_and_connection(client, connection).await
}

/// Builds the connection pool; fails fast when PostgreSQL cannot be reached.
pub async fn connect(url: &str, size: u32) -> anyhow::Result<DbPool> {
    let target = tls::Target::parse(url).map_err(anyhow::Error::msg)?;
    let mut config = ManagerConfig::default();
    let setup = target.clone();
    config.custom_setup = Box::new(move |_| {
        let target = setup.clone();
        async move { establish(&target).await }.boxed()
    });
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(target.url, config);
    let pool = Pool::builder()
        .max_size(size)
        .connection_timeout(Duration::from_secs(5))
        .test_on_check_out(true)
        .build(manager)
        .await?;
    drop(pool.get().await?);
    Ok(pool)
}

/// Applies pending migrations under an advisory lock, so replicas starting together
/// migrate once. Returns how many migrations ran.
pub async fn migrate(url: &str) -> anyhow::Result<usize> {
    let target = tls::Target::parse(url).map_err(anyhow::Error::msg)?;
    let conn = establish(&target).await?;
    tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(conn);
        sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(&mut conn)?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|done| done.len())
            .map_err(|e| anyhow::anyhow!("migration failed: {e}"));
        sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(&mut conn)?;
        applied
    })
    .await?
}
