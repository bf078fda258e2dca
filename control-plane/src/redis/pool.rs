//! The pool of multiplexed connections to one Redis primary. A call checks a
//! connection out only to take a [`Shared`] handle on it and hands it straight back,
//! so every call in flight shares the few connections of the pool and Redis reads
//! them pipelined (one read, many commands) instead of one round trip per pooled
//! connection; calls never queue for a free connection. bb8-redis's manager can only
//! tell a dead connection by a PING at every check-out, which doubled the round trips
//! of every session call. This one PINGs a connection at check-out only while it may
//! be stale: after any connection of the pool saw a connection error (a Redis restart
//! kills them all at once), each is tested once at its next check-out, and a
//! connection that failed is replaced at its next check-out.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use bb8_redis::RedisConnectionManager;
use redis::{
    Cmd, ConnectionInfo, Pipeline, RedisError, RedisFuture, RedisResult, Value,
    aio::{ConnectionLike, MultiplexedConnection},
};

/// Makes and checks [`Tracked`] connections.
pub struct Manager {
    /// Connects and PINGs.
    inner: RedisConnectionManager,
    /// Moves whenever a connection of the pool fails; a connection made or tested
    /// at another generation is tested before use.
    generation: Arc<AtomicU64>,
}

impl Manager {
    /// A manager for `info`, without connecting.
    pub fn new(info: ConnectionInfo) -> RedisResult<Self> {
        Ok(Self {
            inner: RedisConnectionManager::new(info)?,
            generation: Arc::default(),
        })
    }
}

/// A multiplexed connection of the pool that remembers whether it failed.
pub struct Tracked {
    /// The connection.
    conn: MultiplexedConnection,
    /// The pool generation it was last known good at.
    generation: u64,
    /// Set by a connection error on any of its [`Shared`] handles.
    broken: Arc<AtomicBool>,
    /// The pool's generation, moved on a connection error.
    pool_generation: Arc<AtomicU64>,
}

impl bb8::ManageConnection for Manager {
    type Connection = Tracked;
    type Error = RedisError;

    async fn connect(&self) -> Result<Tracked, RedisError> {
        let generation = self.generation.load(Ordering::Acquire);
        Ok(Tracked {
            conn: self.inner.connect().await?,
            generation,
            broken: Arc::default(),
            pool_generation: self.generation.clone(),
        })
    }

    async fn is_valid(&self, conn: &mut Tracked) -> Result<(), RedisError> {
        if conn.broken.load(Ordering::Acquire) {
            // Replaced rather than tested: its calls may still be failing.
            return Err(super::unavailable("the connection failed"));
        }
        let current = self.generation.load(Ordering::Acquire);
        if conn.generation == current {
            return Ok(());
        }
        self.inner.is_valid(&mut conn.conn).await?;
        conn.generation = current;
        Ok(())
    }

    fn has_broken(&self, conn: &mut Tracked) -> bool {
        conn.broken.load(Ordering::Acquire)
    }
}

impl Tracked {
    /// Returns a handle on this connection that outlives the check-out.
    pub fn share(&self) -> Shared {
        Shared {
            conn: self.conn.clone(),
            broken: self.broken.clone(),
            pool_generation: self.pool_generation.clone(),
        }
    }
}

/// A handle on a pooled connection, used after the connection went back to the
/// pool: its calls are pipelined with every other call on that connection, and a
/// connection error marks the connection broken and the rest of the pool suspect.
#[derive(Clone)]
pub struct Shared {
    /// The connection (a clone shares its socket).
    conn: MultiplexedConnection,
    /// The pooled connection's broken flag.
    broken: Arc<AtomicBool>,
    /// The pool's generation, moved on a connection error.
    pool_generation: Arc<AtomicU64>,
}

impl Shared {
    /// Records the outcome of a call: a connection error marks this connection
    /// broken and makes every other one of the pool suspect.
    fn saw<T>(&self, result: RedisResult<T>) -> RedisResult<T> {
        if let Err(err) = &result
            && is_connection_error(err)
        {
            self.broken.store(true, Ordering::Release);
            self.pool_generation.fetch_add(1, Ordering::AcqRel);
        }
        result
    }
}

/// Tells errors of the connection (dead, refused, timed out) from answers.
fn is_connection_error(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_timeout()
        || err.is_unrecoverable_error()
}

impl ConnectionLike for Shared {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.conn.req_packed_command(cmd).await;
            self.saw(result)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self.conn.req_packed_commands(pipeline, offset, count).await;
            self.saw(result)
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}
