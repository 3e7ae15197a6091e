//! Which addresses newswatch may connect to. Feed items link to pages chosen by
//! strangers, and a feed or a page can redirect anywhere; without a check, a feed could
//! make the daemon fetch its host's loopback services, the local network or a cloud
//! metadata endpoint. docs/config.md (`allow_private`, `allow_hosts`) is the contract.
//!
//! The check runs after DNS resolution, in [`GuardedResolver`], the resolver of every
//! HTTP client the poller and the alert sinks build, so each connection (each redirect
//! hop included) is checked on the addresses it will really use; URLs naming an IP
//! address are never resolved, so [`AddressPolicy::check_url`] checks those before
//! each request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use url::{Host, Url};

/// What may be connected to, and the config keys that say so (for error messages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Private, loopback and link-local addresses are allowed everywhere.
    pub allow_private: bool,
    /// Host names (lowercased) allowed whatever they resolve to.
    pub allow_hosts: Vec<String>,
    /// The config section these come from, e.g. `poller`.
    pub section: &'static str,
}

/// A connection refused by an [`AddressPolicy`].
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error(
    "refused to connect to {host} ({addr}): {kind} address; set [{section}] allow_private = true, \
     or list {host:?} in [{section}] allow_hosts, to allow it"
)]
pub struct Refused {
    pub host: String,
    pub addr: IpAddr,
    pub kind: &'static str,
    pub section: &'static str,
}

impl AddressPolicy {
    /// Whether connections to `host` are allowed whatever its addresses.
    fn host_allowed(&self, host: &str) -> bool {
        self.allow_private
            || self
                .allow_hosts
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(host.trim_end_matches('.')))
    }

    /// Checks one address that `host` resolved to (or is).
    pub fn check(&self, host: &str, addr: IpAddr) -> Result<(), Refused> {
        if self.host_allowed(host) {
            return Ok(());
        }
        match special(addr) {
            Some(kind) => Err(Refused {
                host: host.to_string(),
                addr,
                kind,
                section: self.section,
            }),
            None => Ok(()),
        }
    }

    /// Checks a URL whose host is an IP address (no resolver sees those); names are
    /// checked by [`GuardedResolver`] when resolved.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        let addr = match url.host() {
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        self.check(url.host_str().unwrap_or_default(), addr)
    }
}

/// The kind of address that is refused by default, or `None` for a public one.
pub fn special(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return special_v4(v4);
            }
            let segments = v6.segments();
            let first = segments[0];
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses carry an IPv4 address
            // that a gateway on the way will reach: judge that one.
            let embedded = if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                Some((segments[6], segments[7]))
            } else if first == 0x2002 {
                Some((segments[1], segments[2]))
            } else {
                None
            };
            if let Some((high, low)) = embedded {
                let v4 = Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
                return special_v4(v4);
            }
            if v6 == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
                Some("a cloud metadata")
            } else if v6.is_loopback() {
                Some("a loopback")
            } else if v6.is_unspecified() {
                Some("an unspecified")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a unique local (private)")
            } else if first & 0xff00 == 0xff00 {
                Some("a multicast")
            } else if first == 0x2001 && segments[1] == 0x0db8 {
                Some("a documentation (reserved)")
            } else {
                None
            }
        }
    }
}

fn special_v4(v4: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = v4.octets();
    if v4 == Ipv4Addr::new(169, 254, 169, 254) {
        Some("a cloud metadata")
    } else if v4.is_loopback() {
        Some("a loopback")
    } else if v4.is_private() {
        Some("a private")
    } else if v4.is_link_local() {
        Some("a link-local")
    } else if v4.is_unspecified() || a == 0 {
        Some("an unspecified")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (CGNAT)")
    } else if v4.is_broadcast() || v4.is_multicast() {
        Some("a broadcast or multicast")
    } else if (a, b, c) == (192, 0, 2)
        || (a, b, c) == (198, 51, 100)
        || (a, b, c) == (203, 0, 113)
        || (a, b, c) == (192, 0, 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
    {
        // Documentation, protocol-assignment, benchmarking and reserved ranges: never
        // a public server, so a name resolving there is a mistake or a trick.
        Some("a reserved")
    } else {
        None
    }
}

/// A DNS resolver that drops the addresses an [`AddressPolicy`] refuses, and fails
/// with [`Refused`] when none is left. Resolution itself is the system's
/// (`getaddrinfo` on the blocking pool, as reqwest's default).
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: AddressPolicy) -> GuardedResolver {
        GuardedResolver {
            policy: Arc::new(policy),
        }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| match policy.check(&host, addr.ip()) {
                    Ok(()) => true,
                    Err(err) => {
                        refused.get_or_insert(err);
                        false
                    }
                })
                .collect();
            match refused {
                Some(err) if kept.is_empty() => Err(Box::new(err) as Box<_>),
                _ => Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> AddressPolicy {
        AddressPolicy {
            section: "poller",
            ..AddressPolicy::default()
        }
    }

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_refused() {
        for addr in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "2001:db8::1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "2002:a00:1::1",
            "192.0.2.10",
            "198.51.100.7",
            "203.0.113.200",
            "198.18.0.1",
            "240.0.0.1",
        ] {
            let ip: IpAddr = addr.parse().unwrap();
            assert!(special(ip).is_some(), "{addr} must be refused");
            let err = policy().check("h", ip).unwrap_err();
            assert!(err.to_string().contains("[poller] allow_private"), "{err}");
        }
        for addr in [
            "93.184.216.34",
            "2606:2800:220:1::1",
            "100.128.0.1",
            "172.32.0.1",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
            "198.20.0.1",
            "192.0.3.1",
        ] {
            assert_eq!(special(addr.parse().unwrap()), None, "{addr} is public");
        }
    }

    #[test]
    fn the_settings_allow_what_they_name() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let open = AddressPolicy {
            allow_private: true,
            ..policy()
        };
        assert!(open.check("localhost", ip).is_ok());
        let listed = AddressPolicy {
            allow_hosts: vec!["intranet.example".into()],
            ..policy()
        };
        assert!(listed.check("intranet.example", ip).is_ok());
        assert!(listed.check("other.example", ip).is_err());
        let url = Url::parse("http://127.0.0.1:8080/feed").unwrap();
        assert!(policy().check_url(&url).is_err());
        assert!(open.check_url(&url).is_ok());
        let named = Url::parse("http://example.org/feed").unwrap();
        assert!(policy().check_url(&named).is_ok());
    }
}
