//! Bearer JWTs: verified with HS256 secrets or RS256 public keys; `sub` names the
//! owner the edge acts for. Only mutations need one. Several keys of each kind may be
//! configured at once (comma-separated secrets, a folder of PEM files), so a key is
//! rotated without downtime: add the new one, sign with it, drop the old one.

use std::sync::Arc;

use axum::{
    extract::{FromRef, FromRequestParts, OptionalFromRequestParts},
    http::request::Parts,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::Deserialize;

use crate::error::ApiError;

/// Verifies bearer tokens: signature, `exp`, `nbf`, `iss` and `aud` when configured
/// (then required), and a lifetime of at most `NOVA_JWT_MAX_LIFETIME`.
#[derive(Clone)]
pub struct JwtVerifier {
    /// Accepted keys with their algorithm and validation rules.
    keys: Arc<Vec<(DecodingKey, Validation)>>,
    /// Longest accepted lifetime, seconds.
    max_lifetime: i64,
}

/// Clock skew tolerated on `exp`, `nbf` and `iat`, seconds.
const LEEWAY: u64 = 60;

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    iat: Option<i64>,
}

impl Claims {
    /// Refuses a token issued in the future or living longer than `max` seconds
    /// (`exp - iat`, or `exp - now` without `iat`).
    fn check_lifetime(&self, max: i64) -> Result<(), ApiError> {
        let now = chrono::Utc::now().timestamp();
        let leeway = LEEWAY as i64;
        if self.iat.is_some_and(|iat| iat > now + leeway) {
            return Err(ApiError::unauthenticated(
                "the bearer token is issued in the future",
            ));
        }
        let from = self.iat.unwrap_or(now);
        if self.exp.saturating_sub(from) > max.saturating_add(leeway) {
            return Err(ApiError::unauthenticated(
                "the bearer token lives longer than this edge accepts",
            ));
        }
        Ok(())
    }
}

/// What a [`JwtVerifier`] accepts (the `NOVA_JWT_*` settings).
#[derive(Debug, Clone, Copy)]
pub struct JwtRules<'a> {
    /// HS256 secrets, comma-separated (`NOVA_JWT_HS256_SECRET`).
    pub hs256_secrets: Option<&'a str>,
    /// A PEM RS256 public key, or a folder of them (`NOVA_JWT_RS256_PUBLIC_KEY`).
    pub rs256_public_key: Option<&'a std::path::Path>,
    /// The required `iss` (`NOVA_JWT_ISSUER`).
    pub issuer: Option<&'a str>,
    /// The required `aud` (`NOVA_JWT_AUDIENCE`).
    pub audience: Option<&'a str>,
    /// The longest accepted lifetime (`NOVA_JWT_MAX_LIFETIME`).
    pub max_lifetime: std::time::Duration,
}

impl JwtVerifier {
    /// Builds the verifier; with no key given, every token is refused.
    pub fn new(rules: &JwtRules<'_>) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        let validation = |alg| {
            let mut v = Validation::new(alg);
            v.leeway = LEEWAY;
            v.validate_nbf = true;
            let mut required = vec!["exp", "sub"];
            match rules.audience {
                Some(aud) => {
                    v.set_audience(&[aud]);
                    required.push("aud");
                }
                None => v.validate_aud = false,
            }
            if let Some(iss) = rules.issuer {
                v.set_issuer(&[iss]);
                required.push("iss");
            }
            v.set_required_spec_claims(&required);
            v
        };
        if let Some(secrets) = rules.hs256_secrets {
            for secret in hs256_secrets(secrets) {
                keys.push((
                    DecodingKey::from_secret(secret.as_bytes()),
                    validation(Algorithm::HS256),
                ));
            }
        }
        if let Some(path) = rules.rs256_public_key {
            for key in rs256_keys(path)? {
                keys.push((key, validation(Algorithm::RS256)));
            }
        }
        if keys.is_empty() {
            tracing::warn!(
                "no JWT key configured (NOVA_JWT_HS256_SECRET / NOVA_JWT_RS256_PUBLIC_KEY): mutations will be refused"
            );
        }
        Ok(Self {
            keys: Arc::new(keys),
            max_lifetime: i64::try_from(rules.max_lifetime.as_secs()).unwrap_or(i64::MAX),
        })
    }

    /// Returns the `sub` of a valid token: the first key of its algorithm whose
    /// signature matches decides (claims are checked only after the signature).
    pub fn verify(&self, token: &str) -> Result<String, ApiError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| ApiError::unauthenticated("malformed bearer token"))?;
        let mut tried = false;
        for (key, validation) in self.keys.iter() {
            if !validation.algorithms.contains(&header.alg) {
                continue;
            }
            tried = true;
            return match decode::<Claims>(token, key, validation) {
                Err(err)
                    if matches!(
                        err.kind(),
                        jsonwebtoken::errors::ErrorKind::InvalidSignature
                    ) =>
                {
                    continue;
                }
                Ok(data) if !data.claims.sub.is_empty() && data.claims.sub.len() <= 256 => {
                    data.claims.check_lifetime(self.max_lifetime)?;
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
                    jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                        "the bearer token is not valid yet (nbf)"
                    }
                    jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(claim) => {
                        match claim.as_str() {
                            "iss" => "the bearer token names no issuer (iss)",
                            "aud" => "the bearer token names no audience (aud)",
                            _ => "the bearer token lacks a required claim",
                        }
                    }
                    _ => "invalid bearer token",
                })),
            };
        }
        Err(ApiError::unauthenticated(if tried {
            "invalid bearer token"
        } else {
            "the bearer token's algorithm is not accepted"
        }))
    }
}

/// Splits `NOVA_JWT_HS256_SECRET` into its secrets (comma-separated, blanks ignored).
pub(crate) fn hs256_secrets(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Reads the RS256 public keys at `path`: one PEM file, or every `*.pem` file of a
/// folder (as a Kubernetes Secret mounts its keys), in name order.
fn rs256_keys(path: &std::path::Path) -> anyhow::Result<Vec<DecodingKey>> {
    let var = "NOVA_JWT_RS256_PUBLIC_KEY";
    let cannot = |p: &std::path::Path, e: std::io::Error| {
        anyhow::anyhow!("{var}: cannot read {}: {e}", p.display())
    };
    let files = if path.is_dir() {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(path).map_err(|e| cannot(path, e))? {
            let file = entry.map_err(|e| cannot(path, e))?.path();
            if file.extension().is_some_and(|x| x == "pem") && file.is_file() {
                files.push(file);
            }
        }
        files.sort();
        if files.is_empty() {
            anyhow::bail!("{var}: no *.pem file in {}", path.display());
        }
        files
    } else {
        vec![path.to_owned()]
    };
    files
        .iter()
        .map(|file| {
            let pem = std::fs::read(file).map_err(|e| cannot(file, e))?;
            DecodingKey::from_rsa_pem(&pem).map_err(|e| {
                anyhow::anyhow!(
                    "{var}: {} is not an RSA public key in PEM: {e}",
                    file.display()
                )
            })
        })
        .collect()
}

/// The principal a request acts for: the `sub` of its bearer JWT.
#[derive(Debug, Clone)]
pub struct Owner(pub String);

impl<S> FromRequestParts<S> for Owner
where
    S: Send + Sync,
    JwtVerifier: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        <Self as OptionalFromRequestParts<S>>::from_request_parts(parts, state)
            .await?
            .ok_or_else(|| {
                ApiError::unauthenticated("this call needs `Authorization: Bearer <JWT>`")
            })
    }
}

/// An optional owner: no `Authorization` header is `None` (anonymous); a header
/// that is not a valid bearer token is refused, never taken as anonymous.
impl<S> OptionalFromRequestParts<S> for Owner
where
    S: Send + Sync,
    JwtVerifier: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return Ok(None);
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or_else(|| {
                ApiError::unauthenticated("the Authorization header must be `Bearer <JWT>`")
            })?;
        JwtVerifier::from_ref(state)
            .verify(token.trim())
            .map(|sub| Some(Owner(sub)))
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
