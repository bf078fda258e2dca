//! `/api/v1/webhooks…`: the caller's webhook endpoints over WebhookService. Every
//! call needs the owner's bearer JWT; answers are never stored by shared caches (a
//! creation or rotation carries the signing secret, shown only then).

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use nova_proto::v1::{
    CreateWebhookRequest, DeleteWebhookRequest, GetWebhookRequest, ListWebhookAttemptsRequest,
    ListWebhooksRequest, RedeliverWebhookEventRequest, RotateWebhookSecretRequest,
    UpdateWebhookRequest, Webhook, WebhookAttempt, WebhookAttemptOutcome, WebhookDisabledReason,
};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    auth::Owner,
    error::ApiError,
    extract::{Body, Params},
    json,
    ratelimit::{Admitted, ClientIp, ReadAdmitted},
    routes::streams::present,
    upstream::{Upstream, as_principal},
};

/// Body of `POST /webhooks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// Where deliveries go.
    url: String,
    /// Event types; absent or empty means every type.
    #[serde(default, deserialize_with = "present")]
    events: Option<Vec<String>>,
}

/// Body of `PATCH /webhooks/{id}`: the fields to change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    /// New URL.
    #[serde(default, deserialize_with = "present")]
    url: Option<String>,
    /// New event types (empty: every type).
    #[serde(default, deserialize_with = "present")]
    events: Option<Vec<String>>,
    /// Enable or disable.
    #[serde(default, deserialize_with = "present")]
    enabled: Option<bool>,
}

/// Body of `POST /webhooks/{id}/redeliver`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedeliverBody {
    /// The event's id (its `id` in a delivery).
    event_id: String,
}

/// Query of the listings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page size, 1–1000 (default 50).
    page_size: Option<i32>,
    /// Token of the next page.
    page_token: Option<String>,
}

/// Query of `GET /webhooks/{id}/attempts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptsQuery {
    /// Only attempts at this event.
    event_id: Option<String>,
    /// Page size, 1–1000 (default 50).
    page_size: Option<i32>,
    /// Token of the next page.
    page_token: Option<String>,
}

/// Returns `webhooks/<id>` for a bare id in a path.
fn webhook_name(id: &str) -> Result<String, ApiError> {
    Uuid::try_parse(id)
        .map(|id| format!("webhooks/{id}"))
        .map_err(|_| ApiError::invalid("id", "must be a webhook id (a UUID)"))
}

/// Returns an endpoint as JSON (never its secret).
fn webhook_json(w: &Webhook) -> Value {
    let reason = match WebhookDisabledReason::try_from(w.disabled_reason)
        .unwrap_or(WebhookDisabledReason::Unspecified)
    {
        WebhookDisabledReason::Unspecified => Value::Null,
        WebhookDisabledReason::Owner => json!("owner"),
        WebhookDisabledReason::Failures => json!("failures"),
    };
    json!({
        "id": w.webhook_id,
        "name": w.name,
        "url": w.url,
        "events": w.event_types,
        "enabled": w.enabled,
        "disabled_reason": reason,
        "disabled_at": json::time(w.disable_time.as_ref()),
        "consecutive_failures": w.consecutive_failures,
        "failing_since": json::time(w.failing_since.as_ref()),
        "last_event_id": w.delivered_cursor,
        "created_at": json::time(w.create_time.as_ref()),
        "updated_at": json::time(w.update_time.as_ref()),
    })
}

/// Returns an attempt as JSON.
fn attempt_json(a: &WebhookAttempt) -> Value {
    let outcome = match WebhookAttemptOutcome::try_from(a.outcome)
        .unwrap_or(WebhookAttemptOutcome::Unspecified)
    {
        WebhookAttemptOutcome::Unspecified => "unspecified",
        WebhookAttemptOutcome::Delivered => "delivered",
        WebhookAttemptOutcome::HttpError => "http_error",
        WebhookAttemptOutcome::Timeout => "timeout",
        WebhookAttemptOutcome::NetworkError => "network_error",
        WebhookAttemptOutcome::Refused => "refused",
    };
    let latency_ms = a.latency.as_ref().map_or(0, |d| {
        d.seconds
            .saturating_mul(1000)
            .saturating_add(i64::from(d.nanos / 1_000_000))
    });
    json!({
        "id": a.attempt_id,
        "event_id": a.event_id,
        "event_type": a.event_type,
        "attempt": a.attempt,
        "manual": a.manual,
        "outcome": outcome,
        "status_code": Some(a.status_code).filter(|c| *c != 0),
        "latency_ms": latency_ms,
        "error": Some(&a.error).filter(|e| !e.is_empty()),
        "created_at": json::time(a.attempt_time.as_ref()),
    })
}

/// `POST /api/v1/webhooks`: registers an endpoint; its secret is shown only now.
pub async fn create(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: Admitted,
    ClientIp(client): ClientIp,
    Body(body): Body<CreateBody>,
) -> Result<Response, ApiError> {
    let request = CreateWebhookRequest {
        webhook: Some(Webhook {
            url: body.url,
            event_types: body.events.unwrap_or_default(),
            ..Default::default()
        }),
    };
    let created = upstream
        .webhooks
        .clone()
        .create_webhook(as_principal(request, &owner, client)?)
        .await?
        .into_inner();
    let webhook = created.webhook.unwrap_or_default();
    let location = format!("/api/v1/webhooks/{}", webhook.webhook_id);
    let body = json!({ "webhook": webhook_json(&webhook), "secret": created.secret });
    let mut response = json::private(StatusCode::CREATED, body);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// `GET /api/v1/webhooks`: the caller's endpoints, oldest first.
pub async fn list(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: ReadAdmitted,
    ClientIp(client): ClientIp,
    Params(query): Params<PageQuery>,
) -> Result<Response, ApiError> {
    let request = ListWebhooksRequest {
        page_size: query.page_size.unwrap_or(0),
        page_token: query.page_token.unwrap_or_default(),
    };
    let page = upstream
        .webhooks
        .clone()
        .list_webhooks(as_principal(request, &owner, client)?)
        .await?
        .into_inner();
    let body = json!({
        "webhooks": page.webhooks.iter().map(webhook_json).collect::<Vec<_>>(),
        "next_page_token": page.next_page_token,
    });
    Ok(json::private(StatusCode::OK, body))
}

/// `GET /api/v1/webhooks/{id}`: one of the caller's endpoints.
pub async fn get(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: ReadAdmitted,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let request = GetWebhookRequest {
        name: webhook_name(&id)?,
    };
    let webhook = upstream
        .webhooks
        .clone()
        .get_webhook(as_principal(request, &owner, client)?)
        .await?
        .into_inner()
        .webhook
        .unwrap_or_default();
    Ok(json::private(
        StatusCode::OK,
        json!({ "webhook": webhook_json(&webhook) }),
    ))
}

/// `PATCH /api/v1/webhooks/{id}`: changes the URL, event types or state.
pub async fn update(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: Admitted,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
    Body(body): Body<UpdateBody>,
) -> Result<Response, ApiError> {
    let mut webhook = Webhook {
        name: webhook_name(&id)?,
        ..Default::default()
    };
    let mut paths = Vec::new();
    if let Some(url) = body.url {
        webhook.url = url;
        paths.push("url".to_owned());
    }
    if let Some(events) = body.events {
        webhook.event_types = events;
        paths.push("event_types".to_owned());
    }
    if let Some(enabled) = body.enabled {
        webhook.enabled = enabled;
        paths.push("enabled".to_owned());
    }
    if paths.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "name at least one of url, events, enabled",
        ));
    }
    let request = UpdateWebhookRequest {
        webhook: Some(webhook),
        update_mask: Some(prost_types::FieldMask { paths }),
    };
    let webhook = upstream
        .webhooks
        .clone()
        .update_webhook(as_principal(request, &owner, client)?)
        .await?
        .into_inner()
        .webhook
        .unwrap_or_default();
    Ok(json::private(
        StatusCode::OK,
        json!({ "webhook": webhook_json(&webhook) }),
    ))
}

/// `DELETE /api/v1/webhooks/{id}`: deletes an endpoint and its attempts.
pub async fn delete(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: Admitted,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let request = DeleteWebhookRequest {
        name: webhook_name(&id)?,
    };
    upstream
        .webhooks
        .clone()
        .delete_webhook(as_principal(request, &owner, client)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/webhooks/{id}/rotate-secret`: a new secret, shown only now.
pub async fn rotate_secret(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: Admitted,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let request = RotateWebhookSecretRequest {
        name: webhook_name(&id)?,
    };
    let rotated = upstream
        .webhooks
        .clone()
        .rotate_webhook_secret(as_principal(request, &owner, client)?)
        .await?
        .into_inner();
    let body = json!({
        "webhook": webhook_json(&rotated.webhook.unwrap_or_default()),
        "secret": rotated.secret,
    });
    Ok(json::private(StatusCode::OK, body))
}

/// `GET /api/v1/webhooks/{id}/attempts`: delivery attempts, newest first.
pub async fn attempts(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: ReadAdmitted,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
    Params(query): Params<AttemptsQuery>,
) -> Result<Response, ApiError> {
    // gRPC reads an empty id as "every event": here it is a malformed one.
    if query.event_id.as_deref() == Some("") {
        return Err(ApiError::invalid(
            "event_id",
            "must be an event id (the `id` of a delivery)",
        ));
    }
    let request = ListWebhookAttemptsRequest {
        parent: webhook_name(&id)?,
        event_id: query.event_id.unwrap_or_default(),
        page_size: query.page_size.unwrap_or(0),
        page_token: query.page_token.unwrap_or_default(),
    };
    let page = upstream
        .webhooks
        .clone()
        .list_webhook_attempts(as_principal(request, &owner, client)?)
        .await?
        .into_inner();
    let body = json!({
        "attempts": page.attempts.iter().map(attempt_json).collect::<Vec<_>>(),
        "next_page_token": page.next_page_token,
    });
    Ok(json::private(StatusCode::OK, body))
}

/// `POST /api/v1/webhooks/{id}/redeliver`: sends an event once more, soon.
pub async fn redeliver(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: Admitted,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
    Body(body): Body<RedeliverBody>,
) -> Result<Response, ApiError> {
    let request = RedeliverWebhookEventRequest {
        name: webhook_name(&id)?,
        event_id: body.event_id,
    };
    upstream
        .webhooks
        .clone()
        .redeliver_webhook_event(as_principal(request, &owner, client)?)
        .await?;
    Ok(json::private(
        StatusCode::ACCEPTED,
        json!({ "queued": true }),
    ))
}
