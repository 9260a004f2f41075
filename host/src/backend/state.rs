//! The `StateStore` seam: where runs, steps, attempts and logs live.
//!
//! Every state transition goes through [`StateStore::commit`], an
//! all-or-nothing batch whose writes are each guarded by a condition (the run
//! version a writer read, or the step status and attempt it expects). A
//! duplicate delivery, a racing worker, or a worker that lost its lease can
//! therefore never record a second outcome or move a finished run: its write
//! fails with [`StoreError::Conflict`] and it backs off.
//!
//! Backends: [`crate::backend::sqlite`] (embedded, the default) and
//! [`crate::backend::aws`]. Both pass the one conformance suite in `tests/`.

use crate::model::{
    AttemptRecord, CallbackRecord, EventRecord, EventSent, LogLine, Millis, RunHead, RunId,
    RunRecord, RunStatus, Schedule, StepOutcome, StepRecord, StepStatus,
};
use async_trait::async_trait;

/// Why a store call failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    /// A conditional write lost: someone else changed the item first.
    #[error("conflict: {0}")]
    Conflict(String),
    /// An item would exceed the backend's size limit.
    #[error("item too large: {0}")]
    TooLarge(String),
    /// The backend failed (I/O, network, throttling). Retrying later may help.
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// What is stored cannot be read as Weft wrote it (a missing attribute,
    /// a journal index naming steps that are not there). Retrying cannot
    /// help: work that depends on it is poison.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn backend(e: impl std::fmt::Display) -> Self {
        Self::Backend(e.to_string())
    }

    /// Whether the same call may succeed later: the backend failed, or a
    /// conditional write lost a race that a fresh read may win.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Backend(_) | Self::Conflict(_))
    }
}

/// The condition a step write depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepExpect {
    /// The step must not exist yet.
    Absent,
    /// The step must be in exactly this state. The attempt count is the
    /// fencing token of step execution: a worker that lost its lease finds
    /// the count moved on and its write fails.
    State {
        status: StepStatus,
        attempt_count: u32,
    },
}

/// A write to a run, guarded by the version the writer read.
#[derive(Clone, Debug)]
pub struct RunWrite {
    /// The new state. The store saves it with `version = expected_version + 1`.
    pub record: RunRecord,
    pub expected_version: u64,
    /// The journal's length in the version being replaced (the one the
    /// writer read): the entries before it are stored already, so a store
    /// that keeps the journal in pieces writes only what is new.
    pub expected_steps: usize,
}

impl RunWrite {
    /// `record` in place of `prior`, the version the writer read.
    pub fn replacing(prior: &RunRecord, record: RunRecord) -> Self {
        Self {
            record,
            expected_version: prior.version,
            expected_steps: prior.step_names.len(),
        }
    }
}

/// A conditional write of one step.
#[derive(Clone, Debug)]
pub struct StepWrite {
    pub record: StepRecord,
    pub expect: StepExpect,
}

/// An event taken by a wait step, as part of a [`StateWrite`]: event `seq`
/// of `name` must be the oldest one no wait has taken, and becomes the
/// wait's. The step write beside it records the payload; the two land
/// together or not at all, so an event is taken at most once and a wait
/// that timed out takes none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventTake {
    pub run_id: RunId,
    pub name: String,
    pub seq: u64,
    /// The wait step's name.
    pub step: String,
}

/// A change to a callback, as part of a [`StateWrite`].
#[derive(Clone, Debug, PartialEq)]
pub enum CallbackWrite {
    /// A new callback; its hash must be unused.
    Create(CallbackRecord),
    /// The callback leaves `waiting` for `expired`: a wait timed out on it.
    /// It fails if a completion landed first, so the two never both win.
    Expire { hash: String },
}

/// An event to store in a run's inbox ([`StateStore::send_event`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub run_id: RunId,
    pub name: String,
    pub event_id: String,
    pub payload: String,
    pub sent_at: Millis,
}

/// One atomic batch of writes. Attempts and logs are keyed deterministically
/// (step key + attempt; run + position + index), so re-writing them is
/// idempotent and they carry no condition.
#[derive(Clone, Debug, Default)]
pub struct StateWrite {
    pub run: Option<RunWrite>,
    /// The batch also requires this run to be `running`, without writing
    /// it: a step claim carries it, so no attempt of a run that was
    /// cancelled (or ended otherwise) can start after the run ended.
    pub require_running: Option<RunId>,
    pub steps: Vec<StepWrite>,
    pub events: Vec<EventTake>,
    pub callbacks: Vec<CallbackWrite>,
    pub attempts: Vec<AttemptRecord>,
    pub logs: Vec<(RunId, LogLine)>,
}

impl StateWrite {
    pub fn is_empty(&self) -> bool {
        self.run.is_none()
            && self.steps.is_empty()
            && self.events.is_empty()
            && self.callbacks.is_empty()
            && self.attempts.is_empty()
            && self.logs.is_empty()
    }
}

/// Which runs to list.
#[derive(Clone, Debug, Default)]
pub struct RunQuery {
    pub status: Option<RunStatus>,
    pub workflow: Option<String>,
    pub limit: usize,
    /// Only runs after this one in the listing's order (newest first): the
    /// last run of the previous page, to page through every run.
    pub after: Option<RunCursor>,
}

/// A position in a newest-first listing of runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunCursor {
    pub created_at: Millis,
    pub id: RunId,
}

impl RunCursor {
    /// The position just after `run`.
    pub fn after(run: &RunRecord) -> Self {
        Self {
            created_at: run.created_at,
            id: run.id.clone(),
        }
    }

    /// Whether `run` comes after this position (newest first, ties by id
    /// descending).
    pub fn precedes(&self, run: &RunRecord) -> bool {
        run.created_at < self.created_at || (run.created_at == self.created_at && run.id < self.id)
    }
}

/// A position in the listing of running runs by attention time (see
/// [`StateStore::list_quiet_runs`]): the last run of the previous page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuietCursor {
    pub at: Millis,
    pub id: RunId,
}

/// A page of [`StateStore::list_quiet_runs`].
#[derive(Clone, Debug, Default)]
pub struct QuietPage {
    pub runs: Vec<RunRecord>,
    /// Where the next page starts; `None` when this was the last.
    pub next: Option<QuietCursor>,
}

/// Durable state of runs and steps, mirroring the seed's three tables.
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// Creates a run; [`StoreError::Conflict`] if the id exists.
    async fn create_run(&self, run: &RunRecord) -> Result<(), StoreError>;

    /// Reads a run with a strongly consistent read.
    async fn get_run(&self, id: &RunId) -> Result<Option<RunRecord>, StoreError>;

    /// Reads a run's [`RunHead`] with a strongly consistent read: what the
    /// per-step checks need, without what grows with the run. Stores read
    /// only those fields; the default reads the whole run.
    async fn get_run_head(&self, id: &RunId) -> Result<Option<RunHead>, StoreError> {
        Ok(self.get_run(id).await?.as_ref().map(RunHead::from))
    }

    /// Lists runs, newest first. For operators and recovery, never for replay.
    async fn list_runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>, StoreError>;

    /// Running runs whose [`RunRecord::attention_at`] is at or before
    /// `quiet_before`, oldest first, up to `limit` (read consistently; an
    /// index may only say which to read). This is what the recovery sweep
    /// reads: its cost follows the runs that went quiet, not the number of
    /// running runs.
    async fn list_quiet_runs(
        &self,
        quiet_before: Millis,
        after: Option<&QuietCursor>,
        limit: usize,
    ) -> Result<QuietPage, StoreError>;

    /// Takes the run's lease for `owner` until `now + ttl_ms` if the run is
    /// `running` and the lease is free or expired. Leases are exclusive per
    /// activation: even the same owner cannot take a live lease twice.
    /// Returns the run as written (its version bumped), which is the fencing
    /// token for the holder's later writes.
    async fn acquire_run_lease(
        &self,
        id: &RunId,
        owner: &str,
        now: Millis,
        ttl_ms: u64,
    ) -> Result<RunRecord, StoreError>;

    /// [`StateStore::acquire_run_lease`], returning only the run's
    /// [`RunHead`]: for a holder that already has the rest (a parked guest's
    /// run, exactly as its last write left it). Stores skip reading the
    /// journal index; the default reads the whole run.
    async fn acquire_run_lease_head(
        &self,
        id: &RunId,
        owner: &str,
        now: Millis,
        ttl_ms: u64,
    ) -> Result<RunHead, StoreError> {
        let run = self.acquire_run_lease(id, owner, now, ttl_ms).await?;
        Ok(RunHead::from(&run))
    }

    /// Applies `write` atomically, or nothing with [`StoreError::Conflict`].
    async fn commit(&self, write: StateWrite) -> Result<(), StoreError>;

    /// Reads one step by key, strongly consistent.
    async fn get_step(&self, run_id: &RunId, name: &str) -> Result<Option<StepRecord>, StoreError>;

    /// Reads the named steps by key, strongly consistent, in the order given.
    /// Missing steps are skipped. This is what replay uses.
    async fn get_steps(
        &self,
        run_id: &RunId,
        names: &[String],
    ) -> Result<Vec<StepRecord>, StoreError>;

    /// All steps of a run through the `runId` index, in journal order. For
    /// display only: the index may lag, so replay never relies on it.
    async fn list_steps(&self, run_id: &RunId) -> Result<Vec<StepRecord>, StoreError>;

    /// The attempts recorded for a step (`runId#stepName`), oldest first.
    async fn list_attempts(&self, step_key: &str) -> Result<Vec<AttemptRecord>, StoreError>;

    /// The run's log lines in order.
    async fn list_logs(&self, run_id: &RunId) -> Result<Vec<LogLine>, StoreError>;

    /// Stores `event` in its run's inbox, numbered after the events of its
    /// name already there. An event with the same `event_id` (and name)
    /// stored before is returned as [`EventSent::Duplicate`], unchanged,
    /// whatever the run's state. A new event gets [`StoreError::NotFound`]
    /// if the run does not exist, [`StoreError::Conflict`] if it is no
    /// longer running.
    async fn send_event(&self, event: NewEvent) -> Result<EventSent, StoreError>;

    /// The callback whose token hashes to `hash`, read consistently.
    async fn get_callback(&self, hash: &str) -> Result<Option<CallbackRecord>, StoreError>;

    /// Completes the callback `hash` with `outcome` if it is still waiting
    /// and not expired at `now`, and returns it as written;
    /// [`StoreError::Conflict`] otherwise, [`StoreError::NotFound`] if
    /// there is none.
    async fn complete_callback(
        &self,
        hash: &str,
        outcome: StepOutcome,
        now: Millis,
    ) -> Result<CallbackRecord, StoreError>;

    /// Every event sent to the run, taken or not, ordered by name and
    /// number (what a console shows). On DynamoDB it is found through an
    /// index, so an event sent a moment ago may be missing.
    async fn list_events(&self, run_id: &RunId) -> Result<Vec<EventRecord>, StoreError>;

    /// The oldest event of `name` in the run's inbox that no wait has
    /// taken, read consistently.
    async fn next_event(
        &self,
        run_id: &RunId,
        name: &str,
    ) -> Result<Option<EventRecord>, StoreError>;

    /// Writes `write.record` if the stored schedule is at
    /// `write.expected_version` (`None`: there must be none), with its
    /// version bumped; [`StoreError::Conflict`] otherwise.
    async fn put_schedule(&self, write: ScheduleWrite) -> Result<(), StoreError>;

    /// One schedule by name, read consistently.
    async fn get_schedule(&self, name: &str) -> Result<Option<Schedule>, StoreError>;

    /// Every schedule, by name.
    async fn list_schedules(&self) -> Result<Vec<Schedule>, StoreError>;

    /// Up to `limit` unpaused schedules whose next fire is at or before
    /// `now`, earliest first: found through an index on the fire time, so
    /// the cost follows the schedules that are due, not all of them.
    async fn due_schedules(&self, now: Millis, limit: usize) -> Result<Vec<Schedule>, StoreError>;

    /// Removes a schedule; whether there was one.
    async fn delete_schedule(&self, name: &str) -> Result<bool, StoreError>;

    /// Moves a running run onto the workflow module `digest` (a
    /// replay-checked upgrade) if it is still at `expected_version`, bumping
    /// its version; [`StoreError::Conflict`] if it changed or finished
    /// meanwhile. Nothing else about the run changes.
    async fn repin_run(
        &self,
        id: &RunId,
        expected_version: u64,
        digest: &crate::model::Digest,
    ) -> Result<(), StoreError>;

    /// Up to `limit` finished runs whose [`RunRecord::expires_at`] is at or
    /// before `now`, earliest expiry first: found through an index on the
    /// expiry, so the cost follows the runs that are due.
    async fn expired_runs(&self, now: Millis, limit: usize) -> Result<Vec<RunId>, StoreError>;

    /// Deletes a finished run and everything recorded for it: its steps,
    /// attempts, logs, journal, events and callbacks. Deleting a run that
    /// is gone is a no-op; a run still running is refused with
    /// [`StoreError::Conflict`].
    async fn delete_run(&self, id: &RunId) -> Result<(), StoreError>;
}

/// A conditional write of a schedule ([`StateStore::put_schedule`]).
#[derive(Clone, Debug)]
pub struct ScheduleWrite {
    /// The new state; stored with `version = expected_version + 1` (or 0).
    pub record: Schedule,
    pub expected_version: Option<u64>,
}
