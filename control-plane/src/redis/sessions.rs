//! Viewer sessions in Redis. Per stream, under its hash tag: a sorted set of live
//! sessions scored by expiry (so sessions of a crashed edge age out by themselves),
//! a hash per session, the peak, a HyperLogLog of viewers, and accumulated watch
//! time. Every operation on a stream is one Lua script ([`super::scripts`]), i.e.
//! one round trip, and publishes the new count when it changed. A session id starts
//! with its stream id (`<stream id>.<random>`), so a heartbeat or a leave finds the
//! stream's slot from the id alone. Beside the streams, an index (a sorted set of its
//! own) lists the streams that may hold sessions, for the sweeper.

use futures::{StreamExt, TryStreamExt, stream};
use redis::{RedisResult, Script};
use uuid::Uuid;

pub use crate::redis::figures::{Figures, Seed, Snapshot};
use crate::redis::{Keys, Redis, availability::Availability, scripts};

/// A session to start.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    /// Session id.
    pub session_id: &'a str,
    /// Stream id.
    pub stream_id: &'a str,
    /// Viewer id for unique counting.
    pub viewer_id: &'a str,
    /// `web` or `rtmp`.
    pub kind: &'a str,
    /// Edge or ingest node holding it.
    pub node: &'a str,
    /// Most live sessions the stream may have, this one included; 0 for no limit.
    pub max: i64,
}

/// Script calls a cluster runs at once for one operation over many streams.
const CONCURRENT_CALLS: usize = 32;

/// The session store.
#[derive(Clone)]
pub struct SessionStore {
    /// Connections.
    redis: Redis,
    /// Names.
    keys: Keys,
    /// Session lifetime without a heartbeat, milliseconds.
    ttl_ms: i64,
    /// The scripts, loaded on first use (EVALSHA, then SCRIPT LOAD on every node).
    scripts: std::sync::Arc<Scripts>,
    /// Whether Redis answers: calls fail at once while it does not.
    availability: Availability,
}

/// The compiled scripts (each knows its SHA-1).
struct Scripts {
    join: Script,
    heartbeat: Script,
    leave: Script,
    figures: Script,
    sweep: Script,
    snapshot: Script,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Returns a new session id for a session on `stream_id`: the stream id, a dot and
/// 128 random bits (59 characters).
pub fn new_session_id(stream_id: Uuid) -> String {
    use base64::Engine as _;
    let random: [u8; 16] = rand::random();
    format!(
        "{stream_id}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    )
}

/// Returns the stream of a session id made by [`new_session_id`], or `None` for any
/// other string (such a session is unknown).
fn stream_of(session_id: &str) -> Option<String> {
    let (stream, _) = session_id.split_once('.')?;
    Uuid::parse_str(stream).ok().map(|id| id.to_string())
}

impl SessionStore {
    /// Builds the store; sessions live `ttl_ms` without a heartbeat.
    pub fn new(redis: Redis, keys: Keys, ttl_ms: i64, availability: Availability) -> Self {
        Self {
            redis,
            keys,
            ttl_ms,
            availability,
            scripts: std::sync::Arc::new(Scripts {
                join: scripts::script(scripts::JOIN),
                heartbeat: scripts::script(scripts::HEARTBEAT),
                leave: scripts::script(scripts::LEAVE),
                figures: scripts::script(scripts::FIGURES),
                sweep: scripts::script(scripts::SWEEP),
                snapshot: scripts::script(scripts::SNAPSHOT),
            }),
        }
    }

    /// Returns the session lifetime in milliseconds.
    pub fn ttl_ms(&self) -> i64 {
        self.ttl_ms
    }

    /// Starts a session (its id from [`new_session_id`]); returns the stream's live
    /// count including it and its peak, or `None` (and writes nothing) when the
    /// stream already has `max` live sessions.
    pub async fn join(&self, s: &NewSession<'_>) -> RedisResult<Option<(i64, i64)>> {
        self.availability.check()?;
        let now = now_ms();
        let mut conn = self.redis.get().await?;
        let (count, peak): (i64, i64) = self
            .scripts
            .join
            .key(self.keys.live(s.stream_id))
            .arg(self.keys.prefix())
            .arg(now)
            .arg(self.ttl_ms)
            .arg(self.inline_index())
            .arg(s.session_id)
            .arg(s.stream_id)
            .arg(s.viewer_id)
            .arg(s.kind)
            .arg(s.node)
            .arg(s.max)
            .invoke_async(&mut conn)
            .await?;
        if count < 0 {
            return Ok(None);
        }
        if self.redis.is_cluster() {
            self.index(&mut conn, now, &[s.stream_id]).await;
        }
        Ok(Some((count, peak)))
    }

    /// Keeps sessions alive; returns the ids that had already expired or ended (ids
    /// this store never made included), in request order.
    pub async fn heartbeat(&self, session_ids: &[String]) -> RedisResult<Vec<String>> {
        self.availability.check()?;
        let mut expired = Vec::new();
        let mut by_stream: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for id in session_ids {
            match stream_of(id) {
                Some(stream) => by_stream.entry(stream).or_default().push(id.clone()),
                None => expired.push(id.clone()),
            }
        }
        let now = now_ms();
        let groups: Vec<_> = by_stream.into_iter().collect();
        let answers: Vec<Vec<String>> = self
            .per_call(groups, |batch| async move {
                let mut invocation = self.scripts.heartbeat.prepare_invoke();
                invocation
                    .arg(self.keys.prefix())
                    .arg(now)
                    .arg(self.ttl_ms)
                    .arg(self.inline_index());
                for (stream, ids) in &batch {
                    invocation
                        .key(self.keys.live(stream))
                        .arg(stream)
                        .arg(ids.len())
                        .arg(ids);
                }
                let mut conn = self.redis.get().await?;
                let gone: Vec<String> = invocation.invoke_async(&mut conn).await?;
                if self.redis.is_cluster() {
                    let streams: Vec<&str> = batch.iter().map(|(s, _)| s.as_str()).collect();
                    self.index(&mut conn, now, &streams).await;
                }
                Ok(gone)
            })
            .await?;
        expired.extend(answers.into_iter().flatten());
        // In the order of the request.
        let expired: std::collections::HashSet<String> = expired.into_iter().collect();
        Ok(session_ids
            .iter()
            .filter(|id| expired.contains(*id))
            .cloned()
            .collect())
    }

    /// Ends a session; returns its stream id (empty if unknown) and the new count.
    pub async fn leave(&self, session_id: &str) -> RedisResult<(String, i64)> {
        self.availability.check()?;
        let Some(stream) = stream_of(session_id) else {
            return Ok((String::new(), 0));
        };
        let mut conn = self.redis.get().await?;
        self.scripts
            .leave
            .key(self.keys.live(&stream))
            .arg(self.keys.prefix())
            .arg(now_ms())
            .arg(session_id)
            .arg(&stream)
            .invoke_async(&mut conn)
            .await
    }

    /// Returns the figures of a stream (dropping expired sessions first).
    pub async fn figures(&self, stream_id: &str) -> RedisResult<Figures> {
        self.availability.check()?;
        let mut conn = self.redis.get().await?;
        let (count, peak, uniques, watch_ms): (i64, i64, i64, i64) = self
            .scripts
            .figures
            .key(self.keys.live(stream_id))
            .arg(self.keys.prefix())
            .arg(now_ms())
            .arg(stream_id)
            .invoke_async(&mut conn)
            .await?;
        Ok(Figures {
            count,
            peak,
            uniques,
            watch_ms,
        })
    }

    /// Returns the live count and peak of each stream in `stream_ids`, in order: one
    /// pipeline on a single primary, one per stream on a cluster (its pipelines may
    /// not span slots); a stream without sessions reports `(0, 0)`. Read-only:
    /// expired sessions are not counted, and the sweeper drops them.
    pub async fn counts(&self, stream_ids: &[String]) -> RedisResult<Vec<(i64, i64)>> {
        if stream_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.availability.check()?;
        let after_now = format!("({}", now_ms());
        let answers: Vec<Vec<(i64, i64)>> = self
            .per_call(stream_ids.to_vec(), |batch| {
                let after_now = &after_now;
                async move {
                    let mut pipe = redis::pipe();
                    for id in &batch {
                        pipe.zcount(self.keys.live(id), after_now, "+inf")
                            .get(self.keys.peak(id));
                    }
                    let mut conn = self.redis.get().await?;
                    let flat: Vec<Option<i64>> = pipe.query_async(&mut conn).await?;
                    Ok(flat
                        .chunks_exact(2)
                        .map(|c| (c[0].unwrap_or(0), c[1].unwrap_or(0)))
                        .collect())
                }
            })
            .await?;
        Ok(answers.into_iter().flatten().collect())
    }

    /// Drops expired sessions of every stream in the index, publishing the new
    /// counts, then drops from the index the streams whose every session had expired
    /// before the sweep began; returns how many sessions were dropped. Idempotent, so
    /// every replica may run it.
    pub async fn sweep(&self) -> RedisResult<i64> {
        self.availability.check()?;
        let now = now_ms();
        let streams: Vec<String> = {
            let mut conn = self.redis.get().await?;
            redis::cmd("ZRANGE")
                .arg(self.keys.index())
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await?
        };
        let swept: Vec<i64> = self
            .per_call(streams, |batch| async move {
                let mut invocation = self.scripts.sweep.prepare_invoke();
                invocation.arg(self.keys.prefix()).arg(now);
                for stream in &batch {
                    invocation.key(self.keys.live(stream)).arg(stream);
                }
                let mut conn = self.redis.get().await?;
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        // A stream whose index score (the latest expiry it gave a session) is not
        // after `now` had no live session left when the scripts above ran; a join
        // since then raised its score past `now`, so it stays.
        let mut conn = self.redis.get().await?;
        redis::cmd("ZREMRANGEBYSCORE")
            .arg(self.keys.index())
            .arg("-inf")
            .arg(now)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(swept.iter().sum())
    }

    /// Seeds the stream's figures from `seed` if Redis lost them since it last did,
    /// then returns its figures (sessions not yet expired) and HyperLogLog.
    pub async fn snapshot(&self, stream_id: &str, seed: &Seed) -> RedisResult<Snapshot> {
        self.availability.check()?;
        let mut conn = self.redis.get().await?;
        let (count, peak, uniques, watch_ms, uniques_hll): (i64, i64, i64, i64, Vec<u8>) = self
            .scripts
            .snapshot
            .key(self.keys.live(stream_id))
            .arg(self.keys.prefix())
            .arg(now_ms())
            .arg(stream_id)
            .arg(seed.peak)
            .arg(seed.watch_ms)
            .arg(seed.uniques_hll.as_slice())
            .invoke_async(&mut conn)
            .await?;
        Ok(Snapshot {
            figures: Figures {
                count,
                peak,
                uniques,
                watch_ms,
            },
            uniques_hll,
        })
    }

    /// Returns the index key for JOIN and HEARTBEAT to update themselves on a single
    /// primary (one round trip, as before the index moved out of the scripts on a
    /// cluster); empty on a cluster, where [`Self::index`] does it.
    fn inline_index(&self) -> String {
        if self.redis.is_cluster() {
            String::new()
        } else {
            self.keys.index()
        }
    }

    /// Records in the index that `streams` hold sessions until at least `now` + ttl
    /// (a score only ever rises), on a cluster, where the index lives in a slot of its
    /// own: a separate command after the session script. A failure is logged, not
    /// returned: the session change is made, and a caller told otherwise would retry
    /// a join and count a viewer twice; the stream is indexed again at its next join
    /// or heartbeat, and read calls drop its expired sessions meanwhile.
    async fn index(&self, conn: &mut crate::redis::Conn, now: i64, streams: &[&str]) {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(self.keys.index()).arg("GT");
        for stream in streams {
            cmd.arg(now + self.ttl_ms).arg(*stream);
        }
        if let Err(err) = cmd.query_async::<()>(conn).await {
            tracing::warn!(error = %err, streams = streams.len(), "could not index streams for the session sweeper");
        }
    }

    /// Runs `call` over `items` split the way a script or pipeline may take them: all
    /// in one call on a single primary, one item per call (one stream, so one slot) on
    /// a cluster, a few calls at a time; returns the answers in the order of `items`.
    async fn per_call<T, R, F, Fut>(&self, items: Vec<T>, call: F) -> RedisResult<Vec<R>>
    where
        F: Fn(Vec<T>) -> Fut,
        Fut: std::future::Future<Output = RedisResult<R>>,
    {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let batches: Vec<Vec<T>> = if self.redis.is_cluster() {
            items.into_iter().map(|item| vec![item]).collect()
        } else {
            vec![items]
        };
        stream::iter(batches)
            .map(call)
            .buffered(CONCURRENT_CALLS)
            .try_collect()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_name_their_stream() {
        let stream = Uuid::new_v4();
        let id = new_session_id(stream);
        assert!(id.len() <= 64, "{id}");
        assert_eq!(stream_of(&id), Some(stream.to_string()));
        assert_ne!(new_session_id(stream), id);
        assert_eq!(stream_of(&Uuid::new_v4().to_string()), None);
        assert_eq!(stream_of("x}.y"), None);
    }
}
