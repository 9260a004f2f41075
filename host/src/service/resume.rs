//! Resuming a run: take its lease; continue the guest this process parked
//! for it (see [`super::parking`]), or load its journal and module and
//! replay it; a [`RunDriver`] persists what the workflow decides, and the
//! lease goes when the activation's leg ends or fails.

use super::driver::RunDriver;
use super::handler::Handled;
use super::invocation;
use super::parking::{LegResult, Parked, ParkingLot, Spot, Wake};
use super::runs::Edit;
use super::{ServiceError, Weft};
use crate::backend::StoreError;
use crate::model::ParentLink;
use crate::model::{ErrorCode, ErrorInfo, RunId, RunRecord, RunStatus};
use crate::registry::PreparedWorkflow;
use crate::registry::loader::LoadError;
use crate::replay::{self, ActivationEnd, ActivationInput, DriverError, NextLeg};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// A run whose lease this worker just took.
enum Taken {
    /// The run as read: it replays.
    Run(Box<RunRecord>),
    /// The run and the guest this process parked for it, which left the
    /// run as the lease found it.
    Parked(Box<RunRecord>, Parked),
}

/// What [`Weft::continue_parked`] did with the run.
enum Continued {
    /// A parked guest went on: its leg's result.
    Leg(LegResult),
    /// No parked guest could: the run, to replay.
    No(Box<RunRecord>),
}

/// What a parked guest's fiber stack costs besides its linear memory
/// (`async_stack_size` in the engine).
const GUEST_STACK_BYTES: u64 = 2 << 20;

fn lost_activation() -> StoreError {
    StoreError::Backend("the activation's task ended without reporting".into())
}

/// How soon to look again at a run another activation holds.
pub(super) const LEASE_BUSY_RETRY: Duration = Duration::from_millis(250);

impl Weft {
    /// Takes run `id`'s lease and carries the run as far as it can go.
    pub(crate) async fn resume(self: &Arc<Self>, id: &RunId) -> Result<Handled, ServiceError> {
        let taken = match self.take_lease(id).await {
            Ok(taken) => taken,
            Err(StoreError::NotFound(_)) => {
                tracing::warn!(run = %id, "dropping a message for an unknown run");
                return Ok(Handled::Settled);
            }
            Err(StoreError::Conflict(_)) => {
                // Finished (nothing to do) or held by a live activation, which
                // may not have seen the change this message announces: look
                // again once it lets go.
                let run = self.state.get_run_head(id).await?;
                return Ok(match run {
                    Some(r) if r.status == RunStatus::Running => Handled::Requeue(LEASE_BUSY_RETRY),
                    _ => Handled::Settled,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let result = self.carry_on(taken).await;
        if result.is_err() {
            // Let the retry take the lease at once rather than after expiry.
            self.release_lease(id).await;
        }
        result
    }

    /// Takes run `id`'s lease. When this process holds a guest parked for
    /// the run, the lease's [`crate::model::RunHead`] is all it reads: if
    /// the guest left the run as the lease found it, the guest's record is
    /// the run. Otherwise the whole run is read.
    async fn take_lease(&self, id: &RunId) -> Result<Taken, StoreError> {
        let now = self.now();
        let lease_ms = self.settings.run_lease.as_millis() as u64;
        let owner = &self.settings.worker_id;
        let lot = match &self.parking {
            Some(lot) if lot.holds(id) => lot,
            _ => {
                let run = self
                    .state
                    .acquire_run_lease(id, owner, now, lease_ms)
                    .await?;
                return Ok(Taken::Run(Box::new(run)));
            }
        };
        let head = self
            .state
            .acquire_run_lease_head(id, owner, now, lease_ms)
            .await?;
        if let Some(parked) = lot.claim(id, head.version).await {
            let run = parked.leased_run(&head, now);
            return Ok(Taken::Parked(Box::new(run), parked));
        }
        match self.state.get_run(id).await? {
            Some(run) => Ok(Taken::Run(Box::new(run))),
            None => Err(StoreError::NotFound(format!("run {id}"))),
        }
    }

    /// Carries on run `run`, which this worker holds, by replaying it.
    pub(super) async fn replay_leased(
        self: &Arc<Self>,
        run: RunRecord,
    ) -> Result<Handled, ServiceError> {
        self.carry_on(Taken::Run(Box::new(run))).await
    }

    /// Carries on a run this worker holds: continues its parked guest if
    /// the lease found one, otherwise loads its journal and module and
    /// replays it.
    async fn carry_on(self: &Arc<Self>, taken: Taken) -> Result<Handled, ServiceError> {
        let (run, parked) = match taken {
            Taken::Run(run) => (*run, None),
            Taken::Parked(run, parked) => (*run, Some(parked)),
        };
        let id = &run.id.clone();
        // A guest that is not woken is let go.
        let let_go = |parked: Option<Parked>| {
            if let (Some(lot), Some(parked)) = (&self.parking, parked) {
                lot.end(id, parked.generation());
            }
        };
        if self.cancel_if_orphaned(&run).await? {
            let_go(parked);
            return Ok(Handled::Settled);
        }
        if let Some(deadline) = run.deadline.filter(|d| *d <= self.now()) {
            let_go(parked);
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
        let parent = run.parent.clone();
        let run = match parked {
            Some(parked) => match self.continue_parked(run, parked).await? {
                Continued::Leg(leg) => return self.after_leg(id, parent.as_ref(), leg).await,
                Continued::No(run) => *run,
            },
            None => run,
        };
        let journal = self
            .journal
            .get_steps(self.state.as_ref(), id, &run.step_names)
            .await?;
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
            parking: None,
        };
        let driver = Box::new(RunDriver::new(Arc::clone(self), run));
        let leg = match &self.parking {
            Some(lot) => self.activate_parkable(lot, pre, input, driver).await,
            None => replay::activate(&pre, &self.limits, input, driver).await,
        };
        self.after_leg(id, parent.as_ref(), leg).await
    }

    /// Runs an activation that may park its guest: in a task of its own,
    /// which outlives this call when the guest parks. Returns the first
    /// leg's result.
    async fn activate_parkable(
        &self,
        lot: &Arc<ParkingLot>,
        pre: PreparedWorkflow,
        mut input: ActivationInput,
        driver: Box<RunDriver>,
    ) -> LegResult {
        let generation = lot.begin(&input.run_id);
        let (report, reported) = oneshot::channel();
        let spot = Arc::new(Spot::new(
            Arc::clone(lot),
            input.run_id.clone(),
            generation,
            report,
            GUEST_STACK_BYTES,
        ));
        input.parking = Some(spot.clone());
        let limits = self.limits.clone();
        tokio::spawn(async move {
            let result = replay::activate(&pre, &limits, input, driver).await;
            spot.ended(result);
        });
        reported
            .await
            .unwrap_or_else(|_| Err(DriverError::infra(lost_activation())))
    }

    /// Continues `parked`, the guest this process parked for `run` (just
    /// leased, as the guest left it): reads only the journal entries that
    /// can have changed, and wakes it. Gives the run back if it cannot.
    async fn continue_parked(
        self: &Arc<Self>,
        run: RunRecord,
        parked: Parked,
    ) -> Result<Continued, ServiceError> {
        let Some(lot) = &self.parking else {
            return Ok(Continued::No(Box::new(run)));
        };
        let mut names = parked.journal.unfinished.clone();
        names.extend(run.step_names.iter().skip(parked.journal.known).cloned());
        let steps = match self.state.get_steps(&run.id, &names).await {
            Ok(steps) if steps.len() == names.len() => steps,
            Ok(_) => {
                lot.end(&run.id, parked.generation());
                return Ok(Continued::No(Box::new(run)));
            }
            Err(e) => {
                lot.end(&run.id, parked.generation());
                return Err(e.into());
            }
        };
        let id = run.id.clone();
        let generation = parked.generation();
        let (report, reported) = oneshot::channel();
        let wake = Wake {
            next: NextLeg {
                driver: Box::new(RunDriver::new(Arc::clone(self), run)),
                steps,
                ends_by: invocation::usable_until(),
            },
            report,
        };
        if parked.wake(wake).is_err() {
            // The guest is gone: replay, from the run as this lease holds it.
            lot.end(&id, generation);
            return Ok(Continued::No(Box::new(self.get_run(&id).await?)));
        }
        let leg = reported
            .await
            .unwrap_or_else(|_| Err(DriverError::infra(lost_activation())));
        Ok(Continued::Leg(leg))
    }

    /// Books an activation's leg and settles the message that caused it.
    async fn after_leg(
        self: &Arc<Self>,
        id: &RunId,
        parent: Option<&ParentLink>,
        leg: LegResult,
    ) -> Result<Handled, ServiceError> {
        match leg {
            Ok(report) => {
                self.stats
                    .activation(report.replayed_steps, report.new_steps);
                self.metrics
                    .activation(report.replayed_steps, report.new_steps, report.fuel_used);
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
                    // A woken guest that could not go on wrote nothing
                    // either: the run replays.
                    ActivationEnd::OutOfTime | ActivationEnd::Released => {
                        self.release_lease(id).await;
                        return Ok(Handled::Requeue(Duration::ZERO));
                    }
                    ActivationEnd::Suspended => {}
                    ActivationEnd::Completed(_) | ActivationEnd::Failed(_) => {
                        self.forget(id);
                        self.finished.notify_waiters();
                        self.notify_parent(id, parent).await;
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
