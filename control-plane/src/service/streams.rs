//! Stream rules: creation with a one-time key, reads, listing with keyset
//! pagination, ending and key rotation by the owner only. Creation and rotation log a
//! [`Notice`] for webhooks in the same transaction.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use diesel_async::AsyncConnection;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    auth::{Actor, Principal},
    db::{
        DbPool,
        streams::{self, ListFilter, NewStream, StreamChanges, StreamRow},
    },
    error::{Error, Result},
    keys::StreamKey,
    service::events::{Notice, Outbox},
    service::publish::Publisher,
    service::{
        PlaybackPolicy, Stream, StreamStatus,
        audit::{self, AuditAction, Change},
        lifecycle::{self, EndReason},
        stream_cache::StreamCache,
        title::validate_title,
    },
};

/// Page size when the caller gives none.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest page size.
pub const MAX_PAGE_SIZE: i64 = 1000;

/// What a listing asks for.
#[derive(Debug, Default)]
pub struct ListQuery {
    /// States to keep; empty keeps all.
    pub statuses: Vec<StreamStatus>,
    /// Owner to keep.
    pub owner: Option<String>,
    /// Requested page size; 0 means the default.
    pub page_size: i32,
    /// Token from the previous page.
    pub page_token: String,
}

/// Settings a stream's owner changes; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct StreamUpdate {
    /// New title.
    pub title: Option<String>,
    /// New playback policy.
    pub playback_policy: Option<PlaybackPolicy>,
    /// New cap on concurrent viewers (`Some(None)` removes it).
    pub max_viewers: Option<Option<i32>>,
    /// Whether to record broadcasts into assets.
    pub record: Option<bool>,
}

/// What a new stream is made with besides its title.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamSettings {
    /// Playback policy.
    pub policy: PlaybackPolicy,
    /// Cap on concurrent viewers.
    pub max_viewers: Option<i32>,
    /// Whether broadcasts are recorded into assets.
    pub record: bool,
}

/// One page of a listing.
#[derive(Debug)]
pub struct Page {
    /// The streams, newest first.
    pub streams: Vec<Stream>,
    /// Token of the next page; empty on the last page.
    pub next_page_token: String,
}

/// Stream operations over PostgreSQL.
#[derive(Clone)]
pub struct Streams {
    /// Connection pool.
    pool: DbPool,
    /// Publishes committed events to other replicas.
    publisher: Publisher,
    /// Recently read rows.
    cache: StreamCache,
    /// Whether an asset store is configured, so streams may record.
    recording_enabled: bool,
}

impl Streams {
    /// Builds the service over a pool; `recording_enabled` says whether an asset
    /// store is configured.
    pub fn new(
        pool: DbPool,
        publisher: Publisher,
        cache: StreamCache,
        recording_enabled: bool,
    ) -> Self {
        Self {
            pool,
            publisher,
            cache,
            recording_enabled,
        }
    }

    /// Refuses `record` on a deployment without an asset store.
    fn check_record(&self, record: bool) -> Result<()> {
        if record && !self.recording_enabled {
            return Err(Error::FailedPrecondition(
                "recording is not available: this deployment has no asset store (NOVA_ASSET_STORE)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Creates a PENDING stream owned by `owner` and returns it with its new key.
    pub async fn create(
        &self,
        actor: &Actor,
        title: &str,
        settings: StreamSettings,
    ) -> Result<(Stream, StreamKey)> {
        let StreamSettings {
            policy,
            max_viewers,
            record,
        } = settings;
        let title = validate_title(title)?;
        validate_max_viewers(max_viewers)?;
        self.check_record(record)?;
        let key = StreamKey::generate();
        let hash = key.hash();
        let owner = actor.principal.as_str();
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                let row = streams::insert(
                    conn,
                    &NewStream {
                        id: Uuid::now_v7(),
                        owner,
                        title: &title,
                        key_hash: &hash.0,
                        playback_policy: policy.as_db(),
                        max_viewers,
                        record,
                    },
                )
                .await?;
                let mut fields = vec!["title", "playback_policy"];
                if max_viewers.is_some() {
                    fields.push("max_viewers");
                }
                if record {
                    fields.push("record");
                }
                audit_stream(conn, actor, &row, AuditAction::StreamCreated, &fields).await?;
                let notice = Notice::StreamCreated {
                    title: row.title.clone(),
                    playback_policy: row.playback_policy.clone(),
                    max_viewers: row.max_viewers,
                };
                notice.log_for_stream(conn, row.id).await?;
                Ok::<_, Error>(row)
            })
            .await?;
        tracing::info!(stream.id = %row.id, stream.owner = owner, stream.playback_policy = policy.as_db(), "stream created");
        Ok((Stream::from_row(row), key))
    }

    /// Returns one stream.
    pub async fn get(&self, id: Uuid) -> Result<Arc<Stream>> {
        self.cache
            .get(&self.pool, id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// Returns one page of streams, newest first.
    pub async fn list(&self, query: &ListQuery) -> Result<Page> {
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
        let mut statuses: Vec<&'static str> = query.statuses.iter().map(|s| s.as_db()).collect();
        statuses.sort_unstable();
        statuses.dedup();
        if let Some(owner) = &query.owner {
            Principal::parse(owner)
                .map_err(|reason| Error::invalid("owner", reason.to_string()))?;
        }
        let fingerprint = filter_fingerprint(&statuses, query.owner.as_deref());
        let before_id = match query.page_token.as_str() {
            "" => None,
            token => Some(decode_page_token(token, fingerprint)?),
        };
        let filter = ListFilter {
            statuses,
            owner: query.owner.as_deref(),
            before_id,
            limit: limit + 1,
        };
        let mut conn = self.pool.get().await?;
        let mut rows = streams::list(&mut conn, &filter).await?;
        let next_page_token = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last()
                .map(|last| encode_page_token(last.id, fingerprint))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Page {
            streams: rows.into_iter().map(Stream::from_row).collect(),
            next_page_token,
        })
    }

    /// Completes a stream on behalf of its owner; completing a completed stream is a
    /// no-op that returns it. Writes `stream_ended` to the event log in the same
    /// transaction.
    pub async fn end(&self, actor: &Actor, id: Uuid) -> Result<Stream> {
        let mut conn = self.pool.get().await?;
        let mut out = Outbox::new();
        let result = conn
            .transaction(async |conn| {
                let row = streams::find_for_update(conn, id)
                    .await?
                    .ok_or_else(|| not_found(id))?;
                ensure_owner(&row, actor)?;
                if StreamStatus::from_db(&row.status) == StreamStatus::Completed {
                    return Ok::<_, Error>(row);
                }
                let row = lifecycle::complete(conn, &mut out, id, EndReason::EndedByOwner).await?;
                audit_stream(conn, actor, &row, AuditAction::StreamEnded, &["status"]).await?;
                Ok(row)
            })
            .await?;
        self.publisher.publish(&out);
        Ok(Stream::from_row(result))
    }

    /// Issues a new key for a stream on behalf of its owner; the old key stops working
    /// at once. Refused on completed streams.
    pub async fn rotate_key(&self, actor: &Actor, id: Uuid) -> Result<(Stream, StreamKey)> {
        let key = StreamKey::generate();
        let hash = key.hash();
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                lock_changeable(conn, actor, id).await?;
                let row = streams::replace_key(conn, id, &hash.0).await?;
                let fields = &["stream_key"];
                audit_stream(conn, actor, &row, AuditAction::StreamKeyRotated, fields).await?;
                Notice::StreamKeyRotated
                    .log_for_stream(conn, row.id)
                    .await?;
                Ok::<_, Error>(row)
            })
            .await?;
        self.publisher.changed(id);
        tracing::info!(stream.id = %id, "stream key rotated");
        Ok((Stream::from_row(row), key))
    }

    /// Changes a stream's settings on behalf of its owner. Refused on completed
    /// streams and when nothing is to change.
    pub async fn update(&self, actor: &Actor, id: Uuid, update: &StreamUpdate) -> Result<Stream> {
        let title = update.title.as_deref().map(validate_title).transpose()?;
        if let Some(cap) = update.max_viewers {
            validate_max_viewers(cap)?;
        }
        self.check_record(update.record == Some(true))?;
        let changes = StreamChanges {
            title: title.as_deref(),
            playback_policy: update.playback_policy.map(PlaybackPolicy::as_db),
            max_viewers: update.max_viewers,
            record: update.record,
        };
        if changes.title.is_none()
            && changes.playback_policy.is_none()
            && changes.max_viewers.is_none()
            && changes.record.is_none()
        {
            return Err(Error::invalid("update_mask", "names no field to change"));
        }
        let fields: Vec<&str> = [
            ("title", changes.title.is_some()),
            ("playback_policy", changes.playback_policy.is_some()),
            ("max_viewers", changes.max_viewers.is_some()),
            ("record", changes.record.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect();
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                lock_changeable(conn, actor, id).await?;
                let row = streams::update(conn, id, &changes).await?;
                audit_stream(conn, actor, &row, AuditAction::StreamUpdated, &fields).await?;
                Ok::<_, Error>(row)
            })
            .await?;
        self.publisher.changed(id);
        tracing::info!(stream.id = %id, stream.playback_policy = %row.playback_policy, "stream updated");
        Ok(Stream::from_row(row))
    }
}

fn not_found(id: Uuid) -> Error {
    Error::NotFound(format!("streams/{id}"))
}

/// Writes the audit record of a change to stream `row` (inside its transaction).
async fn audit_stream(
    conn: &mut diesel_async::AsyncPgConnection,
    actor: &Actor,
    row: &StreamRow,
    action: AuditAction,
    fields: &[&str],
) -> Result<()> {
    let resource = format!("streams/{}", row.id);
    let change = Change {
        action,
        stream_id: Some(row.id),
        resource: &resource,
        owner: &row.owner,
        fields,
    };
    audit::record(conn, actor, &change).await
}

fn ensure_owner(row: &StreamRow, actor: &Actor) -> Result<()> {
    if row.owner == actor.principal.as_str() {
        Ok(())
    } else {
        Err(Error::PermissionDenied(
            "only the owner of a stream may change it",
        ))
    }
}

/// Largest accepted viewer cap.
pub const MAX_VIEWERS_CAP: i32 = 1_000_000;

/// Checks a viewer cap: none, or 1 to [`MAX_VIEWERS_CAP`].
fn validate_max_viewers(cap: Option<i32>) -> Result<()> {
    match cap {
        Some(n) if !(1..=MAX_VIEWERS_CAP).contains(&n) => Err(Error::invalid(
            "stream.max_viewers",
            format!("must be between 0 (no cap) and {MAX_VIEWERS_CAP}"),
        )),
        _ => Ok(()),
    }
}

/// Eight bytes identifying a filter, so a token is not reused with other filters.
fn filter_fingerprint(statuses: &[&str], owner: Option<&str>) -> [u8; 8] {
    let mut hasher = Sha256::new();
    for status in statuses {
        hasher.update(status.as_bytes());
        hasher.update([0]);
    }
    hasher.update([1]);
    hasher.update(owner.unwrap_or_default().as_bytes());
    let digest = hasher.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

fn encode_page_token(last_id: Uuid, fingerprint: [u8; 8]) -> String {
    let mut raw = Vec::with_capacity(24);
    raw.extend_from_slice(last_id.as_bytes());
    raw.extend_from_slice(&fingerprint);
    URL_SAFE_NO_PAD.encode(raw)
}

fn decode_page_token(token: &str, fingerprint: [u8; 8]) -> Result<Uuid> {
    let invalid = || Error::invalid("page_token", "not a token returned by ListStreams");
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    if raw.len() != 24 {
        return Err(invalid());
    }
    if raw[16..] != fingerprint {
        return Err(Error::invalid(
            "page_token",
            "was issued for different filters; repeat the same statuses and owner",
        ));
    }
    Uuid::from_slice(&raw[..16]).map_err(|_| invalid())
}

/// Locks stream `id` for a change by `actor`: it must exist, be the actor's, and not
/// be completed.
async fn lock_changeable(
    conn: &mut diesel_async::AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
) -> Result<()> {
    let row = streams::find_for_update(conn, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    ensure_owner(&row, actor)?;
    if StreamStatus::from_db(&row.status) == StreamStatus::Completed {
        return Err(Error::FailedPrecondition(
            "the stream is completed; create a new stream instead".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_other_filters() {
        let id = Uuid::now_v7();
        let fp = filter_fingerprint(&["active"], Some("alice"));
        let token = encode_page_token(id, fp);
        assert_eq!(decode_page_token(&token, fp).unwrap(), id);
        let other = filter_fingerprint(&["active"], Some("bob"));
        assert!(decode_page_token(&token, other).is_err());
        assert!(decode_page_token("garbage!", fp).is_err());
        assert!(decode_page_token("AAAA", fp).is_err());
    }
}
