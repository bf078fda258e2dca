//! Per-client token buckets for mutations, and who the client is when a trusted
//! proxy (an ingress, a load balancer) stands in front of the edge.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    str::FromStr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, StatusCode, request::Parts},
};

use crate::{error::ApiError, state::AppState};

/// A token bucket per client address, refilled continuously.
#[derive(Clone)]
pub struct RateLimiter {
    /// Buckets: tokens left and when they were last refilled.
    buckets: Arc<Mutex<HashMap<IpAddr, (f64, Instant)>>>,
    /// Bucket size (burst) = the per-minute allowance.
    capacity: f64,
    /// Tokens added per second.
    refill_per_s: f64,
}

/// Most buckets kept; beyond it, idle ones are dropped.
const MAX_BUCKETS: usize = 100_000;

impl RateLimiter {
    /// Allows `per_minute` requests a minute per address, in bursts of as many.
    pub fn new(per_minute: u32) -> Self {
        Self {
            buckets: Arc::default(),
            capacity: f64::from(per_minute),
            refill_per_s: f64::from(per_minute) / 60.0,
        }
    }

    /// Takes a token for `ip`; on refusal returns the seconds until one is available.
    /// IPv6 clients are counted per /64, the block one subscriber usually holds, so
    /// rotating addresses within it buys no fresh bucket.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let ip = bucket_of(ip);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            let full_after = Duration::from_secs_f64(self.capacity / self.refill_per_s);
            buckets.retain(|_, (_, at)| now.duration_since(*at) < full_after);
        }
        let (tokens, at) = buckets.entry(ip).or_insert((self.capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.refill_per_s)
            .min(self.capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.refill_per_s).ceil() as u64)
        }
    }
}

/// The bucket key of `ip`: IPv4 as is, IPv6 by its /64.
fn bucket_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

/// A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`); a bare address is one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{raw:?} is not an address or CIDR network");
        let (addr, prefix) = match raw.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (raw, None),
        };
        let net: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let net = net.to_canonical();
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { net, prefix })
    }
}

impl Cidr {
    /// Tells whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Proxies whose `X-Forwarded-For` the edge believes (`NOVA_TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR networks; empty trusts none.
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(Cidr::from_str)
            .collect::<Result<_, _>>()
            .map(Self)
            .map_err(|e| format!("NOVA_TRUSTED_PROXIES: {e}"))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client behind `peer`: the peer itself unless it is a trusted proxy, else
    /// the right-most `X-Forwarded-For` hop that is not a trusted proxy. A hop that
    /// does not parse ends the walk at the proxy that reported it, so a client cannot
    /// pick its own bucket.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.into_iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                return client;
            };
            client = ip;
            if !self.trusts(client) {
                return client;
            }
        }
        client
    }
}

/// Reads `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// Proof that a mutation passed its client's rate limit; extracting it takes a token
/// from the client's bucket or answers 429 with `Retry-After`.
#[derive(Debug)]
pub struct Admitted;

impl FromRequestParts<AppState> for Admitted {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "the peer address is unknown",
                )
            })?;
        let client = state
            .config()
            .trusted_proxies
            .client_ip(peer.ip(), &parts.headers);
        state
            .limiter()
            .check(client)
            .map(|()| Admitted)
            .map_err(ApiError::rate_limited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        headers
    }

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_and_match_both_families() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped IPv6");
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.7")));
        let host: Cidr = "fd00::1".parse().unwrap();
        assert!(host.contains(ip("fd00::1")) && !host.contains(ip("fd00::2")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fdab::1")) && !v6.contains(ip("10.0.0.1")));
        for bad in ["10.0.0.0/33", "fd00::/129", "nope", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
        assert!(TrustedProxies::parse("10.0.0.0/8, ,fd00::/8").is_ok());
        let err = TrustedProxies::parse("10.0.0.0/8,bogus").unwrap_err();
        assert!(err.starts_with("NOVA_TRUSTED_PROXIES:"), "{err}");
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        let headers = forwarded(&["198.51.100.1"]);
        assert_eq!(none.client_ip(ip("10.0.0.5"), &headers), ip("10.0.0.5"));

        let ingress = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(
            ingress.client_ip(ip("10.0.0.5"), &headers),
            ip("198.51.100.1")
        );
        assert_eq!(
            ingress.client_ip(ip("192.0.2.9"), &headers),
            ip("192.0.2.9"),
            "an untrusted peer's header is ignored"
        );
        let spoofed = forwarded(&["6.6.6.6, 198.51.100.1", "10.0.0.7"]);
        assert_eq!(
            ingress.client_ip(ip("10.0.0.5"), &spoofed),
            ip("198.51.100.1"),
            "the right-most untrusted hop wins; what the client wrote is ignored"
        );
        let ported = forwarded(&["[2001:db8::1]:443", "203.0.113.4:5000"]);
        assert_eq!(
            ingress.client_ip(ip("10.0.0.5"), &ported),
            ip("203.0.113.4")
        );
        let garbage = forwarded(&["198.51.100.1, not-an-ip"]);
        assert_eq!(
            ingress.client_ip(ip("10.0.0.5"), &garbage),
            ip("10.0.0.5"),
            "garbage stops at the proxy that reported it"
        );
        assert_eq!(
            ingress.client_ip(ip("10.0.0.5"), &HeaderMap::new()),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn a_burst_is_allowed_then_refused_per_address() {
        let limiter = RateLimiter::new(3);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        assert!((0..3).all(|_| limiter.check(a).is_ok()));
        let wait = limiter.check(a).unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(limiter.check(b).is_ok());
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        let limiter = RateLimiter::new(2);
        let first: IpAddr = "2001:db8:1:2::10".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::99".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::10".parse().unwrap();
        assert!(limiter.check(first).is_ok());
        assert!(limiter.check(same_64).is_ok());
        assert!(limiter.check(first).is_err(), "the /64 used its two");
        assert!(limiter.check(same_64).is_err(), "another address of it too");
        assert!(limiter.check(other_64).is_ok(), "the next /64 has its own");
    }
}
