//! Errors that end up on a run or a step, as users see them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A failure recorded on a run or a step: a stable machine-readable `code`,
/// a message for humans, and optional JSON details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ErrorInfo {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            details: None,
        }
    }

    /// An error whose code is one of the host's own [`ErrorCode`]s.
    pub fn host(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(code.as_str(), message)
    }
}

impl ErrorInfo {
    /// Whether an attempt that failed with this error may be retried.
    pub fn is_retryable(&self) -> bool {
        is_retryable(self)
    }
}

/// Error codes after which retrying cannot help.
const PERMANENT_CODES: &[&str] = &[
    "unknown_function",
    "unknown_rpc_module",
    "invalid_input",
    "payload_too_large",
    "invalid_output",
];

/// Whether a failed attempt should be retried: not for the codes above, nor
/// when the error says `"retryable": false` in its details.
fn is_retryable(e: &ErrorInfo) -> bool {
    let opted_out = e
        .details
        .as_ref()
        .and_then(|d| d.get("retryable"))
        .and_then(|v| v.as_bool())
        == Some(false);
    !opted_out && !PERMANENT_CODES.contains(&e.code.as_str())
}

impl fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// The codes the host itself assigns when it fails a run or a step.
///
/// Guests may use any code of their own; these are the ones Weft reserves,
/// documented in the README so operators can alert on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// A replay diverged from the run's journal.
    NonDeterministic,
    /// The guest trapped (a panic, `unreachable`, an out-of-bounds access...).
    Trap,
    /// The guest used up its CPU (fuel) budget for one activation.
    CpuLimit,
    /// The guest tried to grow its memory past the limit.
    MemoryLimit,
    /// The guest overflowed its call stack.
    StackOverflow,
    /// An activation ran longer than its wall-clock deadline.
    ActivationTimeout,
    /// The guest returned something that is not valid JSON.
    InvalidOutput,
    /// A payload exceeds the configured size limit.
    PayloadTooLarge,
    /// The run recorded more steps than the per-run cap.
    StepLimit,
    /// The guest broke the step protocol (e.g. `complete-step` without
    /// `begin-step`, or a step started inside an inline step).
    StepProtocol,
    /// An RPC attempt did not finish within its timeout.
    Timeout,
    /// The RPC names a module that is not registered.
    UnknownRpcModule,
    /// A child run names a workflow that is not deployed (or is an RPC
    /// module, or refused the input).
    UnknownWorkflow,
    /// The run's module can no longer be loaded.
    ModuleUnavailable,
    /// A work message was delivered too many times and dead-lettered.
    DeadLettered,
    /// A worker holding the step died and its lease expired.
    WorkerLost,
    /// The run did not finish before its deadline.
    RunTimeout,
    /// An operator cancelled the run.
    Cancelled,
    /// The store could not be reached to do what was asked; retrying later
    /// may work.
    StoreUnavailable,
    /// The host failed in a way that is not the guest's doing.
    Internal,
    /// A step failed without saying why.
    Failed,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NonDeterministic => "non_deterministic",
            Self::Trap => "trap",
            Self::CpuLimit => "cpu_limit",
            Self::MemoryLimit => "memory_limit",
            Self::StackOverflow => "stack_overflow",
            Self::ActivationTimeout => "activation_timeout",
            Self::InvalidOutput => "invalid_output",
            Self::PayloadTooLarge => "payload_too_large",
            Self::StepLimit => "step_limit",
            Self::StepProtocol => "step_protocol",
            Self::Timeout => "timeout",
            Self::UnknownRpcModule => "unknown_rpc_module",
            Self::UnknownWorkflow => "unknown_workflow",
            Self::ModuleUnavailable => "module_unavailable",
            Self::DeadLettered => "dead_lettered",
            Self::WorkerLost => "worker_lost",
            Self::RunTimeout => "run_timeout",
            Self::Cancelled => "cancelled",
            Self::StoreUnavailable => "store_unavailable",
            Self::Internal => "internal",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
