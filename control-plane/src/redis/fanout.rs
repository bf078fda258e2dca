//! Events between replicas over Redis pub/sub: lifecycle events are published after
//! their transaction commits; viewer counts are published by the session scripts.
//! Every replica subscribes (on a dedicated connection: pooled ones cannot
//! SUBSCRIBE) and hands what arrives to [`crate::service::live`].

use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::{
    metrics::CpMetrics,
    redis::{Keys, RedisPool},
    service::events::{Outbox, StoredEvent},
    shutdown,
};

/// What travels on the channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Wire {
    /// A stream's live viewer count changed.
    Count {
        /// Stream id.
        stream_id: String,
        /// Live viewers.
        count: i64,
        /// Peak so far.
        peak: i64,
    },
    /// A durable lifecycle event.
    Event(StoredEvent),
}

/// Tells the world what a committed transaction did: publishes its lifecycle events
/// and records its completed streams' durations.
#[derive(Clone)]
pub struct Publisher {
    /// Connections.
    pool: RedisPool,
    /// Names.
    keys: Keys,
    /// Where stream durations go.
    metrics: CpMetrics,
}

impl Publisher {
    /// Builds a publisher.
    pub fn new(pool: RedisPool, keys: Keys, metrics: CpMetrics) -> Self {
        Self {
            pool,
            keys,
            metrics,
        }
    }

    /// Publishes what a committed transaction did. Failures are logged, not returned:
    /// the durable log already holds the events and watchers can resume from it.
    pub async fn publish(&self, out: &Outbox) {
        for duration in &out.completed {
            self.metrics.completed(*duration);
        }
        let events = &out.events;
        if events.is_empty() {
            return;
        }
        let result: anyhow::Result<()> = async {
            let mut conn = self.pool.get().await?;
            let mut pipe = redis::pipe();
            for event in events {
                pipe.publish(
                    self.keys.events_channel(),
                    serde_json::to_string(&Wire::Event(event.clone()))?,
                )
                .ignore();
            }
            pipe.query_async::<()>(&mut *conn).await?;
            Ok(())
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, events = events.len(), "could not publish events; watchers will see them on resume");
        }
    }
}

/// Subscribes to both channels and forwards what arrives to `out` until shutdown,
/// reconnecting (after 1 s) whenever the connection drops.
pub async fn subscribe(url: String, keys: Keys, out: mpsc::Sender<Wire>, stop: shutdown::Signal) {
    let stopped = stop.wait();
    tokio::pin!(stopped);
    loop {
        let session = async {
            let client = redis::Client::open(super::connection_info(&url)?)?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(keys.events_channel()).await?;
            pubsub.subscribe(keys.counts_channel()).await?;
            tracing::debug!("subscribed to event channels");
            let mut messages = pubsub.into_on_message();
            while let Some(msg) = messages.next().await {
                let payload: String = match msg.get_payload() {
                    Ok(p) => p,
                    Err(_) => continue,
                };
                match serde_json::from_str::<Wire>(&payload) {
                    Ok(wire) => {
                        if out.send(wire).await.is_err() {
                            return Ok(());
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "unreadable message on an event channel")
                    }
                }
            }
            anyhow::Ok(())
        };
        tokio::select! {
            () = &mut stopped => return,
            result = session => {
                if out.is_closed() {
                    return;
                }
                if let Err(err) = result {
                    tracing::warn!(error = %err, "event subscription lost; reconnecting");
                }
            }
        }
        tokio::select! {
            () = &mut stopped => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_lua_parse() {
        let wire: Wire =
            serde_json::from_str(r#"{"kind":"count","stream_id":"s","count":3,"peak":5}"#).unwrap();
        assert_eq!(
            wire,
            Wire::Count {
                stream_id: "s".into(),
                count: 3,
                peak: 5
            }
        );
    }
}
