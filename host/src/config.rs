//! Host settings, read from the environment with documented defaults.
//!
//! Every knob has a default that is safe for production; the README's
//! "Configuration" table lists them.

use std::time::Duration;

/// Where RPC steps execute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpcMode {
    /// In the process that replays the workflow, inside the activation:
    /// no queue round trip per step. Used when no worker fleet is configured.
    Inline,
    /// On whichever worker receives the step's message from the queue.
    Queued,
}

/// Per-guest resource limits. Exceeding one fails the run with a named error
/// code (`cpu_limit`, `memory_limit`, ...) instead of hurting the host.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Fuel (roughly, Wasm instructions) one workflow activation may burn,
    /// replay included. `WEFT_FUEL_PER_ACTIVATION`.
    pub workflow_fuel: u64,
    /// Fuel one RPC attempt may burn. `WEFT_RPC_FUEL`.
    pub rpc_fuel: u64,
    /// Linear memory per guest instance. `WEFT_MEMORY_LIMIT_MB`.
    pub memory_bytes: usize,
    /// Wall-clock budget of the workflow's own code in one activation; time
    /// spent in host calls (an inline RPC, a store write, an in-place retry
    /// wait) is not counted. `WEFT_ACTIVATION_TIMEOUT_SECS`.
    pub activation_timeout: Duration,
    /// Largest input, output, step input or step result, event payload or
    /// callback result. `WEFT_MAX_PAYLOAD_BYTES`.
    pub max_payload_bytes: usize,
    /// Payloads larger than this are stored aside (S3, or files in the data
    /// directory) and the state item keeps a reference.
    /// `WEFT_INLINE_PAYLOAD_BYTES`.
    pub inline_payload_bytes: usize,
    /// The most one run may store aside, all its payloads together.
    /// `WEFT_MAX_RUN_PAYLOAD_BYTES`.
    pub max_run_payload_bytes: u64,
    /// Most steps one run may record. `WEFT_MAX_STEPS_PER_RUN`.
    pub max_steps_per_run: u32,
    /// Most log bytes kept per activation; the rest is dropped with a note.
    /// `WEFT_MAX_LOG_BYTES`.
    pub max_log_bytes: usize,
    /// Largest module upload. `WEFT_MAX_MODULE_BYTES`.
    pub max_module_bytes: usize,
    /// RPC attempt timeout when the step sets none. `WEFT_RPC_TIMEOUT_SECS`.
    pub default_rpc_timeout: Duration,
    /// Attempts of one step that may be lost with their host (a dead or
    /// stalled worker, an invocation that timed out) before the step fails
    /// with `worker_lost`. Such attempts do not spend the step's retry
    /// policy; this cap keeps a step that kills its host from looping
    /// forever. `WEFT_MAX_HOST_LOSSES`.
    pub max_host_losses: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            workflow_fuel: 5_000_000_000,
            rpc_fuel: 50_000_000_000,
            memory_bytes: 256 << 20,
            activation_timeout: Duration::from_secs(60),
            max_payload_bytes: 32 << 20,
            inline_payload_bytes: 64 << 10,
            max_run_payload_bytes: 256 << 20,
            max_steps_per_run: 10_000,
            max_log_bytes: 256 << 10,
            max_module_bytes: 64 << 20,
            default_rpc_timeout: Duration::from_secs(60),
            max_host_losses: 10,
        }
    }
}

impl Limits {
    /// Defaults overridden by `WEFT_*` environment variables.
    pub fn from_env() -> anyhow::Result<Self> {
        let d = Self::default();
        Ok(Self {
            workflow_fuel: env_num("WEFT_FUEL_PER_ACTIVATION", d.workflow_fuel)?,
            rpc_fuel: env_num("WEFT_RPC_FUEL", d.rpc_fuel)?,
            memory_bytes: env_num("WEFT_MEMORY_LIMIT_MB", (d.memory_bytes >> 20) as u64)? as usize
                * (1 << 20),
            activation_timeout: Duration::from_secs(env_num(
                "WEFT_ACTIVATION_TIMEOUT_SECS",
                d.activation_timeout.as_secs(),
            )?),
            max_payload_bytes: env_num("WEFT_MAX_PAYLOAD_BYTES", d.max_payload_bytes as u64)?
                as usize,
            inline_payload_bytes: env_num(
                "WEFT_INLINE_PAYLOAD_BYTES",
                d.inline_payload_bytes as u64,
            )? as usize,
            max_run_payload_bytes: env_num("WEFT_MAX_RUN_PAYLOAD_BYTES", d.max_run_payload_bytes)?,
            max_steps_per_run: env_num("WEFT_MAX_STEPS_PER_RUN", d.max_steps_per_run as u64)?
                as u32,
            max_log_bytes: env_num("WEFT_MAX_LOG_BYTES", d.max_log_bytes as u64)? as usize,
            max_module_bytes: env_num("WEFT_MAX_MODULE_BYTES", d.max_module_bytes as u64)? as usize,
            default_rpc_timeout: Duration::from_secs(env_num(
                "WEFT_RPC_TIMEOUT_SECS",
                d.default_rpc_timeout.as_secs(),
            )?),
            max_host_losses: env_num("WEFT_MAX_HOST_LOSSES", d.max_host_losses as u64)? as u32,
        })
    }
}

/// Reads a numeric environment variable, or `default` when unset.
pub fn env_num(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a non-negative integer")),
        Err(_) => Ok(default),
    }
}
