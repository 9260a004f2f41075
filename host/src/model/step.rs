//! Steps: the only way a workflow affects the world.

use super::{ErrorCode, ErrorInfo, Lease, Millis, RunId};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What kind of step a journal entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// A call to an RPC step function, executed by a worker.
    Rpc,
    /// Code of the workflow itself, run once and recorded.
    Inline,
    /// A durable timer.
    Sleep,
    /// A wait for the next event of a name sent to the run, with a timeout.
    Event,
    /// The creation of a callback: its result is the token.
    Callback,
    /// A wait for a callback to be completed from outside.
    CallbackWait,
    /// A child run started by this run and awaited like any started step:
    /// `rpc_name` is the child's workflow, `input` its input; its outcome
    /// is the child's output or error.
    Child,
    /// A child run started detached: recorded with the child's run id as
    /// its result at once; the parent neither waits for it nor cancels it.
    DetachedChild,
    /// Which of several started steps an `await-any` delivered: its input
    /// lists the members awaited, its result names the one that finished
    /// first. Recorded so a replay delivers the same one.
    Join,
}

impl StepKind {
    /// Whether a step of this kind can be started without waiting for it
    /// (a fan-out member): its work happens outside the workflow's code.
    pub fn can_start(self) -> bool {
        matches!(
            self,
            Self::Rpc | Self::Sleep | Self::Event | Self::CallbackWait | Self::Child
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rpc => "rpc",
            Self::Inline => "inline",
            Self::Sleep => "sleep",
            Self::Event => "event",
            Self::Callback => "callback",
            Self::CallbackWait => "callback_wait",
            Self::Child => "child",
            Self::DetachedChild => "detached_child",
            Self::Join => "join",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "rpc" => Self::Rpc,
            "inline" => Self::Inline,
            "sleep" => Self::Sleep,
            "event" => Self::Event,
            "callback" => Self::Callback,
            "callback_wait" => Self::CallbackWait,
            "child" => Self::Child,
            "detached_child" => Self::DetachedChild,
            "join" => Self::Join,
            _ => return None,
        })
    }
}

/// A step's state. `Succeeded` and `Failed` are final: once a step has an
/// outcome, conditional writes make sure it never gets a second one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Recorded; its first attempt has not started.
    Pending,
    /// An attempt is executing (an RPC held by a worker under a lease).
    Running,
    /// Waiting for `wake_at`: a sleep, or a retry's backoff.
    Scheduled,
    Succeeded,
    Failed,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Scheduled => "scheduled",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "scheduled" => Self::Scheduled,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// How a failing step is retried.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_delay_ms: u64,
    pub backoff_factor: f64,
    pub max_delay_ms: u64,
    /// Fraction (0..=1) by which each delay is spread, to avoid retry storms.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// Three attempts, 1 s then 2 s apart (capped at 60 s), ±10 % jitter.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_delay_ms: 1_000,
            backoff_factor: 2.0,
            max_delay_ms: 60_000,
            jitter: 0.1,
        }
    }
}

impl RetryPolicy {
    /// The backoff before attempt `failed_attempt + 1`, before jitter.
    pub fn base_delay(&self, failed_attempt: u32) -> Duration {
        let exponent = failed_attempt.saturating_sub(1).min(64) as i32;
        let factor = if self.backoff_factor.is_finite() && self.backoff_factor >= 1.0 {
            self.backoff_factor
        } else {
            1.0
        };
        let ms = (self.initial_delay_ms as f64) * factor.powi(exponent);
        let capped = ms.min(self.max_delay_ms as f64).max(0.0);
        Duration::from_millis(capped as u64)
    }

    /// The backoff before the next attempt, spread by `jitter` using
    /// `unit` (a number in 0..1 the caller draws, so tests can pin it).
    pub fn delay(&self, failed_attempt: u32, unit: f64) -> Duration {
        let base = self.base_delay(failed_attempt).as_millis() as f64;
        let jitter = self.jitter.clamp(0.0, 1.0);
        let spread = base * jitter * (unit.clamp(0.0, 1.0) * 2.0 - 1.0);
        Duration::from_millis((base + spread).max(0.0) as u64)
    }

    /// Whether another attempt is allowed after `attempts` have failed.
    pub fn allows_retry_after(&self, attempts: u32) -> bool {
        attempts < self.max_attempts.max(1)
    }

    /// When attempt `attempt + 1` is due, if `outcome` of attempt `attempt`
    /// (ended at `ended`) calls for one: a retryable error with attempts
    /// left. `unit` (0..1) spreads the backoff by the policy's jitter.
    pub fn next_attempt_at(
        &self,
        attempt: u32,
        outcome: &StepOutcome,
        ended: Millis,
        unit: f64,
    ) -> Option<Millis> {
        match outcome {
            Err(e) if e.is_retryable() && self.allows_retry_after(attempt) => {
                Some(ended + self.delay(attempt, unit).as_millis() as u64)
            }
            _ => None,
        }
    }
}

/// Per-step options as the guest passed them, with host defaults filled in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StepOptions {
    pub retry: RetryPolicy,
    pub timeout_ms: Option<u64>,
}

/// The final outcome of a step: a JSON result or an error.
pub type StepOutcome = Result<String, ErrorInfo>;

/// What a workflow asked for at one position of its journal. Replay compares
/// it with what the journal recorded there to detect non-determinism.
#[derive(Clone, Debug, PartialEq)]
pub struct StepCall {
    pub kind: StepKind,
    pub name: String,
    /// For RPC steps: `<module>/<function>`.
    pub rpc_name: Option<String>,
    /// For RPC steps the JSON input; for sleeps the duration as JSON; for
    /// event waits the event's name and the timeout (see [`EventWait`]).
    pub input: Option<String>,
    pub options: StepOptions,
}

/// What a callback step asks for, as its journal input records it: the
/// callback's timeout at creation; for the wait, which callback (by the
/// token's hash, so the journal's inputs never carry the token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
}

impl CallbackStep {
    pub fn of(input: Option<&str>) -> Option<Self> {
        serde_json::from_str(input?).ok()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What an event wait step asks for, as its journal input records it: a
/// replay that waits for another event or with another timeout diverges.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventWait {
    pub event: String,
    /// `None` waits without a time limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl EventWait {
    /// The wait recorded in `step`'s input, if it is an event wait.
    pub fn of(input: Option<&str>) -> Option<Self> {
        serde_json::from_str(input?).ok()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A step as stored: the seed's `workflow-steps` item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub run_id: RunId,
    pub name: String,
    /// Position in the run's journal, from 0.
    pub seq: u32,
    pub kind: StepKind,
    pub rpc_name: Option<String>,
    pub input: Option<String>,
    pub status: StepStatus,
    /// JSON text, once succeeded.
    pub result: Option<String>,
    /// The last attempt's error (final once `status` is `Failed`).
    pub error: Option<ErrorInfo>,
    pub attempt_count: u32,
    pub options: StepOptions,
    /// When a `Scheduled` step is due.
    pub wake_at: Option<Millis>,
    /// The worker executing the current attempt, for `Running` RPC steps.
    pub lease: Option<Lease>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// When the outcome was recorded; the run's logical clock moves to it.
    pub completed_at: Option<Millis>,
    /// Attempts lost with their host (a worker that died or stalled past
    /// its lease, an invocation that timed out before recording). They are
    /// in `attempt_count` and the history, but do not spend the retry
    /// policy's attempts; a separate cap ends a step that keeps losing them.
    #[serde(default)]
    pub host_losses: u32,
}

impl StepRecord {
    /// The seed's `runStepKey`: `runId#stepName`.
    pub fn key(run_id: &RunId, name: &str) -> String {
        format!("{run_id}#{name}")
    }

    /// A freshly recorded step for `call` at position `seq`.
    pub fn new(run_id: &RunId, seq: u32, call: &StepCall, now: Millis) -> Self {
        Self {
            run_id: run_id.clone(),
            name: call.name.clone(),
            seq,
            kind: call.kind,
            rpc_name: call.rpc_name.clone(),
            input: call.input.clone(),
            status: StepStatus::Pending,
            result: None,
            error: None,
            attempt_count: 0,
            options: call.options.clone(),
            wake_at: None,
            lease: None,
            created_at: now,
            updated_at: now,
            completed_at: None,
            host_losses: 0,
        }
    }

    /// The attempts that count against the retry policy: every attempt
    /// but those lost with their host.
    pub fn counted_attempts(&self) -> u32 {
        self.attempt_count.saturating_sub(self.host_losses)
    }

    /// The recorded outcome, if the step has one.
    pub fn outcome(&self) -> Option<StepOutcome> {
        match self.status {
            StepStatus::Succeeded => Some(Ok(self.result.clone().unwrap_or_else(|| "null".into()))),
            StepStatus::Failed => Some(Err(self
                .error
                .clone()
                .unwrap_or_else(|| ErrorInfo::host(ErrorCode::Failed, "step failed")))),
            _ => None,
        }
    }

    /// Records the final outcome on this record (the caller persists it).
    pub fn finish(&mut self, outcome: StepOutcome, now: Millis) {
        match outcome {
            Ok(result) => {
                self.status = StepStatus::Succeeded;
                self.result = Some(result);
                self.error = None;
            }
            Err(error) => {
                self.status = StepStatus::Failed;
                self.error = Some(error);
            }
        }
        self.wake_at = None;
        self.lease = None;
        self.updated_at = now;
        self.completed_at = Some(now);
    }

    /// Records the outcome of an attempt that ended at `now`: with
    /// `retry_at`, the step waits (scheduled, lease dropped) for its next
    /// attempt then; without, it finishes with `outcome`.
    pub fn end_attempt(&mut self, outcome: StepOutcome, retry_at: Option<Millis>, now: Millis) {
        match (retry_at, outcome) {
            (Some(at), Err(e)) => {
                self.status = StepStatus::Scheduled;
                self.error = Some(e);
                self.wake_at = Some(at);
                self.lease = None;
                self.updated_at = now;
            }
            (_, outcome) => self.finish(outcome, now),
        }
    }
}

/// One attempt of a step: the seed's `workflow-step-history` item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The step's `runStepKey`.
    pub step_id: String,
    pub attempt: u32,
    pub status: StepStatus,
    pub error: Option<ErrorInfo>,
    pub started_at: Millis,
    pub ended_at: Option<Millis>,
}

impl AttemptRecord {
    /// The history row of attempt `attempt` of `step`, which ended at
    /// `ended` with `outcome`.
    pub fn ended(
        step: &StepRecord,
        attempt: u32,
        outcome: &StepOutcome,
        started_at: Millis,
        ended: Millis,
    ) -> Self {
        Self {
            step_id: StepRecord::key(&step.run_id, &step.name),
            attempt,
            status: if outcome.is_ok() {
                StepStatus::Succeeded
            } else {
                StepStatus::Failed
            },
            error: outcome.as_ref().err().cloned(),
            started_at,
            ended_at: Some(ended),
        }
    }
}
