//! Dev tokens: HS256 JWTs minted for the local stack (`NOVA_DEV_JWT`).

use jsonwebtoken::{EncodingKey, Header, encode};

/// Mints an HS256 JWT for `sub`, valid for `ttl_s` seconds from now (claims `sub`,
/// `iat`, `exp`, `iss: nova-stack`).
pub fn mint_hs256(secret: &str, sub: &str, ttl_s: i64) -> anyhow::Result<String> {
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    )?;
    let claims =
        serde_json::json!({ "sub": sub, "iat": now, "exp": now + ttl_s, "iss": "nova-stack" });
    Ok(encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};

    use super::*;

    #[test]
    fn tokens_have_three_parts_and_the_claims() {
        let secret = "0123456789abcdef0123456789abcdef";
        let token = mint_hs256(secret, "demo", 60).unwrap();
        assert_eq!(token.split('.').count(), 3);
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&["nova-stack"]);
        let claims = decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(secret.as_bytes()),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["sub"], "demo");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            60
        );
    }
}
