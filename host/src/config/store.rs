//! `store` in weir.toml: which backend keeps the state, and where.

use std::path::{Path, PathBuf};

/// Which backend keeps the store: `sqlite:PATH`, or a bare path (SQLite,
/// relative to weir.toml's directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// An SQLite file on this machine.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
}

impl StoreConfig {
    /// The file `store = "..."` names; `anchor` makes a relative path
    /// absolute.
    pub(super) fn parse(text: &str, anchor: impl Fn(PathBuf) -> PathBuf) -> Result<Self, String> {
        let (scheme, rest) = match text.split_once(':') {
            // A Windows drive letter (`C:\...`) is a path, not a scheme.
            Some((scheme, rest)) if scheme.len() > 1 => (Some(scheme), rest),
            _ => (None, text),
        };
        match scheme {
            None => Ok(Self::Sqlite {
                path: anchor(PathBuf::from(text)),
            }),
            Some("sqlite") if !rest.is_empty() => Ok(Self::Sqlite {
                path: anchor(PathBuf::from(rest.trim_start_matches("//"))),
            }),
            Some("sqlite") => Err("`sqlite:` needs a file after it, e.g. `sqlite:weir.db`".into()),
            Some(other) => Err(format!(
                "`{other}:` is not a store this Weir supports; use `sqlite:PATH` or a file path"
            )),
        }
    }

    /// The file beside which this host keeps what is its own: its locks,
    /// the webhook inbox and the compile cache by default. For SQLite, the
    /// database itself.
    pub fn local_file(&self) -> &Path {
        match self {
            Self::Sqlite { path } => path,
        }
    }
}

impl std::fmt::Display for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite { path } => write!(f, "sqlite:{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<StoreConfig, String> {
        StoreConfig::parse(text, |p| Path::new("/etc/weir").join(p))
    }

    #[test]
    fn a_path_or_a_sqlite_url_names_a_sqlite_file() {
        let at = |p: &str| StoreConfig::Sqlite { path: p.into() };
        assert_eq!(parse("weir.db"), Ok(at("/etc/weir/weir.db")));
        assert_eq!(
            parse("sqlite:data/weir.db"),
            Ok(at("/etc/weir/data/weir.db"))
        );
        assert_eq!(parse("sqlite:///var/weir.db"), Ok(at("/var/weir.db")));
        assert_eq!(parse("/var/weir.db"), Ok(at("/var/weir.db")));
    }

    #[test]
    fn an_unknown_backend_is_refused_naming_what_works() {
        assert_eq!(
            parse("mysql://db/weir"),
            Err(
                "`mysql:` is not a store this Weir supports; use `sqlite:PATH` or a file path"
                    .into()
            )
        );
        assert!(parse("sqlite:").unwrap_err().contains("needs a file"));
    }
}
