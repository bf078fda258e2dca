//! P-256 key material: generation, PEM encodings, ES256 signing.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::{Engine, engine::general_purpose::STANDARD};

use crate::error::{Error, Result};

/// DER prefix of a P-256 SubjectPublicKeyInfo, followed by the 65-byte point.
const SPKI_P256_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A new key pair: PKCS#8 DER private key and uncompressed SEC1 public point.
pub struct Generated {
    /// PKCS#8 v1 DER of the private key.
    pub pkcs8: Vec<u8>,
    /// 65-byte uncompressed public point.
    pub public_key: Vec<u8>,
}

/// Generates a P-256 key pair.
pub fn generate() -> Result<Generated> {
    let failed = |_| Error::Internal("could not generate a P-256 key");
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(failed)?;
    let pkcs8 = pair.to_pkcs8v1().map_err(failed)?.as_ref().to_vec();
    Ok(Generated {
        pkcs8,
        public_key: pair.public_key().as_ref().to_vec(),
    })
}

/// Returns the SubjectPublicKeyInfo PEM of a 65-byte P-256 point.
pub fn public_pem(point: &[u8]) -> String {
    let mut der = SPKI_P256_PREFIX.to_vec();
    der.extend_from_slice(point);
    pem("PUBLIC KEY", &der)
}

/// Returns the PKCS#8 PEM of a private key.
pub fn private_pem(pkcs8: &[u8]) -> String {
    pem("PRIVATE KEY", pkcs8)
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_tokens_their_public_pem_verifies() {
        let key = generate().unwrap();
        assert_eq!(key.public_key.len(), 65);
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        let token = jsonwebtoken::encode(
            &header,
            &serde_json::json!({"sub": "s", "exp": 4_000_000_000_u64}),
            &jsonwebtoken::EncodingKey::from_ec_pem(private_pem(&key.pkcs8).as_bytes()).unwrap(),
        )
        .unwrap();
        let decoding =
            jsonwebtoken::DecodingKey::from_ec_pem(public_pem(&key.public_key).as_bytes()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.validate_aud = false;
        let data =
            jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
        assert_eq!(data.claims["sub"], "s");
        let raw = jsonwebtoken::DecodingKey::from_ec_der(&key.public_key);
        assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &raw, &validation).is_ok());
    }
}
