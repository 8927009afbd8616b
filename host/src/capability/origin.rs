use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use url::Url;

/// An allow-list entry: `scheme://host[:port]`, where host may start with
/// `*.` (any subdomain, not the domain itself) and port may be `*`. Without a
/// port, the scheme's default port is meant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OriginPattern {
    scheme: Scheme,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scheme {
    Http,
    Https,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HostPattern {
    /// Lower-case DNS name or IP literal (IPv6 without brackets).
    Exact(String),
    /// `*.suffix`: any name ending in `.suffix`.
    Subdomains(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PortPattern {
    Exact(u16),
    Any,
}

impl Scheme {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "http" => Some(Self::Http),
            "https" => Some(Self::Https),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

impl OriginPattern {
    /// Parses `scheme://host[:port]`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (scheme, rest) = text.split_once("://").ok_or_else(|| {
            "expected `scheme://host[:port]`, e.g. `https://api.example.com`".to_string()
        })?;
        let scheme = Scheme::parse(&scheme.to_ascii_lowercase())
            .ok_or_else(|| format!("scheme `{scheme}` is not `http` or `https`"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err("an origin has no path, query, fragment or user info".into());
        }
        let (host, port) = split_host_port(rest)?;
        let port = match port {
            None => PortPattern::Exact(scheme.default_port()),
            Some("*") => PortPattern::Any,
            Some(p) => PortPattern::Exact(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("port `{p}` is not a number from 1 to 65535 or `*`"))?,
            ),
        };
        let host = host.to_ascii_lowercase();
        let host = if let Some(suffix) = host.strip_prefix("*.") {
            check_dns_name(suffix)?;
            HostPattern::Subdomains(suffix.to_string())
        } else if host.contains('*') {
            return Err(
                "`*` is only allowed as the whole first label, as in `*.example.com`".into(),
            );
        } else {
            if host.parse::<Ipv4Addr>().is_err() && host.parse::<Ipv6Addr>().is_err() {
                check_dns_name(&host)?;
            }
            HostPattern::Exact(host)
        };
        Ok(Self { scheme, host, port })
    }

    /// The exact origin of a URL (`scheme://host:port`).
    pub fn of_url(url: &Url) -> Result<Self, String> {
        let scheme = Scheme::parse(url.scheme())
            .ok_or_else(|| format!("scheme `{}` is not `http` or `https`", url.scheme()))?;
        let host = url_host(url).ok_or_else(|| "the URL has no host".to_string())?;
        let port = url.port_or_known_default().unwrap_or(scheme.default_port());
        Ok(Self {
            scheme,
            host: HostPattern::Exact(host),
            port: PortPattern::Exact(port),
        })
    }

    /// The host, when this pattern names exactly one host and port (no
    /// wildcard): such entries may reach private addresses.
    pub fn exact_host(&self) -> Option<&str> {
        match (&self.host, self.port) {
            (HostPattern::Exact(host), PortPattern::Exact(_)) => Some(host),
            _ => None,
        }
    }

    /// Whether a URL falls under this pattern.
    pub fn matches(&self, url: &Url) -> bool {
        let Some(scheme) = Scheme::parse(url.scheme()) else {
            return false;
        };
        let Some(host) = url_host(url) else {
            return false;
        };
        let port = url.port_or_known_default().unwrap_or(scheme.default_port());
        scheme == self.scheme
            && match &self.port {
                PortPattern::Any => true,
                PortPattern::Exact(p) => *p == port,
            }
            && match &self.host {
                HostPattern::Exact(h) => *h == host,
                HostPattern::Subdomains(suffix) => host
                    .strip_suffix(suffix.as_str())
                    .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
            }
    }
}

/// Lower-case host of a URL; IPv6 without brackets.
fn url_host(url: &Url) -> Option<String> {
    match url.host()? {
        url::Host::Domain(d) => Some(d.trim_end_matches('.').to_ascii_lowercase()),
        url::Host::Ipv4(ip) => Some(ip.to_string()),
        url::Host::Ipv6(ip) => Some(ip.to_string()),
    }
}

fn split_host_port(rest: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(inner) = rest.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| "unclosed `[` in IPv6 address".to_string())?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("unexpected `{p}` after IPv6 address"))?,
            ),
        };
        return Ok((host, port));
    }
    match rest.rsplit_once(':') {
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((rest, None)),
    }
}

fn check_dns_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("`{name}` is not a valid host name"))
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        match &self.host {
            HostPattern::Exact(h) if h.contains(':') => write!(f, "[{h}]")?,
            HostPattern::Exact(h) => f.write_str(h)?,
            HostPattern::Subdomains(s) => write!(f, "*.{s}")?,
        }
        match self.port {
            PortPattern::Any => f.write_str(":*"),
            PortPattern::Exact(p) if p == self.scheme.default_port() => Ok(()),
            PortPattern::Exact(p) => write!(f, ":{p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn exact_origins_match_scheme_host_and_port() {
        let p = OriginPattern::parse("http://127.0.0.1:4010").unwrap();
        assert!(p.matches(&url("http://127.0.0.1:4010/v1/contacts?x=1")));
        assert!(!p.matches(&url("http://127.0.0.1:4011/")));
        assert!(!p.matches(&url("https://127.0.0.1:4010/")));
        let p = OriginPattern::parse("https://API.example.com").unwrap();
        assert!(p.matches(&url("https://api.example.com/")));
        assert!(p.matches(&url("https://api.example.com:443/")));
        assert!(!p.matches(&url("https://api.example.com:8443/")));
        assert!(!p.matches(&url("https://api.example.com.evil.net/")));
    }

    #[test]
    fn wildcards_cover_subdomains_but_not_the_apex_or_lookalikes() {
        let p = OriginPattern::parse("https://*.example.com").unwrap();
        assert!(p.matches(&url("https://a.example.com/")));
        assert!(p.matches(&url("https://a.b.example.com/")));
        assert!(!p.matches(&url("https://example.com/")));
        assert!(!p.matches(&url("https://badexample.com/")));
        let any_port = OriginPattern::parse("http://localhost:*").unwrap();
        assert!(any_port.matches(&url("http://localhost:1234/")));
    }

    #[test]
    fn malformed_patterns_say_why() {
        for (bad, why) in [
            ("example.com", "scheme://host"),
            ("ftp://example.com", "scheme `ftp`"),
            ("https://example.com/path", "no path"),
            ("https://ex*ample.com", "first label"),
            ("https://example.com:99999", "port"),
            ("https://exa mple.com", "not a valid host"),
        ] {
            let err = OriginPattern::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn ipv6_literals_round_trip() {
        let p = OriginPattern::parse("http://[::1]:8080").unwrap();
        assert!(p.matches(&url("http://[::1]:8080/x")));
        assert_eq!(p.to_string(), "http://[::1]:8080");
        assert_eq!(
            OriginPattern::parse("https://a.example:443")
                .unwrap()
                .to_string(),
            "https://a.example"
        );
    }
}
