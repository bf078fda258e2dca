//! TLS to PostgreSQL, configured the way libpq users expect: `sslmode` and
//! `sslrootcert` in the connection URL.
//!
//! | `sslmode` | encrypts | verifies the certificate chain | verifies the host name |
//! |---|---|---|---|
//! | `disable` | no | – | – |
//! | `allow`, `prefer` (default) | if the server offers TLS | no | no |
//! | `require` | yes | only when `sslrootcert` is given (as libpq) | no |
//! | `verify-ca` | yes | yes | no |
//! | `verify-full` | yes | yes | yes |
//!
//! The chain is checked against `sslrootcert` (a PEM file) or, without it or with
//! `sslrootcert=system`, the system's trust store (`SSL_CERT_FILE` / `SSL_CERT_DIR`
//! are honoured). Only URLs (`postgres://…`) carry these options; key=value strings go
//! to tokio-postgres as they are. The rest of the URL is passed on byte for byte.
//!
//! Unlike libpq's `prefer`, a server that offers TLS but fails the handshake is an
//! error, not a fall-back to plaintext.

use std::{path::PathBuf, sync::Arc};

use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::ConfigError;

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Nothing: the connection is encrypted, not authenticated (libpq's `require`).
    Nothing,
    /// The chain up to a trusted root, not the host name.
    Chain,
    /// The chain and the host name.
    Full,
}

/// A PostgreSQL target: the URL tokio-postgres understands, and how to secure it.
#[derive(Clone)]
pub struct Target {
    /// The URL without the options only this module reads.
    pub url: String,
    /// The TLS connector; `None` for `sslmode=disable`.
    pub tls: Option<MakeRustlsConnect>,
    /// How much is verified, for logs and tests.
    pub verify: Option<Verify>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("tls", &self.tls.is_some())
            .field("verify", &self.verify)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Reads `sslmode` and `sslrootcert` from `url`. Errors name the option, never
    /// the URL (it may hold a password).
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
            return Ok(Self {
                url: url.to_owned(),
                tls: Some(connector(Verify::Nothing, None)?),
                verify: Some(Verify::Nothing),
            });
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let decode = |raw: &str| {
            percent_encoding::percent_decode_str(raw)
                .decode_utf8()
                .map(|v| v.into_owned())
                .map_err(|_| bad("an ssl option is not valid UTF-8"))
        };
        let mut mode = "prefer".to_owned();
        let mut root: Option<PathBuf> = None;
        let mut kept: Vec<String> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match decode(key)?.as_str() {
                "sslmode" => mode = decode(value)?,
                "sslrootcert" => {
                    let value = decode(value)?;
                    root = (value != "system").then(|| PathBuf::from(value));
                }
                _ => kept.push(pair.to_owned()),
            }
        }
        let (wire_mode, verify) = match mode.as_str() {
            "disable" => ("disable", None),
            "allow" | "prefer" => ("prefer", Some(Verify::Nothing)),
            "require" if root.is_some() => ("require", Some(Verify::Chain)),
            "require" => ("require", Some(Verify::Nothing)),
            "verify-ca" => ("require", Some(Verify::Chain)),
            "verify-full" => ("require", Some(Verify::Full)),
            _ => {
                return Err(bad(
                    "sslmode must be disable, allow, prefer, require, verify-ca or verify-full",
                ));
            }
        };
        kept.push(format!("sslmode={wire_mode}"));
        let tls = verify
            .map(|verify| connector(verify, root.as_deref()))
            .transpose()?;
        Ok(Self {
            url: format!("{base}?{}", kept.join("&")),
            tls,
            verify,
        })
    }
}

/// A refused `NOVA_DATABASE_URL` (never echoing it: it may hold a password).
fn bad(reason: impl Into<String>) -> ConfigError {
    ConfigError::invalid("NOVA_DATABASE_URL", reason)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn connector(
    verify: Verify,
    root: Option<&std::path::Path>,
) -> Result<MakeRustlsConnect, ConfigError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS set-up: {e}")))?;
    let config = match verify {
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
            .with_no_client_auth(),
        Verify::Chain | Verify::Full => {
            let roots = Arc::new(roots(root)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| bad(format!("sslrootcert: {e}")))?;
            if verify == Verify::Full {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyName(webpki)))
                    .with_no_client_auth()
            }
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

fn roots(file: Option<&std::path::Path>) -> Result<RootCertStore, ConfigError> {
    let mut store = RootCertStore::empty();
    match file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| bad(format!("sslrootcert {}: {e}", path.display())))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(bad(format!(
                    "sslrootcert {} holds no certificate",
                    path.display()
                )));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(bad(
                    "no trusted roots in the system store; give sslrootcert",
                ));
            }
        }
    }
    Ok(store)
}

/// Accepts any certificate but still checks the handshake signatures (libpq's
/// `require`: encrypted, not authenticated).
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Checks the chain like WebPKI but accepts any host name (libpq's `verify-ca`).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn query(url: &str) -> String {
        url.split_once('?')
            .map(|(_, q)| q.to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn libpq_modes_map_to_what_tokio_postgres_reads() {
        let plain = Target::parse("postgres://u:p@db:5432/nova").unwrap();
        assert_eq!(query(&plain.url), "sslmode=prefer");
        assert_eq!(plain.verify, Some(Verify::Nothing));

        let off = Target::parse("postgres://db/nova?sslmode=disable").unwrap();
        assert!(off.tls.is_none() && off.verify.is_none());

        let full = Target::parse("postgresql://db/nova?application_name=nova&sslmode=verify-full")
            .unwrap();
        assert_eq!(query(&full.url), "application_name=nova&sslmode=require");
        assert_eq!(full.verify, Some(Verify::Full));

        let ca = Target::parse("postgres://db/nova?sslmode=verify-ca").unwrap();
        assert_eq!(ca.verify, Some(Verify::Chain));
    }

    #[test]
    fn everything_but_the_ssl_options_passes_through_byte_for_byte() {
        for (given, expected) in [
            (
                "postgres://u:p%40ss%20w@db/nova?options=-c%20search_path%3Dapp&sslmode=require",
                "postgres://u:p%40ss%20w@db/nova?options=-c%20search_path%3Dapp&sslmode=require",
            ),
            (
                "postgres://u:pw@h1:5432,h2:5433/nova?target_session_attrs=read-write",
                "postgres://u:pw@h1:5432,h2:5433/nova?target_session_attrs=read-write&sslmode=prefer",
            ),
            (
                "postgresql://[::1]:5432/my%20db?sslrootcert=system&sslmode=verify-full&application_name=a+b",
                "postgresql://[::1]:5432/my%20db?application_name=a+b&sslmode=require",
            ),
        ] {
            let url = Target::parse(given)
                .unwrap_or_else(|e| panic!("{given}: {e}"))
                .url;
            assert_eq!(url, expected);
            assert!(
                tokio_postgres::Config::from_str(&url).is_ok(),
                "tokio-postgres reads {url}"
            );
        }
    }

    #[test]
    fn system_roots_can_be_named() {
        let t = Target::parse("postgres://db/nova?sslmode=verify-full&sslrootcert=system").unwrap();
        assert_eq!(t.verify, Some(Verify::Full));
    }

    #[test]
    fn bad_options_are_named_without_echoing_the_url() {
        let err = Target::parse("postgres://u:hunter2@db/nova?sslmode=sometimes")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sslmode") && !err.contains("hunter2"), "{err}");
        let err =
            Target::parse("postgres://u:hunter2@db/nova?sslmode=verify-full&sslrootcert=/nope.pem")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("sslrootcert") && !err.contains("hunter2"),
            "{err}"
        );
    }
}
