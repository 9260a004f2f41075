//! RPC step functions: components of world `rpc`, called by name as
//! `<module>/<function>`.
//!
//! An RPC attempt runs once and is not replayed, so it gets real clocks and
//! randomness; it is still sandboxed (no files, no environment, no network)
//! and bounded by fuel, memory and a wall-clock timeout. Its result is what
//! the workflow's journal records.

use crate::config::Limits;
use crate::engine::bindings::rpc::weft::workflow::rpc_context::CallInfo;
use crate::engine::bindings::rpc::{Rpc, RpcPre};
use crate::engine::limiter::GuestLimiter;
use crate::engine::output::OutputCapture;
use crate::engine::sandbox::rpc_wasi;
use crate::model::{Digest, ErrorCode, ErrorInfo, StepOutcome};
use crate::replay;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The store data of one RPC attempt.
pub struct RpcState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: GuestLimiter,
}

impl WasiView for RpcState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Splits `<module>/<function>`; both parts must be non-empty.
pub fn split_rpc_name(rpc_name: &str) -> Option<(&str, &str)> {
    let (module, function) = rpc_name.split_once('/')?;
    (!module.is_empty() && !function.is_empty()).then_some((module, function))
}

/// One RPC invocation.
pub struct RpcCall<'a> {
    pub function: &'a str,
    pub input: &'a str,
    pub run_id: &'a str,
    pub step_name: &'a str,
    pub attempt: u32,
    pub timeout: Duration,
}

impl RpcCall<'_> {
    /// Stable across every attempt of one step, so RPC code can deduplicate
    /// its side effects.
    pub fn idempotency_key(&self) -> String {
        format!("{}/{}", self.run_id, self.step_name)
    }
}

/// Links RPC components and keeps one [`RpcPre`] per module digest.
pub struct RpcRuntime {
    linker: Linker<RpcState>,
    prepared: Mutex<HashMap<Digest, RpcPre<RpcState>>>,
}

impl RpcRuntime {
    pub fn new(engine: &Engine) -> wasmtime::Result<Self> {
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Ok(Self {
            linker,
            prepared: Mutex::default(),
        })
    }

    /// Checks that `component` is an RPC module this host can run.
    pub fn prepare(&self, component: &Component) -> wasmtime::Result<RpcPre<RpcState>> {
        RpcPre::new(self.linker.instantiate_pre(component)?)
    }

    pub fn cached(&self, digest: &Digest) -> Option<RpcPre<RpcState>> {
        self.prepared.lock().ok()?.get(digest).cloned()
    }

    pub fn insert(&self, digest: Digest, pre: RpcPre<RpcState>) {
        if let Ok(mut map) = self.prepared.lock() {
            map.insert(digest, pre);
        }
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
pub fn is_retryable(e: &ErrorInfo) -> bool {
    let opted_out = e
        .details
        .as_ref()
        .and_then(|d| d.get("retryable"))
        .and_then(|v| v.as_bool())
        == Some(false);
    !opted_out && !PERMANENT_CODES.contains(&e.code.as_str())
}

/// Runs one attempt of an RPC function and returns its outcome. Every
/// failure (guest error, trap, limit, timeout) becomes an `Err` outcome.
pub async fn invoke(pre: &RpcPre<RpcState>, limits: &Limits, call: RpcCall<'_>) -> StepOutcome {
    let stdout = OutputCapture::new(limits.max_log_bytes);
    let stderr = OutputCapture::new(limits.max_log_bytes);
    let state = RpcState {
        wasi: rpc_wasi(&stdout, &stderr),
        table: ResourceTable::new(),
        limiter: GuestLimiter::new(limits.memory_bytes),
    };
    let mut store = Store::new(pre.engine(), state);
    store.limiter(|s| &mut s.limiter);
    if store.set_fuel(limits.rpc_fuel).is_err()
        || store.fuel_async_yield_interval(Some(10_000_000)).is_err()
    {
        return Err(ErrorInfo::new("internal", "cannot meter the RPC's fuel"));
    }
    let info = CallInfo {
        idempotency_key: call.idempotency_key(),
        run_id: call.run_id.to_string(),
        step_name: call.step_name.to_string(),
        attempt: call.attempt,
    };
    let input = call.input.to_string();
    let run = async {
        let instance: Rpc = pre.instantiate_async(&mut store).await?;
        instance
            .call_handle(&mut store, call.function, &input, &info)
            .await
    };
    let result = tokio::time::timeout(call.timeout, run).await;
    let (out, _) = stdout.take();
    let (err, _) = stderr.take();
    for (level, bytes) in [("stdout", out), ("stderr", err.clone())] {
        for line in String::from_utf8_lossy(&bytes).lines() {
            tracing::info!(
                run = call.run_id,
                step = call.step_name,
                stream = level,
                "{line}"
            );
        }
    }
    match result {
        Err(_) => Err(ErrorInfo::host(
            ErrorCode::Timeout,
            format!(
                "the RPC attempt did not finish within {} ms",
                call.timeout.as_millis()
            ),
        )),
        Ok(Ok(Ok(output))) => replay_check(limits, &output).map(|()| output),
        Ok(Ok(Err(e))) => Err(replay::error_from_rpc(limits, e)),
        Ok(Err(trap)) => {
            let stderr_text = String::from_utf8_lossy(&err).trim().to_string();
            Err(classify_rpc_trap(
                &trap,
                store.data().limiter.memory_limit_hit(),
                &stderr_text,
            ))
        }
    }
}

fn replay_check(limits: &Limits, output: &str) -> Result<(), ErrorInfo> {
    replay::check_payload(limits, "the RPC result", output)
}

fn classify_rpc_trap(err: &wasmtime::Error, memory_hit: bool, stderr: &str) -> ErrorInfo {
    let (code, text) = match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => (
            ErrorCode::CpuLimit,
            "the RPC used up its CPU budget (WEFT_RPC_FUEL)".into(),
        ),
        Some(Trap::StackOverflow) => (
            ErrorCode::StackOverflow,
            "the RPC overflowed its call stack".into(),
        ),
        _ if memory_hit => (
            ErrorCode::MemoryLimit,
            "the RPC exceeded its memory limit".into(),
        ),
        Some(trap) => (ErrorCode::Trap, format!("the RPC trapped: {trap}")),
        None => (ErrorCode::Trap, format!("the RPC failed: {err:#}")),
    };
    let message = if stderr.is_empty() {
        text
    } else {
        format!(
            "{text}; stderr: {}",
            stderr
                .chars()
                .rev()
                .take(600)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<String>()
        )
    };
    ErrorInfo::host(code, message)
}
