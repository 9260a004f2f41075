//! The seam between the replay core and whoever persists and executes steps.
//!
//! The replay core decides *what* the workflow asks for, in order, and
//! checks it against the journal; a [`StepDriver`] decides *how* a new or
//! unfinished step gets its outcome: record it and suspend, run an RPC right
//! here, wait for a timer. The service layer implements it on top of the
//! stores; tests implement it in memory.

use super::activation::ActivationEnd;
use crate::model::{ErrorInfo, LogLine, Millis, RunRecord, StepCall, StepOutcome, StepRecord};
use async_trait::async_trait;

/// How a step call proceeds.
#[derive(Debug)]
pub enum Resolution {
    /// The step has its final outcome (persisted); the guest continues with it.
    Recorded(StepRecord),
    /// Inline steps only: the guest runs the step's code as attempt `attempt`.
    /// `stored` is the step as persisted so far (after a failed attempt).
    Execute {
        attempt: u32,
        stored: Option<StepRecord>,
    },
    /// The outcome is not known yet; the activation ends here.
    Suspend,
}

/// Where a started step (a fan-out member) stands when an await looks at it.
#[derive(Debug)]
pub enum Probe {
    /// It has its final outcome, persisted.
    Done(Box<StepRecord>),
    /// Not yet. Its completion resumes the run; failing that, the run must
    /// look again at `wake_at` (a timer, a timeout, a recheck).
    Pending { wake_at: Option<Millis> },
    /// The driver ended the activation while looking (an inline RPC's long
    /// backoff, or a replay after every step): the guest stops here.
    Suspended,
}

/// Why a driver could not resolve a step.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The driver's own machinery failed (storage, a queue, a lost
    /// conditional write): the activation is abandoned and retried from its
    /// message. The source is the driver's error, opaque to the replay core;
    /// the driver's owner looks inside it.
    #[error(transparent)]
    Infra(Box<dyn std::error::Error + Send + Sync>),
    /// The run must fail with this error (e.g. a payload over the limit).
    #[error("{0}")]
    FailRun(ErrorInfo),
}

impl DriverError {
    /// Wraps a driver's own failure.
    pub fn infra(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Infra(Box::new(e))
    }
}

#[async_trait]
pub trait StepDriver: Send {
    /// The workflow reached an RPC or sleep step for the first time.
    async fn schedule(&mut self, seq: u32, call: &StepCall) -> Result<Resolution, DriverError>;

    /// The workflow reached a recorded step that has no outcome yet.
    async fn in_flight(&mut self, step: &StepRecord) -> Result<Resolution, DriverError>;

    /// An inline step's attempt finished in the guest with `outcome`.
    /// `stored` is the step as persisted, if an earlier attempt recorded it.
    async fn inline_attempt(
        &mut self,
        seq: u32,
        call: &StepCall,
        attempt: u32,
        stored: Option<&StepRecord>,
        outcome: StepOutcome,
    ) -> Result<Resolution, DriverError>;

    /// The workflow started a fan-out member (a [`crate::model::StepKind::can_start`]
    /// kind) for the first time: record it and set its work going, without
    /// waiting for it. Returns the step as recorded.
    async fn start(&mut self, seq: u32, call: &StepCall) -> Result<StepRecord, DriverError>;

    /// An await reached started step `step`, which has no outcome in the
    /// journal: find out whether it has one now (a due timer, an event to
    /// take, an RPC to run in this process), recording it if so.
    async fn probe(&mut self, step: &StepRecord) -> Result<Probe, DriverError>;

    /// An `await-any` found `chosen` finished first among its members:
    /// record join step `call` at `seq` with `chosen` as its result.
    async fn join(
        &mut self,
        seq: u32,
        call: &StepCall,
        chosen: &str,
    ) -> Result<Resolution, DriverError>;

    /// An await found none of `members` (started steps, as last seen)
    /// finished: end the activation until one of them finishes (its
    /// completion resumes the run) or `wake_at`.
    async fn await_members(
        &mut self,
        members: &[StepRecord],
        wake_at: Option<Millis>,
    ) -> Result<Resolution, DriverError>;

    /// A log line the workflow wrote past the end of its journal.
    fn log(&mut self, line: LogLine);

    /// The run as this driver last wrote it, for a guest that parks
    /// ([`crate::replay::park`]): it may go on only in an activation that
    /// finds the run in exactly this state (the record's version), and
    /// that activation takes the record from here rather than read it
    /// again. `None`: the guest cannot park.
    fn checkpoint(&self) -> Option<RunRecord> {
        None
    }

    /// The activation ended; persist its result (and buffered logs).
    async fn finish(&mut self, outcome: &ActivationEnd) -> Result<(), DriverError>;
}
