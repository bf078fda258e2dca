//! The service tokens the control plane accepts, one set per [`Role`], kept only as
//! SHA-256 hashes and matched in constant time.

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::Role;
use crate::config::Secret;

use nova_runtime::MIN_TOKEN_LEN;

/// Why the configured service tokens are unusable. Messages name the variable, never
/// a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The variable is required to serve and is not set.
    #[error("{0} is required to serve (only --migrate-only runs without it)")]
    Missing(&'static str),
    /// The variable is set but holds no token.
    #[error("{0}: no token given")]
    Empty(&'static str),
    /// A token is shorter than [`MIN_TOKEN_LEN`].
    #[error("{0}: every token needs at least {MIN_TOKEN_LEN} characters")]
    TooShort(&'static str),
    /// The same token is configured for two roles (or twice), so a caller's role
    /// would be ambiguous.
    #[error("{0} and {1} share a token: give each service its own")]
    Shared(&'static str, &'static str),
}

/// Accepted tokens: the hash of each, with its role.
#[derive(Clone)]
pub struct ServiceTokens {
    /// SHA-256 of each token and the role it grants.
    entries: Vec<([u8; 32], Role)>,
}

impl ServiceTokens {
    /// Parses the comma-separated token lists of each role (several per role allow a
    /// rotation without downtime). The admin list is required; the others may be
    /// absent.
    pub fn parse(
        admin: &Secret,
        edge: Option<&Secret>,
        ingest: Option<&Secret>,
    ) -> Result<Self, TokenError> {
        let mut entries: Vec<([u8; 32], Role)> = Vec::new();
        for (role, raw) in [
            (Role::Admin, Some(admin)),
            (Role::Edge, edge),
            (Role::Ingest, ingest),
        ] {
            let Some(raw) = raw else { continue };
            let var = role.variable();
            let tokens: Vec<&str> = raw
                .expose()
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect();
            if tokens.is_empty() {
                return Err(TokenError::Empty(var));
            }
            for token in tokens {
                if token.chars().count() < MIN_TOKEN_LEN {
                    return Err(TokenError::TooShort(var));
                }
                let hash = digest(token);
                if let Some((_, other)) = entries.iter().find(|(known, _)| *known == hash) {
                    return Err(TokenError::Shared(other.variable(), var));
                }
                entries.push((hash, role));
            }
        }
        Ok(Self { entries })
    }

    /// Returns the role of `presented`, or `None` for an unknown token. Every known
    /// token is compared, in constant time, whatever matches.
    pub fn role_of(&self, presented: &str) -> Option<Role> {
        let presented = digest(presented);
        let mut found = 0u8;
        for (known, role) in &self.entries {
            let code = Role::ALL
                .iter()
                .position(|r| r == role)
                .map_or(0, |i| i as u8 + 1);
            found.conditional_assign(&code, known.ct_eq(&presented));
        }
        found
            .checked_sub(1)
            .and_then(|i| Role::ALL.get(usize::from(i)).copied())
    }
}

impl std::fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = |role| self.entries.iter().filter(|(_, r)| *r == role).count();
        f.debug_struct("ServiceTokens")
            .field("admin", &count(Role::Admin))
            .field("edge", &count(Role::Edge))
            .field("ingest", &count(Role::Ingest))
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: &str = "admin-token-0123456789";
    const EDGE: &str = "edge-token-0123456789";
    const INGEST: &str = "ingest-token-0123456789";

    #[test]
    fn each_token_maps_to_its_role() {
        let tokens = ServiceTokens::parse(
            &Secret::from(format!("{ADMIN}, admin-two-0123456789").as_str()),
            Some(&Secret::from(EDGE)),
            Some(&Secret::from(INGEST)),
        )
        .unwrap();
        assert_eq!(tokens.role_of(ADMIN), Some(Role::Admin));
        assert_eq!(tokens.role_of("admin-two-0123456789"), Some(Role::Admin));
        assert_eq!(tokens.role_of(EDGE), Some(Role::Edge));
        assert_eq!(tokens.role_of(INGEST), Some(Role::Ingest));
        assert_eq!(tokens.role_of("unknown-token-0123456789"), None);
        assert_eq!(tokens.role_of(""), None);
    }

    #[test]
    fn bad_token_lists_name_the_variable_never_the_token() {
        let err = ServiceTokens::parse(&Secret::from("short"), None, None).unwrap_err();
        assert_eq!(err, TokenError::TooShort("NOVA_SERVICE_TOKEN"));
        assert!(!err.to_string().contains("short"), "{err}");
        let err = ServiceTokens::parse(&Secret::from(ADMIN), Some(&Secret::from("tiny")), None)
            .unwrap_err();
        assert_eq!(err, TokenError::TooShort("NOVA_EDGE_SERVICE_TOKEN"));
        let err = ServiceTokens::parse(&Secret::from(ADMIN), None, Some(&Secret::from(" , ")))
            .unwrap_err();
        assert_eq!(err, TokenError::Empty("NOVA_INGEST_SERVICE_TOKEN"));
        let err = ServiceTokens::parse(&Secret::from(ADMIN), None, Some(&Secret::from(ADMIN)))
            .unwrap_err();
        assert_eq!(
            err,
            TokenError::Shared("NOVA_SERVICE_TOKEN", "NOVA_INGEST_SERVICE_TOKEN")
        );
        assert!(!err.to_string().contains(ADMIN), "{err}");
    }
}
