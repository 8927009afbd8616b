use url::Url;

use super::OriginPattern;

/// One entry of a connector's `spec.hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRequirement {
    /// A fixed origin pattern.
    Origin(OriginPattern),
    /// The origin of the URL found in the connection's config at this JSON
    /// pointer (`config:/base_url`).
    ConfigPointer(String),
}

impl HostRequirement {
    /// Parses a `spec.hosts` entry.
    pub fn parse(entry: &str) -> Result<Self, String> {
        match entry.strip_prefix("config:") {
            Some(pointer) if pointer.starts_with('/') => Ok(Self::ConfigPointer(pointer.into())),
            Some(_) => {
                Err("expected a JSON pointer after `config:`, e.g. `config:/base_url`".into())
            }
            None => OriginPattern::parse(entry).map(Self::Origin),
        }
    }

    /// The pattern this requirement stands for under a connection's config.
    fn resolve(&self, config: &serde_json::Value) -> Result<OriginPattern, String> {
        match self {
            Self::Origin(pattern) => Ok(pattern.clone()),
            Self::ConfigPointer(pointer) => {
                let value = config
                    .pointer(pointer)
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| format!("the connection's config has no URL at `{pointer}`"))?;
                let url = Url::parse(value)
                    .map_err(|e| format!("config `{pointer}` = `{value}` is not a URL: {e}"))?;
                OriginPattern::of_url(&url)
            }
        }
    }
}

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressDenial {
    /// The connection's operator did not allow the origin.
    NotAllowed {
        /// The URL's origin, as an allow-list entry would spell it.
        origin: String,
        /// Whether the connector declares it: if not, allowing it is not
        /// enough.
        declared: bool,
    },
    /// The connector did not declare the origin in its spec.
    NotDeclared {
        /// The URL's origin.
        origin: String,
    },
    /// The URL is not an absolute http(s) URL.
    BadUrl(String),
}

/// The origins one connection's connector may reach: declared by the
/// connector *and* allowed by the operator.
#[derive(Debug, Clone, Default)]
pub struct EgressGrant {
    declared: Vec<OriginPattern>,
    allowed: Vec<OriginPattern>,
}

impl EgressGrant {
    /// Builds the grant. Declared entries that cannot be resolved under this
    /// config (a missing `base_url`) grant nothing; they are returned so the
    /// caller can report them.
    pub fn new(
        declared: &[String],
        config: &serde_json::Value,
        allowed: Vec<OriginPattern>,
    ) -> (Self, Vec<String>) {
        let mut problems = Vec::new();
        let declared = declared
            .iter()
            .filter_map(|entry| {
                HostRequirement::parse(entry)
                    .and_then(|req| req.resolve(config))
                    .map_err(|why| problems.push(format!("`{entry}`: {why}")))
                    .ok()
            })
            .collect();
        (Self { declared, allowed }, problems)
    }

    /// Allows a URL or says why not.
    pub fn check(&self, url: &Url) -> Result<(), EgressDenial> {
        let origin = OriginPattern::of_url(url)
            .map_err(EgressDenial::BadUrl)?
            .to_string();
        let declared = self.declared.iter().any(|p| p.matches(url));
        if !self.allowed.iter().any(|p| p.matches(url)) {
            return Err(EgressDenial::NotAllowed { origin, declared });
        }
        if !declared {
            return Err(EgressDenial::NotDeclared { origin });
        }
        Ok(())
    }

    /// Hosts of the origins the operator allowed exactly (no wildcard). Their
    /// names may resolve to private addresses, but only for a request to
    /// that exact origin: see [`Self::explicitly_allows`].
    pub fn exempt_hosts(&self) -> std::collections::HashSet<String> {
        self.allowed
            .iter()
            .filter_map(|p| p.exact_host().map(str::to_string))
            .collect()
    }

    /// Whether the operator explicitly allowed exactly this host and port
    /// (not through a wildcard): the only way to reach private addresses.
    pub fn explicitly_allows(&self, url: &Url) -> bool {
        OriginPattern::of_url(url).is_ok_and(|exact| self.allowed.contains(&exact))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grant(declared: &[&str], allowed: &[&str]) -> EgressGrant {
        let declared: Vec<String> = declared.iter().map(|s| s.to_string()).collect();
        let allowed = allowed
            .iter()
            .map(|s| OriginPattern::parse(s).unwrap())
            .collect();
        let (grant, problems) = EgressGrant::new(
            &declared,
            &json!({"base_url": "http://127.0.0.1:4010/api"}),
            allowed,
        );
        assert!(problems.is_empty(), "{problems:?}");
        grant
    }

    #[test]
    fn the_grant_is_the_intersection_of_declared_and_allowed() {
        let g = grant(
            &["config:/base_url", "https://*.acme.example"],
            &["http://127.0.0.1:4010", "https://api.other.example"],
        );
        assert_eq!(
            g.check(&Url::parse("http://127.0.0.1:4010/v1").unwrap()),
            Ok(())
        );
        assert_eq!(
            g.check(&Url::parse("https://api.other.example/").unwrap()),
            Err(EgressDenial::NotDeclared {
                origin: "https://api.other.example".into()
            })
        );
        assert_eq!(
            g.check(&Url::parse("https://eu.acme.example/").unwrap()),
            Err(EgressDenial::NotAllowed {
                origin: "https://eu.acme.example".into(),
                declared: true,
            })
        );
        assert_eq!(
            g.check(&Url::parse("https://elsewhere.example/").unwrap()),
            Err(EgressDenial::NotAllowed {
                origin: "https://elsewhere.example".into(),
                declared: false,
            }),
            "neither declared nor allowed says so"
        );
    }

    #[test]
    fn only_an_exact_origin_is_explicitly_allowed() {
        let g = grant(
            &["http://localhost:*"],
            &["http://localhost:38341", "http://localhost:*"],
        );
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(g.explicitly_allows(&url("http://localhost:38341/v1")));
        assert!(!g.explicitly_allows(&url("http://localhost:33309/v1")));
        assert!(!g.explicitly_allows(&url("https://localhost:38341/v1")));
        assert_eq!(
            g.exempt_hosts(),
            std::collections::HashSet::from(["localhost".to_string()])
        );
    }

    #[test]
    fn deny_by_default() {
        let g = grant(&["config:/base_url"], &[]);
        assert!(matches!(
            g.check(&Url::parse("http://127.0.0.1:4010/").unwrap()),
            Err(EgressDenial::NotAllowed { .. })
        ));
    }

    #[test]
    fn unresolvable_config_pointers_are_reported() {
        let (_, problems) = EgressGrant::new(&["config:/missing".into()], &json!({}), vec![]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("no URL at `/missing`"));
    }
}
