//! The `weft:workflow@0.1.0` step imports, answered by the current ones.
//!
//! A component built against 0.1.0 imports `weft:workflow/steps@0.1.0`;
//! 0.2.0 only added functions, so every 0.1.0 call maps onto the same call
//! of the current interface, with its values converted field by field.

use super::state::WorkflowState;
use crate::engine::bindings::workflow::weft::workflow::{steps, types};
use crate::engine::bindings::workflow_v0_1::weft::workflow::{steps as old_steps, types as old};

fn retry(r: old::RetryPolicy) -> types::RetryPolicy {
    types::RetryPolicy {
        max_attempts: r.max_attempts,
        initial_delay_ms: r.initial_delay_ms,
        backoff_factor: r.backoff_factor,
        max_delay_ms: r.max_delay_ms,
        jitter: r.jitter,
    }
}

fn options(o: old::StepOptions) -> types::StepOptions {
    types::StepOptions {
        retry: o.retry.map(retry),
        timeout_ms: o.timeout_ms,
    }
}

fn error_in(e: old::Error) -> types::Error {
    types::Error {
        code: e.code,
        message: e.message,
        details: e.details,
    }
}

fn error_out(e: types::Error) -> old::Error {
    old::Error {
        code: e.code,
        message: e.message,
        details: e.details,
    }
}

fn start(s: steps::InlineStart) -> old_steps::InlineStart {
    match s {
        steps::InlineStart::Recorded(outcome) => {
            old_steps::InlineStart::Recorded(outcome.map_err(error_out))
        }
        steps::InlineStart::Execute(attempt) => old_steps::InlineStart::Execute(attempt),
    }
}

fn level(l: old::LogLevel) -> types::LogLevel {
    match l {
        old::LogLevel::Trace => types::LogLevel::Trace,
        old::LogLevel::Debug => types::LogLevel::Debug,
        old::LogLevel::Info => types::LogLevel::Info,
        old::LogLevel::Warn => types::LogLevel::Warn,
        old::LogLevel::Error => types::LogLevel::Error,
    }
}

impl old::Host for WorkflowState {}

impl old_steps::Host for WorkflowState {
    async fn call_rpc(
        &mut self,
        step_name: String,
        rpc_name: String,
        input: String,
        options_: old::StepOptions,
    ) -> wasmtime::Result<Result<String, old::Error>> {
        let answer = steps::Host::call_rpc(self, step_name, rpc_name, input, options(options_));
        Ok(answer.await?.map_err(error_out))
    }

    async fn begin_step(
        &mut self,
        step_name: String,
        options_: old::StepOptions,
    ) -> wasmtime::Result<old_steps::InlineStart> {
        Ok(start(
            steps::Host::begin_step(self, step_name, options(options_)).await?,
        ))
    }

    async fn complete_step(
        &mut self,
        step_name: String,
        outcome: Result<String, old::Error>,
    ) -> wasmtime::Result<old_steps::InlineStart> {
        let outcome = outcome.map_err(error_in);
        Ok(start(
            steps::Host::complete_step(self, step_name, outcome).await?,
        ))
    }

    async fn sleep(&mut self, step_name: String, duration_ms: u64) -> wasmtime::Result<()> {
        steps::Host::sleep(self, step_name, duration_ms).await
    }

    async fn now(&mut self) -> wasmtime::Result<u64> {
        steps::Host::now(self).await
    }

    async fn random(&mut self) -> wasmtime::Result<u64> {
        steps::Host::random(self).await
    }

    async fn log(&mut self, level_: old::LogLevel, message: String) -> wasmtime::Result<()> {
        steps::Host::log(self, level(level_), message).await
    }
}
