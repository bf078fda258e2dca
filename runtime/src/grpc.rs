//! What every gRPC client of ours needs: an endpoint (TLS for `https://`) and the
//! service token on each call.

use std::path::Path;

use crate::ConfigError;

use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    transport::{Certificate, ClientTlsConfig, Endpoint},
};

/// An endpoint for the control plane at `url`. `https://` speaks TLS, verified
/// against `ca` (a PEM file) or, without it, the system's trust store; `http://` is
/// plaintext. Errors name the variable (`NOVA_CONTROL_PLANE_URL` / `_CA`).
pub fn endpoint(url: &str, ca: Option<&Path>) -> Result<Endpoint, ConfigError> {
    const URL: &str = "NOVA_CONTROL_PLANE_URL";
    const CA: &str = "NOVA_CONTROL_PLANE_CA";
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| ConfigError::invalid(URL, format!("not a URL ({e})")))?;
    if endpoint.uri().scheme_str() != Some("https") {
        if ca.is_some() {
            return Err(ConfigError::invalid(
                CA,
                "set, but NOVA_CONTROL_PLANE_URL is not https://",
            ));
        }
        return Ok(endpoint);
    }
    let (tls, var) = match ca {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| ConfigError::invalid(CA, format!("{}: {e}", path.display())))?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(ConfigError::invalid(
                    CA,
                    format!("{}: holds no PEM certificate", path.display()),
                ));
            }
            (
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
                CA,
            )
        }
        None => (ClientTlsConfig::new().with_native_roots(), URL),
    };
    endpoint.tls_config(tls).map_err(|e| {
        let trust = if var == URL {
            " with the system trust store"
        } else {
            ""
        };
        ConfigError::invalid(
            var,
            format!("TLS set-up failed{trust} ({})", crate::causes(&e)),
        )
    })
}

/// Interceptor adding `authorization: Bearer <service token>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    /// Builds the interceptor; fails when the token cannot travel in a header. The
    /// error names the variable, never the token.
    pub fn new(token: &str) -> Result<Self, ConfigError> {
        format!("Bearer {token}")
            .parse()
            .map(Self)
            .map_err(|_| ConfigError::invalid("NOVA_SERVICE_TOKEN", "not valid in a header"))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}
