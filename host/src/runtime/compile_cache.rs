use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiled components on disk, in a directory the host owns, keyed by the
/// content hash of the wasm and the engine's compatibility hash: a cached
/// artifact is only ever loaded by an engine that can run it, and only the
/// host writes into this directory.
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

impl CompileCache {
    /// Opens (creates) the cache directory.
    pub fn new(dir: PathBuf, engine: &Engine) -> anyhow::Result<Self> {
        fs_err::create_dir_all(&dir).context("cannot create the compile cache directory")?;
        let mut hasher = Sha256Hasher::default();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        Ok(Self { dir, engine_key })
    }

    /// The content hash Weir identifies a plugin file by.
    pub fn content_hash(wasm: &[u8]) -> String {
        hex::encode(Sha256::digest(wasm))
    }

    fn artifact_path(&self, wasm: &[u8]) -> PathBuf {
        self.dir.join(format!(
            "{}-{}.cwasm",
            &Self::content_hash(wasm)[..32],
            self.engine_key
        ))
    }

    /// Loads the compiled artifact for `wasm`, compiling and storing it on a
    /// miss. A damaged artifact is recompiled, never trusted.
    pub fn load_or_compile(&self, engine: &Engine, wasm: &[u8]) -> anyhow::Result<Component> {
        let path = self.artifact_path(wasm);
        if path.exists() {
            // SAFETY: the file was written by `store` below from
            // `Component::serialize` of an engine with the same compatibility
            // hash (part of the file name); the directory belongs to the host.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(err) => tracing::warn!(
                    path = %path.display(),
                    "ignoring a damaged compile-cache entry: {err:#}"
                ),
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Err(err) = store(&path, &component) {
            tracing::warn!(path = %path.display(), "cannot write the compile cache: {err:#}");
        }
        Ok(component)
    }
}

impl CompileCache {
    /// Deletes artifacts of plugins no longer kept (by content hash) and of
    /// other engine versions; returns how many files went.
    pub fn prune(&self, live_hashes: &[String]) -> usize {
        let live: std::collections::HashSet<&str> =
            live_hashes.iter().map(|h| &h[..32.min(h.len())]).collect();
        let Ok(entries) = fs_err::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".cwasm") else {
                continue;
            };
            let (hash, engine) = stem.split_once('-').unwrap_or((stem, ""));
            if (!live.contains(hash) || engine != self.engine_key)
                && fs_err::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
        removed
    }
}

fn store(path: &Path, component: &Component) -> anyhow::Result<()> {
    let bytes = component.serialize()?;
    // Write then rename, so a crash never leaves a half-written artifact.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs_err::write(&tmp, bytes)?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}

#[derive(Default)]
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        unreachable!("only the digest is used")
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
