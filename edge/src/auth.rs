//! Bearer JWTs: verified with an HS256 secret or an RS256 public key; `sub` names
//! the owner the edge acts for. Only mutations need one.

use std::sync::Arc;

use axum::{extract::FromRequestParts, http::request::Parts};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::Deserialize;

use crate::{config::Config, error::ApiError, state::AppState};

/// Verifies bearer tokens.
#[derive(Clone)]
pub struct JwtVerifier {
    /// Accepted keys with their algorithm and validation rules.
    keys: Arc<Vec<(DecodingKey, Validation)>>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
}

impl JwtVerifier {
    /// Builds the verifier from the config; with no key configured, every token is
    /// refused.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        let validation = |alg| {
            let mut v = Validation::new(alg);
            v.set_required_spec_claims(&["exp", "sub"]);
            match &config.jwt_audience {
                Some(aud) => v.set_audience(&[aud]),
                None => v.validate_aud = false,
            }
            if let Some(iss) = &config.jwt_issuer {
                v.set_issuer(&[iss]);
            }
            v
        };
        if let Some(secret) = &config.jwt_hs256_secret {
            keys.push((
                DecodingKey::from_secret(secret.expose().as_bytes()),
                validation(Algorithm::HS256),
            ));
        }
        if let Some(path) = &config.jwt_rs256_public_key {
            let pem = std::fs::read(path).map_err(|e| {
                anyhow::anyhow!(
                    "NOVA_JWT_RS256_PUBLIC_KEY: cannot read {}: {e}",
                    path.display()
                )
            })?;
            let key = DecodingKey::from_rsa_pem(&pem).map_err(|e| {
                anyhow::anyhow!("NOVA_JWT_RS256_PUBLIC_KEY: not an RSA public key in PEM: {e}")
            })?;
            keys.push((key, validation(Algorithm::RS256)));
        }
        if keys.is_empty() {
            tracing::warn!(
                "no JWT key configured (NOVA_JWT_HS256_SECRET / NOVA_JWT_RS256_PUBLIC_KEY): mutations will be refused"
            );
        }
        Ok(Self {
            keys: Arc::new(keys),
        })
    }

    /// Returns the `sub` of a valid token.
    pub fn verify(&self, token: &str) -> Result<String, ApiError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| ApiError::unauthenticated("malformed bearer token"))?;
        for (key, validation) in self.keys.iter() {
            if !validation.algorithms.contains(&header.alg) {
                continue;
            }
            return match decode::<Claims>(token, key, validation) {
                Ok(data) if !data.claims.sub.is_empty() && data.claims.sub.len() <= 256 => {
                    Ok(data.claims.sub)
                }
                Ok(_) => Err(ApiError::unauthenticated(
                    "the token's sub must be 1 to 256 characters",
                )),
                Err(err) => Err(ApiError::unauthenticated(match err.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        "the bearer token has expired"
                    }
                    jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                        "the bearer token is for another audience"
                    }
                    jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                        "the bearer token is from another issuer"
                    }
                    _ => "invalid bearer token",
                })),
            };
        }
        Err(ApiError::unauthenticated(
            "the bearer token's algorithm is not accepted",
        ))
    }
}

/// The principal a request acts for: the `sub` of its bearer JWT.
#[derive(Debug, Clone)]
pub struct Owner(pub String);

impl FromRequestParts<AppState> for Owner {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or_else(|| {
                ApiError::unauthenticated("this call needs `Authorization: Bearer <JWT>`")
            })?;
        state.jwt().verify(token.trim()).map(Owner)
    }
}
