//! Deploying modules and getting them ready to run.

use super::ModuleStore;
use crate::engine::bindings::rpc::RpcPre;
use crate::engine::bindings::workflow::WorkflowPre;
use crate::engine::loader::{ComponentLoader, LoadError};
use crate::model::{Digest, ModuleKind, ModuleVersion, now_millis};
use crate::replay::{WorkflowRuntime, WorkflowState};
use crate::rpc::{RpcRuntime, RpcState};
use crate::store::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::Component;

/// Why an upload was refused. Each message says what is wrong with the
/// bytes, precisely enough to fix the build that produced them.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(
        "invalid module name {0:?}: use 1-64 characters from a-z, 0-9, '-' and '_', starting with a letter or digit"
    )]
    InvalidName(String),
    #[error("the module is {size} bytes; the limit is {limit} (WEFT_MAX_MODULE_BYTES)")]
    TooLarge { size: usize, limit: usize },
    #[error("the upload is empty")]
    Empty,
    #[error("not a WebAssembly binary (it does not start with the `\\0asm` magic number)")]
    NotWasm,
    #[error(
        "this is a core WebAssembly module, not a component: build for `wasm32-wasip2` or wrap it with `wasm-tools component new`"
    )]
    CoreModule,
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(String),
    #[error(
        "the component fits neither Weft world.\n  as a workflow (weft:workflow/workflow): {workflow}\n  as an RPC module (weft:workflow/rpc): {rpc}"
    )]
    WrongWorld { workflow: String, rpc: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A workflow module ready to activate.
pub type PreparedWorkflow = WorkflowPre<WorkflowState>;
/// An RPC module ready to call.
pub type PreparedRpc = RpcPre<RpcState>;

/// Module names double as the first half of RPC names and as store keys.
pub fn valid_module_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=64).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
}

/// Binary preamble of a component (layer 1) as opposed to a core module.
const COMPONENT_PREAMBLE: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];

/// How long a looked-up "latest version" of an RPC module is reused. A new
/// RPC module version reaches every worker within this time (at once in the
/// process that deployed it); workflows are resolved afresh for every run.
pub const LATEST_VERSION_TTL: Duration = Duration::from_secs(5);

/// The module registry: validation, storage and preparation of modules.
pub struct Registry {
    store: Arc<dyn ModuleStore>,
    latest: Mutex<HashMap<String, (Instant, Option<ModuleVersion>)>>,
    loader: ComponentLoader,
    workflows: WorkflowRuntime,
    rpcs: RpcRuntime,
    max_module_bytes: usize,
}

impl Registry {
    pub fn new(
        store: Arc<dyn ModuleStore>,
        loader: ComponentLoader,
        workflows: WorkflowRuntime,
        rpcs: RpcRuntime,
        max_module_bytes: usize,
    ) -> Self {
        Self {
            store,
            latest: Mutex::default(),
            loader,
            workflows,
            rpcs,
            max_module_bytes,
        }
    }

    pub fn store(&self) -> &Arc<dyn ModuleStore> {
        &self.store
    }

    /// Validates `bytes`, stores them under their digest and records them as
    /// the newest version of `name`. Identical bytes are a no-op that
    /// returns the existing version. Nothing is stored if validation fails.
    pub async fn deploy(&self, name: &str, bytes: Vec<u8>) -> Result<ModuleVersion, DeployError> {
        if !valid_module_name(name) {
            return Err(DeployError::InvalidName(name.to_string()));
        }
        check_preamble(&bytes, self.max_module_bytes)?;
        let digest = Digest::of(&bytes);
        let component = match self.loader.compile(&digest, bytes.clone()).await {
            Ok(c) => c,
            Err(LoadError::Compile { message, .. }) => return Err(DeployError::Invalid(message)),
            Err(LoadError::Store(e)) => return Err(DeployError::Store(e)),
            Err(e @ LoadError::Missing(_)) => return Err(DeployError::Invalid(e.to_string())),
        };
        let kind = self.classify(&digest, &component)?;
        self.store.put_blob(&digest, &bytes).await?;
        self.loader
            .store_artifact(&digest, &component)
            .await
            .map_err(|e| match e {
                LoadError::Store(s) => DeployError::Store(s),
                other => DeployError::Invalid(other.to_string()),
            })?;
        let version = self
            .store
            .add_version(name, &digest, kind, bytes.len() as u64, now_millis())
            .await?;
        if let Ok(mut cache) = self.latest.lock() {
            cache.remove(name);
        }
        Ok(version)
    }

    /// The newest version of `name`, looked up at most once per
    /// [`LATEST_VERSION_TTL`]: RPC steps resolve their module this way, so
    /// a busy worker does not query the module table for every call.
    pub async fn latest_cached(&self, name: &str) -> Result<Option<ModuleVersion>, StoreError> {
        if let Ok(cache) = self.latest.lock()
            && let Some((at, version)) = cache.get(name)
            && at.elapsed() < LATEST_VERSION_TTL
        {
            return Ok(version.clone());
        }
        let version = self.store.latest(name).await?;
        if let Ok(mut cache) = self.latest.lock() {
            cache.insert(name.to_string(), (Instant::now(), version.clone()));
        }
        Ok(version)
    }

    /// Decides which world a component implements, caching the prepared
    /// form; the error explains why it fits neither.
    fn classify(&self, digest: &Digest, component: &Component) -> Result<ModuleKind, DeployError> {
        let as_workflow = match self.workflows.prepare(component) {
            Ok(pre) => {
                self.workflows.insert(digest.clone(), pre);
                return Ok(ModuleKind::Workflow);
            }
            Err(e) => format!("{e:#}"),
        };
        match self.rpcs.prepare(component) {
            Ok(pre) => {
                self.rpcs.insert(digest.clone(), pre);
                Ok(ModuleKind::Rpc)
            }
            Err(e) => Err(DeployError::WrongWorld {
                workflow: as_workflow,
                rpc: format!("{e:#}"),
            }),
        }
    }

    /// The workflow module with `digest`, ready to activate.
    pub async fn workflow(&self, digest: &Digest) -> Result<PreparedWorkflow, LoadError> {
        if let Some(pre) = self.workflows.cached(digest) {
            return Ok(pre);
        }
        let component = self.loader.load(digest).await?;
        let pre = self
            .workflows
            .prepare(&component)
            .map_err(|e| LoadError::Compile {
                digest: digest.clone(),
                message: format!("not a workflow: {e:#}"),
            })?;
        self.workflows.insert(digest.clone(), pre.clone());
        Ok(pre)
    }

    /// The RPC module with `digest`, ready to call.
    pub async fn rpc(&self, digest: &Digest) -> Result<PreparedRpc, LoadError> {
        if let Some(pre) = self.rpcs.cached(digest) {
            return Ok(pre);
        }
        let component = self.loader.load(digest).await?;
        let pre = self
            .rpcs
            .prepare(&component)
            .map_err(|e| LoadError::Compile {
                digest: digest.clone(),
                message: format!("not an RPC module: {e:#}"),
            })?;
        self.rpcs.insert(digest.clone(), pre.clone());
        Ok(pre)
    }
}

/// Cheap checks before compiling: size, wasm magic, component vs core.
fn check_preamble(bytes: &[u8], max: usize) -> Result<(), DeployError> {
    if bytes.is_empty() {
        return Err(DeployError::Empty);
    }
    if bytes.len() > max {
        return Err(DeployError::TooLarge {
            size: bytes.len(),
            limit: max,
        });
    }
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(DeployError::NotWasm);
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(DeployError::CoreModule);
    }
    if bytes[4..8] != COMPONENT_PREAMBLE {
        return Err(DeployError::Invalid(format!(
            "unknown binary version {:02x?}",
            &bytes[4..8]
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_restricted_to_safe_characters() {
        assert!(valid_module_name("order-rpc"));
        assert!(valid_module_name("hello_2"));
        for bad in ["", "-x", "Order", "a/b", "a#b", "a b", &"x".repeat(65)] {
            assert!(!valid_module_name(bad), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn preamble_distinguishes_garbage_core_modules_and_components() {
        assert!(matches!(check_preamble(b"", 100), Err(DeployError::Empty)));
        assert!(matches!(
            check_preamble(b"hello world", 100),
            Err(DeployError::NotWasm)
        ));
        assert!(matches!(
            check_preamble(b"\0asm\x01\0\0\0", 100),
            Err(DeployError::CoreModule)
        ));
        assert!(check_preamble(b"\0asm\x0d\0\x01\0", 100).is_ok());
        assert!(matches!(
            check_preamble(b"\0asm\x0d\0\x01\0", 4),
            Err(DeployError::TooLarge { .. })
        ));
    }
}
