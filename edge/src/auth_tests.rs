//! Unit tests of the JWT verifier: several keys at once, for rotation without downtime.

use clap::Parser;
use jsonwebtoken::{EncodingKey, Header, encode};

use super::*;

const OLD: &str = "old-secret-0123456789abcdefghijklmnop";
const NEW: &str = "new-secret-0123456789abcdefghijklmnop";

/// Two RS256 public keys (their private halves were thrown away).
const RSA_PUBLIC: [&str; 2] = [
    "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAlNu2tP9TfPnN5+gmIZxD
oLO+2N2iyeC6g6x2K2VAqTKqJaxg6j0Q1TDI2IRjI3ssrXmK+Hh4tAcCaK1fdnYZ
SZJlPxJ2jWWCqYM3+yelnQWVU9PXwy6OBjwpi2n6fL1JchNbbWzLITabDcDw9qxE
HniXu+Q7ZZL2HI3US0dDRM0mbzL0qyTSAiAj71G+H7ry21sUdckVwQ4AM9hqDdKj
rIz53I5+S7GSkl4KGl6cNTUVl+3StCCHCpA9nE7KisGb8EcmQDDWuWqu/Oycftx9
IS9leUg0y7guMCT2hlD3dcpvPOKH3MAjuDX2NAOec1fzTh17iZDcpOJkgHnR4McH
/wIDAQAB
-----END PUBLIC KEY-----
",
    "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1EDQYkHqktHeaVIkT6xq
2CpUultCfG+ODb3x3gf1oLL0t0DOQ8HrwOXRE9p3zQdnlIIU3sV3W/J4NLqEmsJz
PnPO6ByjiXJAHif57gyJBX7pxCxG/XXaUOh7TtzzFa5TSRBfLV3XezxcxqIyuYKr
DZIW3bHQ+I0XiZAqoMunyNV+ASSKK55cv5WVitROBZhrxCCyCpvKcny352DWkWs3
XnwGVzGhYlAU4qwy0HYWJuWnj+oaX6lM1by+EdpoRvyHqamYtDaR68XSBD/EfnJP
6ywgu9g4BE0MNgj6xM4Np3OyMtc0b+XBM3RLOTLFGnwpGWkQAS6D59qjiXfbRa8G
8QIDAQAB
-----END PUBLIC KEY-----
",
];

fn edge_config(args: &[&str]) -> crate::config::Config {
    let mut all = vec!["nova-edge", "--service-token", "unit-test-service-token"];
    all.extend_from_slice(args);
    crate::config::Config::try_parse_from(all).unwrap()
}

/// Accepts the HS256 `secrets` (comma-separated) and nothing else.
fn hs256(secrets: &str) -> JwtVerifier {
    JwtVerifier::new(&JwtRules {
        hs256_secrets: Some(secrets),
        rs256_public_key: None,
        issuer: None,
        audience: None,
        max_lifetime: std::time::Duration::from_secs(86_400),
    })
    .unwrap()
}

fn token(secret: &str, sub: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({ "sub": sub, "iat": now, "exp": now + 600 });
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[test]
fn every_listed_hs256_secret_verifies_and_no_other() {
    let both = format!("{OLD}, {NEW}");
    edge_config(&["--jwt-hs256-secret", &both])
        .validate()
        .unwrap();
    let verifier = hs256(&both);
    assert_eq!(verifier.verify(&token(OLD, "alice")).unwrap(), "alice");
    assert_eq!(verifier.verify(&token(NEW, "bob")).unwrap(), "bob");
    let other = verifier
        .verify(&token("another-secret-0123456789abcdefghijk", "eve"))
        .unwrap_err();
    assert_eq!(other.message, "invalid bearer token");

    // Once the old secret is dropped, its tokens are refused.
    let verifier = hs256(NEW);
    assert!(verifier.verify(&token(OLD, "alice")).is_err());
    assert_eq!(verifier.verify(&token(NEW, "bob")).unwrap(), "bob");
}

#[test]
fn each_listed_hs256_secret_must_be_long_enough() {
    let short = format!("{NEW},short");
    let err = edge_config(&["--jwt-hs256-secret", &short])
        .validate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "NOVA_JWT_HS256_SECRET: needs at least 32 characters"
    );
    assert!(!err.to_string().contains(NEW), "the secret is never echoed");
}

#[test]
fn a_folder_of_rs256_public_keys_loads_every_pem_file() {
    let dir = tempfile::tempdir().unwrap();
    for (i, pem) in RSA_PUBLIC.iter().enumerate() {
        std::fs::write(dir.path().join(format!("key-{i}.pem")), pem).unwrap();
    }
    std::fs::write(dir.path().join("README"), "not a key").unwrap();
    assert_eq!(rs256_keys(dir.path()).unwrap().len(), 2);
    assert_eq!(rs256_keys(&dir.path().join("key-1.pem")).unwrap().len(), 1);

    std::fs::write(dir.path().join("broken.pem"), "not a key").unwrap();
    let err = rs256_keys(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("broken.pem") && err.contains("NOVA_JWT_RS256_PUBLIC_KEY"),
        "{err}"
    );
    let empty = tempfile::tempdir().unwrap();
    let err = rs256_keys(empty.path()).unwrap_err().to_string();
    assert!(err.contains("no *.pem file"), "{err}");
}

#[tokio::test]
async fn the_owner_extractor_needs_only_the_verifier() {
    use axum::{body::Body, http::Request};
    use tower::ServiceExt;

    // The router's whole state is the verifier: `Owner` asks for nothing else.
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|Owner(sub): Owner| async move { sub }),
        )
        .with_state(hs256(NEW));
    let request = |bearer: Option<String>| {
        let mut request = Request::get("/");
        if let Some(bearer) = bearer {
            request = request.header("authorization", bearer);
        }
        request.body(Body::empty()).unwrap()
    };
    let answer = app
        .clone()
        .oneshot(request(Some(format!("Bearer {}", token(NEW, "alice")))))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body = axum::body::to_bytes(answer.into_body(), 1024)
        .await
        .unwrap();
    assert_eq!(&body[..], b"alice");
    let answer = app.oneshot(request(None)).await.unwrap();
    assert_eq!(answer.status(), 401);
}
