//! The dispatcher: every replica runs one. It leases endpoints that have work (an
//! event of their owner after their log position once their backoff is over, or a
//! manual redelivery) with `FOR UPDATE SKIP LOCKED`, so no two replicas deliver to
//! the same endpoint at once, and serves each leased endpoint in its own task (at
//! most `NOVA_WEBHOOK_CONCURRENCY` at a time, each attempt bounded by the timeout, so
//! a slow receiver holds up only its own endpoint).
//!
//! An endpoint gets its events one at a time in log order: the position moves past an
//! event only once it is delivered (a 2xx), given up (failing past the maximum age)
//! or not subscribed to, in the same transaction as the attempt's record. Delivery is
//! at least once: a replica that dies after a receiver answered but before its commit
//! leaves the event to be sent again when the lease runs out. A failure stops the
//! endpoint until its backoff is over; a run of failures long enough in count and
//! time disables it, logs `webhook_disabled` for the owner's other endpoints and
//! writes an audit record, in one transaction.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use diesel_async::AsyncConnection;
use tokio::{sync::broadcast::error::RecvError, task::JoinSet, time::Instant};
use uuid::Uuid;

use crate::{
    db::{
        DbPool, events,
        webhook_attempts::{self, AttemptRow},
        webhook_leases, webhook_redeliveries,
        webhooks::WebhookRow,
    },
    error::{Error, Result},
    metrics::CpMetrics,
    service::{
        audit::{self, AuditAction, Change},
        events::Notice,
        live::{Hub, LiveEvent},
        webhooks::{
            AddressPolicy, EventType, Outcome,
            delivery::{Report, Sender},
            payload::{self, Payload},
            rules::Rules,
            webhook_name,
        },
    },
    shutdown,
};

/// Events read from the log per query.
const PAGE: i64 = 100;
/// Most events one lease delivers before the endpoint goes back in line.
const EVENTS_PER_LEASE: usize = 200;
/// How often the backlog gauges are read.
const BACKLOG_EVERY: Duration = Duration::from_secs(10);
/// How often old attempts are deleted, and how many at most each time.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Attempts deleted per statement while pruning.
const PRUNE_BATCH: i64 = 1000;

/// This replica's dispatcher; cheap to clone (one clone per endpoint served).
#[derive(Clone)]
pub struct Dispatcher {
    /// The log and the endpoints.
    pool: DbPool,
    /// Sends the requests.
    sender: Sender,
    /// Timing.
    rules: Rules,
    /// Instruments.
    metrics: CpMetrics,
    /// This replica's lease holder id.
    holder: Uuid,
}

impl Dispatcher {
    /// Builds the dispatcher and its HTTP client.
    pub fn new(
        pool: DbPool,
        policy: Arc<AddressPolicy>,
        rules: Rules,
        metrics: CpMetrics,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            sender: Sender::new(policy, rules.timeout)?,
            pool,
            rules,
            metrics,
            holder: Uuid::now_v7(),
        })
    }

    /// Delivers until shutdown: looks for endpoints with work every poll interval and
    /// whenever the hub sees a lifecycle event, and serves what it leases. On
    /// shutdown, lets the endpoints being served finish their current attempt.
    pub async fn run(self, hub: Hub, stop: shutdown::Signal) {
        let mut wake = hub.subscribe();
        let mut woken = true;
        let mut tick = shutdown::steady(self.rules.poll_interval);
        let mut serving: JoinSet<()> = JoinSet::new();
        let mut backlog_at = Instant::now();
        let mut prune_at = Instant::now();
        let stopped = stop.clone().wait();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                () = &mut stopped => break,
                _ = tick.tick() => {}
                Some(_) = serving.join_next(), if !serving.is_empty() => {}
                received = wake.recv(), if woken => match received {
                    Ok(LiveEvent::Lifecycle(_)) | Err(RecvError::Lagged(_)) => {}
                    Ok(LiveEvent::Count { .. }) => continue,
                    Err(RecvError::Closed) => woken = false,
                },
            }
            let free = self.rules.concurrency.saturating_sub(serving.len());
            if free > 0 {
                match self.claim(free).await {
                    Ok(ids) => {
                        for id in ids {
                            serving.spawn(self.clone().serve(id, stop.clone()));
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot look for webhook work; retrying")
                    }
                }
            }
            if backlog_at.elapsed() >= BACKLOG_EVERY {
                backlog_at = Instant::now();
                self.read_backlog().await;
            }
            if prune_at.elapsed() >= PRUNE_EVERY {
                prune_at = Instant::now();
                self.prune().await;
            }
        }
        while serving.join_next().await.is_some() {}
    }

    async fn claim(&self, limit: usize) -> Result<Vec<Uuid>> {
        let mut conn = self.pool.get().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(webhook_leases::claim(&mut conn, self.holder, self.rules.lease(), limit).await?)
    }

    /// Serves one leased endpoint until it has nothing due, fails, loses its lease,
    /// has had its share, or shutdown; then gives the lease back.
    async fn serve(self, id: Uuid, stop: shutdown::Signal) {
        for _ in 0..EVENTS_PER_LEASE {
            if stop.fired() {
                break;
            }
            match self.step(id).await {
                Ok(Step::Again) => {}
                Ok(Step::Done) => break,
                Err(err) => {
                    tracing::warn!(webhook.id = %id, error = %err, "webhook delivery step failed; retrying later");
                    break;
                }
            }
        }
        let released = async {
            let mut conn = self.pool.get().await?;
            webhook_leases::release(&mut conn, id, self.holder).await?;
            Ok::<_, Error>(())
        };
        if let Err(err) = released.await {
            tracing::warn!(webhook.id = %id, error = %err, "cannot release a webhook lease; it expires by itself");
        }
    }

    /// Makes one attempt (a redelivery first), or finds there is nothing to do.
    async fn step(&self, id: Uuid) -> Result<Step> {
        let mut conn = self.pool.get().await?;
        let Some(endpoint) =
            webhook_leases::held(&mut conn, id, self.holder, self.rules.lease()).await?
        else {
            return Ok(Step::Done);
        };
        if let Some(event_id) = webhook_redeliveries::next(&mut conn, id).await? {
            let event = events::of_owner(&mut conn, &endpoint.owner, event_id).await?;
            drop(conn);
            if let Some(payload) = event.as_ref().and_then(payload::build) {
                self.redeliver(&endpoint, &payload).await?;
            } else {
                let mut conn = self.pool.get().await?;
                webhook_redeliveries::done(&mut conn, id, event_id).await?;
            }
            return Ok(Step::Again);
        }
        if endpoint.next_attempt_at > Utc::now() {
            return Ok(Step::Done);
        }
        let rows =
            events::of_owner_after(&mut conn, &endpoint.owner, endpoint.log_position, PAGE).await?;
        let Some(last) = rows.last().map(|row| row.id) else {
            return Ok(Step::Done);
        };
        let subscribed = |t: EventType| {
            endpoint.event_types.is_empty() || endpoint.event_types.iter().any(|s| s == t.as_str())
        };
        let next = rows.iter().find_map(|row| {
            payload::build(row)
                .filter(|p| subscribed(p.event_type))
                .map(|p| (row, p))
        });
        let Some((row, payload)) = next else {
            // Nothing here for this endpoint: move past the page.
            webhook_leases::skip_to(&mut conn, id, self.holder, last).await?;
            return Ok(Step::Again);
        };
        if row.id - 1 > endpoint.log_position {
            webhook_leases::skip_to(&mut conn, id, self.holder, row.id - 1).await?;
        }
        drop(conn);
        let age = (Utc::now() - row.created_at).to_std().unwrap_or_default();
        let delivered = self.deliver(&endpoint, &payload, age).await?;
        Ok(if delivered { Step::Again } else { Step::Done })
    }

    /// Sends the next event of the endpoint and records the outcome; returns whether
    /// it was delivered.
    async fn deliver(
        &self,
        endpoint: &WebhookRow,
        payload: &Payload,
        age: Duration,
    ) -> Result<bool> {
        let report = self.send(endpoint, payload).await;
        let attempt = attempt_row(endpoint.id, payload, endpoint.attempts + 1, false, &report);
        let (id, holder, rules) = (endpoint.id, self.holder, self.rules);
        let give_up = (age >= rules.max_age).then_some(payload.event_id);
        let retry_in = rules
            .backoff
            .delay(endpoint.failures + 1, rand::random::<f64>());
        let mut conn = self.pool.get().await?;
        let disabled = conn
            .transaction(async |conn| {
                webhook_attempts::insert(conn, &attempt).await?;
                if report.outcome == Outcome::Delivered {
                    webhook_leases::delivered(conn, id, holder, payload.event_id).await?;
                    return Ok::<_, Error>(None);
                }
                let Some(after) =
                    webhook_leases::failed(conn, id, holder, give_up, retry_in).await?
                else {
                    return Ok(None);
                };
                let failing_for = after
                    .failing_since
                    .and_then(|since| (Utc::now() - since).to_std().ok())
                    .unwrap_or_default();
                if after.failures < rules.disable_failures || failing_for < rules.disable_after {
                    return Ok(None);
                }
                if !webhook_leases::disable_failing(conn, id).await? {
                    return Ok(None);
                }
                let notice = Notice::WebhookDisabled {
                    webhook_id: id,
                    failures: after.failures,
                };
                notice.log_for_account(conn, &after.owner).await?;
                let resource = webhook_name(id);
                let change = Change {
                    action: AuditAction::WebhookDisabled,
                    stream_id: None,
                    resource: &resource,
                    owner: &after.owner,
                    fields: &["enabled"],
                };
                audit::record_system(conn, &change).await?;
                Ok(Some(after.failures))
            })
            .await?;
        if report.outcome == Outcome::Delivered {
            return Ok(true);
        }
        if give_up.is_some() {
            self.metrics.webhook_abandoned();
            tracing::warn!(
                webhook.id = %id, event.id = payload.event_id, event.age_s = age.as_secs(),
                "webhook event given up: still failing past NOVA_WEBHOOK_MAX_AGE"
            );
        }
        if let Some(failures) = disabled {
            self.metrics.webhook_disabled();
            tracing::warn!(
                webhook.id = %id, webhook.owner = %endpoint.owner, failures,
                "webhook endpoint disabled after a run of failed deliveries"
            );
        }
        Ok(false)
    }

    /// Sends a manual redelivery once and records it; it changes neither the
    /// position nor the run of failures.
    async fn redeliver(&self, endpoint: &WebhookRow, payload: &Payload) -> Result<()> {
        let report = self.send(endpoint, payload).await;
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            let earlier =
                webhook_attempts::count_for_event(conn, endpoint.id, payload.event_id).await?;
            let number = i32::try_from(earlier + 1).unwrap_or(i32::MAX);
            let attempt = attempt_row(endpoint.id, payload, number, true, &report);
            webhook_attempts::insert(conn, &attempt).await?;
            webhook_redeliveries::done(conn, endpoint.id, payload.event_id).await?;
            Ok::<_, Error>(())
        })
        .await
    }

    /// Makes one attempt with the endpoint's current secrets and counts it.
    async fn send(&self, endpoint: &WebhookRow, payload: &Payload) -> Report {
        let mut secrets = vec![endpoint.secret.as_str()];
        if let (Some(previous), Some(until)) = (
            &endpoint.previous_secret,
            endpoint.previous_secret_expires_at,
        ) && until > Utc::now()
        {
            secrets.push(previous);
        }
        let report = self.sender.send(&endpoint.url, payload, &secrets).await;
        self.metrics
            .webhook_attempt(report.outcome.as_str(), report.latency);
        tracing::debug!(
            webhook.id = %endpoint.id, event.id = payload.event_id,
            event.r#type = payload.event_type.as_str(), outcome = report.outcome.as_str(),
            status = report.status, latency_ms = report.latency.as_millis() as u64,
            "webhook attempt"
        );
        report
    }

    async fn read_backlog(&self) {
        let read = async {
            let mut conn = self.pool.get().await?;
            Ok::<_, Error>(webhook_leases::backlog(&mut conn).await?)
        };
        match read.await {
            Ok(backlog) => self.metrics.webhook_backlog(
                backlog.lag_seconds,
                u64::try_from(backlog.failing).unwrap_or(0),
            ),
            Err(err) => tracing::debug!(error = %err, "cannot read the webhook backlog"),
        }
    }

    /// Deletes attempts older than the retention, a batch at a time.
    async fn prune(&self) {
        let retention =
            chrono::Duration::from_std(self.rules.attempt_retention).unwrap_or_default();
        let before = Utc::now() - retention;
        let pruned = async {
            let mut total = 0;
            loop {
                let mut conn = self.pool.get().await?;
                let n = webhook_attempts::prune(&mut conn, before, PRUNE_BATCH).await?;
                total += n;
                if i64::try_from(n).unwrap_or(0) < PRUNE_BATCH {
                    return Ok::<_, Error>(total);
                }
            }
        };
        match pruned.await {
            Ok(0) => {}
            Ok(n) => tracing::info!(attempts = n, "old webhook attempts deleted"),
            Err(err) => tracing::warn!(error = %err, "cannot delete old webhook attempts"),
        }
    }
}

/// What to do after a step.
enum Step {
    /// Go on with the next one.
    Again,
    /// Nothing more to do for now.
    Done,
}

/// The record of an attempt.
fn attempt_row(
    webhook_id: Uuid,
    payload: &Payload,
    attempt: i32,
    manual: bool,
    report: &Report,
) -> AttemptRow {
    AttemptRow {
        id: Uuid::now_v7(),
        webhook_id,
        event_id: payload.event_id,
        event_type: payload.event_type.as_str().to_owned(),
        attempt,
        manual,
        outcome: report.outcome.as_str().to_owned(),
        status_code: report.status.map(i32::from),
        latency_ms: i32::try_from(report.latency.as_millis()).unwrap_or(i32::MAX),
        error: report.error.clone(),
        created_at: Utc::now(),
    }
}
