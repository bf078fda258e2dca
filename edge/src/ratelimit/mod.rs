//! Per-client limits: `governor` token buckets (GCRA, sharded state, no global lock)
//! keyed by client address, and who the client is behind a trusted proxy
//! ([`proxies`]). Extracting [`Admitted`] (mutations) or [`ReadAdmitted`] (REST
//! GETs) takes a token or answers 429 with `Retry-After`.

pub mod proxies;

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, FromRef, FromRequestParts},
    http::{StatusCode, request::Parts},
};
use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};

pub use proxies::{TrustedProxies, client_key};

use crate::{
    error::ApiError,
    metrics::{EdgeMetrics, Refusal},
};

/// A token bucket per client key (IPv4 address, IPv6 /64).
#[derive(Clone)]
pub struct RateLimiter(Arc<DefaultKeyedRateLimiter<IpAddr>>);

impl RateLimiter {
    /// Allows `per_minute` a minute per client, in bursts of `burst` (both at least 1).
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let one = NonZeroU32::MIN;
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(one);
        let burst = NonZeroU32::new(burst).unwrap_or(one);
        let quota = Quota::with_period(Duration::from_secs(60) / per_minute.get())
            .unwrap_or_else(|| Quota::per_minute(per_minute))
            .allow_burst(burst);
        Self(Arc::new(DefaultKeyedRateLimiter::keyed(quota)))
    }

    /// Takes a token for the client at `ip`; on refusal returns the whole seconds
    /// (at least 1) until one is available.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.0.check_key(&client_key(ip)).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.0.clock().now());
            (wait.as_secs_f64().ceil() as u64).max(1)
        })
    }

    /// Forgets clients whose bucket is full again (they look like new ones); run
    /// periodically so memory follows the active clients.
    pub fn forget_idle(&self) {
        self.0.retain_recent();
        self.0.shrink_to_fit();
    }

    /// Returns how many clients are remembered.
    pub fn clients(&self) -> usize {
        self.0.len()
    }
}

/// The limiters of one edge.
#[derive(Clone)]
pub struct Limits {
    /// POST/DELETE.
    pub mutations: RateLimiter,
    /// REST GETs.
    pub reads: RateLimiter,
    /// WebSocket opens.
    pub ws_opens: RateLimiter,
}

impl Limits {
    /// Builds the limiters from per-minute allowances: mutations burst as many as a
    /// minute allows, reads a tenth, WebSocket opens a third.
    pub fn new(mutations: u32, reads: u32, ws_opens: u32) -> Self {
        Self {
            mutations: RateLimiter::new(mutations, mutations),
            reads: RateLimiter::new(reads, reads / 10),
            ws_opens: RateLimiter::new(ws_opens, ws_opens / 3),
        }
    }

    /// Forgets idle clients of every limiter each `period` until shutdown.
    pub async fn run_pruning(self, period: Duration, stop: nova_runtime::shutdown::Signal) {
        let mut ticker = nova_runtime::shutdown::Ticker::new(period, stop);
        while ticker.tick().await {
            self.mutations.forget_idle();
            self.reads.forget_idle();
            self.ws_opens.forget_idle();
        }
    }
}

/// The client's address: the peer, or the client a trusted proxy names.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl<S> FromRequestParts<S> for ClientIp
where
    S: Send + Sync,
    TrustedProxies: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "the peer address is unknown",
                )
            })?;
        Ok(Self(
            TrustedProxies::from_ref(state).client_ip(peer.ip(), &parts.headers),
        ))
    }
}

/// Takes a token from `limiter` for `ip`, counting a refusal as `reason`.
pub fn admit(
    metrics: &EdgeMetrics,
    limiter: &RateLimiter,
    ip: IpAddr,
    reason: Refusal,
) -> Result<(), ApiError> {
    limiter.check(ip).map_err(|wait| {
        metrics.refused(reason);
        ApiError::rate_limited(wait)
    })
}

/// Takes a token for the client of `parts` from the limiter `pick` chooses.
async fn admit_request<S>(
    parts: &mut Parts,
    state: &S,
    pick: fn(&Limits) -> &RateLimiter,
    reason: Refusal,
) -> Result<(), ApiError>
where
    S: Send + Sync,
    Limits: FromRef<S>,
    TrustedProxies: FromRef<S>,
    Arc<EdgeMetrics>: FromRef<S>,
{
    let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
    let limits = Limits::from_ref(state);
    pick(&limits).check(ip).map_err(|wait| {
        Arc::<EdgeMetrics>::from_ref(state).refused(reason);
        ApiError::rate_limited(wait)
    })
}

/// Proof that a mutation passed its client's rate limit.
#[derive(Debug)]
pub struct Admitted;

impl<S> FromRequestParts<S> for Admitted
where
    S: Send + Sync,
    Limits: FromRef<S>,
    TrustedProxies: FromRef<S>,
    Arc<EdgeMetrics>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        admit_request(parts, state, |l| &l.mutations, Refusal::MutationRate)
            .await
            .map(|()| Admitted)
    }
}

/// Proof that a REST GET passed its client's rate limit.
#[derive(Debug)]
pub struct ReadAdmitted;

impl<S> FromRequestParts<S> for ReadAdmitted
where
    S: Send + Sync,
    Limits: FromRef<S>,
    TrustedProxies: FromRef<S>,
    Arc<EdgeMetrics>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        admit_request(parts, state, |l| &l.reads, Refusal::ReadRate)
            .await
            .map(|()| ReadAdmitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    #[test]
    fn a_burst_is_allowed_then_refused_per_address() {
        let limiter = RateLimiter::new(3, 3);
        let (a, b) = (ip("127.0.0.1"), ip("127.0.0.2"));
        assert!((0..3).all(|_| limiter.check(a).is_ok()));
        let wait = limiter.check(a).unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(limiter.check(b).is_ok());
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        let limiter = RateLimiter::new(2, 2);
        let first = ip("2001:db8:1:2::10");
        let same_64 = ip("2001:db8:1:2:ffff::99");
        let other_64 = ip("2001:db8:1:3::10");
        assert!(limiter.check(first).is_ok());
        assert!(limiter.check(same_64).is_ok());
        assert!(limiter.check(first).is_err(), "the /64 used its two");
        assert!(limiter.check(same_64).is_err(), "another address of it too");
        assert!(limiter.check(other_64).is_ok(), "the next /64 has its own");
    }

    #[test]
    fn idle_clients_are_forgotten() {
        let limiter = RateLimiter::new(60_000, 1);
        for i in 0..100u8 {
            let _ = limiter.check(IpAddr::from([10, 0, 0, i]));
        }
        assert_eq!(limiter.clients(), 100);
        // At 1000 a second a bucket of one refills within a millisecond or two.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while limiter.clients() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            limiter.forget_idle();
        }
        assert_eq!(limiter.clients(), 0, "full buckets are dropped");
    }
}
