//! Token checks against the rules a verifier holds: ES256 only, a known key whose
//! owner owns the stream (or the platform key), the right stream, the audience,
//! times and lifetime, and the client's network when the token names some. No call
//! leaves the process.

use std::{collections::HashMap, net::IpAddr};

use ipnet::IpNet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The `aud` every playback token must carry.
pub const AUDIENCE: &str = "nova-playback";
/// Longest lifetime accepted (`exp - iat`, or `exp - now` without `iat`), seconds.
pub const MAX_LIFETIME: i64 = 24 * 3600;
/// Clock skew tolerated, seconds.
pub const LEEWAY: u64 = 5;

/// A key a verifier checks signatures with.
#[derive(Clone)]
pub struct Key {
    /// Owner; `None` for the platform key, which signs for any stream.
    pub owner: Option<String>,
    /// The public key.
    pub decoding: DecodingKey,
}

/// A stream a verifier knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRule {
    /// Owner.
    pub owner: String,
    /// Whether playback needs a token.
    pub signed: bool,
    /// Most concurrent viewers; `None` for no cap.
    pub max_viewers: Option<i64>,
}

/// Why playback was refused (a fixed set: the `reason` label and header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The rules were never loaded: nothing is served.
    NotReady,
    /// A plain URL of a signed stream.
    TokenRequired,
    /// The path is not a media path.
    Malformed,
    /// The token component is too long.
    Oversized,
    /// The token does not name a known key (never existed, or deleted).
    UnknownKey,
    /// The stream is not one the rules know.
    UnknownStream,
    /// The key's owner does not own the stream.
    ForeignKey,
    /// The token is for another stream.
    OtherStream,
    /// The token has expired.
    Expired,
    /// The token lives longer than allowed, or is issued in the future.
    Lifetime,
    /// Bad signature, algorithm, audience or claims.
    Invalid,
    /// The stream has as many viewers as its cap allows (answered 429).
    Capacity,
    /// An asset file of an asset that is not READY (unknown, preparing, deleted).
    UnknownAsset,
    /// The token names networks (`nets`) and the client is in none of them, or its
    /// address is unknown.
    Network,
}

impl Refusal {
    /// Returns the refusal's name, as headers and metrics show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotReady => "not_ready",
            Self::TokenRequired => "token_required",
            Self::Malformed => "malformed",
            Self::Oversized => "oversized",
            Self::UnknownKey => "unknown_key",
            Self::UnknownStream => "unknown_stream",
            Self::ForeignKey => "foreign_key",
            Self::OtherStream => "other_stream",
            Self::Expired => "expired",
            Self::Lifetime => "lifetime",
            Self::Invalid => "invalid",
            Self::Capacity => "capacity",
            Self::UnknownAsset => "unknown_asset",
            Self::Network => "network",
        }
    }
}

/// A granted playback: the viewer session the token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The `sid` claim, or a digest of the token's signed part when it has none.
    pub session: String,
    /// The stream's viewer cap, if any.
    pub max_viewers: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    iat: Option<i64>,
    sid: Option<String>,
    /// Networks the token plays from (CIDR blocks); absent for any.
    nets: Option<Vec<String>>,
}

/// Checks `token` for `stream` with `keys` and `streams`, presented by `client`
/// (the viewer's address as the origin saw it; `None` when unknown, which a
/// token naming networks does not pass).
pub fn verify(
    token: &str,
    stream: Uuid,
    keys: &HashMap<String, Key>,
    streams: &HashMap<Uuid, StreamRule>,
    client: Option<IpAddr>,
    now: i64,
) -> Result<Grant, Refusal> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::Invalid)?;
    if header.alg != Algorithm::ES256 {
        return Err(Refusal::Invalid);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| keys.get(kid))
        .ok_or(Refusal::UnknownKey)?;
    let rule = streams.get(&stream).ok_or(Refusal::UnknownStream)?;
    if key.owner.as_deref().is_some_and(|o| o != rule.owner) {
        return Err(Refusal::ForeignKey);
    }
    let mut validation = Validation::new(Algorithm::ES256);
    validation.leeway = LEEWAY;
    validation.validate_nbf = true;
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "sub", "aud"]);
    let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => Refusal::Expired,
            _ => Refusal::Invalid,
        })?
        .claims;
    if claims.sub != stream.hyphenated().to_string() {
        return Err(Refusal::OtherStream);
    }
    let leeway = LEEWAY as i64;
    if claims.iat.is_some_and(|iat| iat > now + leeway)
        || claims.exp - claims.iat.unwrap_or(now) > MAX_LIFETIME + leeway
    {
        return Err(Refusal::Lifetime);
    }
    if let Some(nets) = &claims.nets {
        check_network(nets, client)?;
    }
    let session = match claims.sid {
        Some(sid) if valid_session(&sid) => sid,
        Some(_) => return Err(Refusal::Invalid),
        None => fallback_session(token),
    };
    Ok(Grant {
        session,
        max_viewers: rule.max_viewers,
    })
}

/// Checks that `client` is in one of `nets` (each a CIDR block or an address; an
/// IPv4-mapped IPv6 client is taken as its IPv4 address). A list that is empty or
/// holds anything else is an invalid token, not a refused network.
fn check_network(nets: &[String], client: Option<IpAddr>) -> Result<(), Refusal> {
    if nets.is_empty() {
        return Err(Refusal::Invalid);
    }
    let mut parsed = Vec::with_capacity(nets.len());
    for raw in nets {
        let net = raw
            .parse::<IpNet>()
            .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| Refusal::Invalid)?;
        parsed.push(net);
    }
    let client = client.ok_or(Refusal::Network)?.to_canonical();
    if parsed.iter().any(|net| net.contains(&client)) {
        Ok(())
    } else {
        Err(Refusal::Network)
    }
}

/// Returns the session of a verified token without `sid`: a digest of its signed
/// part (`header.payload`) only. An ECDSA signature is malleable (`(r, s)` and
/// `(r, n - s)` both verify, and ES256 does not require the low `s`, so neither
/// form can be refused without refusing signers that do not normalise), so the
/// signature must not make one token two sessions.
fn fallback_session(token: &str) -> String {
    let signed = token.rsplit_once('.').map_or(token, |(signed, _)| signed);
    let digest = Sha256::digest(signed.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Tells whether `sid` is 1 to 64 characters of `A-Z a-z 0-9 _ -`.
fn valid_session(sid: &str) -> bool {
    !sid.is_empty()
        && sid.len() <= 64
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
