//! Viewer sessions in Redis. Per stream: a sorted set of live sessions scored by
//! expiry (so sessions of a crashed edge age out by themselves), the peak, a
//! HyperLogLog of viewers, and accumulated watch time. Every operation is one Lua
//! script, i.e. one round trip, and publishes the new count when it changed.

use redis::Script;

use crate::redis::{Keys, RedisPool, availability::Availability};

/// Viewer figures of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Figures {
    /// Live sessions.
    pub count: i64,
    /// Highest live count seen.
    pub peak: i64,
    /// Approximate distinct viewers.
    pub uniques: i64,
    /// Accumulated watch time, milliseconds (updated at heartbeats and leaves).
    pub watch_ms: i64,
}

/// A stream's viewer figures as last persisted in PostgreSQL, to seed Redis with
/// after it lost them (restart, flush).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seed {
    /// Persisted peak.
    pub peak: i64,
    /// Persisted watch time, milliseconds.
    pub watch_ms: i64,
    /// Persisted HyperLogLog of viewers (Redis's own encoding); empty if none.
    pub uniques_hll: Vec<u8>,
}

/// A stream's figures together with its HyperLogLog, for persisting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The figures.
    pub figures: Figures,
    /// The HyperLogLog of viewers (Redis's own encoding); empty if none.
    pub uniques_hll: Vec<u8>,
}

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
}

const COMMON: &str = r#"
local p = ARGV[1]
local now = tonumber(ARGV[2])
local function publish(stream, count)
  local peak = tonumber(redis.call('GET', p .. ':peak:' .. stream) or '0')
  redis.call('PUBLISH', p .. ':counts', cjson.encode({kind = 'count', stream_id = stream, count = count, peak = peak}))
end
"#;

const JOIN: &str = r#"
local ttl = tonumber(ARGV[3])
local sid, stream, viewer, kind, node = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local live = p .. ':live:' .. stream
redis.call('ZREMRANGEBYSCORE', live, '-inf', now)
redis.call('HSET', p .. ':sess:' .. sid, 'stream', stream, 'joined', now, 'seen', now, 'kind', kind, 'node', node)
redis.call('PEXPIRE', p .. ':sess:' .. sid, ttl)
redis.call('ZADD', live, now + ttl, sid)
redis.call('SADD', p .. ':live-streams', stream)
redis.call('PFADD', p .. ':uniq:' .. stream, viewer)
local count = redis.call('ZCARD', live)
local peak = tonumber(redis.call('GET', p .. ':peak:' .. stream) or '0')
if count > peak then redis.call('SET', p .. ':peak:' .. stream, count) end
publish(stream, count)
return count
"#;

const HEARTBEAT: &str = r#"
local ttl = tonumber(ARGV[3])
local expired = {}
local changed = {}
for i = 4, #ARGV do
  local sid = ARGV[i]
  local sk = p .. ':sess:' .. sid
  local stream = redis.call('HGET', sk, 'stream')
  if not stream then
    table.insert(expired, sid)
  else
    local live = p .. ':live:' .. stream
    local score = redis.call('ZSCORE', live, sid)
    if (not score) or tonumber(score) <= now then
      redis.call('DEL', sk)
      if redis.call('ZREM', live, sid) == 1 then changed[stream] = true end
      table.insert(expired, sid)
    else
      local seen = tonumber(redis.call('HGET', sk, 'seen') or now)
      redis.call('INCRBY', p .. ':watch:' .. stream, now - seen)
      redis.call('HSET', sk, 'seen', now)
      redis.call('PEXPIRE', sk, ttl)
      redis.call('ZADD', live, 'XX', now + ttl, sid)
    end
  end
end
for stream, _ in pairs(changed) do publish(stream, redis.call('ZCARD', p .. ':live:' .. stream)) end
return expired
"#;

const LEAVE: &str = r#"
local sid = ARGV[3]
local sk = p .. ':sess:' .. sid
local stream = redis.call('HGET', sk, 'stream')
if not stream then return {'', 0} end
local live = p .. ':live:' .. stream
local score = redis.call('ZSCORE', live, sid)
if score and tonumber(score) > now then
  local seen = tonumber(redis.call('HGET', sk, 'seen') or now)
  redis.call('INCRBY', p .. ':watch:' .. stream, now - seen)
end
redis.call('DEL', sk)
redis.call('ZREM', live, sid)
redis.call('ZREMRANGEBYSCORE', live, '-inf', now)
local count = redis.call('ZCARD', live)
publish(stream, count)
return {stream, count}
"#;

const FIGURES: &str = r#"
local stream = ARGV[3]
local live = p .. ':live:' .. stream
local removed = redis.call('ZREMRANGEBYSCORE', live, '-inf', now)
local count = redis.call('ZCARD', live)
if removed > 0 then publish(stream, count) end
return {
  count,
  tonumber(redis.call('GET', p .. ':peak:' .. stream) or '0'),
  redis.call('PFCOUNT', p .. ':uniq:' .. stream),
  tonumber(redis.call('GET', p .. ':watch:' .. stream) or '0')
}
"#;

// Seeds a stream's figures from PostgreSQL once per Redis lifetime (the `seeded`
// marker goes with a flush or an empty restart, so the next sample seeds again),
// then returns the figures and the HyperLogLog for persisting.
const SNAPSHOT: &str = r#"
local stream, peak0, watch0, hll0 = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local uniq = p .. ':uniq:' .. stream
if redis.call('SET', p .. ':seeded:' .. stream, '1', 'NX') then
  if hll0 ~= '' then
    local tmp = p .. ':seed-tmp:' .. stream
    redis.call('SET', tmp, hll0)
    redis.call('PFMERGE', uniq, tmp)
    redis.call('DEL', tmp)
  end
  if watch0 > 0 then redis.call('INCRBY', p .. ':watch:' .. stream, watch0) end
  local peak = tonumber(redis.call('GET', p .. ':peak:' .. stream) or '0')
  if peak0 > peak then redis.call('SET', p .. ':peak:' .. stream, peak0) end
end
local live = p .. ':live:' .. stream
local count = redis.call('ZCOUNT', live, '(' .. now, '+inf')
return {
  count,
  tonumber(redis.call('GET', p .. ':peak:' .. stream) or '0'),
  redis.call('PFCOUNT', uniq),
  tonumber(redis.call('GET', p .. ':watch:' .. stream) or '0'),
  redis.call('GET', uniq) or ''
}
"#;

// Read-only: counts sessions that have not expired, without dropping the expired
// ones (the sweeper does that), so it needs no publish and touches nothing.
const COUNTS: &str = r#"
local out = {}
for i = 3, #ARGV do
  local stream = ARGV[i]
  table.insert(out, redis.call('ZCOUNT', p .. ':live:' .. stream, '(' .. now, '+inf'))
  table.insert(out, tonumber(redis.call('GET', p .. ':peak:' .. stream) or '0'))
end
return out
"#;

const SWEEP: &str = r#"
local swept = 0
for _, stream in ipairs(redis.call('SMEMBERS', p .. ':live-streams')) do
  local live = p .. ':live:' .. stream
  local removed = redis.call('ZREMRANGEBYSCORE', live, '-inf', now)
  local count = redis.call('ZCARD', live)
  if removed > 0 then
    swept = swept + removed
    publish(stream, count)
  end
  if count == 0 then redis.call('SREM', p .. ':live-streams', stream) end
end
return swept
"#;

/// The session store.
#[derive(Clone)]
pub struct SessionStore {
    /// Connections.
    pool: RedisPool,
    /// Names.
    keys: Keys,
    /// Session lifetime without a heartbeat, milliseconds.
    ttl_ms: i64,
    /// The scripts, loaded once per connection on first use (EVALSHA, then EVAL).
    scripts: std::sync::Arc<Scripts>,
    /// Whether Redis answers: calls fail at once while it does not.
    availability: Availability,
}

struct Scripts {
    join: Script,
    heartbeat: Script,
    leave: Script,
    figures: Script,
    counts: Script,
    sweep: Script,
    snapshot: Script,
}

fn script(body: &str) -> Script {
    Script::new(&format!("{COMMON}{body}"))
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl SessionStore {
    /// Builds the store; sessions live `ttl_ms` without a heartbeat.
    pub fn new(pool: RedisPool, keys: Keys, ttl_ms: i64, availability: Availability) -> Self {
        Self {
            pool,
            keys,
            ttl_ms,
            availability,
            scripts: std::sync::Arc::new(Scripts {
                join: script(JOIN),
                heartbeat: script(HEARTBEAT),
                leave: script(LEAVE),
                figures: script(FIGURES),
                counts: script(COUNTS),
                sweep: script(SWEEP),
                snapshot: script(SNAPSHOT),
            }),
        }
    }

    /// Returns the session lifetime in milliseconds.
    pub fn ttl_ms(&self) -> i64 {
        self.ttl_ms
    }

    /// Starts a session; returns the stream's live count including it.
    pub async fn join(&self, s: &NewSession<'_>) -> redis::RedisResult<i64> {
        let mut conn = self.conn().await?;
        self.scripts
            .join
            .arg(self.keys.prefix())
            .arg(now_ms())
            .arg(self.ttl_ms)
            .arg(s.session_id)
            .arg(s.stream_id)
            .arg(s.viewer_id)
            .arg(s.kind)
            .arg(s.node)
            .invoke_async(&mut *conn)
            .await
    }

    /// Keeps sessions alive; returns the ids that had already expired or ended.
    pub async fn heartbeat(&self, session_ids: &[String]) -> redis::RedisResult<Vec<String>> {
        let mut conn = self.conn().await?;
        self.scripts
            .heartbeat
            .arg(self.keys.prefix())
            .arg(now_ms())
            .arg(self.ttl_ms)
            .arg(session_ids)
            .invoke_async(&mut *conn)
            .await
    }

    /// Ends a session; returns its stream id (empty if unknown) and the new count.
    pub async fn leave(&self, session_id: &str) -> redis::RedisResult<(String, i64)> {
        let mut conn = self.conn().await?;
        self.scripts
            .leave
            .arg(self.keys.prefix())
            .arg(now_ms())
            .arg(session_id)
            .invoke_async(&mut *conn)
            .await
    }

    /// Returns the figures of a stream (dropping expired sessions first).
    pub async fn figures(&self, stream_id: &str) -> redis::RedisResult<Figures> {
        let mut conn = self.conn().await?;
        let (count, peak, uniques, watch_ms): (i64, i64, i64, i64) = self
            .scripts
            .figures
            .arg(self.keys.prefix())
            .arg(now_ms())
            .arg(stream_id)
            .invoke_async(&mut *conn)
            .await?;
        Ok(Figures {
            count,
            peak,
            uniques,
            watch_ms,
        })
    }

    /// Returns the live count and peak of each stream in `stream_ids`, in order, in one
    /// round trip; a stream without sessions reports `(0, 0)`.
    pub async fn counts(&self, stream_ids: &[String]) -> redis::RedisResult<Vec<(i64, i64)>> {
        if stream_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        let flat: Vec<i64> = self
            .scripts
            .counts
            .arg(self.keys.prefix())
            .arg(now_ms())
            .arg(stream_ids)
            .invoke_async(&mut *conn)
            .await?;
        Ok(flat.chunks_exact(2).map(|c| (c[0], c[1])).collect())
    }

    /// Drops expired sessions of every stream, publishing the new counts; returns how
    /// many were dropped. Idempotent, so every replica may run it.
    pub async fn sweep(&self) -> redis::RedisResult<i64> {
        let mut conn = self.conn().await?;
        self.scripts
            .sweep
            .arg(self.keys.prefix())
            .arg(now_ms())
            .invoke_async(&mut *conn)
            .await
    }

    /// Seeds the stream's figures from `seed` if Redis lost them since it last did,
    /// then returns its figures (sessions not yet expired) and HyperLogLog.
    pub async fn snapshot(&self, stream_id: &str, seed: &Seed) -> redis::RedisResult<Snapshot> {
        let mut conn = self.conn().await?;
        let (count, peak, uniques, watch_ms, uniques_hll): (i64, i64, i64, i64, Vec<u8>) = self
            .scripts
            .snapshot
            .arg(self.keys.prefix())
            .arg(now_ms())
            .arg(stream_id)
            .arg(seed.peak)
            .arg(seed.watch_ms)
            .arg(seed.uniques_hll.as_slice())
            .invoke_async(&mut *conn)
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

    async fn conn(
        &self,
    ) -> redis::RedisResult<bb8::PooledConnection<'_, bb8_redis::RedisConnectionManager>> {
        self.availability.check()?;
        self.pool.get().await.map_err(super::pool_error)
    }
}
