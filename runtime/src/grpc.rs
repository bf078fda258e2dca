//! What every gRPC client of ours needs: an endpoint (TLS for `https://`) and the
//! service token on each call.

use std::path::Path;

use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    transport::{Certificate, ClientTlsConfig, Endpoint},
};

/// An endpoint for the control plane at `url`. `https://` speaks TLS, verified
/// against `ca` (a PEM file) or, without it, the system's trust store; `http://` is
/// plaintext. Errors name the variable (`NOVA_CONTROL_PLANE_URL` / `_CA`).
pub fn endpoint(url: &str, ca: Option<&Path>) -> Result<Endpoint, String> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("NOVA_CONTROL_PLANE_URL: not a URL ({e})"))?;
    if endpoint.uri().scheme_str() != Some("https") {
        if ca.is_some() {
            return Err(
                "NOVA_CONTROL_PLANE_CA is set, but NOVA_CONTROL_PLANE_URL is not https://".into(),
            );
        }
        return Ok(endpoint);
    }
    let (tls, var) = match ca {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("NOVA_CONTROL_PLANE_CA {}: {e}", path.display()))?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(format!(
                    "NOVA_CONTROL_PLANE_CA {}: holds no PEM certificate",
                    path.display()
                ));
            }
            (
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
                "NOVA_CONTROL_PLANE_CA",
            )
        }
        None => (
            ClientTlsConfig::new().with_native_roots(),
            "NOVA_CONTROL_PLANE_URL (system trust store)",
        ),
    };
    endpoint
        .tls_config(tls)
        .map_err(|e| format!("{var}: TLS set-up failed ({})", crate::causes(&e)))
}

/// Interceptor adding `authorization: Bearer <service token>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    /// Builds the interceptor; fails when the token cannot travel in a header. The
    /// error names the variable, never the token.
    pub fn new(token: &str) -> Result<Self, String> {
        format!("Bearer {token}")
            .parse()
            .map(Self)
            .map_err(|_| "NOVA_SERVICE_TOKEN: not valid in a header".to_owned())
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
