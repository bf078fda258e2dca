//! Private playback over REST: playback tokens for a stream's owner
//! (`POST /streams/{id}/playback-tokens`) and the owner's ES256 signing keys
//! (`/signing-keys`), over PlaybackService. Every call needs the owner's bearer JWT.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use nova_proto::v1::{
    CreatePlaybackTokenRequest, CreateSigningKeyRequest, DeleteSigningKeyRequest,
    ListSigningKeysRequest, SigningKey,
};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    auth::Owner,
    error::ApiError,
    json,
    ratelimit::{Admitted, ClientIp, ReadAdmitted},
    routes::streams::{present, present_whole, stream_name},
    upstream::{Upstream, as_principal},
};

/// Body of `POST /streams/{id}/playback-tokens`; every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// Lifetime in seconds, 1 to 86400 (default 3600).
    #[serde(default, deserialize_with = "present_whole")]
    ttl_seconds: Option<u32>,
    /// Viewer session the token stands for (default: a new random one).
    #[serde(default, deserialize_with = "present")]
    session_id: Option<String>,
    /// Networks the token plays from (CIDR blocks or addresses, at most 16;
    /// default: any), checked by the control plane.
    #[serde(default, deserialize_with = "present")]
    allowed_networks: Option<Vec<String>>,
}

fn key_json(key: &SigningKey) -> Value {
    json!({
        "id": key.key_id,
        "name": key.name,
        "public_key_pem": key.public_key_pem,
        "created_at": json::time(key.create_time.as_ref()),
    })
}

/// `POST /api/v1/streams/{id}/playback-tokens`: issues a token (owner only).
pub async fn create_token(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: Admitted,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> Result<Response, ApiError> {
    // The body is optional: none means every default.
    let body: TokenBody = if raw.iter().all(u8::is_ascii_whitespace) {
        TokenBody::default()
    } else {
        serde_json::from_slice(&raw)
            .map_err(|e| ApiError::invalid("body", &format!("not a playback token request: {e}")))?
    };
    if body.session_id.as_deref() == Some("") {
        return Err(ApiError::invalid(
            "session_id",
            "must be 1 to 64 characters of A-Z a-z 0-9 _ -",
        ));
    }
    let request = CreatePlaybackTokenRequest {
        name: stream_name(&id)?,
        ttl: body.ttl_seconds.map(|s| prost_types::Duration {
            seconds: i64::from(s),
            nanos: 0,
        }),
        session_id: body.session_id.unwrap_or_default(),
        allowed_networks: body.allowed_networks.unwrap_or_default(),
    };
    let issued = upstream
        .playback
        .clone()
        .create_playback_token(as_principal(request, &owner, client)?)
        .await?
        .into_inner();
    let body = json!({
        "token": issued.token,
        "expire_time": json::time(issued.expire_time.as_ref()),
        "session_id": issued.session_id,
        "hls_url": issued.hls_url,
        "dash_url": issued.dash_url,
        "allowed_networks": issued.allowed_networks,
    });
    Ok(json::private(StatusCode::CREATED, body))
}

/// `POST /api/v1/signing-keys`: creates a key; its private key is shown only now.
pub async fn create_key(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: Admitted,
    ClientIp(client): ClientIp,
) -> Result<Response, ApiError> {
    let created = upstream
        .playback
        .clone()
        .create_signing_key(as_principal(CreateSigningKeyRequest {}, &owner, client)?)
        .await?
        .into_inner();
    let key = created.signing_key.unwrap_or_default();
    let body = json!({
        "signing_key": key_json(&key),
        "private_key_pem": created.private_key_pem,
    });
    Ok((
        StatusCode::CREATED,
        [
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (
                header::LOCATION,
                format!("/api/v1/signing-keys/{}", key.key_id),
            ),
        ],
        Json(body),
    )
        .into_response())
}

/// `GET /api/v1/signing-keys`: the caller's keys, oldest first.
pub async fn list_keys(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: ReadAdmitted,
    ClientIp(client): ClientIp,
) -> Result<Json<Value>, ApiError> {
    let keys = upstream
        .playback
        .clone()
        .list_signing_keys(as_principal(ListSigningKeysRequest {}, &owner, client)?)
        .await?
        .into_inner()
        .signing_keys;
    Ok(Json(
        json!({ "signing_keys": keys.iter().map(key_json).collect::<Vec<_>>() }),
    ))
}

/// `DELETE /api/v1/signing-keys/{id}`: deletes one of the caller's keys.
pub async fn delete_key(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: Admitted,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id =
        Uuid::try_parse(&id).map_err(|_| ApiError::invalid("id", "must be a key id (a UUID)"))?;
    let request = DeleteSigningKeyRequest {
        name: format!("signingKeys/{id}"),
    };
    upstream
        .playback
        .clone()
        .delete_signing_key(as_principal(request, &owner, client)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
