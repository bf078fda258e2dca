//! Queries on the `signing_keys` table.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::schema::signing_keys;

/// One row of `signing_keys`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = signing_keys, check_for_backend(diesel::pg::Pg))]
pub struct SigningKeyRow {
    /// Key id.
    pub id: Uuid,
    /// Owning principal; `None` for the platform key.
    pub owner: Option<String>,
    /// Uncompressed SEC1 P-256 point.
    pub public_key: Vec<u8>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Fields of a key being stored.
#[derive(Debug, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct NewSigningKey<'a> {
    /// Key id (UUIDv7).
    pub id: Uuid,
    /// Owning principal; `None` for the platform key.
    pub owner: Option<&'a str>,
    /// Uncompressed SEC1 P-256 point.
    pub public_key: &'a [u8],
    /// PKCS#8 DER, stored for the platform key only.
    pub private_key: Option<&'a [u8]>,
}

/// Stores a key; a second platform key is silently not stored. Returns whether the
/// row was inserted.
pub async fn insert(conn: &mut AsyncPgConnection, new: &NewSigningKey<'_>) -> QueryResult<bool> {
    diesel::insert_into(signing_keys::table)
        .values(new)
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(|n| n == 1)
}

/// First key of the two-key advisory locks on an owner's signing keys (the second
/// is `hashtext(owner)`); two-key locks do not share the one-key space of the other
/// locks (event log, migrations).
const OWNER_LOCK_CLASS: i32 = 0x6e6b_6579;

/// Takes the transaction-scoped lock on `owner`'s signing keys, so counting them and
/// inserting one is atomic against the owner's other creations (released at commit).
pub async fn lock_owner(conn: &mut AsyncPgConnection, owner: &str) -> QueryResult<()> {
    diesel::sql_query(format!(
        "SELECT pg_advisory_xact_lock({OWNER_LOCK_CLASS}, hashtext($1))"
    ))
    .bind::<diesel::sql_types::Text, _>(owner)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Returns how many keys `owner` has.
pub async fn count_by_owner(conn: &mut AsyncPgConnection, owner: &str) -> QueryResult<i64> {
    signing_keys::table
        .filter(signing_keys::owner.eq(owner))
        .count()
        .get_result(conn)
        .await
}

/// Returns the keys of `owner`, oldest first.
pub async fn list_by_owner(
    conn: &mut AsyncPgConnection,
    owner: &str,
) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .filter(signing_keys::owner.eq(owner))
        .order(signing_keys::id.asc())
        .select(SigningKeyRow::as_select())
        .load(conn)
        .await
}

/// Deletes key `id` of `owner`; returns whether it existed.
pub async fn delete(conn: &mut AsyncPgConnection, owner: &str, id: Uuid) -> QueryResult<bool> {
    diesel::delete(
        signing_keys::table
            .filter(signing_keys::id.eq(id))
            .filter(signing_keys::owner.eq(owner)),
    )
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// Returns the platform key: its id and PKCS#8 DER private key.
pub async fn platform(conn: &mut AsyncPgConnection) -> QueryResult<Option<(Uuid, Vec<u8>)>> {
    signing_keys::table
        .filter(signing_keys::owner.is_null())
        .select((signing_keys::id, signing_keys::private_key))
        .first::<(Uuid, Option<Vec<u8>>)>(conn)
        .await
        .optional()
        .map(|row| row.and_then(|(id, der)| der.map(|der| (id, der))))
}

/// Returns every key, the platform key included.
pub async fn all(conn: &mut AsyncPgConnection) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .select(SigningKeyRow::as_select())
        .load(conn)
        .await
}
