//! A tiny HTTP GET for tests (playlists, manifests, segments), and the `reqwest`
//! client every test HTTP call goes through.

use std::time::Duration;

use axum::body::Bytes;
use reqwest::header::HeaderMap;

/// Returns a client for loopback services: no proxy from the environment, redirects
/// returned rather than followed, every call given up after 10 s.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a reqwest client")
}

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
    let response = client().get(url).send().await?;
    let header = |headers: &HeaderMap, name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, content_type, cors) = (
        response.status().as_u16(),
        header(response.headers(), "content-type"),
        header(response.headers(), "access-control-allow-origin"),
    );
    let body = response.bytes().await?;
    Ok(Answer {
        status,
        content_type,
        cors,
        body,
    })
}
