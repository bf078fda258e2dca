//! Events between replicas over Redis pub/sub: lifecycle events are published after
//! their transaction commits; viewer counts are published by the session scripts.
//! Every replica subscribes (on a dedicated connection: pooled ones cannot
//! SUBSCRIBE) and hands what arrives to [`crate::service::live`]. Pub/sub is only a
//! fast path for lifecycle events: they are read back from the durable log after any
//! gap, so a message lost here is never an event lost.
//!
//! On a Redis Cluster the two channels stay global, with plain PUBLISH/SUBSCRIBE:
//! every replica wants every stream's counts (one WatchEvents per edge carries them
//! all), so per-stream sharded channels (SPUBLISH/SSUBSCRIBE) would mean subscribing
//! to every stream that has viewers as they come and go. The cost: a cluster
//! forwards each PUBLISH to every node over its bus, so pub/sub traffic does not
//! spread over the masters as keys do. The subscriber speaks RESP3 to the node that
//! owns the channel's slot; when any of its node connections drops (a failover), it
//! starts over from the seeds at once (a slot map read again, the channels subscribed
//! again), retrying every second while that fails.

use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio::sync::{mpsc, watch};

use crate::{
    redis::{Keys, Redis, Target, cluster},
    shutdown,
};

/// What travels on the channels; `E` is the lifecycle event, opaque here (the
/// service layer's event type, serialized as a JSON object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Wire<E> {
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
    Event(E),
}

/// Publishes lifecycle events on the events channel in one pipeline. The caller
/// bounds the time it may take.
pub async fn publish_events<E: Serialize>(
    redis: &Redis,
    keys: &Keys,
    events: &[E],
) -> anyhow::Result<()> {
    let mut conn = redis.get().await?;
    let mut pipe = redis::pipe();
    for event in events {
        pipe.publish(
            keys.events_channel(),
            serde_json::to_string(&Wire::Event(event))?,
        )
        .ignore();
    }
    pipe.query_async::<()>(&mut conn).await?;
    Ok(())
}

/// Longest wait for a subscription to be set up.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where [`subscribe`] hands what arrives.
pub struct Subscriber<E> {
    /// Lifecycle events (a hint: the durable log is the truth).
    pub events: mpsc::Sender<E>,
    /// Viewer-count changes.
    pub counts: mpsc::Sender<Wire<E>>,
    /// `true` while subscribed: a change to `true` means messages may have been
    /// missed while the subscription was down.
    pub connected: watch::Sender<bool>,
}

/// How a subscription ended, short of an error.
enum Ended {
    /// `out` is gone, or Redis closed the subscription.
    Closed,
    /// A cluster node connection dropped (a node died or restarted) while the
    /// subscription had been up for a while: subscribe again at once, since the node
    /// holding it may well be alive; if it is not, the next attempt fails and the
    /// usual retries follow.
    NodeDropped,
}

/// Least time a cluster subscription must have been up for a dropped node
/// connection to be retried at once (a flapping node waits like any failure).
const STEADY: Duration = Duration::from_secs(1);

/// Subscribes to both channels and forwards what arrives to `out` until shutdown,
/// reconnecting (after 1 s) whenever the connection drops, and saying in
/// `out.connected` whether it is subscribed.
pub async fn subscribe<E: DeserializeOwned + Send + 'static>(
    target: Target,
    keys: Keys,
    out: Subscriber<E>,
    stop: shutdown::Signal,
) {
    let stopped = stop.wait();
    tokio::pin!(stopped);
    // Failed attempts in a row: only the first of an outage is logged as a warning.
    let mut failures = 0u32;
    loop {
        let session = async {
            match &target {
                Target::Single(info) => single_session(info, &keys, &out, &mut failures).await,
                Target::Cluster(seeds) => cluster_session(seeds, &keys, &out, &mut failures).await,
            }
        };
        tokio::select! {
            () = &mut stopped => return,
            result = session => {
                out.connected.send_replace(false);
                if out.events.is_closed() || out.counts.is_closed() {
                    return;
                }
                match result {
                    Ok(Ended::NodeDropped) => {
                        tracing::info!("a Redis Cluster node connection dropped; subscribing again");
                        continue;
                    }
                    Err(err) if failures == 0 => tracing::warn!(error = %err, "event subscription lost; reconnecting every second"),
                    Err(err) => tracing::debug!(error = %err, failures, "event subscription still down"),
                    Ok(Ended::Closed) => tracing::warn!("event subscription closed by Redis; reconnecting"),
                }
                failures = failures.saturating_add(1);
            }
        }
        tokio::select! {
            () = &mut stopped => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// One subscription to a single primary, until its connection drops.
async fn single_session<E: DeserializeOwned>(
    info: &redis::ConnectionInfo,
    keys: &Keys,
    out: &Subscriber<E>,
    failures: &mut u32,
) -> anyhow::Result<Ended> {
    let client = redis::Client::open(info.clone())?;
    let subscribed = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(keys.events_channel()).await?;
        pubsub.subscribe(keys.counts_channel()).await?;
        anyhow::Ok(pubsub)
    };
    let pubsub = tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscribed)
        .await
        .map_err(|_| anyhow::anyhow!("subscribing timed out"))??;
    *failures = 0;
    tracing::debug!("subscribed to event channels");
    out.connected.send_replace(true);
    let mut messages = pubsub.into_on_message();
    while let Some(msg) = messages.next().await {
        if !forward(&msg, out).await {
            break;
        }
    }
    Ok(Ended::Closed)
}

/// One subscription to a cluster, until any of its node connections drops.
async fn cluster_session<E: DeserializeOwned>(
    seeds: &[redis::ConnectionInfo],
    keys: &Keys,
    out: &Subscriber<E>,
    failures: &mut u32,
) -> anyhow::Result<Ended> {
    let (push, mut pushes) = mpsc::unbounded_channel();
    let client = cluster::client(seeds, Some(push))?;
    let subscribed = async {
        let mut conn = client.get_async_connection().await?;
        conn.subscribe(&[keys.events_channel(), keys.counts_channel()])
            .await?;
        anyhow::Ok(conn)
    };
    // Kept until the session ends: dropping it ends the subscription.
    let _conn = tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscribed)
        .await
        .map_err(|_| anyhow::anyhow!("subscribing timed out"))??;
    *failures = 0;
    tracing::debug!("subscribed to event channels on the cluster");
    out.connected.send_replace(true);
    let since = tokio::time::Instant::now();
    while let Some(push) = pushes.recv().await {
        match push.kind {
            redis::PushKind::Disconnection if since.elapsed() >= STEADY => {
                return Ok(Ended::NodeDropped);
            }
            redis::PushKind::Disconnection => {
                anyhow::bail!("a cluster node connection dropped")
            }
            redis::PushKind::Message => {
                if let Some(msg) = redis::Msg::from_push_info(push)
                    && !forward(&msg, out).await
                {
                    break;
                }
            }
            _ => {}
        }
    }
    Ok(Ended::Closed)
}

/// Hands one message to `out`; returns false once `out` is gone.
async fn forward<E: DeserializeOwned>(msg: &redis::Msg, out: &Subscriber<E>) -> bool {
    let Ok(payload) = msg.get_payload::<String>() else {
        return true;
    };
    match serde_json::from_str::<Wire<E>>(&payload) {
        Ok(Wire::Event(event)) => out.events.send(event).await.is_ok(),
        Ok(count) => out.counts.send(count).await.is_ok(),
        Err(err) => {
            tracing::warn!(error = %err, "unreadable message on an event channel");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_lua_parse() {
        let wire: Wire<serde_json::Value> =
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
