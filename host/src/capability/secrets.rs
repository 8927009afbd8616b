use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use super::sealed::{open_sealed, sealing_keys};

/// Where a secret's value comes from. Values never live in `weir.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of the `weir` process.
    Env(String),
    /// A file (trailing newline ignored), e.g. a mounted secret.
    File(PathBuf),
    /// A value kept sealed in a tenant's settings (see `sealed`), opened
    /// with one of the keys `keys` hold.
    Sealed {
        /// The sealed value.
        sealed: String,
        /// Where it belongs: `tenant/connection/secret`.
        place: String,
        /// Where the sealing keys come from, newest first.
        keys: Vec<SecretSource>,
    },
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(var) => write!(f, "environment variable `{var}`"),
            Self::File(path) => write!(f, "file `{}`", path.display()),
            Self::Sealed { place, .. } => write!(f, "the sealed value of `{place}`"),
        }
    }
}

impl SecretSource {
    fn read(&self) -> Result<SecretValue, String> {
        let bytes = match self {
            Self::Env(var) => std::env::var_os(var)
                .ok_or_else(|| format!("{self} is not set"))?
                .into_encoded_bytes(),
            Self::File(path) => {
                #[expect(
                    clippy::disallowed_methods,
                    reason = "its error names the file already, in the words users see"
                )]
                let mut bytes =
                    std::fs::read(path).map_err(|e| format!("{self} cannot be read: {e}"))?;
                while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    bytes.pop();
                }
                bytes
            }
            Self::Sealed {
                sealed,
                place,
                keys,
            } => {
                let keys = sealing_keys(keys)?;
                return open_sealed(&keys, place, sealed).map_err(|why| format!("{self} {why}"));
            }
        };
        SecretValue::new(bytes).map_err(|why| format!("{self} {why}"))
    }
}

/// A secret's value. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Box<[u8]>);

impl SecretValue {
    /// A value; an empty one is refused (a variable set to nothing is a
    /// mistake, not a credential).
    pub fn new(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.is_empty() {
            return Err("is empty".into());
        }
        Ok(Self(bytes.into_boxed_slice()))
    }

    /// The raw bytes, for the host's own use (headers, HMAC keys).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// The secrets of one connection, by the names the connector uses. A name
/// may have several values during a rotation, newest first.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: HashMap<String, Vec<SecretValue>>,
}

impl Secrets {
    /// Reads every source now, so a missing variable fails before a run
    /// starts rather than in the middle of one. The error names the secret.
    pub fn resolve<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a [SecretSource])>,
    ) -> Result<Self, (String, String)> {
        let mut values = HashMap::new();
        for (name, sources) in sources {
            let resolved = sources
                .iter()
                .map(SecretSource::read)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|why| (name.to_string(), why))?;
            values.insert(name.to_string(), resolved);
        }
        Ok(Self { values })
    }

    /// The newest value of a secret.
    pub fn current(&self, name: &str) -> Option<&SecretValue> {
        self.values.get(name).and_then(|v| v.first())
    }

    /// Every active value of a secret, newest first.
    pub fn all(&self, name: &str) -> &[SecretValue] {
        self.values.get(name).map(Vec::as_slice).unwrap_or_default()
    }

    /// Whether a secret is configured.
    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// Names of configured secrets.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Whether `haystack` contains any secret value (used to keep secrets
    /// out of logs and guest-visible responses).
    pub fn leaks_into(&self, haystack: &[u8]) -> bool {
        self.values.values().flatten().any(|secret| {
            let needle = secret.expose();
            !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_secrets_drop_the_trailing_newline_and_debug_is_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "s3cret\n").unwrap();
        let sources = [SecretSource::File(path)];
        let secrets = Secrets::resolve([("api_key", &sources[..])]).unwrap();
        assert_eq!(secrets.current("api_key").unwrap().expose(), b"s3cret");
        assert!(!format!("{secrets:?}").contains("s3cret"));
        assert!(secrets.leaks_into(b"xx s3cret yy"));
    }

    #[test]
    fn a_missing_variable_names_the_secret_and_the_variable() {
        let sources = [SecretSource::Env("WEIR_TEST_SURELY_UNSET_VAR".into())];
        let (name, why) = Secrets::resolve([("token", &sources[..])]).unwrap_err();
        assert_eq!(name, "token");
        assert!(why.contains("WEIR_TEST_SURELY_UNSET_VAR"), "{why}");
    }
}
