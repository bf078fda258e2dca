//! Ingest rules: who may publish, what a disconnect or an update means, and ingest
//! health. Called by ingest-hooks on behalf of nginx-rtmp; every transition is
//! idempotent because nginx retries and callbacks can arrive twice.

use std::time::Duration;

use chrono::Utc;
use diesel_async::AsyncConnection as _;
use uuid::Uuid;

use crate::{
    db::{
        DbPool,
        streams::{self, Holder},
    },
    error::{Error, Result},
    keys::{KeyHash, looks_like_key},
    service::publish::Publisher,
    service::{
        Stream, StreamStatus,
        events::{Event, Outbox, Playback},
        health::Health,
        lifecycle::{self, EndReason},
        recording,
    },
};

/// What a publish attempt carries besides the key.
#[derive(Debug, Clone)]
pub struct PublishAttempt {
    /// Ingest node receiving the broadcast.
    pub node: String,
    /// The broadcaster's connection id on that node.
    pub client: String,
    /// Public base URL of that node's HTTP origin.
    pub origin_url: String,
    /// Whether the node transcodes into renditions.
    pub abr: bool,
    /// Whether the node records broadcasts of streams that record.
    pub recording: bool,
}

/// Outcome of an ingest update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The broadcaster may go on.
    Allowed,
    /// The broadcaster must be cut off, for this reason (safe to log).
    Denied(&'static str),
}

/// The refusal every bad key gets, whatever the reason, so keys cannot be probed.
const DENIED: &str = "stream key not accepted";

/// Ingest operations over PostgreSQL.
#[derive(Clone)]
pub struct Ingest {
    /// Connection pool.
    pool: DbPool,
    /// Publishes committed events to other replicas.
    publisher: Publisher,
    /// How long an interrupted stream waits for its broadcaster.
    reconnect_window: Duration,
    /// A live stream whose holder sent nothing for this long may be taken over.
    ingest_timeout: Duration,
}

impl Ingest {
    /// Builds the service.
    pub fn new(
        pool: DbPool,
        publisher: Publisher,
        reconnect_window: Duration,
        ingest_timeout: Duration,
    ) -> Self {
        Self {
            pool,
            publisher,
            reconnect_window,
            ingest_timeout,
        }
    }

    /// Accepts a publish with `key` (PENDING or INTERRUPTED in its window → ACTIVE;
    /// ACTIVE stays ACTIVE) and returns the stream and whether it resumed.
    pub async fn authorize_publish(
        &self,
        key: &str,
        attempt: &PublishAttempt,
    ) -> Result<(Stream, bool)> {
        let holder = holder(&attempt.node, &attempt.client)?;
        validate_origin(&attempt.origin_url)?;
        let stale_before = Utc::now() - to_chrono(self.ingest_timeout);
        if !looks_like_key(key) {
            return Err(Error::PermissionDenied(DENIED));
        }
        let hash = KeyHash::of(key);
        let mut conn = self.pool.get().await?;
        let mut out = Outbox::new();
        let result = conn.transaction(async |conn| {
            let row = streams::find_by_key_for_update(conn, &hash.0)
                .await?
                .filter(|row| hash.matches(&row.key_hash))
                .ok_or(Error::PermissionDenied(DENIED))?;
            let playback = playback_urls(&attempt.origin_url, row.id, attempt.abr);
            match StreamStatus::from_db(&row.status) {
                StreamStatus::Completed => Err(Error::PermissionDenied("the stream has completed")),
                StreamStatus::Interrupted
                    if row.reconnect_deadline.is_some_and(|deadline| deadline <= Utc::now()) =>
                {
                    lifecycle::complete(conn, &mut out, row.id, EndReason::ReconnectWindowClosed).await?;
                    Err(Error::PermissionDenied("the stream has completed"))
                }
                StreamStatus::Active
                    if !row.held_by(holder) && row.last_ingest_at.is_some_and(|at| at > stale_before) =>
                {
                    Err(Error::PermissionDenied("the stream is already live from another connection"))
                }
                StreamStatus::Active if row.held_by(holder) => {
                    // nginx retried: same state, same holder, nothing to tell anyone.
                    Ok((streams::activate(conn, row.id, holder, playback.as_stored()).await?, false))
                }
                StreamStatus::Active => {
                    // The previous holder went silent (its node died) and the broadcaster
                    // came back through another connection, maybe another node: a resume,
                    // told to viewers with the new playback URLs.
                    let row = lifecycle::activate(conn, &mut out, &row, holder, &playback).await?;
                    recording::count_publish(conn, &row, attempt.recording).await?;
                    tracing::info!(stream.id = %row.id, ingest.node = %attempt.node, "stream taken over by a new connection");
                    Ok((row, true))
                }
                status @ (StreamStatus::Pending | StreamStatus::Interrupted) => {
                    let resumed = status == StreamStatus::Interrupted;
                    let row = lifecycle::activate(conn, &mut out, &row, holder, &playback).await?;
                    recording::count_publish(conn, &row, attempt.recording).await?;
                    tracing::info!(stream.id = %row.id, ingest.node = %attempt.node, resumed, "stream live");
                    Ok((row, resumed))
                }
            }
        })
        .await?;
        self.publisher.publish(&out);
        // nginx's retry re-activates without an event, maybe with new playback URLs.
        let (row, resumed) = result;
        self.publisher.changed(row.id);
        Ok((Stream::from_row(row), resumed))
    }

    /// Records that the broadcaster left: ACTIVE → INTERRUPTED with the reconnect window
    /// open. Any other state, or a report from a connection that does not hold the
    /// stream, changes nothing. Returns the stream.
    pub async fn publish_ended(&self, key: &str, node: &str, client: &str) -> Result<Stream> {
        let holder = holder(node, client)?;
        let hash = self.known_key(key)?;
        let deadline = Utc::now() + self.window();
        let mut conn = self.pool.get().await?;
        let mut out = Outbox::new();
        let result = conn
            .transaction(async |conn| {
                let row = streams::find_by_key_for_update(conn, &hash.0)
                    .await?
                    .filter(|row| hash.matches(&row.key_hash))
                    .ok_or_else(|| Error::NotFound("stream for this key".into()))?;
                if !row.held_by(holder) {
                    return Ok(row);
                }
                if StreamStatus::from_db(&row.status) != StreamStatus::Active {
                    // Declared lost, and now gone for good: no late heartbeat of this
                    // connection may resume the stream.
                    streams::release_holder(conn, row.id).await?;
                    return Ok(row);
                }
                tracing::info!(stream.id = %row.id, "broadcaster left; reconnect window open");
                lifecycle::interrupt(
                    conn,
                    &mut out,
                    row.id,
                    deadline,
                    EndReason::PublisherDisconnected,
                )
                .await
            })
            .await?;
        self.publisher.publish(&out);
        Ok(Stream::from_row(result))
    }

    /// Records an ingest update and says whether the broadcaster may go on: only while
    /// the key is current and the stream ACTIVE on this connection.
    pub async fn heartbeat(&self, key: &str, node: &str, client: &str) -> Result<Verdict> {
        let holder = holder(node, client)?;
        if !looks_like_key(key) {
            return Ok(Verdict::Denied(DENIED));
        }
        let hash = KeyHash::of(key);
        let mut conn = self.pool.get().await?;
        if streams::touch_active_by_key(&mut conn, &hash.0, holder)
            .await?
            .is_some()
        {
            return Ok(Verdict::Allowed);
        }
        // Not active: find out why, for the log line at the hook.
        let mut out = Outbox::new();
        let verdict = conn
            .transaction(async |conn| {
                let Some(row) = streams::find_by_key_for_update(conn, &hash.0).await? else {
                    return Ok::<_, Error>(Verdict::Denied(
                        "the stream key was rotated or is unknown",
                    ));
                };
                Ok(match StreamStatus::from_db(&row.status) {
                    StreamStatus::Completed => Verdict::Denied("the stream has ended"),
                    StreamStatus::Pending => {
                        Verdict::Denied("the stream was not authorised on this node")
                    }
                    // An update that raced the broadcaster's own publish_done, or from a
                    // connection that has since been replaced: the stream stays down.
                    StreamStatus::Interrupted if !row.held_by(holder) => {
                        Verdict::Denied("the broadcaster left; publish again to resume")
                    }
                    StreamStatus::Interrupted => {
                        // Declared lost (silence), yet the same connection is still here:
                        // it is live again.
                        let playback = Playback {
                            hls_url: row.hls_url.clone().unwrap_or_default(),
                            dash_url: row.dash_url.clone().unwrap_or_default(),
                            hls_master_url: row.hls_master_url.clone().unwrap_or_default(),
                        };
                        lifecycle::activate(conn, &mut out, &row, holder, &playback).await?;
                        Verdict::Allowed
                    }
                    StreamStatus::Active => Verdict::Denied("another connection holds the stream"),
                })
            })
            .await?;
        self.publisher.publish(&out);
        Ok(verdict)
    }

    /// Stores an ingest health reading of an ACTIVE stream held by `node`, within the
    /// limits of [`Health::checked`] (checked first); logs
    /// `quality_changed` when the renditions or the source resolution changed. A report
    /// from any other node is refused and changes nothing (its /stat may still list a
    /// stream that moved, and no node may speak for another's broadcast).
    pub async fn report_health(&self, id: Uuid, node: &str, health: Health) -> Result<()> {
        let health = &health.checked()?;
        validate_node(node)?;
        let mut conn = self.pool.get().await?;
        let mut out = Outbox::new();
        conn.transaction(async |conn| {
            let row = streams::find_for_update(conn, id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("streams/{id}")))?;
            if StreamStatus::from_db(&row.status) != StreamStatus::Active {
                return Err(Error::FailedPrecondition("the stream is not live".into()));
            }
            if row.ingest_node.as_deref() != Some(node) {
                return Err(Error::PermissionDenied(
                    "the stream is held by another ingest node",
                ));
            }
            let previous: Option<Health> = row
                .ingest_health
                .as_ref()
                .and_then(|v| serde_json::from_value(v.clone()).ok());
            let changed = previous.is_none_or(|p| p.quality_differs(health));
            let value = serde_json::to_value(health)
                .map_err(|e| Error::invalid("health", e.to_string()))?;
            streams::set_health(conn, id, value).await?;
            if changed {
                let event = Event::QualityChanged {
                    renditions: health.renditions.clone(),
                };
                lifecycle::append(conn, &mut out, id, event).await?;
            }
            Ok(())
        })
        .await?;
        self.publisher.publish(&out);
        self.publisher.changed(id);
        Ok(())
    }

    fn known_key(&self, key: &str) -> Result<KeyHash> {
        if looks_like_key(key) {
            Ok(KeyHash::of(key))
        } else {
            Err(Error::invalid("stream_key", "is not a stream key"))
        }
    }

    fn window(&self) -> chrono::Duration {
        to_chrono(self.reconnect_window)
    }
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Checks and pairs a node and a connection id.
fn holder<'a>(node: &'a str, client: &'a str) -> Result<Holder<'a>> {
    validate_node(node)?;
    if client.is_empty() || client.len() > 64 || !client.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            "client_id",
            "must be 1 to 64 printable characters",
        ));
    }
    Ok(Holder { node, client })
}

/// Builds the playback URLs of a stream on an origin.
pub fn playback_urls(origin: &str, id: Uuid, abr: bool) -> Playback {
    let origin = origin.trim_end_matches('/');
    Playback {
        hls_url: format!("{origin}/hls/{id}.m3u8"),
        dash_url: format!("{origin}/dash/{id}.mpd"),
        hls_master_url: if abr {
            format!("{origin}/abr/{id}.m3u8")
        } else {
            String::new()
        },
    }
}

fn validate_node(node: &str) -> Result<()> {
    let ok = !node.is_empty()
        && node.len() <= 128
        && node
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "ingest_node",
            "must be 1 to 128 characters from A-Z a-z 0-9 . _ : -",
        ))
    }
}

fn validate_origin(origin: &str) -> Result<()> {
    let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
        && origin.len() <= 512
        && !origin.contains(|c: char| c.is_whitespace() || c.is_control() || c == '?' || c == '#');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "origin_url",
            "must be an http:// or https:// base URL without query or fragment",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playback_urls_follow_the_origin_layout() {
        let id = Uuid::nil();
        let p = playback_urls("http://127.0.0.1:8080/", id, false);
        assert_eq!(p.hls_url, format!("http://127.0.0.1:8080/hls/{id}.m3u8"));
        assert_eq!(p.dash_url, format!("http://127.0.0.1:8080/dash/{id}.mpd"));
        assert_eq!(p.hls_master_url, "");
        let p = playback_urls("https://cdn.example", id, true);
        assert_eq!(
            p.hls_master_url,
            format!("https://cdn.example/abr/{id}.m3u8")
        );
    }

    #[test]
    fn nodes_and_origins_are_checked() {
        assert!(validate_node("ingest-0.eu:1935").is_ok());
        assert!(validate_node("").is_err());
        assert!(validate_node("a b").is_err());
        assert!(validate_origin("http://127.0.0.1:8080").is_ok());
        assert!(validate_origin("ftp://x").is_err());
        assert!(validate_origin("http://x/?a=b").is_err());
    }
}
