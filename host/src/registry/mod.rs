//! Deploying modules and getting them ready to run: validation against
//! the worlds, versioning, and one prepared-component cache per world.

pub mod loader;

use crate::backend::ModuleStore;
use crate::backend::StoreError;
use crate::engine::bindings::rpc::RpcPre;
use crate::engine::bindings::workflow::WorkflowPre;
use crate::engine::prepared::{Prepared, World};
use crate::model::{Clock, Digest, ModuleKind, ModuleVersion};
use crate::registry::loader::{ComponentLoader, LoadError};
use crate::replay::{WorkflowState, WorkflowWorld};
use crate::rpc::{RpcState, RpcWorld};
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
    #[error("invalid allowed host {0:?}: use `name` or `name:port` (a DNS name or IP address)")]
    InvalidHost(String),
    #[error("workflows cannot make network requests; only RPC modules take allowed hosts")]
    HostsForWorkflow,
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
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
}

/// Checks and lower-cases an allowed host: `name` or `name:port`, where
/// name is a DNS name or IPv4 address, or a bracketed IPv6 address.
pub fn normalize_host(host: &str) -> Option<String> {
    let host = host.trim().to_ascii_lowercase();
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        (format!("[{inside}]"), after.strip_prefix(':'))
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name.to_string(), Some(port)),
            None => (host.clone(), None),
        }
    };
    let name_ok = name.starts_with('[')
        || (!name.is_empty()
            && name.len() <= 253
            && !name.starts_with(['-', '.'])
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    (name_ok && port_ok).then_some(host)
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
    latest: Mutex<HashMap<String, (Instant, ModuleVersion)>>,
    loader: ComponentLoader,
    workflows: Prepared<WorkflowWorld>,
    rpcs: Prepared<RpcWorld>,
    max_module_bytes: usize,
    /// Stamps uploads.
    clock: Arc<dyn Clock>,
}

impl Registry {
    pub fn new(
        store: Arc<dyn ModuleStore>,
        loader: ComponentLoader,
        workflows: Prepared<WorkflowWorld>,
        rpcs: Prepared<RpcWorld>,
        max_module_bytes: usize,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            latest: Mutex::default(),
            loader,
            workflows,
            rpcs,
            max_module_bytes,
            clock,
        }
    }

    pub fn store(&self) -> &Arc<dyn ModuleStore> {
        &self.store
    }

    /// Validates `bytes`, stores them under their digest and records them as
    /// the newest version of `name`, allowed to reach `allowed_hosts` over
    /// HTTP (RPC modules only). Identical bytes with identical hosts are a
    /// no-op that returns the existing version. Nothing is stored if
    /// validation fails.
    pub async fn deploy(
        &self,
        name: &str,
        bytes: Vec<u8>,
        allowed_hosts: &[String],
    ) -> Result<ModuleVersion, DeployError> {
        let candidate = self.stage(name, bytes, allowed_hosts).await?;
        self.publish(&candidate).await
    }

    /// Validates a module for `name` and stores its bytes and artifact by
    /// digest, without making it a version: a candidate that runs can be
    /// replayed against (a replay-checked upgrade) before it is published.
    pub async fn stage(
        &self,
        name: &str,
        bytes: Vec<u8>,
        allowed_hosts: &[String],
    ) -> Result<ModuleVersion, DeployError> {
        if !valid_module_name(name) {
            return Err(DeployError::InvalidName(name.to_string()));
        }
        let mut hosts = Vec::with_capacity(allowed_hosts.len());
        for host in allowed_hosts {
            hosts.push(normalize_host(host).ok_or_else(|| DeployError::InvalidHost(host.clone()))?);
        }
        hosts.sort();
        hosts.dedup();
        check_preamble(&bytes, self.max_module_bytes)?;
        let digest = Digest::of(&bytes);
        let component = match self.loader.compile(&digest, bytes.clone()).await {
            Ok(c) => c,
            Err(LoadError::Compile { message, .. }) => return Err(DeployError::Invalid(message)),
            Err(LoadError::Store(e)) => return Err(DeployError::Store(e)),
            Err(e @ LoadError::Missing(_)) => return Err(DeployError::Invalid(e.to_string())),
        };
        let kind = self.classify(&digest, &component)?;
        if kind == ModuleKind::Workflow && !hosts.is_empty() {
            return Err(DeployError::HostsForWorkflow);
        }
        self.store.put_blob(&digest, &bytes).await?;
        self.loader
            .store_artifact(&digest, &component)
            .await
            .map_err(|e| match e {
                LoadError::Store(s) => DeployError::Store(s),
                other => DeployError::Invalid(other.to_string()),
            })?;
        Ok(ModuleVersion {
            name: name.to_string(),
            version: 0,
            digest,
            kind,
            size: bytes.len() as u64,
            uploaded_at: self.clock.now_millis(),
            allowed_hosts: hosts,
        })
    }

    /// Makes a [`Registry::stage`]d candidate the newest version of its
    /// name (or returns the existing version for identical bytes and hosts).
    pub async fn publish(&self, candidate: &ModuleVersion) -> Result<ModuleVersion, DeployError> {
        let name = candidate.name.as_str();
        let version = self.store.add_version(candidate).await?;
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
            return Ok(Some(version.clone()));
        }
        let version = self.store.latest(name).await?;
        // Only a found version is reused: a module deployed through another
        // process a moment ago (on Lambda, `weft-http` deploys and
        // `weft-worker` runs steps) must be seen by the next lookup.
        if let Some(found) = &version
            && let Ok(mut cache) = self.latest.lock()
        {
            cache.insert(name.to_string(), (Instant::now(), found.clone()));
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
        self.prepared(&self.workflows, digest).await
    }

    /// The RPC module with `digest`, ready to call.
    pub async fn rpc(&self, digest: &Digest) -> Result<PreparedRpc, LoadError> {
        self.prepared(&self.rpcs, digest).await
    }

    /// The module with `digest` prepared for world `W`: from this process's
    /// cache, or loaded (artifact or compile) and prepared once.
    async fn prepared<W: World>(
        &self,
        cache: &Prepared<W>,
        digest: &Digest,
    ) -> Result<W::Pre, LoadError> {
        if let Some(pre) = cache.cached(digest) {
            return Ok(pre);
        }
        let component = self.loader.load(digest).await?;
        let pre = cache.prepare(&component).map_err(|e| LoadError::Compile {
            digest: digest.clone(),
            message: format!("not {}: {e:#}", W::DESCRIPTION),
        })?;
        cache.insert(digest.clone(), pre.clone());
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
    if bytes.get(..4) != Some(b"\0asm".as_slice()) {
        return Err(DeployError::NotWasm);
    }
    match bytes.get(4..8) {
        Some([1, 0, 0, 0]) => Err(DeployError::CoreModule),
        Some(version) if version == COMPONENT_PREAMBLE => Ok(()),
        other => Err(DeployError::Invalid(format!(
            "unknown binary version {:02x?}",
            other.unwrap_or_default()
        ))),
    }
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
    fn allowed_hosts_are_checked_and_normalised() {
        assert_eq!(
            normalize_host("API.Example.com").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(
            normalize_host("127.0.0.1:8080").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(normalize_host("[::1]:80").as_deref(), Some("[::1]:80"));
        for bad in ["", "http://x", "a/b", "x:0", "x:99999", "-x", "a b", "[zz]"] {
            assert!(normalize_host(bad).is_none(), "{bad:?} should be rejected");
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
