//! The token rules one by one, with keys generated here: what a customer's backend
//! or an attacker could sign.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

/// Now, as jsonwebtoken's own checks of `exp` and `nbf` see it.
fn now() -> i64 {
    crate::playback::route::unix_now()
}

struct Signer {
    kid: &'static str,
    key: EncodingKey,
    point: Vec<u8>,
}

fn signer(kid: &'static str) -> Signer {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let der = pair.to_pkcs8v1().unwrap();
    Signer {
        kid,
        key: EncodingKey::from_ec_der(der.as_ref()),
        point: pair.public_key().as_ref().to_vec(),
    }
}

fn sign(s: &Signer, claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(s.kid.into());
    jsonwebtoken::encode(&header, claims, &s.key).unwrap()
}

fn claims(stream: Uuid) -> serde_json::Value {
    json!({"aud": AUDIENCE, "sub": stream.to_string(), "sid": "s-1", "iat": now(), "exp": now() + 60})
}

struct World {
    alice: Signer,
    bob: Signer,
    platform: Signer,
    stream: Uuid,
    keys: HashMap<String, Key>,
    streams: HashMap<Uuid, StreamRule>,
}

fn world() -> World {
    let (alice, bob, platform) = (signer("alice-key"), signer("bob-key"), signer("platform"));
    let mut keys = HashMap::new();
    for (s, owner) in [
        (&alice, Some("alice")),
        (&bob, Some("bob")),
        (&platform, None),
    ] {
        keys.insert(
            s.kid.to_owned(),
            Key {
                owner: owner.map(str::to_owned),
                decoding: DecodingKey::from_ec_der(&s.point),
            },
        );
    }
    let stream = Uuid::now_v7();
    let mut streams = HashMap::new();
    streams.insert(
        stream,
        StreamRule {
            owner: "alice".into(),
            signed: true,
            max_viewers: None,
        },
    );
    World {
        alice,
        bob,
        platform,
        stream,
        keys,
        streams,
    }
}

impl World {
    fn check(&self, token: &str) -> Result<Grant, Refusal> {
        self.check_from(token, None)
    }

    fn check_from(&self, token: &str, client: Option<&str>) -> Result<Grant, Refusal> {
        let client = client.map(|c| c.parse().unwrap());
        verify(token, self.stream, &self.keys, &self.streams, client, now())
    }
}

#[test]
fn the_owner_s_key_and_the_platform_key_sign_for_the_stream() {
    let w = world();
    let grant = w.check(&sign(&w.alice, &claims(w.stream))).unwrap();
    assert_eq!(grant.session, "s-1");
    assert!(w.check(&sign(&w.platform, &claims(w.stream))).is_ok());
    let mut no_sid = claims(w.stream);
    no_sid.as_object_mut().unwrap().remove("sid");
    let a = w.check(&sign(&w.alice, &no_sid)).unwrap();
    assert_eq!(
        a.session.len(),
        32,
        "a digest of the token's signed part stands for the session"
    );
}

#[test]
fn every_forgery_is_refused_with_its_reason() {
    let w = world();
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims(w.stream);
        f(&mut c);
        sign(&w.alice, &c)
    };
    let other = Uuid::now_v7();
    let good = sign(&w.alice, &claims(w.stream));
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged_body = URL_SAFE_NO_PAD.encode(claims(other).to_string());
    parts[1] = &forged_body;
    let tampered = parts.join(".");
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"alice-key"}"#),
        URL_SAFE_NO_PAD.encode(claims(w.stream).to_string())
    );
    let hs256 = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("alice-key".into());
        jsonwebtoken::encode(
            &header,
            &claims(w.stream),
            &EncodingKey::from_secret(&w.alice.point),
        )
        .unwrap()
    };
    let unknown = {
        let stranger = signer("stranger");
        sign(&stranger, &claims(w.stream))
    };
    let cases: Vec<(&str, String, Refusal)> = vec![
        (
            "another owner's key",
            sign(&w.bob, &claims(w.stream)),
            Refusal::ForeignKey,
        ),
        (
            "another stream",
            with(&|c| c["sub"] = json!(other.to_string())),
            Refusal::OtherStream,
        ),
        (
            "expired",
            with(&|c| c["exp"] = json!(now() - 60)),
            Refusal::Expired,
        ),
        (
            "no exp",
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            Refusal::Invalid,
        ),
        (
            "no aud",
            with(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
            Refusal::Invalid,
        ),
        (
            "other aud",
            with(&|c| c["aud"] = json!("nova-edge")),
            Refusal::Invalid,
        ),
        (
            "lives 25 h",
            with(&|c| c["exp"] = json!(now() + 25 * 3600)),
            Refusal::Lifetime,
        ),
        (
            "issued in the future",
            with(&|c| {
                c["iat"] = json!(now() + 600);
                c["exp"] = json!(now() + 700);
            }),
            Refusal::Lifetime,
        ),
        (
            "not yet valid",
            with(&|c| c["nbf"] = json!(now() + 600)),
            Refusal::Invalid,
        ),
        (
            "bad sid",
            with(&|c| c["sid"] = json!("a/b")),
            Refusal::Invalid,
        ),
        ("tampered", tampered, Refusal::Invalid),
        ("alg none", none, Refusal::Invalid),
        ("HS256 with the public key", hs256, Refusal::Invalid),
        ("unknown key", unknown, Refusal::UnknownKey),
        ("garbage", "a.b.c".into(), Refusal::Invalid),
    ];
    for (name, token, wanted) in cases {
        assert_eq!(w.check(&token).map(|_| ()), Err(wanted), "{name}");
    }
    let unknown_stream = verify(&good, other, &w.keys, &w.streams, None, now());
    assert_eq!(unknown_stream.unwrap_err(), Refusal::UnknownStream);
}

/// The order n of P-256's base point, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// Returns `token` with its signature `(r, s)` replaced by `(r, n - s)`, which
/// verifies as well.
fn malleated(token: &str) -> String {
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    assert_eq!(sig.len(), 64);
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(P256_N[i]) - i16::from(sig[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        sig[32 + i] = (d + 256 * borrow) as u8;
    }
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[test]
fn a_malleated_signature_is_the_same_session() {
    let w = world();
    let mut no_sid = claims(w.stream);
    no_sid.as_object_mut().unwrap().remove("sid");
    let token = sign(&w.alice, &no_sid);
    let twin = malleated(&token);
    assert_ne!(token, twin);
    let (a, b) = (w.check(&token).unwrap(), w.check(&twin).unwrap());
    assert_eq!(a.session, b.session, "one signed token, one session");
    // With a sid the sid is the session, whatever the signature.
    let with_sid = sign(&w.alice, &claims(w.stream));
    assert_eq!(w.check(&malleated(&with_sid)).unwrap().session, "s-1");
}

#[test]
fn a_token_naming_networks_plays_only_from_them() {
    let w = world();
    let with_nets = |nets: serde_json::Value| {
        let mut c = claims(w.stream);
        c["nets"] = nets;
        sign(&w.alice, &c)
    };
    let token = with_nets(json!(["203.0.113.0/24", "2001:db8::/32", "198.51.100.7"]));
    for inside in [
        "203.0.113.9",
        "::ffff:203.0.113.9",
        "2001:db8::42",
        "198.51.100.7",
    ] {
        let grant = w.check_from(&token, Some(inside));
        assert_eq!(grant.map(|g| g.session), Ok("s-1".to_owned()), "{inside}");
    }
    for outside in ["203.0.114.1", "198.51.100.8", "2001:db9::1", "127.0.0.1"] {
        assert_eq!(
            w.check_from(&token, Some(outside)).map(|_| ()),
            Err(Refusal::Network),
            "{outside}"
        );
    }
    assert_eq!(
        w.check(&token).map(|_| ()),
        Err(Refusal::Network),
        "an unknown client address does not pass"
    );
    // Without `nets` any client plays, known or not.
    let open = sign(&w.alice, &claims(w.stream));
    assert!(w.check_from(&open, Some("192.0.2.1")).is_ok());
    assert!(w.check(&open).is_ok());
    // A list that says nothing usable is an invalid token.
    for bad in [
        json!([]),
        json!(["203.0.113.0/33"]),
        json!(["example.com"]),
        json!("203.0.113.0/24"),
        json!([24]),
    ] {
        assert_eq!(
            w.check_from(&with_nets(bad.clone()), Some("203.0.113.9"))
                .map(|_| ()),
            Err(Refusal::Invalid),
            "{bad}"
        );
    }
}
