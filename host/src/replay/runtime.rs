//! The workflow linker and the cache of prepared workflow components.

use super::state::WorkflowState;
use crate::engine::bindings::workflow::{Workflow, WorkflowPre};
use crate::model::Digest;
use std::collections::HashMap;
use std::sync::Mutex;
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker};

/// Links workflow components against the host and keeps one
/// [`WorkflowPre`] per module digest, so an activation only instantiates:
/// import resolution and type checks happen once per module.
pub struct WorkflowRuntime {
    linker: Linker<WorkflowState>,
    prepared: Mutex<HashMap<Digest, WorkflowPre<WorkflowState>>>,
}

impl WorkflowRuntime {
    pub fn new(engine: &Engine) -> wasmtime::Result<Self> {
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Workflow::add_to_linker::<WorkflowState, HasSelf<WorkflowState>>(&mut linker, |s| s)?;
        Ok(Self {
            linker,
            prepared: Mutex::default(),
        })
    }

    /// Checks that `component` is a workflow this host can run: every import
    /// satisfiable, the `run` export present with the right type. The error
    /// names what is missing or mismatched.
    pub fn prepare(&self, component: &Component) -> wasmtime::Result<WorkflowPre<WorkflowState>> {
        let pre = self.linker.instantiate_pre(component)?;
        WorkflowPre::new(pre)
    }

    pub fn cached(&self, digest: &Digest) -> Option<WorkflowPre<WorkflowState>> {
        self.prepared.lock().ok()?.get(digest).cloned()
    }

    pub fn insert(&self, digest: Digest, pre: WorkflowPre<WorkflowState>) {
        if let Ok(mut map) = self.prepared.lock() {
            map.insert(digest, pre);
        }
    }
}
