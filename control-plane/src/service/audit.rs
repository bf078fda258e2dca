//! The audit trail: [`record`] writes one [`AuditRecord`] inside the transaction of
//! the change it describes; [`Audit::list`] returns them newest first with keyset
//! pagination on (time, id), limited to the caller's own resources when the caller
//! acts for a user.

use std::net::IpAddr;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    auth::{Actor, Principal},
    db::{
        DbPool,
        audit::{self, AuditFilter, AuditRow, NewAuditRow},
        streams,
    },
    error::{Error, Result},
    service::streams::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE},
};

/// What an audit record records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// A stream was created.
    StreamCreated,
    /// A stream's settings changed.
    StreamUpdated,
    /// A stream was ended by its owner.
    StreamEnded,
    /// A stream's key was replaced.
    StreamKeyRotated,
    /// A signing key was created.
    SigningKeyCreated,
    /// A signing key was deleted.
    SigningKeyDeleted,
    /// A webhook endpoint was registered.
    WebhookCreated,
    /// A webhook endpoint's URL, event types or state changed.
    WebhookUpdated,
    /// A webhook endpoint was deleted.
    WebhookDeleted,
    /// A webhook endpoint's signing secret was replaced.
    WebhookSecretRotated,
    /// A webhook endpoint was disabled by Nova after a run of failed deliveries.
    WebhookDisabled,
    /// A manual redelivery of an event to a webhook endpoint was asked for.
    WebhookRedeliveryRequested,
    /// An asset was deleted by its owner.
    AssetDeleted,
    /// An asset was deleted by the retention setting.
    AssetExpired,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [AuditAction; 14] = [
        AuditAction::StreamCreated,
        AuditAction::StreamUpdated,
        AuditAction::StreamEnded,
        AuditAction::StreamKeyRotated,
        AuditAction::SigningKeyCreated,
        AuditAction::SigningKeyDeleted,
        AuditAction::WebhookCreated,
        AuditAction::WebhookUpdated,
        AuditAction::WebhookDeleted,
        AuditAction::WebhookSecretRotated,
        AuditAction::WebhookDisabled,
        AuditAction::WebhookRedeliveryRequested,
        AuditAction::AssetDeleted,
        AuditAction::AssetExpired,
    ];

    /// Returns the action as stored.
    pub fn as_db(self) -> &'static str {
        match self {
            AuditAction::StreamCreated => "stream_created",
            AuditAction::StreamUpdated => "stream_updated",
            AuditAction::StreamEnded => "stream_ended",
            AuditAction::StreamKeyRotated => "stream_key_rotated",
            AuditAction::SigningKeyCreated => "signing_key_created",
            AuditAction::SigningKeyDeleted => "signing_key_deleted",
            AuditAction::WebhookCreated => "webhook_created",
            AuditAction::WebhookUpdated => "webhook_updated",
            AuditAction::WebhookDeleted => "webhook_deleted",
            AuditAction::WebhookSecretRotated => "webhook_secret_rotated",
            AuditAction::WebhookDisabled => "webhook_disabled",
            AuditAction::WebhookRedeliveryRequested => "webhook_redelivery_requested",
            AuditAction::AssetDeleted => "asset_deleted",
            AuditAction::AssetExpired => "asset_expired",
        }
    }

    /// Parses a stored action; `None` for a value this version does not know.
    pub fn from_db(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_db() == raw)
    }
}

/// One change, as listed.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// Record id.
    pub id: Uuid,
    /// Stream changed; `None` for owner-level changes.
    pub stream_id: Option<Uuid>,
    /// Resource name changed (`streams/…`, `signingKeys/…`).
    pub resource: String,
    /// Owner of the resource.
    pub owner: String,
    /// Principal who acted.
    pub actor: String,
    /// Role name of the calling service, or `system` for changes Nova made itself.
    pub service: String,
    /// Client address the edge saw.
    pub client_ip: Option<IpAddr>,
    /// What happened; `None` for an action a newer version wrote.
    pub action: Option<AuditAction>,
    /// Names of the fields set or changed.
    pub fields: Vec<String>,
    /// Commit time.
    pub created_at: DateTime<Utc>,
}

impl From<AuditRow> for AuditRecord {
    fn from(row: AuditRow) -> Self {
        Self {
            id: row.id,
            stream_id: row.stream_id,
            resource: row.resource,
            owner: row.owner,
            actor: row.actor,
            service: row.service,
            client_ip: row.client_ip.and_then(|ip| ip.parse().ok()),
            action: AuditAction::from_db(&row.action),
            fields: row.fields,
            created_at: row.created_at,
        }
    }
}

/// A change to record: what, on which resource of whom, which fields.
#[derive(Debug)]
pub struct Change<'a> {
    /// What happened.
    pub action: AuditAction,
    /// Stream changed, if the change is a stream's.
    pub stream_id: Option<Uuid>,
    /// Resource name changed.
    pub resource: &'a str,
    /// Owner of the resource.
    pub owner: &'a str,
    /// Names of the fields set or changed; never values.
    pub fields: &'a [&'a str],
}

/// Writes the record of `change` by `actor`; call it inside the change's transaction.
pub async fn record(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    change: &Change<'_>,
) -> Result<()> {
    let client_ip = actor.client_ip.map(|ip| ip.to_canonical().to_string());
    audit::insert(
        conn,
        &NewAuditRow {
            id: Uuid::now_v7(),
            stream_id: change.stream_id,
            resource: change.resource,
            owner: change.owner,
            actor: actor.principal.as_str(),
            service: actor.role.as_str(),
            client_ip: client_ip.as_deref(),
            action: change.action.as_db(),
            fields: change.fields,
        },
    )
    .await?;
    Ok(())
}

/// The actor of changes Nova makes by itself (a failing webhook endpoint disabled, an
/// asset the retention setting deleted).
pub const SYSTEM_ACTOR: &str = "nova";
/// The service name of those changes.
pub const SYSTEM_SERVICE: &str = "system";

/// Writes the record of `change` made by Nova itself (a failing webhook endpoint
/// disabled, an asset the retention setting deleted: actor [`SYSTEM_ACTOR`], service
/// [`SYSTEM_SERVICE`], no client address); call it inside the change's transaction.
pub async fn record_system(conn: &mut AsyncPgConnection, change: &Change<'_>) -> Result<()> {
    audit::insert(
        conn,
        &NewAuditRow {
            id: Uuid::now_v7(),
            stream_id: change.stream_id,
            resource: change.resource,
            owner: change.owner,
            actor: SYSTEM_ACTOR,
            service: SYSTEM_SERVICE,
            client_ip: None,
            action: change.action.as_db(),
            fields: change.fields,
        },
    )
    .await?;
    Ok(())
}

/// What a listing asks for.
#[derive(Debug, Default)]
pub struct AuditQuery {
    /// Stream to keep.
    pub stream_id: Option<Uuid>,
    /// Owner to keep.
    pub owner: Option<String>,
    /// Requested page size; 0 means the default.
    pub page_size: i32,
    /// Token from the previous page.
    pub page_token: String,
}

/// One page of records.
#[derive(Debug)]
pub struct AuditPage {
    /// The records, newest first.
    pub records: Vec<AuditRecord>,
    /// Token of the next page; empty on the last page.
    pub next_page_token: String,
}

/// Audit listing over PostgreSQL.
#[derive(Clone)]
pub struct Audit {
    /// Connection pool.
    pool: DbPool,
}

impl Audit {
    /// Builds the service over a pool.
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
    }

    /// Returns one page of records, newest first. A caller acting for `viewer` sees
    /// only records of resources `viewer` owns; `None` (an admin without a principal)
    /// sees all.
    pub async fn list(&self, viewer: Option<&Principal>, query: &AuditQuery) -> Result<AuditPage> {
        let limit = match i64::from(query.page_size) {
            0 => DEFAULT_PAGE_SIZE,
            n if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                return Err(Error::invalid(
                    "page_size",
                    format!("must be between 0 and {MAX_PAGE_SIZE}"),
                ));
            }
        };
        if let Some(owner) = &query.owner {
            Principal::parse(owner)
                .map_err(|reason| Error::invalid("owner", reason.to_string()))?;
        }
        let mut conn = self.pool.get().await?;
        let owner = match (viewer, query.owner.as_deref()) {
            (Some(v), Some(o)) if v.as_str() != o => {
                return Err(Error::PermissionDenied(
                    "only an owner may list the audit records of their resources",
                ));
            }
            (Some(v), _) => Some(v.as_str()),
            (None, o) => o,
        };
        if let Some(id) = query.stream_id {
            let stream = streams::find(&mut conn, id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("streams/{id}")))?;
            if viewer.is_some_and(|v| v.as_str() != stream.owner) {
                return Err(Error::PermissionDenied(
                    "only the owner of a stream may list its audit records",
                ));
            }
        }
        let fingerprint = fingerprint(query.stream_id, owner);
        let before = match query.page_token.as_str() {
            "" => None,
            token => Some(decode_token(token, fingerprint)?),
        };
        let filter = AuditFilter {
            stream_id: query.stream_id,
            owner,
            before,
            limit: limit + 1,
        };
        let mut rows = audit::list(&mut conn, &filter).await?;
        let next_page_token = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last()
                .map(|last| encode_token(last.created_at, last.id, fingerprint))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(AuditPage {
            records: rows.into_iter().map(AuditRecord::from).collect(),
            next_page_token,
        })
    }
}

/// Eight bytes identifying a filter, so a token is not reused with other filters.
fn fingerprint(stream_id: Option<Uuid>, owner: Option<&str>) -> [u8; 8] {
    let mut hasher = Sha256::new();
    hasher.update(b"audit");
    hasher.update(stream_id.map(|id| *id.as_bytes()).unwrap_or_default());
    hasher.update(owner.unwrap_or_default().as_bytes());
    let digest = hasher.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

fn encode_token(at: DateTime<Utc>, id: Uuid, fingerprint: [u8; 8]) -> String {
    let mut raw = Vec::with_capacity(32);
    raw.extend_from_slice(&at.timestamp_micros().to_be_bytes());
    raw.extend_from_slice(id.as_bytes());
    raw.extend_from_slice(&fingerprint);
    URL_SAFE_NO_PAD.encode(raw)
}

fn decode_token(token: &str, fingerprint: [u8; 8]) -> Result<(DateTime<Utc>, Uuid)> {
    let invalid = || Error::invalid("page_token", "not a token returned by ListAuditRecords");
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    if raw.len() != 32 {
        return Err(invalid());
    }
    if raw[24..] != fingerprint {
        return Err(Error::invalid(
            "page_token",
            "was issued for different filters; repeat the same stream and owner",
        ));
    }
    let mut micros = [0u8; 8];
    micros.copy_from_slice(&raw[..8]);
    let at = DateTime::from_timestamp_micros(i64::from_be_bytes(micros)).ok_or_else(invalid)?;
    let id = Uuid::from_slice(&raw[8..24]).map_err(|_| invalid())?;
    Ok((at, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_their_stored_names() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::from_db(action.as_db()), Some(action));
        }
        assert_eq!(AuditAction::from_db("unknown"), None);
    }

    #[test]
    fn page_tokens_round_trip_and_reject_other_filters() {
        let at = DateTime::from_timestamp_micros(1_764_600_000_123_456).unwrap();
        let id = Uuid::now_v7();
        let fp = fingerprint(None, Some("alice"));
        let token = encode_token(at, id, fp);
        assert_eq!(decode_token(&token, fp).unwrap(), (at, id));
        assert!(decode_token(&token, fingerprint(None, Some("bob"))).is_err());
        assert!(decode_token(&token, fingerprint(Some(id), Some("alice"))).is_err());
        assert!(decode_token("garbage!", fp).is_err());
        assert!(decode_token("AAAA", fp).is_err());
    }
}
