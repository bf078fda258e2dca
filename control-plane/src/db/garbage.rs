//! Queries on the `store_garbage` table: store objects and folders to delete.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::store_garbage;

/// Marks objects or folders for deletion (inside the transaction that stops
/// referencing them).
pub async fn add(conn: &mut AsyncPgConnection, prefixes: &[String]) -> QueryResult<()> {
    if prefixes.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = prefixes
        .iter()
        .map(|p| store_garbage::prefix.eq(p))
        .collect();
    diesel::insert_into(store_garbage::table)
        .values(rows)
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(drop)
}

/// Returns up to `limit` objects or folders to delete, oldest first.
pub async fn next(conn: &mut AsyncPgConnection, limit: i64) -> QueryResult<Vec<String>> {
    store_garbage::table
        .select(store_garbage::prefix)
        .order(store_garbage::created_at.asc())
        .limit(limit)
        .load(conn)
        .await
}

/// Forgets an object or folder once it is deleted.
pub async fn done(conn: &mut AsyncPgConnection, prefix: &str) -> QueryResult<()> {
    diesel::delete(store_garbage::table.find(prefix))
        .execute(conn)
        .await
        .map(drop)
}
