//! Executing RPC step attempts, shared by inline execution (inside an
//! activation) and queued execution (a worker handling `execute-step`).
//!
//! An attempt is claimed, run and recorded with conditional writes keyed on
//! the step's status and attempt count, so at most one worker records each
//! attempt's outcome and a step gets exactly one final outcome.

use super::handler::Handled;
use super::{ServiceError, Weft};
use crate::backend::{StateWrite, StepExpect, StepWrite, StoreError};
use crate::model::{
    AttemptRecord, ErrorCode, ErrorInfo, Lease, Millis, ModuleKind, RunId, StepOutcome, StepRecord,
    StepStatus, WorkMessage,
};
use crate::rpc::{self, RpcCall, split_rpc_name};
use std::sync::Arc;
use std::time::Duration;

/// What became of an attempt.
#[derive(Debug)]
pub(crate) enum AttemptResult {
    /// The step has its final outcome.
    Finished(StepRecord),
    /// The attempt failed; the next is due at this time.
    RetryAt(StepRecord, Millis),
    /// Another worker holds a live lease on the step.
    Busy(Lease),
    /// Another worker changed the step first; its outcome stands.
    Gone,
}

impl Weft {
    /// Claims the next attempt of RPC step `step`, runs it, records it.
    pub(crate) async fn execute_attempt(
        &self,
        step: &StepRecord,
    ) -> Result<AttemptResult, StoreError> {
        let now = self.now();
        if step.status.is_final() {
            return Ok(AttemptResult::Finished(step.clone()));
        }
        let mut history = Vec::new();
        if step.status == StepStatus::Running {
            match &step.lease {
                Some(lease) if lease.is_live(now) => return Ok(AttemptResult::Busy(lease.clone())),
                _ => {
                    // The worker running this attempt died: count it as failed.
                    let lost = ErrorInfo::host(
                        ErrorCode::WorkerLost,
                        "the worker executing this attempt stopped before recording it",
                    );
                    let lost = Err(lost);
                    history.push(AttemptRecord::ended(
                        step,
                        step.attempt_count,
                        &lost,
                        step.updated_at,
                        now,
                    ));
                    if !step.options.retry.allows_retry_after(step.attempt_count) {
                        let mut done = step.clone();
                        done.finish(lost, now);
                        return self.record_attempt(step, done, history, None).await;
                    }
                }
            }
        }
        if let Some(at) = step
            .wake_at
            .filter(|at| *at > now && step.status == StepStatus::Scheduled)
        {
            return Ok(AttemptResult::RetryAt(step.clone(), at));
        }

        let claimed = self.claimed(step, now);
        let claim = StateWrite {
            steps: vec![StepWrite {
                record: claimed.clone(),
                expect: StepExpect::State {
                    status: step.status,
                    attempt_count: step.attempt_count,
                },
            }],
            attempts: history,
            ..Default::default()
        };
        match self.state.commit(claim).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Ok(AttemptResult::Gone),
            Err(e) => return Err(e),
        }
        self.run_claimed(claimed).await
    }

    /// The attempt timeout of an RPC step.
    fn rpc_timeout(&self, step: &StepRecord) -> Duration {
        step.options
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.limits.default_rpc_timeout)
    }

    /// `step` with its next attempt claimed by this worker: running, under a
    /// lease that outlasts the attempt's timeout. The caller persists it.
    pub(crate) fn claimed(&self, step: &StepRecord, now: Millis) -> StepRecord {
        let lease_ms = (self.rpc_timeout(step) + self.settings.step_lease_grace).as_millis() as u64;
        let mut claimed = step.clone();
        claimed.status = StepStatus::Running;
        claimed.attempt_count = step.attempt_count + 1;
        claimed.updated_at = now;
        claimed.lease = Some(Lease {
            owner: self.settings.worker_id.clone(),
            expires_at: now + lease_ms,
        });
        claimed
    }

    /// Runs the attempt `claimed` (already persisted as claimed) and
    /// records its outcome.
    pub(crate) async fn run_claimed(
        &self,
        claimed: StepRecord,
    ) -> Result<AttemptResult, StoreError> {
        let attempt = claimed.attempt_count;
        let timeout = self.rpc_timeout(&claimed);
        let started = claimed.updated_at;
        let outcome = self.call_rpc(&claimed, attempt, timeout).await;
        let ended = self.now();
        let record = AttemptRecord::ended(&claimed, attempt, &outcome, started, ended);
        let retry_at =
            claimed
                .options
                .retry
                .next_attempt_at(attempt, &outcome, ended, rand::random::<f64>());
        let mut next = claimed.clone();
        next.end_attempt(outcome, retry_at, ended);
        self.record_attempt(&claimed, next, vec![record], retry_at)
            .await
    }

    /// Writes an attempt's result over the state `from` it started in.
    async fn record_attempt(
        &self,
        from: &StepRecord,
        next: StepRecord,
        attempts: Vec<AttemptRecord>,
        retry_at: Option<Millis>,
    ) -> Result<AttemptResult, StoreError> {
        let write = StateWrite {
            steps: vec![StepWrite {
                record: next.clone(),
                expect: StepExpect::State {
                    status: from.status,
                    attempt_count: from.attempt_count,
                },
            }],
            attempts,
            ..Default::default()
        };
        match self.state.commit(write.clone()).await {
            Ok(()) => Ok(match retry_at {
                Some(at) => AttemptResult::RetryAt(next, at),
                None => AttemptResult::Finished(next),
            }),
            // Our lease expired and another worker took the step over.
            Err(StoreError::Conflict(_)) => Ok(AttemptResult::Gone),
            // The result does not fit in the store: record that instead.
            Err(StoreError::TooLarge(reason)) if next.result.is_some() => {
                let mut failed = next;
                failed.result = None;
                failed.finish(
                    Err(ErrorInfo::host(ErrorCode::PayloadTooLarge, reason)),
                    failed.updated_at,
                );
                let mut write = write;
                write.steps[0].record = failed.clone();
                self.state.commit(write).await?;
                Ok(AttemptResult::Finished(failed))
            }
            Err(e) => Err(e),
        }
    }

    /// Runs one attempt of an RPC step's function.
    async fn call_rpc(&self, step: &StepRecord, attempt: u32, timeout: Duration) -> StepOutcome {
        let rpc_name = step.rpc_name.as_deref().unwrap_or_default();
        let unknown = |why: String| Err(ErrorInfo::host(ErrorCode::UnknownRpcModule, why));
        let Some((module, function)) = split_rpc_name(rpc_name) else {
            return unknown(format!(
                "{rpc_name:?} is not an RPC name of the form <module>/<function>"
            ));
        };
        let version = match self.registry.latest_cached(module).await {
            Ok(Some(v)) if v.kind == ModuleKind::Rpc => v,
            Ok(Some(_)) => {
                return unknown(format!(
                    "module {module:?} is a workflow, not an RPC module"
                ));
            }
            Ok(None) => return unknown(format!("no RPC module named {module:?} is deployed")),
            Err(e) => return Err(ErrorInfo::host(ErrorCode::StoreUnavailable, e.to_string())),
        };
        let pre = match self.registry.rpc(&version.digest).await {
            Ok(pre) => pre,
            Err(e) => return Err(ErrorInfo::host(ErrorCode::ModuleUnavailable, e.to_string())),
        };
        let call = RpcCall {
            module,
            allowed_hosts: &version.allowed_hosts,
            function,
            input: step.input.as_deref().unwrap_or("null"),
            run_id: step.run_id.as_str(),
            step_name: &step.name,
            attempt,
            timeout,
        };
        rpc::invoke(&pre, &self.limits, call).await
    }

    /// Continues a run whose step this worker just finished: replays it right
    /// here (saving the queue round trip of a `resume` message), or sends
    /// that message if the run is busy elsewhere or the replay failed.
    async fn continue_run(self: &Arc<Self>, run_id: &RunId) -> Result<(), ServiceError> {
        let resume = WorkMessage::Resume {
            run_id: run_id.clone(),
        };
        match self.resume(run_id).await {
            Ok(Handled::Settled) => Ok(()),
            Ok(Handled::Requeue(delay)) => {
                let at = self.now() + delay.as_millis() as u64;
                Ok(self.send(resume, Some(at)).await?)
            }
            Err(e) => {
                tracing::warn!(run = %run_id, "continuing the run in place failed, queueing it: {e}");
                Ok(self.send(resume, None).await?)
            }
        }
    }

    /// Handles `execute-step`: runs the step's next attempt on this worker.
    pub(crate) async fn execute_step(
        self: &Arc<Self>,
        run_id: &RunId,
        name: &str,
    ) -> Result<Handled, ServiceError> {
        let Some(step) = self.state.get_step(run_id, name).await? else {
            tracing::warn!(run = %run_id, step = name, "dropping a message for an unknown step");
            return Ok(Handled::Settled);
        };
        if step.status.is_final() {
            return Ok(Handled::Settled);
        }
        match self.state.get_run(run_id).await? {
            Some(run) if run.status.is_terminal() => return Ok(Handled::Settled),
            None => return Ok(Handled::Settled),
            Some(_) => {}
        }
        match self.execute_attempt(&step).await? {
            AttemptResult::Finished(_) => self.continue_run(run_id).await?,
            AttemptResult::RetryAt(next, at) => {
                let message = WorkMessage::ExecuteStep {
                    run_id: run_id.clone(),
                    step: name.to_string(),
                    attempt: next.attempt_count + 1,
                };
                self.send(message, Some(at)).await?;
            }
            AttemptResult::Busy(lease) => {
                // Keep this message until the holder finishes or its lease
                // lapses, in case the holder dies.
                let wait = lease.expires_at.saturating_sub(self.now()) + 100;
                return Ok(Handled::Requeue(Duration::from_millis(wait)));
            }
            AttemptResult::Gone => {}
        }
        Ok(Handled::Settled)
    }
}
