//! Pages of the webhook listings: the page size asked for, and opaque page tokens
//! holding the last item's id, bound to the listing they came from.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    service::{
        streams::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE},
        webhooks::Page,
    },
};

/// Returns the page size a request asks for.
pub fn page_limit(page_size: i32) -> Result<i64> {
    match i64::from(page_size) {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
        _ => Err(Error::invalid(
            "page_size",
            format!("must be between 0 and {MAX_PAGE_SIZE}"),
        )),
    }
}

/// Cuts `rows` (read with one extra) to a page of `limit`.
pub fn page<R, T: From<R>>(
    mut rows: Vec<R>,
    limit: i64,
    fingerprint: [u8; 8],
    key: impl Fn(&R) -> Uuid,
) -> Page<T> {
    let next_page_token = if rows.len() as i64 > limit {
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        rows.last()
            .map(|last| encode_token(key(last), fingerprint))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Page {
        items: rows.into_iter().map(T::from).collect(),
        next_page_token,
    }
}

/// Eight bytes identifying a listing, so a token is not reused with another one.
pub fn fingerprint(parts: &[&[u8]]) -> [u8; 8] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// Encodes the token of the page after item `id` of the listing `fingerprint`.
fn encode_token(id: Uuid, fingerprint: [u8; 8]) -> String {
    let mut raw = Vec::with_capacity(24);
    raw.extend_from_slice(id.as_bytes());
    raw.extend_from_slice(&fingerprint);
    URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes a page token of `method`; empty means the first page.
pub fn decode_token(token: &str, fingerprint: [u8; 8], method: &str) -> Result<Option<Uuid>> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || Error::invalid("page_token", format!("not a token returned by {method}"));
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    if raw.len() != 24 || raw[16..] != fingerprint {
        return Err(invalid());
    }
    Uuid::from_slice(&raw[..16])
        .map(Some)
        .map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_belong_to_their_listing() {
        let id = Uuid::now_v7();
        let fp = fingerprint(&[b"webhooks", b"alice"]);
        let token = encode_token(id, fp);
        assert_eq!(decode_token(&token, fp, "M").unwrap(), Some(id));
        assert_eq!(decode_token("", fp, "M").unwrap(), None);
        assert!(decode_token(&token, fingerprint(&[b"webhooks", b"bob"]), "M").is_err());
        assert!(decode_token("garbage!", fp, "M").is_err());
    }
}
