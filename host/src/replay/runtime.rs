//! The workflow world: how workflow components are linked against the host.

use super::state::WorkflowState;
use crate::engine::bindings::workflow::{Workflow, WorkflowPre};
use crate::engine::bindings::workflow_v0_1::Workflow as WorkflowV0_1;
use crate::engine::prepared::World;
use wasmtime::component::{HasSelf, InstancePre, Linker};

/// The `workflow` world: deterministic WASI plus the step API, in the
/// current package version and in 0.1.0 (both export the same `run`, so a
/// component of either version prepares to the same form).
pub struct WorkflowWorld;

impl World for WorkflowWorld {
    type State = WorkflowState;
    type Pre = WorkflowPre<WorkflowState>;
    const DESCRIPTION: &'static str = "a workflow";

    fn link(linker: &mut Linker<WorkflowState>) -> wasmtime::Result<()> {
        wasmtime_wasi::p2::add_to_linker_async(linker)?;
        Workflow::add_to_linker::<WorkflowState, HasSelf<WorkflowState>>(linker, |s| s)?;
        WorkflowV0_1::add_to_linker::<WorkflowState, HasSelf<WorkflowState>>(linker, |s| s)
    }

    fn check_exports(pre: InstancePre<WorkflowState>) -> wasmtime::Result<Self::Pre> {
        WorkflowPre::new(pre)
    }
}
