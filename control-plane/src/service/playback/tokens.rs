//! Playback tokens: their claims, limits and the URLs that carry them.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The `aud` every playback token carries, so no other JWT is taken for one.
pub const AUDIENCE: &str = "nova-playback";
/// Lifetime of a token when the caller asks for none, seconds.
pub const DEFAULT_TTL_SECONDS: i64 = 3600;
/// Longest lifetime a token may have (`exp - iat`), seconds.
pub const MAX_TTL_SECONDS: i64 = 24 * 3600;
/// Longest session id, characters.
pub const MAX_SESSION_ID: usize = 64;
/// Most networks one token may allow.
pub const MAX_NETWORKS: usize = 16;

/// Claims of a playback token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// The stream id (bare UUID) the token plays.
    pub sub: String,
    /// Viewer session the token stands for.
    pub sid: String,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Networks (CIDR blocks) the token plays from; empty (and left out) for any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<String>,
}

/// Checks a session id: 1 to 64 characters of `A-Z a-z 0-9 _ -`.
pub fn validate_session_id(field: &'static str, sid: &str) -> Result<()> {
    let ok = !sid.is_empty()
        && sid.len() <= MAX_SESSION_ID
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            "must be 1 to 64 characters of A-Z a-z 0-9 _ -",
        ))
    }
}

/// Checks the networks a token may play from (CIDR blocks or single addresses, at
/// most [`MAX_NETWORKS`]); returns them normalised (`203.0.113.7/24` becomes
/// `203.0.113.0/24`, an address `203.0.113.7/32`), duplicates removed.
pub fn networks(field: &'static str, requested: &[String]) -> Result<Vec<String>> {
    if requested.len() > MAX_NETWORKS {
        return Err(Error::invalid(
            field,
            format!("at most {MAX_NETWORKS} networks"),
        ));
    }
    let mut nets: Vec<String> = Vec::with_capacity(requested.len());
    for raw in requested {
        let net = raw
            .parse::<IpNet>()
            .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| {
                Error::invalid(
                    field,
                    "each must be a CIDR block (203.0.113.0/24, 2001:db8::/32) or an address",
                )
            })?
            .trunc()
            .to_string();
        if !nets.contains(&net) {
            nets.push(net);
        }
    }
    Ok(nets)
}

/// Checks a requested lifetime; `None` means the default.
pub fn ttl_seconds(requested: Option<i64>) -> Result<i64> {
    match requested {
        None => Ok(DEFAULT_TTL_SECONDS),
        Some(s) if (1..=MAX_TTL_SECONDS).contains(&s) => Ok(s),
        Some(_) => Err(Error::invalid(
            "ttl",
            format!("must be between 1 second and {MAX_TTL_SECONDS} seconds"),
        )),
    }
}

/// Returns `plain` (`<origin>/hls/<id>.m3u8`) with the token as a path component
/// before the file name (`<origin>/hls/t/<token>/<id>.m3u8`), so the relative segment
/// names in the playlist keep it. Empty stays empty.
pub fn tokenized_url(plain: &str, token: &str) -> String {
    match plain.rsplit_once('/') {
        Some((dir, file)) if !plain.is_empty() => format!("{dir}/t/{token}/{file}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_the_token_before_the_file_name() {
        assert_eq!(
            tokenized_url("http://o:8088/hls/abc.m3u8", "T"),
            "http://o:8088/hls/t/T/abc.m3u8"
        );
        assert_eq!(
            tokenized_url("https://cdn/x/dash/abc.mpd", "T"),
            "https://cdn/x/dash/t/T/abc.mpd"
        );
        assert_eq!(tokenized_url("", "T"), "");
    }

    #[test]
    fn session_ids_and_lifetimes_are_bounded() {
        assert!(validate_session_id("s", "page-1_A").is_ok());
        for bad in ["", "a/b", "a.b", "é", &"x".repeat(65)] {
            assert!(validate_session_id("s", bad).is_err(), "{bad}");
        }
        assert_eq!(ttl_seconds(None).unwrap(), 3600);
        assert_eq!(ttl_seconds(Some(86_400)).unwrap(), 86_400);
        assert!(ttl_seconds(Some(86_401)).is_err());
        assert!(ttl_seconds(Some(0)).is_err());
    }

    #[test]
    fn networks_are_cidr_blocks_or_addresses_normalised() {
        let given: Vec<String> = [
            "203.0.113.7/24",
            "198.51.100.9",
            "2001:db8::1/32",
            "203.0.113.0/24",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(
            networks("n", &given).unwrap(),
            ["203.0.113.0/24", "198.51.100.9/32", "2001:db8::/32"]
        );
        assert_eq!(networks("n", &[]).unwrap(), Vec::<String>::new());
        for bad in ["", "10.0.0.0/33", "example.com", "10.0.0.0/8 ", "::/129"] {
            assert!(networks("n", &[bad.to_owned()]).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..17).map(|i| format!("10.0.{i}.0/24")).collect();
        assert!(networks("n", &many).is_err());
        assert!(networks("n", &many[..16]).is_ok());
    }

    #[test]
    fn claims_leave_nets_out_when_any_network_may_play() {
        let mut claims = Claims {
            aud: AUDIENCE.into(),
            sub: "s".into(),
            sid: "v".into(),
            iat: 1,
            exp: 2,
            nets: Vec::new(),
        };
        assert!(!serde_json::to_string(&claims).unwrap().contains("nets"));
        claims.nets = vec!["10.0.0.0/8".into()];
        assert!(
            serde_json::to_string(&claims)
                .unwrap()
                .contains(r#""nets":["10.0.0.0/8"]"#)
        );
    }
}
