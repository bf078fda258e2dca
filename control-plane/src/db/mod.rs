//! PostgreSQL access: the connection pool, embedded migrations, and one module of
//! queries per table.

pub mod events;
pub mod metrics;
pub mod schema;
pub mod streams;

use std::time::Duration;

use diesel::{RunQueryDsl as _, sql_query};
use diesel_async::{
    AsyncConnection, AsyncPgConnection,
    async_connection_wrapper::AsyncConnectionWrapper,
    pooled_connection::{AsyncDieselConnectionManager, bb8::Pool},
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// Migrations from the repository's `migrations/` folder, compiled in.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Advisory lock key that serialises migrations across replicas ("novamigr").
const MIGRATION_LOCK: i64 = 0x6e6f_7661_6d69_6772;

/// Pool of async PostgreSQL connections.
pub type DbPool = Pool<AsyncPgConnection>;

/// Builds the connection pool; fails fast when PostgreSQL cannot be reached.
pub async fn connect(url: &str, size: u32) -> anyhow::Result<DbPool> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
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
    let conn = AsyncPgConnection::establish(url).await?;
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
