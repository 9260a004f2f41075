//! The small JSON envelopes that travel through the work queue.

use super::{Millis, RunId};
use serde::{Deserialize, Serialize};

/// A unit of work for a worker. Messages carry only identifiers: the state
/// they act on is read from the store, so a stale or duplicated message is
/// harmless, and every handler is idempotent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum WorkMessage {
    /// Replay the run and carry it as far as it can go. Also the timer
    /// message: a sleep or a retry backoff sends it with a `not_before`, and
    /// the replay completes whatever is due.
    #[serde(rename_all = "camelCase")]
    Resume { run_id: RunId },
    /// Step `step` of the run has just got its outcome: replay the run if
    /// that outcome can move it (the run waits for this step, or for
    /// nothing in particular), and otherwise let it sleep on. How a fan-out's
    /// members wake their run without one replay each.
    #[serde(rename_all = "camelCase")]
    StepFinished { run_id: RunId, step: String },
    /// Fire schedule `name` for its time `at`, if that is still its next
    /// fire (a superseded or paused schedule ends the chain here). Sent
    /// delayed until `at`; the periodic tick fires what a lost message
    /// missed.
    #[serde(rename_all = "camelCase")]
    FireSchedule { name: String, at: Millis },
    /// Execute the next attempt of an RPC step.
    #[serde(rename_all = "camelCase")]
    ExecuteStep {
        run_id: RunId,
        step: String,
        attempt: u32,
    },
}

/// A message together with the earliest time it may be handled. Queues cap
/// delays (SQS at 900 s); a message that arrives early is re-sent with the
/// remaining delay, so arbitrarily long sleeps and backoffs work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    #[serde(flatten)]
    pub message: WorkMessage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Millis>,
    /// How many times this message's handling already failed for a
    /// passing reason (a throttled store, a network error) and was sent
    /// again: it spaces the next try out. Separate from the queue's receive
    /// count, which only poison messages should exhaust.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl WorkMessage {
    /// The run the message is about (a schedule's fire is about none yet).
    pub fn run_id(&self) -> Option<&RunId> {
        match self {
            Self::Resume { run_id }
            | Self::StepFinished { run_id, .. }
            | Self::ExecuteStep { run_id, .. } => Some(run_id),
            Self::FireSchedule { .. } => None,
        }
    }
}

impl Envelope {
    /// A message to handle as soon as possible.
    pub fn now(message: WorkMessage) -> Self {
        Self {
            message,
            not_before: None,
            retries: 0,
        }
    }

    /// A message to handle no sooner than `at`.
    pub fn at(message: WorkMessage, at: Millis) -> Self {
        Self {
            message,
            not_before: Some(at),
            retries: 0,
        }
    }
}
