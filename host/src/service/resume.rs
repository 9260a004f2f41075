//! Resuming a run: take its lease, load its journal and module, replay it
//! with a [`RunDriver`] persisting what the workflow decides, and let the
//! lease go when the activation ends or fails.

use super::driver::RunDriver;
use super::handler::Handled;
use super::invocation;
use super::runs::Edit;
use super::{ServiceError, Weft};
use crate::backend::StoreError;
use crate::model::{ErrorCode, ErrorInfo, RunId, RunRecord, RunStatus};
use crate::registry::loader::LoadError;
use crate::replay::{self, ActivationEnd, ActivationInput, DriverError};
use std::sync::Arc;
use std::time::Duration;

/// How soon to look again at a run another activation holds.
pub(super) const LEASE_BUSY_RETRY: Duration = Duration::from_millis(250);

impl Weft {
    /// Replays run `id` and carries it as far as it can go.
    pub(crate) async fn resume(self: &Arc<Self>, id: &RunId) -> Result<Handled, ServiceError> {
        let now = self.now();
        let lease_ms = self.settings.run_lease.as_millis() as u64;
        let run = match self
            .state
            .acquire_run_lease(id, &self.settings.worker_id, now, lease_ms)
            .await
        {
            Ok(run) => run,
            Err(StoreError::NotFound(_)) => {
                tracing::warn!(run = %id, "dropping a message for an unknown run");
                return Ok(Handled::Settled);
            }
            Err(StoreError::Conflict(_)) => {
                // Finished (nothing to do) or held by a live activation, which
                // may not have seen the change this message announces: look
                // again once it lets go.
                let run = self.state.get_run(id).await?;
                return Ok(match run {
                    Some(r) if r.status == RunStatus::Running => Handled::Requeue(LEASE_BUSY_RETRY),
                    _ => Handled::Settled,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let result = self.replay_leased(run).await;
        if result.is_err() {
            // Let the retry take the lease at once rather than after expiry.
            self.release_lease(id).await;
        }
        result
    }

    /// Loads the journal and module of a run this worker holds, and replays it.
    pub(super) async fn replay_leased(
        self: &Arc<Self>,
        run: RunRecord,
    ) -> Result<Handled, ServiceError> {
        let id = &run.id.clone();
        if self.cancel_if_orphaned(&run).await? {
            return Ok(Handled::Settled);
        }
        if let Some(deadline) = run.deadline.filter(|d| *d <= self.now()) {
            let late = self.now().saturating_sub(deadline);
            let error = ErrorInfo::host(
                ErrorCode::RunTimeout,
                format!(
                    "the run did not finish within its timeout ({} ms past the deadline)",
                    late
                ),
            );
            self.fail_run(id, error).await?;
            return Ok(Handled::Settled);
        }
        let journal = self.state.get_steps(id, &run.step_names).await?;
        if journal.len() != run.step_names.len() {
            return Err(StoreError::Corrupt(format!(
                "run {id}: the journal index names {} steps but {} were found",
                run.step_names.len(),
                journal.len()
            ))
            .into());
        }
        let pre = match self.registry.workflow(&run.module_digest).await {
            Ok(pre) => pre,
            Err(LoadError::Store(e)) => return Err(e.into()),
            Err(e) => {
                let error = ErrorInfo::host(ErrorCode::ModuleUnavailable, e.to_string());
                self.fail_run(id, error).await?;
                return Ok(Handled::Settled);
            }
        };
        let input = ActivationInput {
            run_id: run.id.clone(),
            input: run.input.clone(),
            started_at: run.created_at,
            journal,
            ends_by: invocation::usable_until(),
        };
        let parent = run.parent.clone();
        let driver = RunDriver::new(Arc::clone(self), run);
        match replay::activate(&pre, &self.limits, input, Box::new(driver)).await {
            Ok(report) => {
                self.stats
                    .activation(report.replayed_steps, report.new_steps);
                tracing::debug!(
                    run = %id,
                    outcome = ?report.outcome,
                    replayed = report.replayed_steps,
                    new = report.new_steps,
                    fuel = report.fuel_used,
                    elapsed_us = report.elapsed.as_micros() as u64,
                    "activation ended"
                );
                match report.outcome {
                    // Give the lease up from a fresh read (the driver wrote
                    // nothing after the cut) and go on from a fresh message.
                    ActivationEnd::OutOfTime => {
                        self.release_lease(id).await;
                        return Ok(Handled::Requeue(Duration::ZERO));
                    }
                    ActivationEnd::Suspended => {}
                    ActivationEnd::Completed(_) | ActivationEnd::Failed(_) => {
                        self.finished.notify_waiters();
                        self.notify_parent(id, parent.as_ref()).await;
                    }
                }
                Ok(Handled::Settled)
            }
            // Someone else moved the run (cancelled it, or took over an
            // expired lease): look again, with fresh state.
            Err(DriverError::Infra(source)) => match RunDriver::error_of(source) {
                ServiceError::Store(StoreError::Conflict(reason)) => {
                    tracing::debug!(run = %id, "activation lost a race: {reason}");
                    Ok(Handled::Requeue(LEASE_BUSY_RETRY))
                }
                // An item over the backend's size limit will never fit: fail
                // the run with the reason instead of retrying forever.
                ServiceError::Store(StoreError::TooLarge(reason)) => {
                    self.fail_run(id, ErrorInfo::host(ErrorCode::PayloadTooLarge, reason))
                        .await?;
                    Ok(Handled::Settled)
                }
                e => Err(e),
            },
            Err(DriverError::FailRun(e)) => {
                self.fail_run(id, e).await?;
                Ok(Handled::Settled)
            }
        }
    }
}

impl Weft {
    /// Gives up this worker's lease on a run after a failed activation, so
    /// the retry does not wait for it to expire. Best effort: the lease
    /// expires anyway.
    pub(super) async fn release_lease(&self, id: &RunId) {
        let worker = &self.settings.worker_id;
        let result = self
            .update_run(id, |run| {
                if run.lease.as_ref().is_none_or(|l| &l.owner != worker) {
                    return Ok(Edit::Leave(()));
                }
                run.lease = None;
                Ok(Edit::Commit(()))
            })
            .await;
        if let Err(e) = result {
            tracing::debug!(run = %id, "could not release the lease: {e}");
        }
    }
}
