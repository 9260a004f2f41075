//! [`FaultyStore`]: a state store that throttles, times out and answers
//! ambiguously.

use super::{CallFault, FaultCounts, FaultPlan, faulted};
use crate::backend::{
    NewEvent, QuietCursor, QuietPage, RunQuery, ScheduleWrite, StateStore, StateWrite, StoreError,
};
use crate::model::{
    AttemptRecord, CallbackRecord, Digest, EventRecord, EventSent, LogLine, Millis, RunHead, RunId,
    RunRecord, Schedule, StepOutcome, StepRecord,
};
use async_trait::async_trait;
use std::sync::Arc;

/// A state store that injects the call faults of a [`FaultPlan`] into
/// another: reads may be throttled or time out; writes may also be applied
/// and then reported failed, and conditional writes reported as conflicts.
pub struct FaultyStore {
    inner: Arc<dyn StateStore>,
    plan: FaultPlan,
    counts: Arc<FaultCounts>,
}

impl FaultyStore {
    /// A faulty store that adds what it injects to `counts`.
    pub fn counting(inner: Arc<dyn StateStore>, plan: FaultPlan, counts: Arc<FaultCounts>) -> Self {
        Self {
            inner,
            plan,
            counts,
        }
    }

    async fn read<T>(
        &self,
        name: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.faulted(name, Access::Read, call).await
    }

    async fn write<T>(
        &self,
        name: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.faulted(name, Access::Write, call).await
    }

    async fn conditional<T>(
        &self,
        name: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.faulted(name, Access::Conditional, call).await
    }

    async fn faulted<T>(
        &self,
        name: &'static str,
        access: Access,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let writes = access != Access::Read;
        let fail = |fault, message: String| {
            if access == Access::Conditional
                && fault == CallFault::Ambiguous
                && rand::random::<bool>()
            {
                StoreError::Conflict(format!("{message} (its retry lost the condition)"))
            } else {
                StoreError::Backend(message)
            }
        };
        faulted(&self.plan, &self.counts, "store", name, writes, call, fail).await
    }
}

/// What a store call does, which decides the faults it can meet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Throttled or timed out only.
    Read,
    /// Also applied, then reported failed.
    Write,
    /// Also applied, then reported failed or, half of the time, as a
    /// [`StoreError::Conflict`]: the retry of a conditional write whose
    /// first try landed finds its condition no longer true.
    Conditional,
}

#[async_trait]
impl StateStore for FaultyStore {
    async fn create_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        self.conditional("create_run", self.inner.create_run(run))
            .await
    }

    async fn get_run(&self, id: &RunId) -> Result<Option<RunRecord>, StoreError> {
        self.read("get_run", self.inner.get_run(id)).await
    }

    async fn get_run_head(&self, id: &RunId) -> Result<Option<RunHead>, StoreError> {
        self.read("get_run_head", self.inner.get_run_head(id)).await
    }

    async fn list_runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>, StoreError> {
        self.read("list_runs", self.inner.list_runs(query)).await
    }

    async fn list_quiet_runs(
        &self,
        quiet_before: Millis,
        after: Option<&QuietCursor>,
        limit: usize,
    ) -> Result<QuietPage, StoreError> {
        let call = self.inner.list_quiet_runs(quiet_before, after, limit);
        self.read("list_quiet_runs", call).await
    }

    async fn acquire_run_lease(
        &self,
        id: &RunId,
        owner: &str,
        now: Millis,
        ttl_ms: u64,
    ) -> Result<RunRecord, StoreError> {
        let call = self.inner.acquire_run_lease(id, owner, now, ttl_ms);
        self.conditional("acquire_run_lease", call).await
    }

    async fn acquire_run_lease_head(
        &self,
        id: &RunId,
        owner: &str,
        now: Millis,
        ttl_ms: u64,
    ) -> Result<RunHead, StoreError> {
        let call = self.inner.acquire_run_lease_head(id, owner, now, ttl_ms);
        self.conditional("acquire_run_lease", call).await
    }

    async fn commit(&self, write: StateWrite) -> Result<(), StoreError> {
        self.conditional("commit", self.inner.commit(write)).await
    }

    async fn get_step(&self, run_id: &RunId, name: &str) -> Result<Option<StepRecord>, StoreError> {
        self.read("get_step", self.inner.get_step(run_id, name))
            .await
    }

    async fn get_steps(
        &self,
        run_id: &RunId,
        names: &[String],
    ) -> Result<Vec<StepRecord>, StoreError> {
        self.read("get_steps", self.inner.get_steps(run_id, names))
            .await
    }

    async fn list_steps(&self, run_id: &RunId) -> Result<Vec<StepRecord>, StoreError> {
        self.read("list_steps", self.inner.list_steps(run_id)).await
    }

    async fn list_attempts(&self, step_key: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        self.read("list_attempts", self.inner.list_attempts(step_key))
            .await
    }

    async fn list_logs(&self, run_id: &RunId) -> Result<Vec<LogLine>, StoreError> {
        self.read("list_logs", self.inner.list_logs(run_id)).await
    }

    async fn send_event(&self, event: NewEvent) -> Result<EventSent, StoreError> {
        self.write("send_event", self.inner.send_event(event)).await
    }

    async fn get_callback(&self, hash: &str) -> Result<Option<CallbackRecord>, StoreError> {
        self.read("get_callback", self.inner.get_callback(hash))
            .await
    }

    async fn complete_callback(
        &self,
        hash: &str,
        outcome: StepOutcome,
        now: Millis,
    ) -> Result<CallbackRecord, StoreError> {
        let call = self.inner.complete_callback(hash, outcome, now);
        self.conditional("complete_callback", call).await
    }

    async fn list_events(&self, run_id: &RunId) -> Result<Vec<EventRecord>, StoreError> {
        self.read("list_events", self.inner.list_events(run_id))
            .await
    }

    async fn next_event(
        &self,
        run_id: &RunId,
        name: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        self.read("next_event", self.inner.next_event(run_id, name))
            .await
    }

    async fn put_schedule(&self, write: ScheduleWrite) -> Result<(), StoreError> {
        self.conditional("put_schedule", self.inner.put_schedule(write))
            .await
    }

    async fn get_schedule(&self, name: &str) -> Result<Option<Schedule>, StoreError> {
        self.read("get_schedule", self.inner.get_schedule(name))
            .await
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        self.read("list_schedules", self.inner.list_schedules())
            .await
    }

    async fn due_schedules(&self, now: Millis, limit: usize) -> Result<Vec<Schedule>, StoreError> {
        self.read("due_schedules", self.inner.due_schedules(now, limit))
            .await
    }

    async fn delete_schedule(&self, name: &str) -> Result<bool, StoreError> {
        self.write("delete_schedule", self.inner.delete_schedule(name))
            .await
    }

    async fn repin_run(
        &self,
        id: &RunId,
        expected_version: u64,
        digest: &Digest,
    ) -> Result<(), StoreError> {
        let call = self.inner.repin_run(id, expected_version, digest);
        self.conditional("repin_run", call).await
    }

    async fn expired_runs(&self, now: Millis, limit: usize) -> Result<Vec<RunId>, StoreError> {
        self.read("expired_runs", self.inner.expired_runs(now, limit))
            .await
    }

    async fn delete_run(&self, id: &RunId) -> Result<(), StoreError> {
        self.write("delete_run", self.inner.delete_run(id)).await
    }
}
