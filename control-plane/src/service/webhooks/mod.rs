//! Outgoing webhooks: owners register endpoints ([`Webhooks`]: create, read, list,
//! update, delete, rotate the secret, list attempts, ask for a redelivery; each change
//! audited in its transaction), and the [`dispatcher`] delivers each endpoint its
//! owner's events from the durable log after the endpoint's own position, signed,
//! retried with backoff, in log order.
//!
//! `model` holds the domain types, `paging` the listings' pages, `event_type` the
//! documented types, `payload` builds the bodies, `signature` signs them, `target`
//! keeps deliveries off non-public addresses, `delivery` makes one attempt, `backoff`
//! spaces the retries and `rules` says when to give up and disable.

pub mod backoff;
pub mod delivery;
pub mod dispatcher;
pub mod event_type;
pub mod model;
pub mod paging;
pub mod payload;
pub mod rules;
pub mod signature;
pub mod target;

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

pub use delivery::Outcome;
pub use event_type::EventType;
pub use model::{Attempt, Disabled, DisabledReason, Page, Webhook, WebhookUpdate};
pub use signature::SigningSecret;
pub use target::AddressPolicy;

use crate::{
    auth::{Actor, Principal},
    db::{
        DbPool, events, webhook_attempts, webhook_redeliveries,
        webhooks::{self, NewWebhook, WebhookChanges},
    },
    error::{Error, Result},
    service::audit::{self, AuditAction, Change},
};
use paging::{decode_token, fingerprint, page, page_limit};

/// Most endpoints one owner may register.
pub const MAX_WEBHOOKS_PER_OWNER: i64 = 20;
/// Prefix of endpoint resource names.
pub const NAME_PREFIX: &str = "webhooks/";

/// Endpoint rules over PostgreSQL.
#[derive(Clone)]
pub struct Webhooks {
    /// Connection pool.
    pool: DbPool,
    /// Which addresses endpoints may have.
    policy: Arc<AddressPolicy>,
    /// How long a replaced secret keeps signing.
    secret_grace: Duration,
}

impl Webhooks {
    /// Builds the service.
    pub fn new(pool: DbPool, policy: Arc<AddressPolicy>, secret_grace: Duration) -> Self {
        Self {
            pool,
            policy,
            secret_grace,
        }
    }

    /// Registers an endpoint for the actor; deliveries start with the next event
    /// logged. Returns it with its signing secret, shown only now.
    pub async fn create(
        &self,
        actor: &Actor,
        url: &str,
        event_types: &[String],
    ) -> Result<(Webhook, SigningSecret)> {
        let url = self.validate_url("webhook.url", url).await?;
        let event_types = validate_event_types("webhook.event_types", event_types)?;
        let secret = SigningSecret::generate();
        let owner = actor.principal.as_str();
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                // Under the owner's lock: the limit holds however many arrive at once.
                webhooks::lock_owner(conn, owner).await?;
                if webhooks::count_by_owner(conn, owner).await? >= MAX_WEBHOOKS_PER_OWNER {
                    return Err(Error::FailedPrecondition(format!(
                        "at most {MAX_WEBHOOKS_PER_OWNER} webhook endpoints per owner; delete one first"
                    )));
                }
                // Deliveries start after the newest event: the endpoint gets what is
                // logged from now on (appends commit in position order).
                let log_position = events::newest_overall(conn).await?;
                let row = webhooks::insert(
                    conn,
                    &NewWebhook {
                        id: Uuid::now_v7(),
                        owner,
                        url: &url,
                        event_types: &event_types,
                        secret: secret.expose(),
                        log_position,
                    },
                )
                .await?;
                let fields = &["url", "event_types", "secret"];
                audit_webhook(conn, actor, row.id, AuditAction::WebhookCreated, fields).await?;
                Ok(row)
            })
            .await?;
        tracing::info!(webhook.id = %row.id, webhook.owner = owner, "webhook endpoint registered");
        Ok((row.into(), secret))
    }

    /// Returns endpoint `id` of `owner`; another owner's is NOT_FOUND.
    pub async fn get(&self, owner: &Principal, id: Uuid) -> Result<Webhook> {
        let mut conn = self.pool.get().await?;
        webhooks::find(&mut conn, owner.as_str(), id)
            .await?
            .map(Webhook::from)
            .ok_or_else(|| not_found(id))
    }

    /// Returns a page of `owner`'s endpoints, oldest first.
    pub async fn list(
        &self,
        owner: &Principal,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Webhook>> {
        let limit = page_limit(page_size)?;
        let fingerprint = fingerprint(&[b"webhooks", owner.as_str().as_bytes()]);
        let after = decode_token(page_token, fingerprint, "ListWebhooks")?;
        let mut conn = self.pool.get().await?;
        let rows = webhooks::list_by_owner(&mut conn, owner.as_str(), after, limit + 1).await?;
        Ok(page(rows, limit, fingerprint, |row| row.id))
    }

    /// Changes an endpoint of the actor. A new URL or re-enabling ends the run of
    /// failures and retries at once; disabling stops deliveries (the position stays,
    /// so enabling again resumes where they stopped).
    pub async fn update(&self, actor: &Actor, id: Uuid, update: &WebhookUpdate) -> Result<Webhook> {
        let url = match &update.url {
            Some(url) => Some(self.validate_url("webhook.url", url).await?),
            None => None,
        };
        let event_types = update
            .event_types
            .as_deref()
            .map(|types| validate_event_types("webhook.event_types", types))
            .transpose()?;
        let fields: Vec<&str> = [
            ("url", url.is_some()),
            ("event_types", event_types.is_some()),
            ("enabled", update.enabled.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, named)| named.then_some(name))
        .collect();
        if fields.is_empty() {
            return Err(Error::invalid("update_mask", "names no field to change"));
        }
        let owner = actor.principal.as_str();
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                let current = webhooks::find_for_update(conn, owner, id)
                    .await?
                    .ok_or_else(|| not_found(id))?;
                let now = Utc::now();
                let mut changes = WebhookChanges {
                    url: url.as_deref(),
                    event_types: event_types.as_deref(),
                    updated_at: Some(now),
                    ..WebhookChanges::default()
                };
                let fresh_start =
                    url.is_some() || (update.enabled == Some(true) && !current.enabled);
                if fresh_start {
                    changes.failures = Some(0);
                    changes.failing_since = Some(None);
                    changes.next_attempt_at = Some(now);
                }
                match update.enabled {
                    Some(true) if !current.enabled => {
                        changes.enabled = Some(true);
                        changes.disabled_reason = Some(None);
                        changes.disabled_at = Some(None);
                    }
                    Some(false) if current.enabled => {
                        changes.enabled = Some(false);
                        changes.disabled_reason = Some(Some(DisabledReason::Owner.as_db()));
                        changes.disabled_at = Some(Some(now));
                    }
                    _ => {}
                }
                let row = webhooks::update(conn, id, &changes).await?;
                audit_webhook(conn, actor, id, AuditAction::WebhookUpdated, &fields).await?;
                Ok::<_, Error>(row)
            })
            .await?;
        tracing::info!(webhook.id = %id, webhook.enabled = row.enabled, "webhook endpoint updated");
        Ok(row.into())
    }

    /// Deletes an endpoint of the actor, with its attempts.
    pub async fn delete(&self, actor: &Actor, id: Uuid) -> Result<()> {
        let owner = actor.principal.as_str();
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            if !webhooks::delete(conn, owner, id).await? {
                return Err(not_found(id));
            }
            audit_webhook(conn, actor, id, AuditAction::WebhookDeleted, &["webhook"]).await
        })
        .await?;
        tracing::info!(webhook.id = %id, webhook.owner = owner, "webhook endpoint deleted");
        Ok(())
    }

    /// Replaces an endpoint's secret; the old one also signs deliveries for the grace
    /// period, so receivers can switch without losing one. Returns the new secret,
    /// shown only now.
    pub async fn rotate_secret(&self, actor: &Actor, id: Uuid) -> Result<(Webhook, SigningSecret)> {
        let secret = SigningSecret::generate();
        let grace = chrono::Duration::from_std(self.secret_grace).unwrap_or_default();
        let owner = actor.principal.as_str();
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                webhooks::find_for_update(conn, owner, id)
                    .await?
                    .ok_or_else(|| not_found(id))?;
                let row =
                    webhooks::replace_secret(conn, id, secret.expose(), Utc::now() + grace).await?;
                let fields = &["secret"];
                audit_webhook(conn, actor, id, AuditAction::WebhookSecretRotated, fields).await?;
                Ok::<_, Error>(row)
            })
            .await?;
        tracing::info!(webhook.id = %id, "webhook secret rotated");
        Ok((row.into(), secret))
    }

    /// Returns a page of an endpoint's delivery attempts, newest first, optionally of
    /// one event.
    pub async fn attempts(
        &self,
        owner: &Principal,
        id: Uuid,
        event_id: Option<i64>,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Attempt>> {
        let limit = page_limit(page_size)?;
        let event = event_id.unwrap_or(-1).to_be_bytes();
        let fingerprint = fingerprint(&[b"attempts", id.as_bytes(), &event]);
        let before = decode_token(page_token, fingerprint, "ListWebhookAttempts")?;
        let mut conn = self.pool.get().await?;
        webhooks::find(&mut conn, owner.as_str(), id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let rows = webhook_attempts::list(&mut conn, id, event_id, before, limit + 1).await?;
        Ok(page(rows, limit, fingerprint, |row| row.id))
    }

    /// Queues a redelivery of the owner's event `event_id` to an enabled endpoint
    /// (whatever its types; once, outside the order of regular deliveries).
    pub async fn redeliver(&self, actor: &Actor, id: Uuid, event_id: i64) -> Result<()> {
        let owner = actor.principal.as_str();
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            let endpoint = webhooks::find_for_update(conn, owner, id)
                .await?
                .ok_or_else(|| not_found(id))?;
            if !endpoint.enabled {
                return Err(Error::FailedPrecondition(
                    "the endpoint is disabled; enable it before asking for a redelivery".into(),
                ));
            }
            let event = events::of_owner(conn, owner, event_id).await?;
            if event.as_ref().and_then(payload::build).is_none() {
                return Err(Error::NotFound(format!("event {event_id}")));
            }
            webhook_redeliveries::queue(conn, id, event_id).await?;
            let fields = &["event_id"];
            audit_webhook(
                conn,
                actor,
                id,
                AuditAction::WebhookRedeliveryRequested,
                fields,
            )
            .await
        })
        .await?;
        tracing::info!(webhook.id = %id, event.id = event_id, "webhook redelivery queued");
        Ok(())
    }

    /// Checks a URL an owner gives: its shape, and where its host points now.
    async fn validate_url(&self, field: &'static str, raw: &str) -> Result<String> {
        let url = target::parse_url(raw).map_err(|refusal| Error::invalid(field, refusal.0))?;
        self.policy
            .check_url(&url)
            .await
            .map_err(|refusal| Error::invalid(field, format!("not allowed: {refusal}")))?;
        Ok(url.to_string())
    }
}

/// Returns the resource name of endpoint `id`.
pub fn webhook_name(id: Uuid) -> String {
    format!("{NAME_PREFIX}{id}")
}

fn not_found(id: Uuid) -> Error {
    Error::NotFound(webhook_name(id))
}

/// Checks event type names; returns them without duplicates, in the given order.
fn validate_event_types(field: &'static str, raw: &[String]) -> Result<Vec<String>> {
    let mut types: Vec<String> = Vec::with_capacity(raw.len());
    for name in raw {
        if EventType::parse(name).is_none() {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            return Err(Error::invalid(
                field,
                format!("unknown event type `{name}`; known: {}", known.join(", ")),
            ));
        }
        if !types.contains(name) {
            types.push(name.clone());
        }
    }
    Ok(types)
}

/// Writes the audit record of a change to endpoint `id` (inside its transaction).
async fn audit_webhook(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    action: AuditAction,
    fields: &[&str],
) -> Result<()> {
    let resource = webhook_name(id);
    let change = Change {
        action,
        stream_id: None,
        resource: &resource,
        owner: actor.principal.as_str(),
        fields,
    };
    audit::record(conn, actor, &change).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_checked_and_deduplicated() {
        let raw = ["stream.active", "stream.completed", "stream.active"].map(String::from);
        assert_eq!(
            validate_event_types("f", &raw).unwrap(),
            vec!["stream.active".to_owned(), "stream.completed".to_owned()]
        );
        let err = validate_event_types("f", &["stream.started".into()]).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown event type `stream.started`"),
            "{err}"
        );
        assert!(validate_event_types("f", &[]).unwrap().is_empty());
    }
}
