//! RPC step functions: components of world `rpc`, called by name as
//! `<module>/<function>`.
//!
//! An RPC attempt runs once and is not replayed, so it gets real clocks and
//! randomness; it is still sandboxed (no files, no environment, no network)
//! and bounded by fuel, memory and a wall-clock timeout. Its result is what
//! the workflow's journal records.

// Request and guest input flows through here: no unchecked indexing.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use crate::config::Limits;
use crate::engine::bindings::rpc::weft::workflow::rpc_context::CallInfo;
use crate::engine::bindings::rpc::{Rpc, RpcPre};
use crate::engine::convert::{check_payload, error_from_rpc};
use crate::engine::limiter::GuestLimiter;
use crate::engine::output::OutputCapture;
use crate::engine::pool::{self, instantiate_when_free};
use crate::engine::prepared::World;
use crate::engine::sandbox::rpc_wasi;
use crate::model::{ErrorCode, ErrorInfo, StepOutcome};
use std::time::Duration;
use wasmtime::component::{InstancePre, Linker, ResourceTable};
use wasmtime::{Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    RequestOptions, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

/// The store data of one RPC attempt.
pub struct RpcState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: GuestLimiter,
    http: WasiHttpCtx,
    allow: AllowList,
}

impl WasiHttpView for RpcState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.allow,
        }
    }
}

/// Outbound HTTP policy of one RPC module: requests go only to the hosts
/// allow-listed when it was deployed; everything else is refused with
/// `HttpRequestDenied` before any connection is made.
struct AllowList {
    module: String,
    hosts: Vec<String>,
}

impl AllowList {
    /// Whether `authority` (host, optional port) is allowed: an entry
    /// `name` allows any port of that host, `name:port` only that port.
    fn permits(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.to_ascii_lowercase();
        self.hosts.iter().any(|entry| match entry.rsplit_once(':') {
            Some((name, p)) if !entry.ends_with(']') => {
                name == host && port.is_some_and(|port| p.parse() == Ok(port))
            }
            _ => *entry == host,
        })
    }
}

impl WasiHttpHooks for AllowList {
    fn send_request(
        &mut self,
        request: hyper::Request<HttpBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = HttpResult<(hyper::Response<HttpBody>, HttpIo)>> + Send> {
        let authority = request.uri().authority().cloned();
        let scheme_port = match request.uri().scheme_str() {
            Some("http") => Some(80),
            _ => Some(443),
        };
        let allowed = authority
            .as_ref()
            .is_some_and(|a| self.permits(a.host(), a.port_u16().or(scheme_port)));
        if !allowed {
            tracing::warn!(
                module = %self.module,
                target = authority.as_ref().map(|a| a.as_str()).unwrap_or("<none>"),
                "denied an outbound HTTP request: the host is not allow-listed for this module"
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as HttpIo))
        })
    }
}

type HttpBody = wasmtime_wasi_http::WasiBody;
type HttpError = wasmtime_wasi_http::Error;
type HttpResult<T> = Result<T, HttpError>;
type HttpIo = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

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
    /// The module's name (for logs) and its allow-listed hosts.
    pub module: &'a str,
    pub allowed_hosts: &'a [String],
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

/// The `rpc` world: WASI with outbound HTTP (checked against the module's
/// allow-list), exporting the handler.
pub struct RpcWorld;

impl World for RpcWorld {
    type State = RpcState;
    type Pre = RpcPre<RpcState>;
    const DESCRIPTION: &'static str = "an RPC module";

    fn link(linker: &mut Linker<RpcState>) -> wasmtime::Result<()> {
        wasmtime_wasi::p2::add_to_linker_async(linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
    }

    fn check_exports(pre: InstancePre<RpcState>) -> wasmtime::Result<Self::Pre> {
        RpcPre::new(pre)
    }
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
        http: WasiHttpCtx::new(),
        allow: AllowList {
            module: call.module.to_string(),
            hosts: call.allowed_hosts.to_vec(),
        },
    };
    let mut store = Store::new(pre.engine(), state);
    store.limiter(|s| &mut s.limiter);
    if store.set_fuel(limits.rpc_fuel).is_err()
        || store.fuel_async_yield_interval(Some(10_000_000)).is_err()
    {
        return Err(ErrorInfo::host(
            ErrorCode::Internal,
            "cannot meter the RPC's fuel",
        ));
    }
    let info = CallInfo {
        idempotency_key: call.idempotency_key(),
        run_id: call.run_id.to_string(),
        step_name: call.step_name.to_string(),
        attempt: call.attempt,
    };
    let input = call.input.to_string();
    // The timeout is the function's own budget: it starts once an instance
    // exists, so time spent waiting for a free slot on a busy host never
    // counts against (and never spends) the step's attempt.
    let result = match instantiate_when_free!(pre, store) {
        Err(trap) => Ok(Err(trap)),
        Ok(instance) => {
            let instance: Rpc = instance;
            let run = instance.call_handle(&mut store, call.function, &input, &info);
            tokio::time::timeout(call.timeout, run).await
        }
    };
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
        Ok(Ok(Err(e))) => Err(store
            .data()
            .limiter
            .attribute(error_from_rpc(limits, e), "the RPC")),
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
    check_payload(limits, "the RPC result", output)
}

fn classify_rpc_trap(err: &wasmtime::Error, memory_hit: bool, stderr: &str) -> ErrorInfo {
    if pool::is_full(err) {
        return ErrorInfo::host(
            ErrorCode::Internal,
            format!(
                "every instance slot of this host stayed taken for {} s (WEFT_INSTANCE_SLOTS)",
                pool::SLOT_PATIENCE.as_secs()
            ),
        );
    }
    if crate::engine::is_invalid_string(err) {
        return ErrorInfo::host(
            ErrorCode::InvalidOutput,
            format!("the RPC returned a string that is not UTF-8: {err}"),
        );
    }
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

#[cfg(test)]
mod tests {
    use super::AllowList;

    #[test]
    fn allow_list_matches_hosts_and_ports() {
        let allow = AllowList {
            module: "m".into(),
            hosts: vec!["api.example.com".into(), "127.0.0.1:8080".into()],
        };
        assert!(allow.permits("api.example.com", Some(443)));
        assert!(allow.permits("API.example.com", Some(80)));
        assert!(allow.permits("127.0.0.1", Some(8080)));
        assert!(!allow.permits("127.0.0.1", Some(8081)));
        assert!(!allow.permits("example.com", Some(443)));
        assert!(!allow.permits("api.example.com.evil.net", Some(443)));
    }
}
