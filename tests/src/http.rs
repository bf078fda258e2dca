//! A tiny HTTP GET for tests (playlists, manifests, segments).

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// `content-type`, if any.
    pub content_type: String,
    /// `access-control-allow-origin`, if any.
    pub cors: String,
    /// Body.
    pub body: Bytes,
}

impl Answer {
    /// Returns the body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// GETs `url` (plain http), giving up after 10 s.
pub async fn get(url: &str) -> anyhow::Result<Answer> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response =
        tokio::time::timeout(Duration::from_secs(10), client.get(url.parse()?)).await??;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, content_type, cors) = (
        response.status().as_u16(),
        header("content-type"),
        header("access-control-allow-origin"),
    );
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Answer {
        status,
        content_type,
        cors,
        body,
    })
}
