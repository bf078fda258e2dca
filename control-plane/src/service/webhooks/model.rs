//! The webhook domain model: an endpoint as its owner sees it, an attempt as listed,
//! an owner's change, a page. `db` rows convert into these; `grpc` converts them out.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    db::{webhook_attempts::AttemptRow, webhooks::WebhookRow},
    service::webhooks::{EventType, Outcome},
};

/// Why an endpoint is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisabledReason {
    /// Its owner disabled it.
    Owner,
    /// Nova disabled it after a run of failed deliveries.
    Failures,
}

impl DisabledReason {
    /// Returns the reason as stored.
    pub fn as_db(self) -> &'static str {
        match self {
            DisabledReason::Owner => "owner",
            DisabledReason::Failures => "failures",
        }
    }
}

/// A disabled endpoint's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disabled {
    /// Why.
    pub reason: DisabledReason,
    /// Since when.
    pub at: DateTime<Utc>,
}

/// A webhook endpoint, as its owner sees it (never its secret).
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// Endpoint id.
    pub id: Uuid,
    /// Owning principal.
    pub owner: String,
    /// Where deliveries go.
    pub url: String,
    /// Types delivered; empty for every type.
    pub event_types: Vec<EventType>,
    /// `None` while enabled.
    pub disabled: Option<Disabled>,
    /// Consecutive failed attempts.
    pub failures: i32,
    /// Start of the current run of failures.
    pub failing_since: Option<DateTime<Utc>>,
    /// Log position of the last event handled (delivered, given up or not subscribed).
    pub log_position: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change by the owner.
    pub updated_at: DateTime<Utc>,
}

impl From<WebhookRow> for Webhook {
    fn from(row: WebhookRow) -> Self {
        let reason = match row.disabled_reason.as_deref() {
            Some("failures") => Some(DisabledReason::Failures),
            Some(_) => Some(DisabledReason::Owner),
            None => None,
        };
        Self {
            id: row.id,
            owner: row.owner,
            url: row.url,
            event_types: row
                .event_types
                .iter()
                .filter_map(|t| EventType::parse(t))
                .collect(),
            disabled: reason.filter(|_| !row.enabled).map(|reason| Disabled {
                reason,
                at: row.disabled_at.unwrap_or(row.updated_at),
            }),
            failures: row.failures,
            failing_since: row.failing_since,
            log_position: row.log_position,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// One delivery attempt, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// Attempt id.
    pub id: Uuid,
    /// The event's log position (its idempotency id).
    pub event_id: i64,
    /// The event's type as delivered; `None` for a type a newer version wrote.
    pub event_type: Option<EventType>,
    /// Attempt number for this event at this endpoint, from 1.
    pub attempt: i32,
    /// Whether a manual redelivery.
    pub manual: bool,
    /// How it ended; `None` for an outcome a newer version wrote.
    pub outcome: Option<Outcome>,
    /// HTTP status answered, if any.
    pub status_code: Option<u16>,
    /// Time to the answer or the failure.
    pub latency: Duration,
    /// What failed.
    pub error: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

impl From<AttemptRow> for Attempt {
    fn from(row: AttemptRow) -> Self {
        Self {
            id: row.id,
            event_id: row.event_id,
            event_type: EventType::parse(&row.event_type),
            attempt: row.attempt,
            manual: row.manual,
            outcome: Outcome::parse(&row.outcome),
            status_code: row.status_code.and_then(|c| u16::try_from(c).ok()),
            latency: Duration::from_millis(u64::try_from(row.latency_ms).unwrap_or(0)),
            error: row.error,
            created_at: row.created_at,
        }
    }
}

/// What an owner changes; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct WebhookUpdate {
    /// New URL.
    pub url: Option<String>,
    /// New event types (empty: every type).
    pub event_types: Option<Vec<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// A page of a listing.
#[derive(Debug)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Token of the next page; empty on the last page.
    pub next_page_token: String,
}
