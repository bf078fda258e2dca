//! `GET /api/v1/streams/{id}/audit`: a stream's audit trail, newest first, in pages,
//! for its owner only (bearer JWT), over AuditService.ListAuditRecords; never
//! stored by shared caches.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use nova_proto::v1::{AuditAction, AuditRecord, ListAuditRecordsRequest};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    auth::Owner,
    error::ApiError,
    extract::Params,
    json,
    ratelimit::{ClientIp, ReadAdmitted},
    routes::streams::stream_name,
    upstream::{Upstream, as_principal},
};

/// Query of `GET /streams/{id}/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Page size, 1–1000 (default 50).
    page_size: Option<i32>,
    /// Token of the next page.
    page_token: Option<String>,
}

/// `GET /api/v1/streams/{id}/audit`: the stream's audit records (owner only).
pub async fn list(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: ReadAdmitted,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
    Params(query): Params<AuditQuery>,
) -> Result<Response, ApiError> {
    let request = ListAuditRecordsRequest {
        stream: stream_name(&id)?,
        owner: String::new(),
        page_size: query.page_size.unwrap_or(0),
        page_token: query.page_token.unwrap_or_default(),
    };
    let page = upstream
        .audit
        .clone()
        .list_audit_records(as_principal(request, &owner, client)?)
        .await?
        .into_inner();
    let body = json!({
        "records": page.records.iter().map(record).collect::<Vec<_>>(),
        "next_page_token": page.next_page_token,
    });
    Ok(json::private(StatusCode::OK, body))
}

/// Returns one record as JSON.
fn record(r: &AuditRecord) -> Value {
    json!({
        "id": r.id,
        "stream_id": Some(&r.stream_id).filter(|s| !s.is_empty()),
        "resource": r.resource,
        "owner": r.owner,
        "actor": r.actor,
        "service": r.service,
        "client_ip": Some(&r.client_ip).filter(|s| !s.is_empty()),
        "action": action(r.action),
        "fields": r.fields,
        "created_at": json::time(r.create_time.as_ref()),
    })
}

/// Returns the lower-case name of an action (`stream_created`, …).
fn action(raw: i32) -> &'static str {
    match AuditAction::try_from(raw).unwrap_or(AuditAction::Unspecified) {
        AuditAction::Unspecified => "unspecified",
        AuditAction::StreamCreated => "stream_created",
        AuditAction::StreamUpdated => "stream_updated",
        AuditAction::StreamEnded => "stream_ended",
        AuditAction::StreamKeyRotated => "stream_key_rotated",
        AuditAction::SigningKeyCreated => "signing_key_created",
        AuditAction::SigningKeyDeleted => "signing_key_deleted",
        AuditAction::WebhookCreated => "webhook_created",
        AuditAction::WebhookUpdated => "webhook_updated",
        AuditAction::WebhookDeleted => "webhook_deleted",
        AuditAction::WebhookSecretRotated => "webhook_secret_rotated",
        AuditAction::WebhookDisabled => "webhook_disabled",
        AuditAction::WebhookRedeliveryRequested => "webhook_redelivery_requested",
        AuditAction::AssetDeleted => "asset_deleted",
        AuditAction::AssetExpired => "asset_expired",
    }
}
