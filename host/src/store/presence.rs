//! Which processes using a store are alive. Each holds an advisory lock on a
//! file of its own in a directory beside the store (`<store>.processes/`)
//! for as long as it runs, and every run it starts names that file as its
//! owner. The operating system releases the locks of a process however it
//! ends, SIGKILL included, so a lock another process can take belongs to a
//! process that died: its runs did not end, they were interrupted. Owners
//! are random names rather than pids, which the system reuses.

use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// The lock files' extension; a file is renamed to it once locked.
const LOCK: &str = "lock";

/// This process's presence on a store, held until dropped.
#[derive(Debug)]
pub struct Presence {
    dir: PathBuf,
    owner: String,
    /// Holds the lock: closing the file releases it.
    _file: File,
}

impl Presence {
    /// Announces this process beside the store at `store_path`.
    pub fn announce(store_path: &Path) -> io::Result<Self> {
        let dir = directory(store_path);
        fs_err::create_dir_all(&dir)?;
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the operating system provides randomness");
        let owner = hex::encode(bytes);
        // Locked under a temporary name, then renamed: a lock file is never
        // seen unlocked while its process lives, so never taken for dead.
        let temporary = dir.join(format!("{owner}.new"));
        let file = fs_err::File::create(&temporary)?.into_parts().0;
        file.try_lock().map_err(|e| match e {
            TryLockError::Error(e) => e,
            TryLockError::WouldBlock => io::Error::other("a fresh lock file is locked"),
        })?;
        fs_err::rename(&temporary, lock_path(&dir, &owner))?;
        Ok(Self {
            dir,
            owner,
            _file: file,
        })
    }

    /// The name runs of this process record as their owner.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Whether the process that announced itself as `owner` is alive.
    pub fn is_alive(&self, owner: &str) -> io::Result<bool> {
        if owner == self.owner {
            return Ok(true);
        }
        let file = match File::open(lock_path(&self.dir, owner)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            // Released when `file` closes.
            Ok(()) => Ok(false),
            Err(TryLockError::WouldBlock) => Ok(true),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// Every owner with a lock file whose process is dead.
    pub fn dead_owners(&self) -> io::Result<Vec<String>> {
        let mut dead = Vec::new();
        for entry in fs_err::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != LOCK) {
                continue;
            }
            let Some(owner) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if !self.is_alive(owner)? {
                dead.push(owner.to_string());
            }
        }
        Ok(dead)
    }

    /// Removes the lock file of a dead owner, once its runs are settled.
    pub fn forget(&self, owner: &str) {
        if owner != self.owner {
            let _ = fs_err::remove_file(lock_path(&self.dir, owner));
        }
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        // Removed while still locked, so never seen unlocked before.
        let _ = fs_err::remove_file(lock_path(&self.dir, &self.owner));
    }
}

/// The directory of the lock files of the store at `store_path`.
fn directory(store_path: &Path) -> PathBuf {
    let mut name = store_path.file_name().unwrap_or_default().to_os_string();
    name.push(".processes");
    store_path.with_file_name(name)
}

fn lock_path(dir: &Path, owner: &str) -> PathBuf {
    dir.join(format!("{owner}.{LOCK}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_alive_and_a_file_left_behind_is_dead() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("weir.db");
        let mine = Presence::announce(&store).unwrap();
        let other = Presence::announce(&store).unwrap();
        assert!(mine.is_alive(other.owner()).unwrap());
        assert!(mine.dead_owners().unwrap().is_empty());

        // What a killed process leaves behind: its file, unlocked.
        std::fs::write(lock_path(&mine.dir, "feed"), "").unwrap();
        assert!(!mine.is_alive("feed").unwrap());
        assert_eq!(mine.dead_owners().unwrap(), ["feed"]);
        mine.forget("feed");
        assert!(mine.dead_owners().unwrap().is_empty());
        assert!(!mine.is_alive("feed").unwrap(), "no file: dead");

        let ended = other.owner().to_string();
        drop(other);
        assert!(!mine.is_alive(&ended).unwrap());
    }
}
