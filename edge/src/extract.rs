//! Extractors whose rejections answer in the API's error format, so a client never
//! gets a bare text body: JSON bodies, query strings and WebSocket upgrades.

use axum::{
    Json,
    extract::{FromRequest, FromRequestParts, Query, Request, ws::WebSocketUpgrade},
    http::{StatusCode, request::Parts},
};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body; a missing content type is 415, bad JSON 400 or 422, too large 413.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::new(
                rejection.status(),
                "INVALID_ARGUMENT",
                rejection.body_text(),
            )),
        }
    }
}

/// A query string; one that does not parse is 400 INVALID_ARGUMENT.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                rejection.body_text(),
            )),
        }
    }
}

/// A WebSocket upgrade; a plain HTTP request is 426 Upgrade Required.
pub struct Upgrade(pub WebSocketUpgrade);

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map(Self)
            .map_err(|rejection| {
                ApiError::new(
                    StatusCode::UPGRADE_REQUIRED,
                    "FAILED_PRECONDITION",
                    format!(
                        "this URL speaks WebSocket ({}): send `Connection: Upgrade` and `Upgrade: websocket`",
                        rejection.body_text()
                    ),
                )
            })
    }
}
