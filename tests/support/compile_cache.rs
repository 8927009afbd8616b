//! One compile cache shared by every test workspace: a workspace starts
//! with the components others compiled, hard-linked into its own cache, and
//! gives back what it compiled when it is dropped. Each workspace keeps a
//! cache of its own, so a daemon pruning it never touches another's files,
//! and `weir` finds what it expects where it expects it.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::guests::COMPILE_CACHE;

/// Numbers staged files apart between the threads of one test process.
static STAGED: AtomicU64 = AtomicU64::new(0);

/// Fills `cache` (a workspace's, created) with the shared artifacts.
pub fn warm(cache: &Path) {
    std::fs::create_dir_all(cache).expect("create the workspace's compile cache");
    for artifact in artifacts(Path::new(COMPILE_CACHE)) {
        let name = artifact.file_name().expect("a file");
        // A copy when hard links are refused (another file system).
        let _ = std::fs::hard_link(&artifact, cache.join(name))
            .or_else(|_| std::fs::copy(&artifact, cache.join(name)).map(drop));
    }
}

/// Shares what `cache` holds that the shared cache does not. Best effort:
/// a test that cannot share only makes a later one compile again.
pub fn give_back(cache: &Path) {
    let shared = Path::new(COMPILE_CACHE);
    if std::fs::create_dir_all(shared).is_err() {
        return;
    }
    for artifact in artifacts(cache) {
        let name = artifact.file_name().expect("a file");
        let target = shared.join(name);
        if target.exists() {
            continue;
        }
        // Linked under a name of its own, then renamed: another test never
        // sees half a file.
        let staged = shared.join(format!(
            "{}.{}-{}.staged",
            name.to_string_lossy(),
            std::process::id(),
            STAGED.fetch_add(1, Ordering::Relaxed)
        ));
        if std::fs::hard_link(&artifact, &staged)
            .or_else(|_| std::fs::copy(&artifact, &staged).map(drop))
            .is_ok()
            && std::fs::rename(&staged, &target).is_err()
        {
            let _ = std::fs::remove_file(&staged);
        }
    }
}

/// The compiled artifacts in `dir`.
fn artifacts(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect()
}
