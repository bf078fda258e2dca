//! Caller authentication: a service token in `authorization: Bearer …` metadata, and
//! the principal the caller acts for in `x-nova-principal`.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Request, Status};

use crate::{config::Secret, error::Error};

/// Metadata key naming the principal (end user) a trusted caller acts for.
pub const PRINCIPAL_HEADER: &str = "x-nova-principal";
/// Longest accepted principal.
const MAX_PRINCIPAL_LEN: usize = 256;

/// The principal a call acts for; the owner of the streams it creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal(String);

impl Principal {
    /// Validates a principal: 1 to 256 printable ASCII characters, no spaces. The
    /// error says what is wrong.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > MAX_PRINCIPAL_LEN {
            return Err(format!("must be 1 to {MAX_PRINCIPAL_LEN} characters"));
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("must be printable ASCII without spaces".to_owned());
        }
        Ok(Self(raw.to_owned()))
    }

    /// Returns the principal as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who is calling, attached to each authenticated request by [`Authenticator`].
#[derive(Debug, Clone)]
pub struct Caller {
    /// The principal named in `x-nova-principal`, if any, or why it was refused.
    principal: Option<Result<Principal, String>>,
}

impl Caller {
    /// Returns the calling principal; mutations need one.
    pub fn principal(&self) -> Result<Principal, Error> {
        match &self.principal {
            Some(Ok(p)) => Ok(p.clone()),
            Some(Err(reason)) => Err(Error::invalid(PRINCIPAL_HEADER, reason.clone())),
            None => Err(Error::Unauthenticated(
                "this call needs x-nova-principal metadata naming the user it acts for",
            )),
        }
    }
}

/// Returns the [`Caller`] of a request that went through [`Authenticator`].
pub fn caller<T>(request: &Request<T>) -> Result<&Caller, Error> {
    request
        .extensions()
        .get::<Caller>()
        .ok_or(Error::Unauthenticated("missing service token"))
}

/// Tonic interceptor that admits only calls bearing one of the service tokens.
#[derive(Clone)]
pub struct Authenticator {
    /// SHA-256 of each accepted token: fixed-length values compared in constant time.
    token_hashes: Arc<[[u8; 32]]>,
}

impl Authenticator {
    /// Builds an authenticator accepting any of `tokens`.
    pub fn new(tokens: &[Secret]) -> Self {
        Self {
            token_hashes: tokens.iter().map(|t| digest(t.expose())).collect(),
        }
    }

    fn admits(&self, presented: &str) -> bool {
        let presented = digest(presented);
        self.token_hashes
            .iter()
            .fold(false, |ok, known| ok | bool::from(known.ct_eq(&presented)))
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl tonic::service::Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Status::from(Error::Unauthenticated(
                    "missing service token: send `authorization: Bearer <token>` metadata",
                ))
            })?;
        if !self.admits(token.trim()) {
            return Err(Error::Unauthenticated("invalid service token").into());
        }
        let principal = request.metadata().get(PRINCIPAL_HEADER).map(|v| {
            v.to_str()
                .map_err(|_| "must be printable ASCII".to_owned())
                .and_then(Principal::parse)
        });
        request.extensions_mut().insert(Caller { principal });
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use tonic::service::Interceptor;

    use super::*;

    fn auth() -> Authenticator {
        Authenticator::new(&[
            Secret::from("token-one-0123456789"),
            Secret::from("token-two-0123456789"),
        ])
    }

    fn request(token: Option<&str>, principal: Option<&str>) -> Request<()> {
        let mut req = Request::new(());
        if let Some(t) = token {
            req.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        if let Some(p) = principal {
            req.metadata_mut()
                .insert(PRINCIPAL_HEADER, p.parse().unwrap());
        }
        req
    }

    #[test]
    fn accepts_every_configured_token_and_refuses_others() {
        assert!(
            auth()
                .call(request(Some("token-one-0123456789"), None))
                .is_ok()
        );
        assert!(
            auth()
                .call(request(Some("token-two-0123456789"), None))
                .is_ok()
        );
        let denied = auth()
            .call(request(Some("token-three-012345678"), None))
            .unwrap_err();
        assert_eq!(denied.code(), tonic::Code::Unauthenticated);
        assert!(!denied.message().contains("token-three"));
        let missing = auth().call(request(None, None)).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn principal_is_attached_and_validated() {
        let req = auth()
            .call(request(Some("token-one-0123456789"), Some("alice")))
            .unwrap();
        assert_eq!(caller(&req).unwrap().principal().unwrap().as_str(), "alice");
        let req = auth()
            .call(request(Some("token-one-0123456789"), None))
            .unwrap();
        let err = caller(&req).unwrap().principal().unwrap_err();
        assert!(matches!(err, Error::Unauthenticated(_)));
        let long = "a".repeat(300);
        let req = auth()
            .call(request(Some("token-one-0123456789"), Some(&long)))
            .unwrap();
        let err = caller(&req).unwrap().principal().unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }));
    }
}
