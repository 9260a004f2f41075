//! Executing RPC step attempts, shared by inline execution (inside an
//! activation) and queued execution (a worker handling `execute-step`).
//!
//! An attempt is claimed, run and recorded with conditional writes keyed on
//! the step's status and attempt count, so at most one worker records each
//! attempt's outcome and a step gets exactly one final outcome.

use super::handler::Handled;
use super::invocation;
use super::{ServiceError, Weft};
use crate::backend::{StateWrite, StepExpect, StepWrite, StoreError};
use crate::model::{
    AttemptRecord, ErrorCode, ErrorInfo, Lease, Millis, ModuleKind, RunHead, RunId, StepOutcome,
    StepRecord, StepStatus, WorkMessage,
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
    /// Not claimed: the attempt's timeout would outlast this invocation
    /// ([`invocation`]). A fresh invocation should take it; no retry spent.
    Deferred,
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
        if step.status == StepStatus::Running {
            match &step.lease {
                Some(lease) if lease.is_live(now) => return Ok(AttemptResult::Busy(lease.clone())),
                _ => return self.record_host_loss(step, now).await,
            }
        }
        if let Some(at) = step
            .wake_at
            .filter(|at| *at > now && step.status == StepStatus::Scheduled)
        {
            return Ok(AttemptResult::RetryAt(step.clone(), at));
        }

        if !invocation::fits(self.rpc_timeout(step)) {
            return Ok(AttemptResult::Deferred);
        }
        let claimed = self.claimed(step, now);
        let claim = StateWrite {
            // No attempt starts once the run has ended (a cancel).
            require_running: Some(step.run_id.clone()),
            steps: vec![StepWrite {
                record: claimed.clone(),
                expect: StepExpect::State {
                    status: step.status,
                    attempt_count: step.attempt_count,
                },
            }],
            ..Default::default()
        };
        match self.state.commit(claim).await {
            Ok(()) => {}
            // Lost the race, unless the write that "lost" was our own
            // earlier try, retried by the SDK after an ambiguous failure.
            Err(StoreError::Conflict(_)) => {
                let stored = self.state.get_step(&step.run_id, &step.name).await?;
                if stored.as_ref() != Some(&claimed) {
                    return Ok(AttemptResult::Gone);
                }
            }
            Err(e) => return Err(e),
        }
        self.run_claimed(claimed).await
    }

    /// Books the attempt of `step` whose lease expired unrecorded: its host
    /// died or stalled. The attempt stays in the history as `worker_lost`
    /// but does not spend the retry policy; the next attempt is due at
    /// once (the lease expiry was the wait), from a fresh message. After
    /// [`Limits::max_host_losses`](crate::config::Limits) such losses the
    /// step fails with `worker_lost`.
    async fn record_host_loss(
        &self,
        step: &StepRecord,
        now: Millis,
    ) -> Result<AttemptResult, StoreError> {
        let mut next = step.clone();
        next.host_losses += 1;
        let cap = self.limits.max_host_losses;
        let lost = Err(ErrorInfo::host(
            ErrorCode::WorkerLost,
            format!(
                "the worker executing attempt {} stopped before recording it (host loss {} of at most {cap})",
                step.attempt_count, next.host_losses
            ),
        ));
        let history = AttemptRecord::ended(step, step.attempt_count, &lost, step.updated_at, now);
        tracing::warn!(
            run = %step.run_id,
            step = %step.name,
            attempt = step.attempt_count,
            host_losses = next.host_losses,
            "an attempt was lost with its host"
        );
        let retry_at = (next.host_losses < cap).then_some(now);
        next.end_attempt(lost, retry_at, now);
        self.record_attempt(step, next, vec![history], retry_at)
            .await
    }

    /// The attempt timeout of an RPC step: its own or the default, capped
    /// to what one invocation can hold where invocations are limited.
    pub(crate) fn rpc_timeout(&self, step: &StepRecord) -> Duration {
        let timeout = step
            .options
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.limits.default_rpc_timeout);
        match self.settings.invocation_limit {
            Some(limit) => timeout.min(invocation::usable_span(limit)),
            None => timeout,
        }
    }

    /// `step` with its next attempt claimed by this worker: running, under a
    /// lease that outlasts the attempt's timeout. The caller persists it.
    ///
    /// The lease's owner is this worker plus a token of this claim alone.
    /// A claim that comes back as a conflict is read back and recognised as
    /// our own by it; without the token, two copies of one message handled
    /// by the same worker in the same millisecond would build identical
    /// claims, and the loser would take the winner's claim for its own and
    /// run the attempt a second time.
    pub(crate) fn claimed(&self, step: &StepRecord, now: Millis) -> StepRecord {
        let lease_ms = (self.rpc_timeout(step) + self.settings.step_lease_grace).as_millis() as u64;
        let token = &uuid::Uuid::new_v4().simple().to_string()[..12];
        let mut claimed = step.clone();
        claimed.status = StepStatus::Running;
        claimed.attempt_count = step.attempt_count + 1;
        claimed.updated_at = now;
        claimed.lease = Some(Lease {
            owner: format!("{}/{token}", self.settings.worker_id),
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
        if self
            .settings
            .lose_attempt
            .as_ref()
            .is_some_and(|lose| lose(&claimed))
        {
            return Err(StoreError::Backend(format!(
                "fault injection: attempt {attempt} of step `{}` lost as if its host died",
                claimed.name
            )));
        }
        let outcome = self.call_rpc(&claimed, attempt, timeout).await;
        let ended = self.now();
        let record = AttemptRecord::ended(&claimed, attempt, &outcome, started, ended);
        // Backoff and budget count only attempts that ran to an outcome,
        // not those lost with their host.
        let retry_at = claimed.options.retry.next_attempt_at(
            claimed.counted_attempts(),
            &outcome,
            ended,
            rand::random::<f64>(),
        );
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
        let recorded = |next: StepRecord| match retry_at {
            Some(at) => AttemptResult::RetryAt(next, at),
            None => AttemptResult::Finished(next),
        };
        match self.commit_while_leased(from, &write).await {
            Ok(()) => Ok(recorded(next)),
            // Our lease expired and another worker took the step over; or
            // an earlier try of this very write landed and the SDK's retry
            // of it lost to itself: the read-back tells.
            Err(StoreError::Conflict(_)) => {
                let stored = self.state.get_step(&next.run_id, &next.name).await?;
                Ok(match stored {
                    Some(s) if s == next => recorded(next),
                    _ => AttemptResult::Gone,
                })
            }
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

    /// Commits an attempt's record, retrying failures of the store (not
    /// conflicts) with backoff for as long as the step's lease, held since
    /// `from` was claimed, is live: an outcome whose side effect happened
    /// must not be dropped for a passing store error.
    async fn commit_while_leased(
        &self,
        from: &StepRecord,
        write: &StateWrite,
    ) -> Result<(), StoreError> {
        let mut pause = Duration::from_millis(100);
        loop {
            match self.state.commit(write.clone()).await {
                Err(StoreError::Backend(reason))
                    if from
                        .lease
                        .as_ref()
                        .is_some_and(|l| l.is_live(self.now() + pause.as_millis() as u64)) =>
                {
                    tracing::warn!(
                        run = %from.run_id,
                        step = %from.name,
                        "recording the attempt failed, retrying while the lease holds: {reason}"
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                other => return other,
            }
        }
    }

    /// Runs one attempt of an RPC step's function.
    async fn call_rpc(&self, step: &StepRecord, attempt: u32, timeout: Duration) -> StepOutcome {
        let target = RpcTarget {
            rpc_name: step.rpc_name.as_deref().unwrap_or_default(),
            input: step.input.as_deref().unwrap_or("null"),
            run_id: step.run_id.as_str(),
            step_name: &step.name,
        };
        self.invoke_rpc(target, attempt, timeout).await
    }

    /// Calls `<module>/<function>` of the latest deployed version once,
    /// outside any run, as the first attempt of a step `call` of a fresh
    /// run id (so each call has its own idempotency key): how `weft call`
    /// and `weft build --run` try an RPC module.
    pub async fn call_function(&self, rpc_name: &str, input: &str) -> StepOutcome {
        let run_id = RunId::generate();
        let target = RpcTarget {
            rpc_name,
            input,
            run_id: run_id.as_str(),
            step_name: "call",
        };
        self.invoke_rpc(target, 1, self.limits.default_rpc_timeout)
            .await
    }

    /// Finds the module an RPC name points at and runs one attempt in it.
    async fn invoke_rpc(
        &self,
        target: RpcTarget<'_>,
        attempt: u32,
        timeout: Duration,
    ) -> StepOutcome {
        let rpc_name = target.rpc_name;
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
            input: target.input,
            run_id: target.run_id,
            step_name: target.step_name,
            attempt,
            timeout,
        };
        rpc::invoke(&pre, &self.limits, call).await
    }

    /// Continues a run whose step `step` this worker just finished, if that
    /// outcome can move it: replays it right here (saving the queue round
    /// trip of a message), or sends a message if the run is busy elsewhere
    /// or the replay failed.
    async fn continue_run(
        self: &Arc<Self>,
        run_id: &RunId,
        step: &str,
    ) -> Result<(), ServiceError> {
        let resume = WorkMessage::StepFinished {
            run_id: run_id.clone(),
            step: step.to_string(),
        };
        match self.step_finished(run_id, step).await {
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

    /// Handles `step-finished`: resumes the run unless it is asleep waiting
    /// for other steps, none of which has finished (each of those wakes it
    /// with a message of its own when it does).
    pub(crate) async fn step_finished(
        self: &Arc<Self>,
        run_id: &RunId,
        step: &str,
    ) -> Result<Handled, ServiceError> {
        let now = self.now();
        match self.state.get_run_head(run_id).await? {
            // Held by an activation, which may have read its journal before
            // this outcome landed: look again once it lets go. Trying the
            // lease now would only fail.
            Some(run)
                if !run.status.is_terminal()
                    && run.lease.as_ref().is_some_and(|l| l.is_live(now)) =>
            {
                Ok(Handled::Requeue(super::resume::LEASE_BUSY_RETRY))
            }
            Some(run) if self.worth_resuming(&run, step).await? => self.resume(run_id).await,
            _ => Ok(Handled::Settled),
        }
    }

    /// Whether step `step`'s new outcome can move `run`, which nobody
    /// holds. Only a run suspended on `awaiting` (started RPC and child
    /// steps, whose outcomes each announce themselves), with no timer or
    /// deadline due, and none of whose awaited steps has finished, is left
    /// asleep.
    async fn worth_resuming(&self, run: &RunHead, step: &str) -> Result<bool, ServiceError> {
        if run.status.is_terminal() {
            return Ok(false);
        }
        let now = self.now();
        if run.awaiting.is_empty()
            || run.awaiting.iter().any(|a| a == step)
            || run.wake_at.is_some_and(|at| at <= now)
            || run.deadline.is_some_and(|at| at <= now)
        {
            return Ok(true);
        }
        for name in &run.awaiting {
            if let Some(awaited) = self.state.get_step(&run.id, name).await?
                && awaited.status.is_final()
            {
                return Ok(true);
            }
        }
        Ok(false)
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
        match self.state.get_run_head(run_id).await? {
            Some(run) if run.status.is_terminal() => return Ok(Handled::Settled),
            None => return Ok(Handled::Settled),
            Some(_) => {}
        }
        match self.execute_attempt(&step).await? {
            AttemptResult::Finished(_) => self.continue_run(run_id, name).await?,
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
            // A fresh invocation has the time: a fresh copy, due at once.
            AttemptResult::Deferred => return Ok(Handled::Requeue(Duration::ZERO)),
        }
        Ok(Handled::Settled)
    }
}

/// What an RPC attempt calls, and on behalf of which step.
struct RpcTarget<'a> {
    rpc_name: &'a str,
    input: &'a str,
    run_id: &'a str,
    step_name: &'a str,
}
