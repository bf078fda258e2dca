//! `nova.streaming.v1.WebhookService` over [`crate::service::webhooks`].

use nova_proto::v1::{
    self, CreateWebhookRequest, CreateWebhookResponse, DeleteWebhookRequest, DeleteWebhookResponse,
    GetWebhookRequest, GetWebhookResponse, ListWebhookAttemptsRequest, ListWebhookAttemptsResponse,
    ListWebhooksRequest, ListWebhooksResponse, RedeliverWebhookEventRequest,
    RedeliverWebhookEventResponse, RotateWebhookSecretRequest, RotateWebhookSecretResponse,
    UpdateWebhookRequest, UpdateWebhookResponse, webhook_service_server::WebhookService,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    auth::caller,
    error::Error,
    grpc::convert::timestamp,
    service::webhooks::{
        Attempt, DisabledReason, NAME_PREFIX, Outcome, Webhook, WebhookUpdate, Webhooks,
        webhook_name,
    },
    state::AppState,
};

/// gRPC face of the webhook rules.
pub struct WebhookApi {
    /// The rules.
    webhooks: Webhooks,
}

impl WebhookApi {
    /// Builds the service from the shared state.
    pub fn new(state: &AppState) -> Self {
        Self {
            webhooks: state.webhooks().clone(),
        }
    }
}

/// Parses `webhooks/{uuid}` from the request field `field`.
fn parse_webhook_name(field: &'static str, name: &str) -> Result<Uuid, Error> {
    let id = name
        .strip_prefix(NAME_PREFIX)
        .ok_or_else(|| Error::invalid(field, "must look like webhooks/{webhook_id}"))?;
    Uuid::try_parse(id).map_err(|_| Error::invalid(field, "webhook_id must be a UUID"))
}

/// Parses an event id (a log position) from the request field `field`.
fn parse_event_id(field: &'static str, raw: &str) -> Result<i64, Error> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| Error::invalid(field, "must be an event id (the `id` of a delivery)"))
}

/// Converts an endpoint to its proto. Never carries the secret.
fn webhook_to_proto(webhook: &Webhook) -> v1::Webhook {
    let reason = match webhook.disabled.map(|d| d.reason) {
        None => v1::WebhookDisabledReason::Unspecified,
        Some(DisabledReason::Owner) => v1::WebhookDisabledReason::Owner,
        Some(DisabledReason::Failures) => v1::WebhookDisabledReason::Failures,
    };
    v1::Webhook {
        name: webhook_name(webhook.id),
        webhook_id: webhook.id.to_string(),
        owner: webhook.owner.clone(),
        url: webhook.url.clone(),
        event_types: webhook
            .event_types
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
        enabled: webhook.disabled.is_none(),
        disabled_reason: reason.into(),
        disable_time: webhook.disabled.map(|d| timestamp(d.at)),
        consecutive_failures: webhook.failures,
        failing_since: webhook.failing_since.map(timestamp),
        delivered_cursor: webhook.log_position.to_string(),
        create_time: Some(timestamp(webhook.created_at)),
        update_time: Some(timestamp(webhook.updated_at)),
    }
}

/// Converts an attempt to its proto.
fn attempt_to_proto(attempt: &Attempt) -> v1::WebhookAttempt {
    let outcome = match attempt.outcome {
        None => v1::WebhookAttemptOutcome::Unspecified,
        Some(Outcome::Delivered) => v1::WebhookAttemptOutcome::Delivered,
        Some(Outcome::HttpError) => v1::WebhookAttemptOutcome::HttpError,
        Some(Outcome::Timeout) => v1::WebhookAttemptOutcome::Timeout,
        Some(Outcome::NetworkError) => v1::WebhookAttemptOutcome::NetworkError,
        Some(Outcome::Refused) => v1::WebhookAttemptOutcome::Refused,
    };
    v1::WebhookAttempt {
        attempt_id: attempt.id.to_string(),
        event_id: attempt.event_id.to_string(),
        event_type: attempt
            .event_type
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
        attempt: attempt.attempt,
        manual: attempt.manual,
        outcome: outcome.into(),
        status_code: attempt.status_code.map_or(0, i32::from),
        latency: prost_types::Duration::try_from(attempt.latency).ok(),
        error: attempt.error.clone().unwrap_or_default(),
        attempt_time: Some(timestamp(attempt.created_at)),
    }
}

#[tonic::async_trait]
impl WebhookService for WebhookApi {
    async fn create_webhook(
        &self,
        request: Request<CreateWebhookRequest>,
    ) -> Result<Response<CreateWebhookResponse>, Status> {
        let actor = caller(&request)?.actor()?;
        let webhook = request
            .into_inner()
            .webhook
            .ok_or_else(|| Error::invalid("webhook", "is required"))?;
        let (created, secret) = self
            .webhooks
            .create(&actor, &webhook.url, &webhook.event_types)
            .await?;
        Ok(Response::new(CreateWebhookResponse {
            webhook: Some(webhook_to_proto(&created)),
            secret: secret.expose().to_owned(),
        }))
    }

    async fn get_webhook(
        &self,
        request: Request<GetWebhookRequest>,
    ) -> Result<Response<GetWebhookResponse>, Status> {
        let owner = caller(&request)?.principal()?;
        let id = parse_webhook_name("name", &request.get_ref().name)?;
        let webhook = self.webhooks.get(&owner, id).await?;
        Ok(Response::new(GetWebhookResponse {
            webhook: Some(webhook_to_proto(&webhook)),
        }))
    }

    async fn list_webhooks(
        &self,
        request: Request<ListWebhooksRequest>,
    ) -> Result<Response<ListWebhooksResponse>, Status> {
        let owner = caller(&request)?.principal()?;
        let req = request.get_ref();
        let page = self
            .webhooks
            .list(&owner, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(ListWebhooksResponse {
            webhooks: page.items.iter().map(webhook_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_webhook(
        &self,
        request: Request<UpdateWebhookRequest>,
    ) -> Result<Response<UpdateWebhookResponse>, Status> {
        let actor = caller(&request)?.actor()?;
        let req = request.into_inner();
        let webhook = req
            .webhook
            .ok_or_else(|| Error::invalid("webhook", "is required"))?;
        let id = parse_webhook_name("webhook.name", &webhook.name)?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(Error::invalid("update_mask", "must name at least one field").into());
        }
        let mut update = WebhookUpdate::default();
        for path in &paths {
            match path.as_str() {
                "url" => update.url = Some(webhook.url.clone()),
                "event_types" => update.event_types = Some(webhook.event_types.clone()),
                "enabled" => update.enabled = Some(webhook.enabled),
                _ => {
                    return Err(Error::invalid(
                        "update_mask",
                        "may name only url, event_types and enabled",
                    )
                    .into());
                }
            }
        }
        let updated = self.webhooks.update(&actor, id, &update).await?;
        Ok(Response::new(UpdateWebhookResponse {
            webhook: Some(webhook_to_proto(&updated)),
        }))
    }

    async fn delete_webhook(
        &self,
        request: Request<DeleteWebhookRequest>,
    ) -> Result<Response<DeleteWebhookResponse>, Status> {
        let actor = caller(&request)?.actor()?;
        let id = parse_webhook_name("name", &request.get_ref().name)?;
        self.webhooks.delete(&actor, id).await?;
        Ok(Response::new(DeleteWebhookResponse {}))
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<RotateWebhookSecretRequest>,
    ) -> Result<Response<RotateWebhookSecretResponse>, Status> {
        let actor = caller(&request)?.actor()?;
        let id = parse_webhook_name("name", &request.get_ref().name)?;
        let (webhook, secret) = self.webhooks.rotate_secret(&actor, id).await?;
        Ok(Response::new(RotateWebhookSecretResponse {
            webhook: Some(webhook_to_proto(&webhook)),
            secret: secret.expose().to_owned(),
        }))
    }

    async fn list_webhook_attempts(
        &self,
        request: Request<ListWebhookAttemptsRequest>,
    ) -> Result<Response<ListWebhookAttemptsResponse>, Status> {
        let owner = caller(&request)?.principal()?;
        let req = request.get_ref();
        let id = parse_webhook_name("parent", &req.parent)?;
        let event_id = match req.event_id.as_str() {
            "" => None,
            raw => Some(parse_event_id("event_id", raw)?),
        };
        let page = self
            .webhooks
            .attempts(&owner, id, event_id, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(ListWebhookAttemptsResponse {
            attempts: page.items.iter().map(attempt_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn redeliver_webhook_event(
        &self,
        request: Request<RedeliverWebhookEventRequest>,
    ) -> Result<Response<RedeliverWebhookEventResponse>, Status> {
        let actor = caller(&request)?.actor()?;
        let req = request.get_ref();
        let id = parse_webhook_name("name", &req.name)?;
        let event_id = parse_event_id("event_id", &req.event_id)?;
        self.webhooks.redeliver(&actor, id, event_id).await?;
        Ok(Response::new(RedeliverWebhookEventResponse {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_event_ids_are_checked() {
        let id = Uuid::now_v7();
        assert_eq!(parse_webhook_name("name", &webhook_name(id)).unwrap(), id);
        for bad in [
            "",
            "webhooks/",
            "webhooks/x",
            "streams/0193",
            &id.to_string(),
        ] {
            assert!(parse_webhook_name("name", bad).is_err(), "{bad}");
        }
        assert_eq!(parse_event_id("event_id", "42").unwrap(), 42);
        for bad in ["", "0", "-1", "x", "1.5"] {
            assert!(parse_event_id("event_id", bad).is_err(), "{bad}");
        }
    }
}
