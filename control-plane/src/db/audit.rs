//! Queries on the `audit_records` table.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::schema::audit_records;

/// One row of `audit_records`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_records, check_for_backend(diesel::pg::Pg))]
pub struct AuditRow {
    /// Record id.
    pub id: Uuid,
    /// Stream changed, if any.
    pub stream_id: Option<Uuid>,
    /// Resource name changed.
    pub resource: String,
    /// Owner of the resource.
    pub owner: String,
    /// Principal who acted.
    pub actor: String,
    /// Role of the calling service, as stored.
    pub service: String,
    /// Client address the edge saw.
    pub client_ip: Option<String>,
    /// Action as stored.
    pub action: String,
    /// Names of the fields changed.
    pub fields: Vec<String>,
    /// Commit time.
    pub created_at: DateTime<Utc>,
}

/// Fields of a record being written.
#[derive(Debug, Insertable)]
#[diesel(table_name = audit_records)]
pub struct NewAuditRow<'a> {
    /// Record id (UUIDv7).
    pub id: Uuid,
    /// Stream changed, if any.
    pub stream_id: Option<Uuid>,
    /// Resource name changed.
    pub resource: &'a str,
    /// Owner of the resource.
    pub owner: &'a str,
    /// Principal who acted.
    pub actor: &'a str,
    /// Role of the calling service.
    pub service: &'a str,
    /// Client address the edge saw.
    pub client_ip: Option<&'a str>,
    /// Action as stored.
    pub action: &'a str,
    /// Names of the fields changed.
    pub fields: &'a [&'a str],
}

/// Which records a listing returns.
#[derive(Debug, Default)]
pub struct AuditFilter<'a> {
    /// Stream to keep.
    pub stream_id: Option<Uuid>,
    /// Owner to keep.
    pub owner: Option<&'a str>,
    /// Keyset cursor: only records strictly older than this (time, id).
    pub before: Option<(DateTime<Utc>, Uuid)>,
    /// Maximum rows.
    pub limit: i64,
}

/// Inserts a record (inside the caller's transaction).
pub async fn insert(conn: &mut AsyncPgConnection, new: &NewAuditRow<'_>) -> QueryResult<()> {
    diesel::insert_into(audit_records::table)
        .values(new)
        .execute(conn)
        .await
        .map(drop)
}

/// Returns a page of records, newest first by (created_at, id).
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &AuditFilter<'_>,
) -> QueryResult<Vec<AuditRow>> {
    let mut query = audit_records::table
        .select(AuditRow::as_select())
        .into_boxed();
    if let Some(stream_id) = filter.stream_id {
        query = query.filter(audit_records::stream_id.eq(stream_id));
    }
    if let Some(owner) = filter.owner {
        query = query.filter(audit_records::owner.eq(owner));
    }
    if let Some((at, id)) = filter.before {
        query = query.filter(
            audit_records::created_at
                .lt(at)
                .or(audit_records::created_at
                    .eq(at)
                    .and(audit_records::id.lt(id))),
        );
    }
    query
        .order((audit_records::created_at.desc(), audit_records::id.desc()))
        .limit(filter.limit)
        .load(conn)
        .await
}
