//! Where webhooks may go (server-side request forgery guard): `http` or `https` URLs
//! without credentials, whose host is a public address or resolves only to public
//! addresses. Loopback, private, shared (CGNAT), link-local (cloud metadata), multicast,
//! unspecified, documentation, benchmarking and reserved ranges are refused, also when
//! an IPv6 address embeds one (mapped, NAT64, 6to4), unless the operator allows every
//! such address (`NOVA_WEBHOOK_ALLOW_PRIVATE`) or lists ranges
//! (`NOVA_WEBHOOK_ALLOWED_CIDRS`). The check runs at registration and again on every
//! delivery, inside the HTTP client's resolver, so the connection goes to the
//! addresses checked (a name re-pointed at an internal address later is refused then).

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use ipnet::IpNet;
use url::{Host, Url};

/// Longest accepted URL.
pub const MAX_URL_LEN: usize = 2048;
/// Longest a name lookup may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a target is refused; the text names the host and the kind of address, never
/// the URL's path or query (which may hold a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

/// Parses a webhook URL: `http` or `https`, a host, no user name or password, no
/// fragment, at most [`MAX_URL_LEN`] characters. The refusal says what is wrong.
pub fn parse_url(raw: &str) -> Result<Url, Refusal> {
    let refuse = |reason: &str| Err(Refusal(reason.to_owned()));
    if raw.len() > MAX_URL_LEN {
        return Err(Refusal(format!("must be at most {MAX_URL_LEN} characters")));
    }
    let url = Url::parse(raw).map_err(|e| Refusal(format!("not an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return refuse("must be an http:// or https:// URL");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("must not contain a user name or password");
    }
    if url.fragment().is_some() {
        return refuse("must not contain a #fragment");
    }
    if url.host().is_none() {
        return refuse("must name a host");
    }
    Ok(url)
}

/// Which addresses deliveries may reach.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    /// Every address, public or not.
    allow_private: bool,
    /// Non-public ranges allowed all the same.
    allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// Builds the policy from the operator's settings.
    pub fn new(allow_private: bool, allowed: Vec<IpNet>) -> Self {
        Self {
            allow_private,
            allowed,
        }
    }

    /// Accepts `ip` if it is public, or allowed by the operator.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        match self.refused_kind(ip) {
            None => Ok(()),
            Some(kind) => Err(Refusal(format!("{ip} is {kind} address"))),
        }
    }

    /// Returns the kind of a non-public address the operator did not allow.
    fn refused_kind(&self, ip: IpAddr) -> Option<&'static str> {
        if self.allow_private {
            return None;
        }
        let kind = non_public(ip)?;
        let embedded = embedded_v4(ip).map(IpAddr::V4);
        let listed = |candidate: IpAddr| self.allowed.iter().any(|net| net.contains(&candidate));
        if listed(ip) || embedded.is_some_and(listed) {
            return None;
        }
        Some(kind)
    }

    /// Resolves `host` and accepts it only if every address it has is accepted.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
        let unresolved = || Refusal(format!("{host} does not resolve"));
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| Refusal(format!("resolving {host} timed out")))?
                .map_err(|_| unresolved())?
                .collect();
        if addrs.is_empty() {
            return Err(unresolved());
        }
        for addr in &addrs {
            if let Some(kind) = self.refused_kind(addr.ip()) {
                let ip = addr.ip();
                return Err(Refusal(format!("{host} resolves to {ip}, {kind} address")));
            }
        }
        Ok(addrs)
    }

    /// Accepts a parsed URL's host (resolving a name).
    pub async fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        match url.host() {
            Some(Host::Ipv4(ip)) => self.check(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check(IpAddr::V6(ip)),
            Some(Host::Domain(name)) => self
                .resolve(name, url.port_or_known_default().unwrap_or(443))
                .await
                .map(drop),
            None => Err(Refusal("the URL names no host".into())),
        }
    }
}

/// The HTTP client's resolver: every name it connects to passes [`AddressPolicy`].
#[derive(Debug, Clone)]
pub struct GuardedResolver(pub Arc<AddressPolicy>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let addrs = policy.resolve(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Returns what kind of non-public address `ip` is ("a loopback", …), or `None` for
/// a public one. IPv6 addresses that embed an IPv4 one (mapped, NAT64, 6to4) are
/// judged by it.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => Some("an unspecified"),
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => Some("a private"),
        (100, 64..=127, _) => Some("a shared (carrier-grade NAT)"),
        (127, _, _) => Some("a loopback"),
        (169, 254, _) => Some("a link-local"),
        (192, 0, 0) | (192, 88, 99) => Some("a reserved"),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Some("a documentation"),
        (198, 18..=19, _) => Some("a benchmarking"),
        (224..=239, _, _) => Some("a multicast"),
        (240..=255, _, _) => Some("a reserved"),
        _ => None,
    }
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(IpAddr::V6(ip)) {
        return non_public_v4(v4);
    }
    let segments = ip.segments();
    if ip.is_unspecified() {
        Some("an unspecified")
    } else if ip.is_loopback() {
        Some("a loopback")
    } else if segments[..6] == [0; 6] || segments[..4] == [0x100, 0, 0, 0] {
        // IPv4-compatible (deprecated) and the discard prefix 100::/64.
        Some("a reserved")
    } else if segments[0] == 0x64 && segments[1] == 0xff9b && segments[2] == 1 {
        Some("a private (local-use NAT64)")
    } else if segments[0] == 0x2001 && segments[1] == 0xdb8 {
        Some("a documentation")
    } else if segments[0] == 0x2001 && segments[1] < 0x200 {
        Some("a reserved (IETF protocol assignments, Teredo)")
    } else if segments[0] & 0xfe00 == 0xfc00 {
        Some("a private (unique local)")
    } else if segments[0] & 0xffc0 == 0xfe80 {
        Some("a link-local")
    } else if segments[0] & 0xffc0 == 0xfec0 {
        Some("a private (site-local)")
    } else if segments[0] & 0xff00 == 0xff00 {
        Some("a multicast")
    } else {
        None
    }
}

/// Returns the IPv4 address an IPv6 one carries: IPv4-mapped (`::ffff:a.b.c.d`),
/// NAT64 (`64:ff9b::a.b.c.d`) or 6to4 (`2002:aabb:ccdd::`).
fn embedded_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if let Some(mapped) = v6.to_ipv4_mapped() {
        Some(mapped)
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(v4(s[6], s[7]))
    } else if s[0] == 0x2002 {
        Some(v4(s[1], s[2]))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    #[test]
    fn non_public_addresses_are_refused_and_public_ones_accepted() {
        let policy = AddressPolicy::default();
        for refused in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.10",
            "198.18.0.1",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "::127.0.0.1",
        ] {
            assert!(policy.check(ip(refused)).is_err(), "{refused} accepted");
        }
        for accepted in [
            "93.184.215.14",
            "8.8.8.8",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(policy.check(ip(accepted)).is_ok(), "{accepted} refused");
        }
        assert_eq!(
            policy.check(ip("127.0.0.1")).unwrap_err().to_string(),
            "127.0.0.1 is a loopback address"
        );
    }

    #[test]
    fn the_operator_may_allow_everything_or_listed_ranges() {
        assert!(
            AddressPolicy::new(true, vec![])
                .check(ip("127.0.0.1"))
                .is_ok()
        );
        let listed = AddressPolicy::new(false, vec!["10.1.0.0/16".parse().unwrap()]);
        assert!(listed.check(ip("10.1.2.3")).is_ok());
        assert!(listed.check(ip("::ffff:10.1.2.3")).is_ok());
        assert!(listed.check(ip("10.2.0.1")).is_err());
        assert!(listed.check(ip("127.0.0.1")).is_err());
    }

    #[test]
    fn urls_must_be_http_without_credentials() {
        assert!(parse_url("https://hooks.example.com/nova?x=1").is_ok());
        assert!(parse_url("http://93.184.215.14:8080/").is_ok());
        for (bad, why) in [
            ("ftp://example.com/", "http"),
            ("file:///etc/passwd", "http"),
            ("gopher://example.com/", "http"),
            ("https://user:pw@example.com/", "user name"),
            ("https://user@example.com/", "user name"),
            ("https://example.com/#frag", "fragment"),
            ("example.com/hook", "absolute"),
            ("", "absolute"),
        ] {
            let err = parse_url(bad).unwrap_err();
            assert!(err.0.contains(why), "{bad}: {err}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(parse_url(&long).is_err());
    }

    #[tokio::test]
    async fn hosts_in_any_notation_are_checked() {
        let policy = AddressPolicy::default();
        for raw in [
            "http://127.1/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://localhost:9/",
        ] {
            let url = parse_url(raw).unwrap();
            assert!(policy.check_url(&url).await.is_err(), "{raw} accepted");
        }
        let refusal = policy
            .check_url(&parse_url("http://localhost/").unwrap())
            .await
            .unwrap_err();
        assert!(
            refusal.0.starts_with("localhost resolves to ")
                && refusal.0.ends_with(", a loopback address"),
            "{refusal}"
        );
    }
}
