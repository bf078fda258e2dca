//! Who the client is when a trusted proxy (an ingress, a load balancer) stands in
//! front of the edge (`NOVA_TRUSTED_PROXIES`), and the key its limits are kept under.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::http::HeaderMap;
use ipnet::{IpNet, Ipv6Net};
use nova_runtime::ConfigError;

/// Proxies whose `X-Forwarded-For` the edge believes (`NOVA_TRUSTED_PROXIES`);
/// cheap to clone (every rate-limited request takes a copy).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR networks; empty trusts none.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        raw.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| match net {
                        // `::ffff:10.0.0.0/104` means the IPv4 network it maps.
                        IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
                            Some(v4) if v6.prefix_len() >= 96 => {
                                IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).unwrap_or(net)
                            }
                            _ => net,
                        },
                        v4 => v4,
                    })
                    .map_err(|_| {
                        ConfigError::invalid(
                            "NOVA_TRUSTED_PROXIES",
                            format!("{item:?} is not an address or CIDR network"),
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
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

/// The key a client's limits are kept under: an IPv4 address as is, an IPv6 address
/// by its /64 (the block one subscriber usually holds, so rotating addresses within
/// it buys nothing).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => Ipv6Net::new(v6, 64)
            .map(|net| IpAddr::V6(net.network()))
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
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
    fn networks_parse_and_match_both_families() {
        let trusted = TrustedProxies::parse("10.1.0.0/16, fd00::/8, 192.0.2.1").unwrap();
        assert!(trusted.trusts(ip("10.1.200.3")));
        assert!(!trusted.trusts(ip("10.2.0.1")));
        assert!(
            trusted.trusts(ip("::ffff:10.1.0.9").to_canonical()),
            "IPv4-mapped IPv6"
        );
        assert!(trusted.trusts(ip("fdab::1")) && !trusted.trusts(ip("fe80::1")));
        assert!(trusted.trusts(ip("192.0.2.1")) && !trusted.trusts(ip("192.0.2.2")));
        let mapped = TrustedProxies::parse("::ffff:10.0.0.0/104").unwrap();
        assert!(mapped.trusts(ip("10.9.9.9")), "a mapped network means IPv4");
        for bad in ["10.0.0.0/33", "fd00::/129", "nope", "10.0.0.0/x"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad:?}");
        }
        assert!(TrustedProxies::parse("10.0.0.0/8, ,fd00::/8").is_ok());
        let err = TrustedProxies::parse("10.0.0.0/8,bogus")
            .unwrap_err()
            .to_string();
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
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(
            client_key(ip("2001:db8:1:2:ffff::99")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_key(ip("192.0.2.7")), ip("192.0.2.7"));
    }
}
