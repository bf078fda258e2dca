//! The Lua scripts of [`super::sessions`]. Every script gets the key prefix and the
//! time as `ARGV[1]` and `ARGV[2]`, names its streams' keys with `k` (the same names
//! as [`super::Keys`]: `<prefix>:{<stream id>}:<what>`), and is given the `live` key
//! of every stream it touches as `KEYS`, so a cluster routes it to the node owning
//! that slot. A script touches the keys of the streams it is given only; on a cluster
//! the caller gives it one stream per call (one slot), since Redis refuses a script
//! whose keys span slots. The sweeper's index (`<prefix>:live-index`) is updated by
//! JOIN and HEARTBEAT on a single primary only; on a cluster it lives in a slot of its
//! own and the caller updates it with a command of its own. Count changes go out with PUBLISH on the counts channel,
//! which a cluster forwards to every node (see [`super::fanout`]).

/// Shared prelude: prefix, time, key names, and publishing a stream's count.
const COMMON: &str = r#"
local p = ARGV[1]
local now = tonumber(ARGV[2])
local function k(stream, what) return p .. ':{' .. stream .. '}:' .. what end
local function publish(stream, count)
  local peak = tonumber(redis.call('GET', k(stream, 'peak')) or '0')
  redis.call('PUBLISH', p .. ':counts', cjson.encode({kind = 'count', stream_id = stream, count = count, peak = peak}))
end
"#;

/// Starts a session. ARGV: ttl, index, session, stream, viewer, kind, node, max.
/// Returns `{count, peak}` (the live count and the stream's peak, this join
/// included), or `{-1, 0}` when `max` (0: none) live sessions already exist:
/// then nothing is written (no session, unique, peak or count event), so a viewer
/// refused at a cap leaves no trace. `index` is the sweeper's index key on a single
/// primary (updated here, in the same round trip), empty on a cluster (the caller
/// updates it: it lives in another slot).
pub(crate) const JOIN: &str = r#"
local ttl, idx = tonumber(ARGV[3]), ARGV[4]
local sid, stream, viewer, kind, node = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local max = tonumber(ARGV[10] or '0')
local live = k(stream, 'live')
local sk = k(stream, 'sess:' .. sid)
redis.call('ZREMRANGEBYSCORE', live, '-inf', now)
if max > 0 and redis.call('ZCARD', live) >= max then return {-1, 0} end
redis.call('HSET', sk, 'joined', now, 'seen', now, 'kind', kind, 'node', node)
redis.call('PEXPIRE', sk, ttl)
redis.call('ZADD', live, now + ttl, sid)
redis.call('PFADD', k(stream, 'uniq'), viewer)
local count = redis.call('ZCARD', live)
local peak = tonumber(redis.call('GET', k(stream, 'peak')) or '0')
if count > peak then
  peak = count
  redis.call('SET', k(stream, 'peak'), count)
end
publish(stream, count)
if idx ~= '' then redis.call('ZADD', idx, 'GT', now + ttl, stream) end
return {count, peak}
"#;

/// Keeps sessions alive. ARGV: ttl, index (as for JOIN), then per stream: stream,
/// n, n session ids. Returns the sessions that had already expired or ended.
pub(crate) const HEARTBEAT: &str = r#"
local ttl, idx = tonumber(ARGV[3]), ARGV[4]
local expired = {}
local i = 5
while i <= #ARGV do
  local stream, n = ARGV[i], tonumber(ARGV[i + 1])
  local live = k(stream, 'live')
  local changed, alive = false, false
  for j = i + 2, i + 1 + n do
    local sid = ARGV[j]
    local sk = k(stream, 'sess:' .. sid)
    local score = redis.call('ZSCORE', live, sid)
    if redis.call('EXISTS', sk) == 0 or (not score) or tonumber(score) <= now then
      redis.call('DEL', sk)
      if redis.call('ZREM', live, sid) == 1 then changed = true end
      table.insert(expired, sid)
    else
      local seen = tonumber(redis.call('HGET', sk, 'seen') or now)
      redis.call('INCRBY', k(stream, 'watch'), now - seen)
      redis.call('HSET', sk, 'seen', now)
      redis.call('PEXPIRE', sk, ttl)
      redis.call('ZADD', live, 'XX', now + ttl, sid)
      alive = true
    end
  end
  if changed then publish(stream, redis.call('ZCARD', live)) end
  if alive and idx ~= '' then redis.call('ZADD', idx, 'GT', now + ttl, stream) end
  i = i + 2 + n
end
return expired
"#;

/// Ends a session. ARGV: session, stream. Returns `{stream, count}`, or `{'', 0}`
/// for a session that is unknown or already gone.
pub(crate) const LEAVE: &str = r#"
local sid, stream = ARGV[3], ARGV[4]
local sk = k(stream, 'sess:' .. sid)
if redis.call('EXISTS', sk) == 0 then return {'', 0} end
local live = k(stream, 'live')
local score = redis.call('ZSCORE', live, sid)
if score and tonumber(score) > now then
  local seen = tonumber(redis.call('HGET', sk, 'seen') or now)
  redis.call('INCRBY', k(stream, 'watch'), now - seen)
end
redis.call('DEL', sk)
redis.call('ZREM', live, sid)
redis.call('ZREMRANGEBYSCORE', live, '-inf', now)
local count = redis.call('ZCARD', live)
publish(stream, count)
return {stream, count}
"#;

/// A stream's figures, dropping expired sessions first. ARGV: stream.
pub(crate) const FIGURES: &str = r#"
local stream = ARGV[3]
local live = k(stream, 'live')
local removed = redis.call('ZREMRANGEBYSCORE', live, '-inf', now)
local count = redis.call('ZCARD', live)
if removed > 0 then publish(stream, count) end
return {
  count,
  tonumber(redis.call('GET', k(stream, 'peak')) or '0'),
  redis.call('PFCOUNT', k(stream, 'uniq')),
  tonumber(redis.call('GET', k(stream, 'watch')) or '0')
}
"#;

/// Seeds a stream's figures from PostgreSQL once per Redis lifetime (the `seeded`
/// marker goes with a flush or an empty restart, so the next sample seeds again),
/// then returns the figures and the HyperLogLog for persisting. ARGV: stream, peak,
/// watch time, HyperLogLog.
pub(crate) const SNAPSHOT: &str = r#"
local stream, peak0, watch0, hll0 = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local uniq = k(stream, 'uniq')
if redis.call('SET', k(stream, 'seeded'), '1', 'NX') then
  if hll0 ~= '' then
    local tmp = k(stream, 'seed-tmp')
    redis.call('SET', tmp, hll0)
    redis.call('PFMERGE', uniq, tmp)
    redis.call('DEL', tmp)
  end
  if watch0 > 0 then redis.call('INCRBY', k(stream, 'watch'), watch0) end
  local peak = tonumber(redis.call('GET', k(stream, 'peak')) or '0')
  if peak0 > peak then redis.call('SET', k(stream, 'peak'), peak0) end
end
local count = redis.call('ZCOUNT', k(stream, 'live'), '(' .. now, '+inf')
return {
  count,
  tonumber(redis.call('GET', k(stream, 'peak')) or '0'),
  redis.call('PFCOUNT', uniq),
  tonumber(redis.call('GET', k(stream, 'watch')) or '0'),
  redis.call('GET', uniq) or ''
}
"#;

/// Drops expired sessions of the given streams, publishing their new counts.
/// ARGV: stream ids. Returns how many sessions were dropped.
pub(crate) const SWEEP: &str = r#"
local swept = 0
for i = 3, #ARGV do
  local stream = ARGV[i]
  local live = k(stream, 'live')
  local removed = redis.call('ZREMRANGEBYSCORE', live, '-inf', now)
  if removed > 0 then
    swept = swept + removed
    publish(stream, redis.call('ZCARD', live))
  end
end
return swept
"#;

/// Returns the script `body` after the shared prelude.
pub(crate) fn script(body: &str) -> redis::Script {
    redis::Script::new(&format!("{COMMON}{body}"))
}
