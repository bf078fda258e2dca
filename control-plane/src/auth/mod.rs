//! Caller authentication: a service token in `authorization: Bearer …` metadata,
//! which names the calling service's [`Role`] and so the methods it may call, and the
//! principal the caller acts for in `x-nova-principal` (only from roles that act for
//! users). `tokens` holds the accepted tokens, `role` the allowlists, `guard` the
//! tower service in front of every nova service.

mod guard;
mod role;
mod tokens;

use std::net::IpAddr;

use tonic::Request;

pub use guard::{Authenticator, Guarded};
pub use role::Role;
pub use tokens::{ServiceTokens, TokenError};

use crate::error::Error;

/// Metadata key naming the principal (end user) a trusted caller acts for.
pub const PRINCIPAL_HEADER: &str = "x-nova-principal";
/// Metadata key carrying the end user's client address as the edge saw it; believed
/// only from the edge role.
pub const CLIENT_IP_HEADER: &str = "x-nova-client-ip";
/// Longest accepted principal.
const MAX_PRINCIPAL_LEN: usize = 256;

/// Why a principal was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    /// Empty, or longer than [`MAX_PRINCIPAL_LEN`].
    #[error("must be 1 to {MAX_PRINCIPAL_LEN} characters")]
    Length,
    /// Spaces, control characters or non-ASCII.
    #[error("must be printable ASCII without spaces")]
    Characters,
}

/// The principal a call acts for; the owner of the streams it creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal(String);

impl Principal {
    /// Validates a principal: 1 to 256 printable ASCII characters, no spaces. The
    /// error says what is wrong.
    pub fn parse(raw: &str) -> Result<Self, PrincipalError> {
        if raw.is_empty() || raw.len() > MAX_PRINCIPAL_LEN {
            return Err(PrincipalError::Length);
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(PrincipalError::Characters);
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
    /// The calling service's role.
    role: Role,
    /// The principal named in `x-nova-principal`, if any, or why it was refused.
    principal: Option<Result<Principal, PrincipalError>>,
    /// The end user's address from `x-nova-client-ip`, kept only from the edge role.
    client_ip: Option<IpAddr>,
}

/// Who makes a change, as the audit trail records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user the call acts for.
    pub principal: Principal,
    /// The calling service's role.
    pub role: Role,
    /// The end user's address as the edge saw it; `None` for calls not from the edge.
    pub client_ip: Option<IpAddr>,
}

impl Caller {
    /// Returns the calling service's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Returns the client address the edge forwarded, if any.
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }

    /// Returns who acts in this call: principal, role and client address; mutations
    /// need a principal.
    pub fn actor(&self) -> Result<Actor, Error> {
        Ok(Actor {
            principal: self.principal()?,
            role: self.role,
            client_ip: self.client_ip,
        })
    }

    /// Tells whether the call names a principal at all (valid or not).
    pub fn names_principal(&self) -> bool {
        self.principal.is_some()
    }

    /// Returns the calling principal; mutations need one.
    pub fn principal(&self) -> Result<Principal, Error> {
        match &self.principal {
            Some(Ok(p)) => Ok(p.clone()),
            Some(Err(reason)) => Err(Error::invalid(PRINCIPAL_HEADER, reason.to_string())),
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
