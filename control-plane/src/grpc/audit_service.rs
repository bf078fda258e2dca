//! `nova.streaming.v1.AuditService` over [`crate::service::audit`].

use nova_proto::v1::{
    self, ListAuditRecordsRequest, ListAuditRecordsResponse, audit_service_server::AuditService,
};
use tonic::{Request, Response, Status};

use crate::{
    auth::{Role, caller},
    grpc::{convert::timestamp, name::parse_stream_name},
    service::audit::{Audit, AuditAction, AuditQuery, AuditRecord},
    state::AppState,
};

/// gRPC face of the audit trail.
pub struct AuditApi {
    /// The listing.
    audit: Audit,
}

impl AuditApi {
    /// Builds the service from the shared state.
    pub fn new(state: &AppState) -> Self {
        Self {
            audit: state.audit().clone(),
        }
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_audit_records(
        &self,
        request: Request<ListAuditRecordsRequest>,
    ) -> Result<Response<ListAuditRecordsResponse>, Status> {
        let caller = caller(&request)?;
        // Only an admin without a principal lists across owners; the edge always acts
        // for a user.
        let viewer = if caller.role() == Role::Admin && !caller.names_principal() {
            None
        } else {
            Some(caller.principal()?)
        };
        let req = request.get_ref();
        let stream_id = match req.stream.as_str() {
            "" => None,
            name => Some(parse_stream_name("stream", name)?),
        };
        let page = self
            .audit
            .list(
                viewer.as_ref(),
                &AuditQuery {
                    stream_id,
                    owner: Some(req.owner.clone()).filter(|o| !o.is_empty()),
                    page_size: req.page_size,
                    page_token: req.page_token.clone(),
                },
            )
            .await?;
        Ok(Response::new(ListAuditRecordsResponse {
            records: page.records.iter().map(record_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}

/// Converts a record to its proto.
fn record_to_proto(record: &AuditRecord) -> v1::AuditRecord {
    let action = match record.action {
        Some(AuditAction::StreamCreated) => v1::AuditAction::StreamCreated,
        Some(AuditAction::StreamUpdated) => v1::AuditAction::StreamUpdated,
        Some(AuditAction::StreamEnded) => v1::AuditAction::StreamEnded,
        Some(AuditAction::StreamKeyRotated) => v1::AuditAction::StreamKeyRotated,
        Some(AuditAction::SigningKeyCreated) => v1::AuditAction::SigningKeyCreated,
        Some(AuditAction::SigningKeyDeleted) => v1::AuditAction::SigningKeyDeleted,
        Some(AuditAction::WebhookCreated) => v1::AuditAction::WebhookCreated,
        Some(AuditAction::WebhookUpdated) => v1::AuditAction::WebhookUpdated,
        Some(AuditAction::WebhookDeleted) => v1::AuditAction::WebhookDeleted,
        Some(AuditAction::WebhookSecretRotated) => v1::AuditAction::WebhookSecretRotated,
        Some(AuditAction::WebhookDisabled) => v1::AuditAction::WebhookDisabled,
        Some(AuditAction::WebhookRedeliveryRequested) => {
            v1::AuditAction::WebhookRedeliveryRequested
        }
        Some(AuditAction::AssetDeleted) => v1::AuditAction::AssetDeleted,
        Some(AuditAction::AssetExpired) => v1::AuditAction::AssetExpired,
        None => v1::AuditAction::Unspecified,
    };
    v1::AuditRecord {
        id: record.id.to_string(),
        stream: record
            .stream_id
            .map(|id| format!("streams/{id}"))
            .unwrap_or_default(),
        stream_id: record
            .stream_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        resource: record.resource.clone(),
        owner: record.owner.clone(),
        actor: record.actor.clone(),
        service: record.service.clone(),
        client_ip: record
            .client_ip
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
        action: action.into(),
        fields: record.fields.clone(),
        create_time: Some(timestamp(record.created_at)),
    }
}
