//! One daemon per database. A daemon schedules every tenant's flows and
//! takes back the webhook deliveries a dead process left half done; two
//! daemons on one store would do both twice. `weir run` holds an exclusive
//! OS lock on `<database>.daemon.lock` for as long as it runs; the OS drops
//! it with the process, however that ends (SIGKILL included), so a lock is
//! never stale. The file holds the holder's pid, for the message a second
//! daemon prints. Other commands (`weir sync`, `weir status`, ...) never
//! take it: they work beside a daemon.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnose, Diagnostic, ErrorCode};

/// The lock a running daemon holds on one database; released when dropped
/// or when the process ends.
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
}

/// Why a daemon could not take a database.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another daemon holds it.
    #[error(
        "another `weir run` ({}) already serves {what} `{}`",
        holder.map_or("pid unknown".to_string(), |pid| format!("pid {pid}")),
        database.display()
    )]
    Held {
        /// What the database is: `store` or `webhook inbox`.
        what: &'static str,
        /// The database.
        database: PathBuf,
        /// The holder's pid, when its lock file says.
        holder: Option<u32>,
    },
    /// The lock file cannot be opened or locked.
    #[error("cannot lock `{}` for `weir run`: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Diagnose for LockError {
    /// The user-facing form, with code and hint.
    fn diagnostic(&self) -> Diagnostic {
        match self {
            Self::Held { holder, .. } => {
                let stop = holder.map_or("stop it first".to_string(), |pid| {
                    format!("stop it first (`kill {pid}`)")
                });
                Diagnostic::new(ErrorCode::DaemonRunning, self.to_string()).with_hint(format!(
                    "{stop}, or give this daemon its own `store` in weir.toml; `weir sync`, `weir status` and the other commands work beside it"
                ))
            }
            Self::Io { path, .. } => Diagnostic::new(ErrorCode::StoreUnavailable, self.to_string())
                .with_hint(format!(
                    "check that the directory of `{}` is writable",
                    path.display()
                )),
        }
    }
}

impl DaemonLock {
    /// Takes the lock on `database` (`what` names it in messages), or says
    /// who holds it.
    pub fn acquire(what: &'static str, database: &Path) -> Result<Self, LockError> {
        let path = Self::path_of(database);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            fs_err::create_dir_all(dir).map_err(io)?;
        }
        // Never truncated before the lock is ours: the holder's pid is in it.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let holder = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                return Err(LockError::Held {
                    what,
                    database: database.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self { _file: file })
    }

    /// `<database>.daemon.lock`.
    pub fn path_of(database: &Path) -> PathBuf {
        let mut path = database.as_os_str().to_owned();
        path.push(".daemon.lock");
        PathBuf::from(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_database_names_the_holders_pid_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("weir.db");
        let first = DaemonLock::acquire("store", &store).expect("the first lock");
        let held = DaemonLock::acquire("store", &store).expect_err("a second lock is refused");
        assert!(
            matches!(held, LockError::Held { holder: Some(pid), .. } if pid == std::process::id()),
            "{held}"
        );
        let diagnostic = held.diagnostic();
        assert_eq!(diagnostic.code, ErrorCode::DaemonRunning);
        assert!(
            diagnostic
                .message
                .contains(&format!("(pid {})", std::process::id())),
            "{}",
            diagnostic.message
        );
        drop(first);
        DaemonLock::acquire("store", &store).expect("free again once dropped");
    }
}
