//! Loading components by digest: from memory, from a precompiled artifact
//! this host produced, or by compiling the stored module bytes.
//!
//! Compiling a JavaScript or Python component takes seconds; loading its
//! precompiled artifact takes well under a millisecond. Artifacts are only
//! trusted if their sha256 matches the digest recorded (in the module store)
//! when this host wrote them: deserialising attacker-supplied machine code
//! would bypass the sandbox entirely.

use crate::backend::ModuleStore;
use crate::backend::StoreError;
use crate::model::Digest;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("module {0} is not in the module store")]
    Missing(Digest),
    #[error("module {digest} does not compile: {message}")]
    Compile { digest: Digest, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Compiled components of this process, by digest (and engine hash, in
/// case a process ever runs two engine configurations). Content-addressed,
/// so every service in the process may share them.
fn compiled() -> &'static Mutex<HashMap<(Digest, String), Component>> {
    static COMPILED: std::sync::OnceLock<Mutex<HashMap<(Digest, String), Component>>> =
        std::sync::OnceLock::new();
    COMPILED.get_or_init(Mutex::default)
}

/// Loads and caches compiled components.
pub struct ComponentLoader {
    engine: Engine,
    engine_hash: String,
    modules: Arc<dyn ModuleStore>,
    artifact_dir: PathBuf,
    /// Serialises compilation: one module is compiled once even when many
    /// activations ask for it at the same moment.
    compiling: tokio::sync::Mutex<()>,
}

impl ComponentLoader {
    pub fn new(
        engine: Engine,
        engine_hash: String,
        modules: Arc<dyn ModuleStore>,
        artifact_dir: PathBuf,
    ) -> Self {
        Self {
            engine,
            engine_hash,
            modules,
            artifact_dir,
            compiling: tokio::sync::Mutex::new(()),
        }
    }

    fn remembered(&self, digest: &Digest) -> Option<Component> {
        let key = (digest.clone(), self.engine_hash.clone());
        compiled().lock().ok()?.get(&key).cloned()
    }

    fn remember(&self, digest: &Digest, component: &Component) {
        if let Ok(mut m) = compiled().lock() {
            m.insert(
                (digest.clone(), self.engine_hash.clone()),
                component.clone(),
            );
        }
    }

    fn artifact_path(&self, digest: &Digest) -> PathBuf {
        self.artifact_dir
            .join(format!("{}-{}.cwasm", digest.as_str(), self.engine_hash))
    }

    /// The component for `digest`, compiled or loaded once per process.
    pub async fn load(&self, digest: &Digest) -> Result<Component, LoadError> {
        if let Some(c) = self.remembered(digest) {
            return Ok(c);
        }
        let _guard = self.compiling.lock().await;
        if let Some(c) = self.remembered(digest) {
            return Ok(c);
        }
        if let Some(c) = self.load_artifact(digest).await? {
            self.remember(digest, &c);
            return Ok(c);
        }
        let bytes = self
            .modules
            .get_blob(digest)
            .await?
            .ok_or_else(|| LoadError::Missing(digest.clone()))?;
        let component = self.compile(digest, bytes).await?;
        self.store_artifact(digest, &component).await?;
        self.remember(digest, &component);
        Ok(component)
    }

    /// Compiles module bytes (on the blocking pool: it is CPU-bound), or
    /// returns the component this process already compiled from them.
    pub async fn compile(&self, digest: &Digest, bytes: Vec<u8>) -> Result<Component, LoadError> {
        if let Some(c) = self.remembered(digest) {
            return Ok(c);
        }
        self.compile_fresh(digest, bytes).await
    }

    /// Compiles module bytes, ignoring every cache (benchmarks).
    pub async fn compile_fresh(
        &self,
        digest: &Digest,
        bytes: Vec<u8>,
    ) -> Result<Component, LoadError> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || Component::new(&engine, &bytes))
            .await
            .map_err(|e| LoadError::Compile {
                digest: digest.clone(),
                message: e.to_string(),
            })?
            .map_err(|e| LoadError::Compile {
                digest: digest.clone(),
                message: format!("{e:#}"),
            })
    }

    /// Keeps a freshly compiled component: in memory, and as an artifact on
    /// disk whose digest is recorded in the module store.
    pub async fn store_artifact(
        &self,
        digest: &Digest,
        component: &Component,
    ) -> Result<(), LoadError> {
        self.remember(digest, component);
        let bytes = component.serialize().map_err(|e| LoadError::Compile {
            digest: digest.clone(),
            message: format!("cannot serialise: {e:#}"),
        })?;
        let artifact_digest = Digest::of(&bytes);
        let bytes = Arc::new(bytes);
        let path = self.artifact_path(digest);
        let on_disk = bytes.clone();
        let written = tokio::task::spawn_blocking(move || {
            crate::util::write_file_atomically(&path, &on_disk)
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            // A read-only or full disk only costs a recompilation next time.
            Ok(Err(e)) => tracing::warn!(%digest, "cannot write precompiled artifact: {e}"),
            Err(e) => tracing::warn!(%digest, "cannot write precompiled artifact: {e}"),
        }
        // Shared first, recorded second: a recorded digest always has bytes
        // behind it somewhere, or the loader falls back to compiling.
        if let Err(e) = self
            .modules
            .put_shared_artifact(digest, &self.engine_hash, &bytes)
            .await
        {
            tracing::warn!(%digest, "cannot share precompiled artifact: {e}");
        }
        self.modules
            .put_artifact_digest(digest, &self.engine_hash, &artifact_digest)
            .await?;
        Ok(())
    }

    /// The artifact another host shared, if the store keeps one. Failures
    /// only cost a compilation, so they are logged, not returned.
    async fn fetch_shared_artifact(&self, digest: &Digest) -> Option<Vec<u8>> {
        match self
            .modules
            .get_shared_artifact(digest, &self.engine_hash)
            .await
        {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(%digest, "cannot fetch shared precompiled artifact: {e}");
                None
            }
        }
    }

    /// Loads the artifact for `digest` from disk (or from the store's
    /// shared copy) if one exists and is the
    /// one this host recorded, ignoring the in-memory cache: what a fresh
    /// process (a Lambda cold start) pays.
    pub async fn load_artifact(&self, digest: &Digest) -> Result<Option<Component>, LoadError> {
        let Some(expected) = self
            .modules
            .artifact_digest(digest, &self.engine_hash)
            .await?
        else {
            return Ok(None);
        };
        let path = self.artifact_path(digest);
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(_) => match self.fetch_shared_artifact(digest).await {
                Some(bytes) => {
                    // Best effort: the next process in this container reads it
                    // from disk.
                    let copy = bytes.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        crate::util::write_file_atomically(&path, &copy)
                    })
                    .await;
                    bytes
                }
                None => return Ok(None),
            },
        };
        if Digest::of(&bytes) != expected {
            tracing::warn!(%digest, "ignoring a precompiled artifact whose digest does not match the record");
            return Ok(None);
        }
        let engine = self.engine.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            // SAFETY: the bytes hash to the digest this host recorded when it
            // serialised the component itself, so they are wasmtime's own
            // output for this engine configuration (`engine_hash` is part of
            // the file name and of the record's key).
            #[allow(unsafe_code)]
            unsafe {
                Component::deserialize(&engine, &bytes)
            }
        })
        .await;
        match loaded {
            Ok(Ok(c)) => Ok(Some(c)),
            Ok(Err(e)) => {
                tracing::warn!(%digest, "cannot load precompiled artifact, recompiling: {e:#}");
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(%digest, "cannot load precompiled artifact, recompiling: {e}");
                Ok(None)
            }
        }
    }
}
