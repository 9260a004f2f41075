//! The `weft:workflow/steps` imports: how each step call of the guest is
//! answered from the journal or handed to the [`super::StepDriver`].

use super::driver::Resolution;
use super::journal::Position;
use super::state::{OpenInline, Stop, WorkflowState, non_deterministic, parkable};
use crate::engine::bindings::workflow::weft::workflow::{steps, types};
use crate::engine::convert::{error_from_guest, error_to_guest, options_from_guest};
use crate::engine::entropy::Stream;
use crate::model::{
    CallbackStep, ErrorCode, ErrorInfo, EventWait, StepCall, StepKind, StepOptions, StepOutcome,
    token_hash, valid_event_name,
};

fn sleep_call(name: String, duration_ms: u64) -> StepCall {
    StepCall {
        kind: StepKind::Sleep,
        name,
        rpc_name: None,
        input: Some(format!("{{\"durationMs\":{duration_ms}}}")),
        options: StepOptions::default(),
    }
}

fn event_call(name: String, event: String, timeout_ms: Option<u64>) -> Result<StepCall, ErrorInfo> {
    if !valid_event_name(&event) {
        return Err(ErrorInfo::host(
            ErrorCode::StepProtocol,
            format!(
                "event step `{name}` waits for `{event}`, which is not an event name (1-128 of A-Z a-z 0-9 _ - . :)"
            ),
        ));
    }
    Ok(StepCall {
        kind: StepKind::Event,
        name,
        rpc_name: None,
        input: Some(EventWait { event, timeout_ms }.to_json()),
        options: StepOptions::default(),
    })
}

/// The journal names the callback by its token's hash, never the token.
fn callback_wait_call(name: String, token: &str) -> StepCall {
    let wait = CallbackStep {
        timeout_ms: None,
        callback: Some(token_hash(token)),
    };
    StepCall {
        kind: StepKind::CallbackWait,
        name,
        rpc_name: None,
        input: Some(wait.to_json()),
        options: StepOptions::default(),
    }
}

/// A child run step: the workflow where an RPC step has its function.
fn child_call(kind: StepKind, name: String, workflow: String, input: String) -> StepCall {
    StepCall {
        kind,
        name,
        rpc_name: Some(workflow),
        input: Some(input),
        options: StepOptions::default(),
    }
}

fn start(outcome: StepOutcome) -> steps::InlineStart {
    steps::InlineStart::Recorded(outcome.map_err(error_to_guest))
}

impl types::Host for WorkflowState {}

impl steps::Host for WorkflowState {
    async fn call_rpc(
        &mut self,
        step_name: String,
        rpc_name: String,
        input: String,
        options: types::StepOptions,
    ) -> wasmtime::Result<Result<String, types::Error>> {
        if let Err(e) = self.check_payload(&format!("the input of step `{step_name}`"), &input) {
            return self.halt(Stop::Fail(e));
        }
        let call = StepCall {
            kind: StepKind::Rpc,
            name: step_name,
            rpc_name: Some(rpc_name),
            input: Some(input),
            options: options_from_guest(options),
        };
        Ok(self.resolve(call).await?.map_err(error_to_guest))
    }

    async fn begin_step(
        &mut self,
        step_name: String,
        options: types::StepOptions,
    ) -> wasmtime::Result<steps::InlineStart> {
        self.flush_output();
        let call = StepCall {
            kind: StepKind::Inline,
            name: step_name,
            rpc_name: None,
            input: None,
            options: options_from_guest(options),
        };
        if let Err(e) = self.check_not_nested(&call) {
            return self.halt(Stop::Fail(e));
        }
        parkable!(self, self.begin_inline(call.clone()).await)
    }

    async fn complete_step(
        &mut self,
        step_name: String,
        outcome: Result<String, types::Error>,
    ) -> wasmtime::Result<steps::InlineStart> {
        self.flush_output();
        let Some(open) = self.open_inline.take() else {
            return self.fail(
                ErrorCode::StepProtocol,
                format!("complete-step(`{step_name}`) without a matching begin-step"),
            );
        };
        if open.call.name != step_name {
            return self.fail(
                ErrorCode::StepProtocol,
                format!(
                    "complete-step(`{step_name}`) while inline step `{}` is open",
                    open.call.name
                ),
            );
        }
        let checked = match outcome {
            Ok(json) => self
                .check_payload(&format!("the result of step `{step_name}`"), &json)
                .map(|()| Ok(json)),
            Err(e) => error_from_guest(&self.limits, e).map(Err),
        };
        let outcome = match checked {
            Ok(outcome) => outcome,
            Err(e) => return self.halt(Stop::Fail(e)),
        };
        let resolution = self
            .driver
            .inline_attempt(
                open.seq,
                &open.call,
                open.attempt,
                open.stored.as_ref(),
                outcome,
            )
            .await;
        match resolution {
            Ok(Resolution::Recorded(step)) => Ok(start(self.settle(step))),
            Ok(Resolution::Execute { attempt, stored }) => Ok(self.open_body(OpenInline {
                attempt,
                stored,
                ..open
            })),
            Ok(Resolution::Suspend) => {
                // The attempt failed and the next is due later. A parked
                // guest, once woken, goes on as a replay would: from this
                // step's begin, whose answer this call returns.
                let suspended = self.halt(Stop::Suspend);
                if !self.parks(&suspended) {
                    return suspended;
                }
                self.pause().await?;
                self.journal.rewind(open.seq);
                let call = open.call;
                parkable!(self, self.begin_inline(call.clone()).await)
            }
            Err(e) => self.driver_failed(e),
        }
    }

    async fn sleep(&mut self, step_name: String, duration_ms: u64) -> wasmtime::Result<()> {
        match self.resolve(sleep_call(step_name, duration_ms)).await? {
            Ok(_) => Ok(()),
            // A sleep has no failure path; a recorded error means the journal
            // was tampered with or written by an incompatible host.
            Err(e) => self.fail(
                ErrorCode::StepProtocol,
                format!("sleep resolved with an error: {e}"),
            ),
        }
    }

    async fn wait_event(
        &mut self,
        step_name: String,
        event_name: String,
        timeout_ms: Option<u64>,
    ) -> wasmtime::Result<Result<String, types::Error>> {
        match event_call(step_name, event_name, timeout_ms) {
            Ok(call) => Ok(self.resolve(call).await?.map_err(error_to_guest)),
            Err(e) => self.halt(Stop::Fail(e)),
        }
    }

    async fn create_callback(
        &mut self,
        step_name: String,
        timeout_ms: Option<u64>,
    ) -> wasmtime::Result<String> {
        let created = CallbackStep {
            timeout_ms,
            callback: None,
        };
        let call = StepCall {
            kind: StepKind::Callback,
            name: step_name,
            rpc_name: None,
            input: Some(created.to_json()),
            options: StepOptions::default(),
        };
        let name = call.name.clone();
        let token = match self.resolve(call).await? {
            Ok(json) => serde_json::from_str::<String>(&json).ok(),
            Err(_) => None,
        };
        match token {
            Some(token) => Ok(token),
            None => self.fail(
                ErrorCode::StepProtocol,
                format!("callback step `{name}` is recorded without its token"),
            ),
        }
    }

    async fn await_callback(
        &mut self,
        step_name: String,
        token: String,
    ) -> wasmtime::Result<Result<String, types::Error>> {
        let call = callback_wait_call(step_name, &token);
        Ok(self.resolve(call).await?.map_err(error_to_guest))
    }

    async fn start_rpc(
        &mut self,
        step_name: String,
        rpc_name: String,
        input: String,
        options: types::StepOptions,
    ) -> wasmtime::Result<()> {
        if let Err(e) = self.check_payload(&format!("the input of step `{step_name}`"), &input) {
            return self.halt(Stop::Fail(e));
        }
        self.start_member(StepCall {
            kind: StepKind::Rpc,
            name: step_name,
            rpc_name: Some(rpc_name),
            input: Some(input),
            options: options_from_guest(options),
        })
        .await
    }

    async fn start_sleep(&mut self, step_name: String, duration_ms: u64) -> wasmtime::Result<()> {
        self.start_member(sleep_call(step_name, duration_ms)).await
    }

    async fn start_event_wait(
        &mut self,
        step_name: String,
        event_name: String,
        timeout_ms: Option<u64>,
    ) -> wasmtime::Result<()> {
        match event_call(step_name, event_name, timeout_ms) {
            Ok(call) => self.start_member(call).await,
            Err(e) => self.halt(Stop::Fail(e)),
        }
    }

    async fn start_callback_wait(
        &mut self,
        step_name: String,
        token: String,
    ) -> wasmtime::Result<()> {
        self.start_member(callback_wait_call(step_name, &token))
            .await
    }

    async fn start_child(
        &mut self,
        step_name: String,
        workflow: String,
        input: String,
    ) -> wasmtime::Result<()> {
        if let Err(e) =
            self.check_payload(&format!("the input of child step `{step_name}`"), &input)
        {
            return self.halt(Stop::Fail(e));
        }
        self.start_member(child_call(StepKind::Child, step_name, workflow, input))
            .await
    }

    async fn spawn_child(
        &mut self,
        step_name: String,
        workflow: String,
        input: String,
    ) -> wasmtime::Result<Result<String, types::Error>> {
        if let Err(e) =
            self.check_payload(&format!("the input of child step `{step_name}`"), &input)
        {
            return self.halt(Stop::Fail(e));
        }
        let call = child_call(StepKind::DetachedChild, step_name, workflow, input);
        let name = call.name.clone();
        match self.resolve(call).await? {
            Ok(json) => match serde_json::from_str::<String>(&json) {
                Ok(id) => Ok(Ok(id)),
                Err(_) => self.fail(
                    ErrorCode::StepProtocol,
                    format!("child step `{name}` is recorded without its run id"),
                ),
            },
            Err(e) => Ok(Err(error_to_guest(e))),
        }
    }

    async fn await_step(
        &mut self,
        step_name: String,
    ) -> wasmtime::Result<Result<String, types::Error>> {
        Ok(self.await_member(step_name).await?.map_err(error_to_guest))
    }

    async fn await_any(
        &mut self,
        step_name: String,
        members: Vec<String>,
    ) -> wasmtime::Result<String> {
        WorkflowState::await_any(self, step_name, members).await
    }

    async fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(self.clock.now_ms())
    }

    async fn random(&mut self) -> wasmtime::Result<u64> {
        Ok(self.entropy.next_u64(Stream::Steps))
    }

    async fn log(&mut self, level: types::LogLevel, message: String) -> wasmtime::Result<()> {
        self.flush_output();
        let level = match level {
            types::LogLevel::Trace => "trace",
            types::LogLevel::Debug => "debug",
            types::LogLevel::Info => "info",
            types::LogLevel::Warn => "warn",
            types::LogLevel::Error => "error",
        };
        self.emit(level, &message);
        Ok(())
    }
}

impl WorkflowState {
    /// Opens inline step `call`'s body for its next attempt, or returns its
    /// recorded outcome; up to a suspension.
    async fn begin_inline(&mut self, call: StepCall) -> wasmtime::Result<steps::InlineStart> {
        let (seq, resolution) = match self.journal.advance(&call) {
            Err(d) => return self.halt(Stop::Fail(non_deterministic(&d))),
            Ok(Position::Recorded(step)) => return Ok(start(self.replay(step))),
            Ok(Position::InFlight(step)) => (step.seq, self.driver.in_flight(&step).await),
            Ok(Position::New { seq }) => {
                if let Err(e) = self.check_step_limit(seq) {
                    return self.halt(Stop::Fail(e));
                }
                self.new_steps += 1;
                (
                    seq,
                    Ok(Resolution::Execute {
                        attempt: 1,
                        stored: None,
                    }),
                )
            }
        };
        match resolution {
            Ok(Resolution::Execute { attempt, stored }) => Ok(self.open_body(OpenInline {
                seq,
                call,
                attempt,
                stored,
            })),
            Ok(Resolution::Recorded(step)) => Ok(start(self.settle(step))),
            Ok(Resolution::Suspend) => self.halt(Stop::Suspend),
            Err(e) => self.driver_failed(e),
        }
    }
}
