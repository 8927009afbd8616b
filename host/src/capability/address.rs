//! Which network addresses a connector may reach: never the machine
//! itself, its private networks or cloud metadata services, unless the
//! operator allowed that exact host and port. Checked on the addresses a
//! name actually resolves to, at connect time, so DNS cannot smuggle a
//! private address past the allow-list.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address is off limits, or `None` for a public address.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                return Some("a cloud metadata service");
            }
            // IPv4 hidden in IPv6: mapped, compatible, NAT64, 6to4.
            if let Some(v4) = v6.to_ipv4_mapped().or_else(|| embedded_v4(v6)) {
                return forbidden_v4(v4);
            }
            let segments = v6.segments();
            if v6.is_loopback() {
                Some("the loopback interface")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else if segments[0] & 0xfe00 == 0xfc00 {
                Some("a unique-local (private) address")
            } else if segments[0] & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        Some("a cloud metadata service")
    } else if ip.is_loopback() {
        Some("the loopback interface")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if ip.is_unspecified() || a == 0 {
        Some("the unspecified address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a carrier-grade NAT (shared) address")
    } else if ip.is_broadcast() || ip.is_multicast() {
        Some("a broadcast or multicast address")
    } else if a >= 240 {
        Some("a reserved address")
    } else {
        None
    }
}

/// IPv4 inside IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and
/// 6to4 (`2002::/16`) addresses.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let last32 = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let compatible = s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1);
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    if compatible || nat64 {
        Some(last32())
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ))
    } else {
        None
    }
}

/// Refused at connect time; found in reqwest's error chain to tell the
/// guest and the operator what happened.
#[derive(Debug, thiserror::Error)]
#[error("`{host}` resolves to {address}, which is {why}")]
pub struct ForbiddenAddress {
    /// The name that was resolved.
    pub host: String,
    /// The offending address.
    pub address: IpAddr,
    /// What kind of address it is.
    pub why: &'static str,
}

/// The DNS resolver of one connection's HTTP client: resolves with the
/// system resolver and refuses the whole answer when any address in it is
/// forbidden, unless the host is one the operator allowed exactly.
pub struct GuardedResolver {
    exempt_hosts: Arc<HashSet<String>>,
}

impl GuardedResolver {
    /// `exempt_hosts`: host names (lower case) allowed with an exact port.
    pub fn new(exempt_hosts: HashSet<String>) -> Self {
        Self {
            exempt_hosts: Arc::new(exempt_hosts),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let exempt = self.exempt_hosts.clone();
        Box::pin(async move {
            let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !exempt.contains(&host) {
                for addr in &addrs {
                    if let Some(why) = forbidden(addr.ip()) {
                        return Err(Box::new(ForbiddenAddress {
                            host,
                            address: addr.ip(),
                            why,
                        })
                            as Box<dyn std::error::Error + Send + Sync>);
                    }
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_and_special_addresses_are_refused() {
        for addr in [
            "127.0.0.1",
            "127.9.9.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "ff02::1",
        ] {
            assert!(forbidden(ip(addr)).is_some(), "{addr} must be refused");
        }
        assert_eq!(
            forbidden(ip("169.254.169.254")),
            Some("a cloud metadata service")
        );
        assert_eq!(
            forbidden(ip("fd00:ec2::254")),
            Some("a cloud metadata service")
        );
    }

    #[test]
    fn public_addresses_pass() {
        for addr in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(forbidden(ip(addr)), None, "{addr} is public");
        }
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_unless_exempt() {
        let guarded = GuardedResolver::new(HashSet::new());
        let err = match guarded.resolve("localhost".parse().unwrap()).await {
            Err(err) => err,
            Ok(_) => panic!("localhost resolves to loopback"),
        };
        let forbidden = err.downcast_ref::<ForbiddenAddress>().expect("typed error");
        assert_eq!(forbidden.why, "the loopback interface");

        let exempt = GuardedResolver::new(HashSet::from(["localhost".to_string()]));
        assert!(exempt.resolve("localhost".parse().unwrap()).await.is_ok());
    }
}
