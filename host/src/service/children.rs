//! Child runs: a step that starts a run of another deployed workflow, the
//! child's end delivered to its parent as that step's outcome, and
//! attached children cancelled with their parent.
//!
//! A child is an ordinary run with a [`ParentLink`]. Its id is derived from
//! (parent run, step name) and it is started through the idempotent start,
//! so a replay or a retry after a crash finds the child the first start
//! created, pinned to the workflow's digest at that moment.

use super::{ServiceError, StartOptions, Weft};
use crate::model::{
    ErrorCode, ErrorInfo, ParentLink, RunId, RunRecord, RunStatus, StepKind, StepOutcome,
    StepRecord, WorkMessage,
};
use std::sync::Arc;

impl Weft {
    /// Starts (or, on a retry, finds) the child that step `step` of run
    /// `parent` starts: `step.rpc_name` names its workflow, `step.input`
    /// is its input. A child that cannot start (no such workflow, an
    /// input refused) is an error for the parent's step, not for the host.
    pub(crate) async fn start_child(
        self: &Arc<Self>,
        parent: &RunId,
        step: &StepRecord,
        detached: bool,
    ) -> Result<Result<RunId, ErrorInfo>, ServiceError> {
        let workflow = step.rpc_name.as_deref().unwrap_or_default();
        let options = StartOptions {
            timeout: None,
            idempotency_key: Some(ParentLink::start_key(parent, &step.name)),
            parent: Some(ParentLink {
                run_id: parent.clone(),
                step: step.name.clone(),
                detached,
            }),
        };
        let input = step.input.as_deref().unwrap_or("null");
        match self.start_run_with(workflow, input, options).await {
            Ok(id) => Ok(Ok(id)),
            Err(
                e @ (ServiceError::UnknownWorkflow(_)
                | ServiceError::NotAWorkflow(_)
                | ServiceError::InvalidInput(_)
                | ServiceError::PayloadTooLarge(_)),
            ) => Ok(Err(ErrorInfo::host(
                ErrorCode::UnknownWorkflow,
                format!("child step `{}` could not start: {e}", step.name),
            ))),
            Err(e) => Err(e),
        }
    }

    /// The child run of step `step` (of kind child) of run `parent`.
    pub(crate) fn child_of(parent: &RunId, step: &StepRecord) -> RunId {
        ParentLink::child_id(
            parent,
            &step.name,
            step.rpc_name.as_deref().unwrap_or_default(),
        )
    }

    /// Tells the parent of `run`, which just ended, that its child step has
    /// an outcome to record. Best effort: a parent that misses it finds the
    /// child ended when its recovery sweep replays it.
    pub(crate) async fn notify_parent(&self, run: &RunId, parent: Option<&ParentLink>) {
        let Some(link) = parent.filter(|p| !p.detached) else {
            return;
        };
        let message = WorkMessage::StepFinished {
            run_id: link.run_id.clone(),
            step: link.step.clone(),
        };
        if let Err(e) = self.send(message, None).await {
            tracing::warn!(run = %run, parent = %link.run_id, "cannot tell the parent its child ended: {e}");
        }
    }

    /// Cancels the attached children of `run` that have not ended (and
    /// theirs). Idempotent: a child that already ended is left as it is,
    /// so a cancel retried after a crash finishes the job.
    pub(crate) async fn cancel_children(&self, run: &RunRecord) -> Result<(), ServiceError> {
        let steps = self.state.get_steps(&run.id, &run.step_names).await?;
        for step in steps
            .iter()
            .filter(|s| s.kind == StepKind::Child && !s.status.is_final())
        {
            let child = Self::child_of(&run.id, step);
            let reason = format!("its parent run {} was cancelled", run.id);
            match Box::pin(self.cancel(&child, &reason)).await {
                Ok(_) | Err(ServiceError::NotRunning { .. } | ServiceError::UnknownRun(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The children run `id` started, in journal order: each child step
    /// with the child run as it stands (`None` if its start failed, or was
    /// lost and not yet repeated).
    pub async fn children(
        &self,
        id: &RunId,
    ) -> Result<Vec<(StepRecord, Option<RunRecord>)>, ServiceError> {
        let run = self.get_run(id).await?;
        let steps = self.state.get_steps(&run.id, &run.step_names).await?;
        let mut out = Vec::new();
        for step in steps {
            let child = match step.kind {
                StepKind::Child => Self::child_of(&run.id, &step),
                StepKind::DetachedChild => match step
                    .result
                    .as_deref()
                    .and_then(|r| serde_json::from_str::<RunId>(r).ok())
                {
                    Some(id) => id,
                    None => {
                        out.push((step, None));
                        continue;
                    }
                },
                _ => continue,
            };
            let record = self.state.get_run(&child).await?;
            out.push((step, record));
        }
        Ok(out)
    }

    /// Cancels `run` if it is an attached child whose parent has ended, and
    /// says whether it did. A child is checked at each activation (its
    /// parent may have finished without waiting for it, or been cancelled
    /// by a process that died before it reached the child) and by a parent
    /// activation that started it but could not record the step.
    pub(crate) async fn cancel_if_orphaned(&self, run: &RunRecord) -> Result<bool, ServiceError> {
        let Some(link) = run.parent.as_ref().filter(|p| !p.detached) else {
            return Ok(false);
        };
        let orphaned = match self.state.get_run_head(&link.run_id).await? {
            Some(parent) => parent.status.is_terminal(),
            None => true,
        };
        if !orphaned {
            return Ok(false);
        }
        let reason = format!("its parent run {} ended before it", link.run_id);
        match self.cancel(&run.id, &reason).await {
            Ok(_) | Err(ServiceError::NotRunning { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// [`Weft::cancel_if_orphaned`] for child run `id`, which a parent
    /// activation started but then failed to record (a cancel of the
    /// parent may have overtaken it, and that cancel cannot see a child
    /// its journal does not name). Best effort: the child's own next
    /// activation checks again.
    pub(crate) async fn reap_unrecorded_child(&self, id: &RunId) {
        let result = match self.state.get_run(id).await {
            Ok(Some(child)) => self.cancel_if_orphaned(&child).await.map(|_| ()),
            Ok(None) => Ok(()),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = result {
            tracing::warn!(child = %id, "cannot check a child its parent did not record: {e}");
        }
    }
}

/// The outcome an ended child gives its parent's step: its output, or its
/// error (a cancelled child's is `cancelled`), with the child's id in the
/// details. `None` while the child runs.
pub(crate) fn child_outcome(child: &RunRecord) -> Option<StepOutcome> {
    match child.status {
        RunStatus::Running => None,
        RunStatus::Completed => Some(Ok(child.output.clone().unwrap_or_else(|| "null".into()))),
        RunStatus::Failed | RunStatus::Cancelled => {
            let mut error = child.error.clone().unwrap_or_else(|| {
                ErrorInfo::host(ErrorCode::Failed, format!("child run {} failed", child.id))
            });
            let mut details = match error.details.take() {
                Some(serde_json::Value::Object(map)) => map,
                Some(other) => serde_json::Map::from_iter([("details".to_string(), other)]),
                None => serde_json::Map::new(),
            };
            details.insert("childRunId".into(), serde_json::json!(child.id));
            error.details = Some(serde_json::Value::Object(details));
            Some(Err(error))
        }
    }
}
