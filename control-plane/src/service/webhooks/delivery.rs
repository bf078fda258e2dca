//! One delivery attempt: a signed `POST` of the payload, bounded by the timeout, to
//! an address [`AddressPolicy`] accepts, never following redirects or a proxy. Only
//! a 2xx answer counts as delivered.

use std::{net::IpAddr, sync::Arc, time::Duration};

use chrono::Utc;
use tokio::time::Instant;
use url::Host;

use crate::service::webhooks::{
    payload::Payload,
    signature,
    target::{AddressPolicy, GuardedResolver, Refusal, parse_url},
};

/// `User-Agent` of deliveries.
pub const USER_AGENT: &str = concat!("Nova-Webhooks/", env!("CARGO_PKG_VERSION"));
/// Header carrying the idempotency id (the event's log position).
pub const EVENT_ID_HEADER: &str = "Nova-Event-Id";
/// Header carrying the event type.
pub const EVENT_TYPE_HEADER: &str = "Nova-Event-Type";
/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Nova-Signature";
/// Most bytes of an answer's body read (and thrown away, so the connection is reused).
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Longest error text kept.
const MAX_ERROR_LEN: usize = 200;

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered,
    /// The receiver answered, but not 2xx.
    HttpError,
    /// No answer within the timeout.
    Timeout,
    /// No connection, or it broke (refused, reset, TLS).
    NetworkError,
    /// The target is not allowed (a non-public address).
    Refused,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 5] = [
        Outcome::Delivered,
        Outcome::HttpError,
        Outcome::Timeout,
        Outcome::NetworkError,
        Outcome::Refused,
    ];

    /// Returns the outcome as stored and shown (`delivered`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::HttpError => "http_error",
            Outcome::Timeout => "timeout",
            Outcome::NetworkError => "network_error",
            Outcome::Refused => "refused",
        }
    }

    /// Parses a stored outcome.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == raw)
    }
}

/// What an attempt found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// How it ended.
    pub outcome: Outcome,
    /// HTTP status answered, if any.
    pub status: Option<u16>,
    /// Time from the start of the attempt to its end.
    pub latency: Duration,
    /// What failed; names no URL path, query or secret.
    pub error: Option<String>,
}

/// Sends deliveries; cheap to clone.
#[derive(Clone)]
pub struct Sender {
    /// The HTTP client (its resolver guards every name).
    client: reqwest::Client,
    /// The address policy, for URLs naming an address.
    policy: Arc<AddressPolicy>,
    /// Bound of one attempt.
    timeout: Duration,
}

impl Sender {
    /// Builds the client: rustls with the system's roots, `policy` on every address,
    /// no redirects, no proxy, no retries of its own, `timeout` per attempt.
    pub fn new(policy: Arc<AddressPolicy>, timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver(policy.clone())))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .retry(reqwest::retry::never())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(USER_AGENT)
            .pool_max_idle_per_host(2)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| anyhow::anyhow!("webhook HTTP client: {}", nova_runtime::causes(&e)))?;
        Ok(Self {
            client,
            policy,
            timeout,
        })
    }

    /// Posts `payload` to `url`, signed with each of `secrets`, and reports how it went.
    pub async fn send(&self, url: &str, payload: &Payload, secrets: &[&str]) -> Report {
        let started = Instant::now();
        let report = |outcome, status, error: Option<String>| Report {
            outcome,
            status,
            latency: started.elapsed(),
            error: error.map(|e| e.chars().take(MAX_ERROR_LEN).collect()),
        };
        let url = match parse_url(url) {
            Ok(url) => url,
            Err(refusal) => return report(Outcome::Refused, None, Some(refusal.0)),
        };
        // Names are checked by the client's resolver; literal addresses never reach it.
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(Err(refusal)) = literal.map(|ip| self.policy.check(ip)) {
            return report(Outcome::Refused, None, Some(refusal.0));
        }
        let sent_at = Utc::now().timestamp();
        let request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_ID_HEADER, payload.event_id.to_string())
            .header(EVENT_TYPE_HEADER, payload.event_type.as_str())
            .header(
                SIGNATURE_HEADER,
                signature::header(secrets, sent_at, &payload.body),
            )
            .body(payload.body.clone());
        let deadline = started + self.timeout;
        // The client's own timeout bounds the attempt; this one guards it.
        let answer =
            tokio::time::timeout_at(deadline + Duration::from_secs(1), request.send()).await;
        match answer {
            Err(_) => report(Outcome::Timeout, None, Some("no answer in time".into())),
            Ok(Err(err)) => {
                let (outcome, error) = classify(err);
                report(outcome, None, Some(error))
            }
            Ok(Ok(response)) => {
                let status = response.status();
                let _ = tokio::time::timeout_at(deadline, drain(response)).await;
                if status.is_success() {
                    report(Outcome::Delivered, Some(status.as_u16()), None)
                } else {
                    let error = format!("answered HTTP {}", status.as_u16());
                    report(Outcome::HttpError, Some(status.as_u16()), Some(error))
                }
            }
        }
    }
}

/// Reads and drops up to [`MAX_ANSWER_BYTES`] of an answer.
async fn drain(mut response: reqwest::Response) {
    let mut read = 0;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if read >= MAX_ANSWER_BYTES {
            return;
        }
    }
}

/// Names a failed request's outcome and cause, without its URL.
fn classify(err: reqwest::Error) -> (Outcome, String) {
    let err = err.without_url();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(cause) = source {
        if let Some(refusal) = cause.downcast_ref::<Refusal>() {
            return (Outcome::Refused, refusal.0.clone());
        }
        source = cause.source();
    }
    let outcome = if err.is_timeout() {
        Outcome::Timeout
    } else {
        Outcome::NetworkError
    };
    (outcome, nova_runtime::causes(&err))
}
