//! The optional allowlist of browser origins that may open WebSockets
//! (`NOVA_WS_ALLOWED_ORIGINS`). Browsers always send `Origin` on a WebSocket
//! handshake, so a page on another site cannot ride a viewer's browser; with the list
//! set, a handshake without `Origin` is refused too.

use axum::http::{HeaderMap, StatusCode, header};

use nova_runtime::ConfigError;

use crate::error::ApiError;

/// Origins (`scheme://host[:port]`, compared case-insensitively) allowed to open
/// WebSockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<String>);

/// The variable these origins come from.
const VAR: &str = "NOVA_WS_ALLOWED_ORIGINS";

impl AllowedOrigins {
    /// Parses a comma-separated list such as `https://watch.example.com,https://example.com`.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let list: Vec<String> = raw
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
            .collect();
        if let Some(bad) = list
            .iter()
            .find(|o| !(o.starts_with("http://") || o.starts_with("https://")) || o.contains('*'))
        {
            return Err(ConfigError::invalid(
                VAR,
                format!("{bad:?} is not an origin like https://example.com"),
            ));
        }
        if list.is_empty() {
            return Err(ConfigError::invalid(
                VAR,
                "lists no origin (unset it to allow any)",
            ));
        }
        Ok(Self(list))
    }

    /// Admits a handshake whose `Origin` is on the list; answers 403 otherwise.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let origin = headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(|o| o.trim_end_matches('/').to_ascii_lowercase());
        match origin {
            Some(origin) if self.0.contains(&origin) => Ok(()),
            _ => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "this origin may not open WebSockets on this edge",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_origin(origin: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(o) = origin {
            headers.insert(header::ORIGIN, o.parse().unwrap());
        }
        headers
    }

    #[test]
    fn only_listed_origins_pass() {
        let allowed =
            AllowedOrigins::parse(" https://Watch.example.com/ ,http://localhost:8080").unwrap();
        assert!(
            allowed
                .check(&with_origin(Some("https://watch.example.com")))
                .is_ok()
        );
        assert!(
            allowed
                .check(&with_origin(Some("http://localhost:8080")))
                .is_ok()
        );
        for refused in [
            Some("https://evil.example"),
            Some("https://watch.example.com.evil.example"),
            Some("http://watch.example.com"),
            Some("null"),
            None,
        ] {
            let err = allowed.check(&with_origin(refused)).unwrap_err();
            assert_eq!(err.status, StatusCode::FORBIDDEN, "{refused:?}");
        }
        for bad in ["", " , ", "watch.example.com", "https://*.example.com"] {
            assert!(AllowedOrigins::parse(bad).is_err(), "{bad:?}");
        }
    }
}
