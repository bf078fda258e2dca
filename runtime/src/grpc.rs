//! What every gRPC client of ours needs: the service token on each call.

use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
};

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
