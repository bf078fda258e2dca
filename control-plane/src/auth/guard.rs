//! The guard in front of every nova service: authenticates the token, checks the
//! method against the role's allowlist and whether the role may name a principal,
//! counts every refusal, and attaches the [`Caller`] for the handlers.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::{Either, Ready, ready};
use http::HeaderMap;
use tonic::{Status, body::Body, server::NamedService};

use super::{
    CLIENT_IP_HEADER, Caller, PRINCIPAL_HEADER, Principal, PrincipalError, Role, ServiceTokens,
};
use crate::{error::Error, metrics::CpMetrics};

/// Longest method path echoed in an error or a log line.
const MAX_SHOWN_PATH: usize = 128;

/// Decides who may call what; shared by every [`Guarded`] service.
#[derive(Clone)]
pub struct Authenticator {
    /// Accepted tokens (hashes) and their roles.
    tokens: Arc<ServiceTokens>,
    /// Counts refusals.
    metrics: CpMetrics,
}

impl Authenticator {
    /// Builds the authenticator over `tokens`, counting refusals in `metrics`.
    pub fn new(tokens: ServiceTokens, metrics: CpMetrics) -> Self {
        Self {
            tokens: Arc::new(tokens),
            metrics,
        }
    }

    /// Wraps a tonic service so each call is admitted by this authenticator first.
    pub fn guard<S>(&self, inner: S) -> Guarded<S> {
        Guarded {
            inner,
            auth: self.clone(),
        }
    }

    /// Admits or refuses a call to `path` (of `service`) carrying `headers`: an unknown
    /// or missing token is UNAUTHENTICATED, a method outside the role's allowlist or a
    /// principal from a role that may not act for users is PERMISSION_DENIED.
    pub fn admit(
        &self,
        service: &'static str,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<Caller, Error> {
        let decision = self.decide(path, headers);
        if let Err(err) = &decision {
            let (role, reason) = match err {
                Error::MethodNotAllowed { role, method } => {
                    tracing::warn!(service.role = %role, grpc.method = %method, "call outside the role's allowlist refused");
                    (role.as_str(), "method_not_allowed")
                }
                Error::PrincipalNotAllowed(role) => {
                    tracing::warn!(service.role = %role, grpc.method = %shown(path), "principal from a role that may not act for users refused");
                    (role.as_str(), "principal_not_allowed")
                }
                _ => {
                    tracing::debug!(grpc.method = %shown(path), "call without a valid service token refused");
                    ("none", "unauthenticated")
                }
            };
            self.metrics.auth_refused(role, service, reason);
        }
        decision
    }

    fn decide(&self, path: &str, headers: &HeaderMap) -> Result<Caller, Error> {
        let token = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(Error::Unauthenticated(
                "missing service token: send `authorization: Bearer <token>` metadata",
            ))?;
        let role = self
            .tokens
            .role_of(token.trim())
            .ok_or(Error::Unauthenticated("invalid service token"))?;
        if !role.allows(path) {
            return Err(Error::MethodNotAllowed {
                role,
                method: shown(path).to_owned(),
            });
        }
        let principal = headers.get(PRINCIPAL_HEADER);
        if principal.is_some() && !role.may_act_for_users() {
            return Err(Error::PrincipalNotAllowed(role));
        }
        let principal = principal.map(|v| {
            v.to_str()
                .map_err(|_| PrincipalError::Characters)
                .and_then(Principal::parse)
        });
        let client_ip = if role == Role::Edge {
            headers
                .get(CLIENT_IP_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
        } else {
            None
        };
        Ok(Caller {
            role,
            principal,
            client_ip,
        })
    }
}

/// Returns `path` when short enough to show, else a placeholder.
fn shown(path: &str) -> &str {
    if path.len() <= MAX_SHOWN_PATH {
        path
    } else {
        "(a path too long to show)"
    }
}

/// A tonic service behind an [`Authenticator`].
#[derive(Clone)]
pub struct Guarded<S> {
    /// The service.
    inner: S,
    /// The check.
    auth: Authenticator,
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<B>> for Guarded<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>> + NamedService,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Self::Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        match self
            .auth
            .admit(S::NAME, request.uri().path(), request.headers())
        {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                Either::Right(self.inner.call(request))
            }
            Err(err) => Either::Left(ready(Ok(Status::from(err).into_http()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{auth::Role, config::Secret};

    const ADMIN: &str = "admin-token-0123456789";
    const EDGE: &str = "edge-token-0123456789";
    const INGEST: &str = "ingest-token-0123456789";
    const CREATE: &str = "/nova.streaming.v1.StreamService/CreateStream";
    const AUTHORIZE: &str = "/nova.streaming.v1.IngestService/AuthorizePublish";
    const JOIN: &str = "/nova.streaming.v1.SessionService/JoinSession";

    fn auth() -> Authenticator {
        let tokens = ServiceTokens::parse(
            &Secret::from(ADMIN),
            Some(&Secret::from(EDGE)),
            Some(&Secret::from(INGEST)),
        )
        .unwrap();
        Authenticator::new(tokens, CpMetrics::new().unwrap())
    }

    fn headers(token: Option<&str>, principal: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(t) = token {
            h.insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        if let Some(p) = principal {
            h.insert(PRINCIPAL_HEADER, p.parse().unwrap());
        }
        h
    }

    fn admit(token: Option<&str>, principal: Option<&str>, path: &str) -> Result<Caller, Error> {
        auth().admit("test", path, &headers(token, principal))
    }

    #[test]
    fn unknown_or_missing_tokens_are_unauthenticated_without_echo() {
        for token in [None, Some("token-three-012345678"), Some("")] {
            let err = admit(token, None, CREATE).unwrap_err();
            let status = Status::from(err);
            assert_eq!(status.code(), tonic::Code::Unauthenticated);
            assert!(!status.message().contains("token-three"));
        }
    }

    #[test]
    fn roles_are_held_to_their_allowlists() {
        let caller = admit(Some(ADMIN), Some("alice"), AUTHORIZE).unwrap();
        assert_eq!(caller.role(), Role::Admin);
        let caller = admit(Some(EDGE), Some("alice"), CREATE).unwrap();
        assert_eq!(caller.principal().unwrap().as_str(), "alice");
        admit(Some(INGEST), None, JOIN).unwrap();

        let status = Status::from(admit(Some(EDGE), None, AUTHORIZE).unwrap_err());
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            status.message(),
            format!("service role `edge` may not call {AUTHORIZE}")
        );
        let status = Status::from(admit(Some(INGEST), None, CREATE).unwrap_err());
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert!(
            status.message().contains("`ingest`"),
            "{}",
            status.message()
        );
    }

    #[test]
    fn only_roles_acting_for_users_may_name_a_principal() {
        let status = Status::from(admit(Some(INGEST), Some("alice"), JOIN).unwrap_err());
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert!(
            status.message().contains("x-nova-principal"),
            "{}",
            status.message()
        );
        let caller = admit(Some(EDGE), Some(&"a".repeat(300)), CREATE).unwrap();
        assert!(matches!(
            caller.principal().unwrap_err(),
            Error::InvalidArgument { .. }
        ));
        let caller = admit(Some(ADMIN), None, CREATE).unwrap();
        assert!(matches!(
            caller.principal().unwrap_err(),
            Error::Unauthenticated(_)
        ));
    }

    #[test]
    fn the_client_address_is_believed_only_from_the_edge() {
        let mut h = headers(Some(EDGE), Some("alice"));
        h.insert(CLIENT_IP_HEADER, "203.0.113.7".parse().unwrap());
        let caller = auth().admit("test", CREATE, &h).unwrap();
        assert_eq!(caller.client_ip(), Some("203.0.113.7".parse().unwrap()));
        let mut h = headers(Some(ADMIN), Some("alice"));
        h.insert(CLIENT_IP_HEADER, "203.0.113.7".parse().unwrap());
        assert_eq!(auth().admit("test", CREATE, &h).unwrap().client_ip(), None);
        let mut h = headers(Some(EDGE), Some("alice"));
        h.insert(CLIENT_IP_HEADER, "not-an-address".parse().unwrap());
        assert_eq!(auth().admit("test", CREATE, &h).unwrap().client_ip(), None);
    }

    #[test]
    fn refusals_are_counted_by_role_service_and_reason() {
        let auth = auth();
        let _ = auth.admit("svc", AUTHORIZE, &headers(Some(EDGE), None));
        let _ = auth.admit("svc", JOIN, &headers(Some(INGEST), Some("bob")));
        let _ = auth.admit("svc", JOIN, &headers(Some("nope-nope-nope-nope"), None));
        let text = auth.metrics.render();
        for line in [
            r#"nova_streaming_grpc_auth_refusals_total{reason="method_not_allowed",role="edge",service="svc"} 1"#,
            r#"nova_streaming_grpc_auth_refusals_total{reason="principal_not_allowed",role="ingest",service="svc"} 1"#,
            r#"nova_streaming_grpc_auth_refusals_total{reason="unauthenticated",role="none",service="svc"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
