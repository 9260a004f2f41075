//! Commands on runs: start, cancel, fail, and the one read-change-commit
//! loop every run update outside an activation goes through.

use super::handler::Handled;
use super::{ServiceError, StartOptions, Weft};
use crate::backend::{RunWrite, StateWrite, StoreError};
use crate::model::{
    ErrorCode, ErrorInfo, Lease, ModuleKind, RunId, RunRecord, RunStatus, WorkMessage,
};
use std::sync::Arc;
use std::time::Duration;

/// How often [`Weft::update_run`] reads and tries again after losing a race.
const UPDATE_ATTEMPTS: u32 = 10;

/// What a change given to [`Weft::update_run`] decided.
pub(crate) enum Edit<T> {
    /// Commit the changed run, then answer `T`.
    Commit(T),
    /// Leave the run as it is and answer `T`.
    Leave(T),
}

impl Weft {
    /// Starts a run of the newest version of `workflow`, pinned to that
    /// version's digest for its whole life.
    pub async fn start_run(
        self: &Arc<Self>,
        workflow: &str,
        input: &str,
    ) -> Result<RunId, ServiceError> {
        self.start_run_with(workflow, input, StartOptions::default())
            .await
    }

    /// [`Weft::start_run`] with options.
    pub async fn start_run_with(
        self: &Arc<Self>,
        workflow: &str,
        input: &str,
        options: StartOptions,
    ) -> Result<RunId, ServiceError> {
        self.check_client_payload("the run input", input)?;
        let version = self.workflow_version(workflow).await?;
        let now = self.now();
        // Started here only while a local slot is free; otherwise through
        // the queue, taken in arrival order by the workers.
        let local = self
            .settings
            .start_locally
            .then(|| self.admission.local_start())
            .flatten();
        let run = RunRecord {
            id: match &options.idempotency_key {
                Some(key) => RunId::for_key(workflow, key),
                None => RunId::generate(),
            },
            workflow: workflow.to_string(),
            module_digest: version.digest,
            status: RunStatus::Running,
            input: input.to_string(),
            output: None,
            error: None,
            created_at: now,
            updated_at: now,
            version: 0,
            lease: local.is_some().then(|| Lease {
                owner: self.settings.worker_id.clone(),
                expires_at: now + self.settings.run_lease.as_millis() as u64,
            }),
            step_names: Default::default(),
            wake_at: None,
            deadline: options.timeout.map(|t| now + t.as_millis() as u64),
            awaiting: Vec::new(),
            parent: options.parent.clone(),
            expires_at: None,
        };
        match self.state.create_run(&run).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) if options.idempotency_key.is_some() => {
                return self.started_before(run, options).await;
            }
            Err(e) => return Err(e.into()),
        }
        let resume = WorkMessage::Resume {
            run_id: run.id.clone(),
        };
        if let Some(slot) = local {
            self.spawn_first_activation(run.clone(), slot);
        } else {
            self.send(resume.clone(), None).await?;
        }
        if let Some(deadline) = run.deadline {
            // Wakes the run at its deadline even if it is waiting on
            // something slower, so it fails on time.
            self.send(resume, Some(deadline)).await?;
        }
        Ok(run.id)
    }

    /// The newest version of workflow `workflow`: what a run started now is
    /// pinned to.
    pub(crate) async fn workflow_version(
        &self,
        workflow: &str,
    ) -> Result<crate::model::ModuleVersion, ServiceError> {
        let version = self
            .registry
            .store()
            .latest(workflow)
            .await?
            .ok_or_else(|| ServiceError::UnknownWorkflow(workflow.to_string()))?;
        if version.kind != ModuleKind::Workflow {
            return Err(ServiceError::NotAWorkflow(workflow.to_string()));
        }
        Ok(version)
    }

    /// Activates a run created already leased to this process. If that
    /// cannot finish, the run goes back to the queue like any other.
    fn spawn_first_activation(
        self: &Arc<Self>,
        run: RunRecord,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) {
        let svc = Arc::clone(self);
        tokio::spawn(async move {
            let _slot = slot;
            let id = run.id.clone();
            let delay = match svc.replay_leased(run).await {
                Ok(Handled::Settled) => return,
                Ok(Handled::Requeue(delay)) => delay,
                Err(e) => {
                    tracing::warn!(run = %id, "first activation failed, queueing the run: {e}");
                    svc.release_lease(&id).await;
                    Duration::ZERO
                }
            };
            let at = (!delay.is_zero()).then(|| svc.now() + delay.as_millis() as u64);
            if let Err(e) = svc
                .send(WorkMessage::Resume { run_id: id.clone() }, at)
                .await
            {
                // The recovery sweep re-drives it.
                tracing::warn!(run = %id, "cannot queue the run: {e}");
            }
        });
    }

    /// A start under an idempotency key whose run exists: the same start
    /// again (same input) answers that run, after re-sending its first
    /// message in case the earlier start failed between creating the run and
    /// sending it (a resume is idempotent); another input is a conflict.
    async fn started_before(
        &self,
        wanted: RunRecord,
        options: StartOptions,
    ) -> Result<RunId, ServiceError> {
        let existing = self.get_run(&wanted.id).await?;
        if existing.workflow != wanted.workflow || existing.input != wanted.input {
            return Err(ServiceError::IdempotencyConflict {
                key: options.idempotency_key.unwrap_or_default(),
                workflow: wanted.workflow,
                run: existing.id.to_string(),
            });
        }
        if existing.status == RunStatus::Running {
            self.send(
                WorkMessage::Resume {
                    run_id: existing.id.clone(),
                },
                None,
            )
            .await?;
        }
        Ok(existing.id)
    }

    /// Cancels a running run: it ends `cancelled` at once, whatever it is
    /// waiting on. Step results that arrive later are recorded but do not
    /// resume it. Fails with [`ServiceError::NotRunning`] if it already ended.
    ///
    /// Its attached children are cancelled with it. A cancel of a run that
    /// is already cancelled still cancels its children before answering
    /// `NotRunning`, so a cancel retried after a crash half-way through
    /// finishes the job.
    pub async fn cancel(&self, id: &RunId, reason: &str) -> Result<RunRecord, ServiceError> {
        let error = ErrorInfo::host(ErrorCode::Cancelled, reason);
        let (run, cancelled) = self
            .update_run(id, |run| {
                if run.status.is_terminal() {
                    return Ok(Edit::Leave(false));
                }
                run.status = RunStatus::Cancelled;
                run.error = Some(error.clone());
                run.lease = None;
                run.wake_at = None;
                Ok(Edit::Commit(true))
            })
            .await?;
        if run.status == RunStatus::Cancelled {
            self.cancel_children(&run).await?;
        }
        if !cancelled {
            return Err(ServiceError::NotRunning {
                id: id.to_string(),
                status: run.status,
            });
        }
        self.forget(&run.id);
        self.finished.notify_waiters();
        self.notify_parent(&run.id, run.parent.as_ref()).await;
        Ok(run)
    }

    /// Fails a run that cannot make progress, unless it already finished
    /// (or never existed).
    pub(crate) async fn fail_run(&self, id: &RunId, error: ErrorInfo) -> Result<(), ServiceError> {
        let result = self
            .update_run(id, |run| {
                if run.status.is_terminal() {
                    return Ok(Edit::Leave(()));
                }
                run.status = RunStatus::Failed;
                run.error = Some(error.clone());
                run.lease = None;
                Ok(Edit::Commit(()))
            })
            .await;
        match result {
            Ok((run, ())) => {
                self.forget(&run.id);
                self.finished.notify_waiters();
                self.notify_parent(&run.id, run.parent.as_ref()).await;
                Ok(())
            }
            Err(ServiceError::UnknownRun(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Drops what this process keeps for run `id`, which ended: its parked
    /// guest and its kept journal entries.
    pub(crate) fn forget(&self, id: &RunId) {
        if let Some(lot) = &self.parking {
            lot.release(id);
        }
        self.journal.forget(id);
    }

    /// Reads run `id`, lets `change` edit it, and commits the edit fenced
    /// by the version read. When another writer got there first (an
    /// activation, a racing cancel) it reads again, after a short growing
    /// pause, and lets `change` decide afresh. Returns the run as it now
    /// stands (its version bumped if committed) with `change`'s answer.
    pub(crate) async fn update_run<T>(
        &self,
        id: &RunId,
        mut change: impl FnMut(&mut RunRecord) -> Result<Edit<T>, ServiceError>,
    ) -> Result<(RunRecord, T), ServiceError> {
        let mut pause = Duration::from_millis(5);
        for _ in 0..UPDATE_ATTEMPTS {
            let mut run = self.get_run(id).await?;
            let expected_version = run.version;
            let expected_steps = run.step_names.len();
            let answer = match change(&mut run)? {
                Edit::Leave(answer) => return Ok((run, answer)),
                Edit::Commit(answer) => answer,
            };
            run.stamp(self.now(), self.settings.retention);
            let write = StateWrite {
                run: Some(RunWrite {
                    record: run.clone(),
                    expected_version,
                    expected_steps,
                }),
                ..Default::default()
            };
            match self.state.commit(write).await {
                Ok(()) => {
                    run.version = expected_version + 1;
                    return Ok((run, answer));
                }
                Err(StoreError::Conflict(_)) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(format!("run {id} kept changing while being updated")).into())
    }
}
