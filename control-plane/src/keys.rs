//! Stream keys: generated from the OS random source, shown once, stored as SHA-256.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::{TryRngCore, rngs::OsRng};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of every stream key, so a leaked key is easy to grep for and revoke.
pub const KEY_PREFIX: &str = "sk_live_";
/// Random bytes in a key (256 bits).
const KEY_BYTES: usize = 32;
/// Length of a key: the prefix plus 43 base64url characters.
pub const KEY_LEN: usize = KEY_PREFIX.len() + 43;

/// A freshly generated stream key. Its `Debug` output hides the value.
pub struct StreamKey(String);

impl StreamKey {
    /// Generates a new key from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_BYTES];
        OsRng
            .try_fill_bytes(&mut bytes)
            .unwrap_or_else(|e| panic!("the OS random source failed: {e}"));
        Self(format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Returns the key; only for handing it to its owner once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Returns the SHA-256 of the key, the only form that is stored.
    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.0)
    }
}

impl std::fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamKey(..)")
    }
}

/// SHA-256 of a stream key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// Hashes a presented key.
    pub fn of(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    /// Compares with a stored hash in constant time.
    pub fn matches(&self, stored: &[u8]) -> bool {
        stored.len() == 32 && bool::from(self.0.ct_eq(stored))
    }
}

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHash(..)")
    }
}

/// Tells whether a presented string has the shape of a stream key (prefix, length,
/// alphabet), so garbage is refused before any database work.
pub fn looks_like_key(candidate: &str) -> bool {
    candidate.len() == KEY_LEN
        && candidate.starts_with(KEY_PREFIX)
        && candidate[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_well_formed_and_distinct() {
        let a = StreamKey::generate();
        let b = StreamKey::generate();
        assert!(looks_like_key(a.expose()), "{}", a.expose().len());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(format!("{a:?}"), "StreamKey(..)");
    }

    #[test]
    fn hashes_match_only_their_key() {
        let key = StreamKey::generate();
        let stored = key.hash().0;
        assert!(KeyHash::of(key.expose()).matches(&stored));
        assert!(!KeyHash::of("sk_live_other").matches(&stored));
        assert!(!KeyHash::of(key.expose()).matches(&stored[..31]));
    }

    #[test]
    fn malformed_keys_are_recognised() {
        assert!(!looks_like_key(""));
        assert!(!looks_like_key("sk_live_short"));
        let wrong_prefix = format!("pk_live_{}", "a".repeat(43));
        assert!(!looks_like_key(&wrong_prefix));
        let bad_char = format!("{KEY_PREFIX}{}!", "a".repeat(42));
        assert!(!looks_like_key(&bad_char));
    }
}
