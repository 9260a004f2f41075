//! What a workflow guest sees of the host during one activation: the store
//! data behind every import, and the `weft:workflow/steps` implementation.

use super::driver::{DriverError, Resolution, StepDriver};
use super::journal::{Divergence, Journal, Position};
use crate::config::Limits;
use crate::engine::bindings::workflow::weft::workflow::{steps, types};
use crate::engine::limiter::GuestLimiter;
use crate::engine::output::OutputCapture;
use crate::engine::sandbox::{LogicalClock, seeded_rng, workflow_wasi};
use crate::model::{
    ErrorCode, ErrorInfo, LogLine, RetryPolicy, StepCall, StepKind, StepOptions, StepOutcome,
    StepRecord,
};
use rand::Rng;
use rand::rngs::ChaCha20Rng;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Why the host stopped the guest. Host functions set it and then trap, so
/// the reason survives the unwind regardless of how the trap is wrapped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// A step has no outcome yet: end the activation, resume later.
    Suspend,
    /// Fail the run with this error.
    Fail(ErrorInfo),
    /// Infrastructure failed; abandon the activation and retry it.
    Driver(DriverError),
}

/// An inline step whose code the guest is running.
struct OpenInline {
    seq: u32,
    call: StepCall,
    attempt: u32,
    stored: Option<StepRecord>,
}

/// Longest single log line kept; longer lines are cut.
const MAX_LOG_LINE: usize = 8 * 1024;

/// The store data of a workflow activation.
pub struct WorkflowState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: GuestLimiter,
    pub(crate) journal: Journal,
    pub(crate) clock: LogicalClock,
    rng: ChaCha20Rng,
    pub(crate) driver: Box<dyn StepDriver>,
    stdout: OutputCapture,
    stderr: OutputCapture,
    open_inline: Option<OpenInline>,
    /// Where the next live log line goes: journal position and index there.
    log_position: u32,
    log_index: u32,
    log_bytes: usize,
    /// The last stderr text, quoted in trap messages (a panic message).
    pub(crate) last_stderr: String,
    pub(crate) stop: Option<Stop>,
    limits: Limits,
    pub(crate) replayed_steps: u32,
    pub(crate) new_steps: u32,
}

impl WasiView for WorkflowState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WorkflowState {
    pub(crate) fn new(
        run_id: &str,
        started_at: u64,
        journal: Journal,
        driver: Box<dyn StepDriver>,
        limits: &Limits,
    ) -> Self {
        let clock = LogicalClock::starting_at(started_at);
        let stdout = OutputCapture::new(limits.max_log_bytes);
        let stderr = OutputCapture::new(limits.max_log_bytes);
        Self {
            wasi: workflow_wasi(run_id, &clock, &stdout, &stderr),
            table: ResourceTable::new(),
            limiter: GuestLimiter::new(limits.memory_bytes),
            journal,
            clock,
            rng: seeded_rng(run_id, "steps-random"),
            driver,
            stdout,
            stderr,
            open_inline: None,
            log_position: 0,
            log_index: 0,
            log_bytes: 0,
            last_stderr: String::new(),
            stop: None,
            limits: limits.clone(),
            replayed_steps: 0,
            new_steps: 0,
        }
    }

    /// Records why the guest stops and returns the trap that stops it.
    fn halt<T>(&mut self, stop: Stop) -> wasmtime::Result<T> {
        let text = match &stop {
            Stop::Suspend => "weft: workflow suspended".to_string(),
            Stop::Fail(e) => format!("weft: run failed: {e}"),
            Stop::Driver(e) => format!("weft: activation abandoned: {e}"),
        };
        self.stop = Some(stop);
        Err(wasmtime::Error::msg(text))
    }

    fn fail<T>(&mut self, code: ErrorCode, message: impl Into<String>) -> wasmtime::Result<T> {
        self.halt(Stop::Fail(ErrorInfo::host(code, message)))
    }

    fn driver_failed<T>(&mut self, e: DriverError) -> wasmtime::Result<T> {
        match e {
            DriverError::FailRun(info) => self.halt(Stop::Fail(info)),
            other => self.halt(Stop::Driver(other)),
        }
    }

    /// Turns captured stdout/stderr into log lines, unless the guest is
    /// replaying code whose output was already recorded.
    pub(crate) fn flush_output(&mut self) {
        for (capture, level) in [
            (self.stdout.clone(), "stdout"),
            (self.stderr.clone(), "stderr"),
        ] {
            let (bytes, truncated) = capture.take();
            if bytes.is_empty() && !truncated {
                continue;
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if level == "stderr" && !text.trim().is_empty() {
                self.last_stderr = text.trim().to_string();
            }
            for line in text.lines() {
                self.emit(level, line);
            }
            if truncated {
                self.emit(
                    "warn",
                    "[weft] output over the per-activation budget was dropped",
                );
            }
        }
    }

    /// Emits one log line if it is new, i.e. past the end of the journal.
    fn emit(&mut self, level: &str, message: &str) {
        if self.journal.replaying() {
            return;
        }
        let position = self.journal.position();
        if position != self.log_position {
            self.log_position = position;
            self.log_index = 0;
        }
        if self.log_bytes >= self.limits.max_log_bytes {
            return;
        }
        let mut message = message.to_string();
        if message.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push_str(" [truncated]");
        }
        self.log_bytes += message.len();
        let line = LogLine {
            position,
            index: self.log_index,
            at: self.clock.now_ms(),
            level: level.to_string(),
            message,
        };
        self.log_index += 1;
        self.driver.log(line);
    }

    /// Rejects guest-supplied JSON that is invalid or over the payload limit.
    fn check_payload(&mut self, what: &str, json: &str) -> Result<(), ErrorInfo> {
        check_payload(&self.limits, what, json)
    }

    /// Guards every step call: no step may start inside an inline step.
    fn check_not_nested(&mut self, call: &StepCall) -> Result<(), ErrorInfo> {
        match &self.open_inline {
            Some(open) => Err(ErrorInfo::host(
                ErrorCode::StepProtocol,
                format!(
                    "{} step `{}` was started inside inline step `{}`; steps cannot nest",
                    call.kind.as_str(),
                    call.name,
                    open.call.name
                ),
            )),
            None => Ok(()),
        }
    }

    /// Resolves an RPC or sleep step: from the journal, or through the driver.
    async fn resolve(&mut self, call: StepCall) -> wasmtime::Result<StepOutcome> {
        self.flush_output();
        if let Err(e) = self.check_not_nested(&call) {
            return self.halt(Stop::Fail(e));
        }
        let resolution = match self.journal.advance(&call) {
            Err(d) => return self.halt(Stop::Fail(non_deterministic(&d))),
            Ok(Position::Recorded(step)) => return Ok(self.replay(step)),
            Ok(Position::InFlight(step)) => self.driver.in_flight(&step).await,
            Ok(Position::New { seq }) => {
                if let Err(e) = self.check_history(seq) {
                    return self.halt(Stop::Fail(e));
                }
                self.new_steps += 1;
                self.driver.schedule(seq, &call).await
            }
        };
        match resolution {
            Ok(Resolution::Done(step)) => Ok(self.settle(step)),
            Ok(Resolution::Suspend) => self.halt(Stop::Suspend),
            Ok(Resolution::Execute { .. }) => self.fail(
                ErrorCode::StepProtocol,
                format!(
                    "the host asked to execute {} step `{}` inline",
                    call.kind.as_str(),
                    call.name
                ),
            ),
            Err(e) => self.driver_failed(e),
        }
    }

    fn check_history(&self, seq: u32) -> Result<(), ErrorInfo> {
        if seq >= self.limits.max_steps_per_run {
            return Err(ErrorInfo::host(
                ErrorCode::HistoryLimit,
                format!(
                    "the run reached its limit of {} steps (WEFT_MAX_STEPS_PER_RUN)",
                    self.limits.max_steps_per_run
                ),
            ));
        }
        Ok(())
    }

    /// Delivers a recorded outcome and moves logical time to when it happened.
    fn replay(&mut self, step: StepRecord) -> StepOutcome {
        self.replayed_steps += 1;
        if let Some(at) = step.completed_at {
            self.clock.advance_to(at);
        }
        step.outcome()
            .unwrap_or_else(|| Err(missing_outcome(&step)))
    }

    /// Stores a freshly resolved step in the journal and delivers it.
    fn settle(&mut self, step: StepRecord) -> StepOutcome {
        if let Some(at) = step.completed_at {
            self.clock.advance_to(at);
        }
        let outcome = step
            .outcome()
            .unwrap_or_else(|| Err(missing_outcome(&step)));
        self.journal.settle(step);
        outcome
    }
}

fn missing_outcome(step: &StepRecord) -> ErrorInfo {
    ErrorInfo::host(
        ErrorCode::StepProtocol,
        format!("step `{}` was resolved without an outcome", step.name),
    )
}

pub(crate) fn non_deterministic(d: &Divergence) -> ErrorInfo {
    ErrorInfo {
        code: ErrorCode::NonDeterministic.as_str().into(),
        message: d.to_string(),
        details: Some(serde_json::json!({
            "position": d.position,
            "journal": d.recorded,
            "replay": d.replayed,
        })),
    }
}

/// Validates a JSON payload produced by a guest.
pub(crate) fn check_payload(limits: &Limits, what: &str, json: &str) -> Result<(), ErrorInfo> {
    if json.len() > limits.max_payload_bytes {
        return Err(ErrorInfo::host(
            ErrorCode::PayloadTooLarge,
            format!(
                "{what} is {} bytes; the limit is {} (WEFT_MAX_PAYLOAD_BYTES)",
                json.len(),
                limits.max_payload_bytes
            ),
        ));
    }
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(json) {
        return Err(ErrorInfo::host(
            ErrorCode::InvalidOutput,
            format!("{what} is not valid JSON: {e}"),
        ));
    }
    Ok(())
}

/// Converts a guest error into the host's, validating its JSON details.
pub(crate) fn error_from_guest(limits: &Limits, e: types::Error) -> Result<ErrorInfo, ErrorInfo> {
    let details = match e.details {
        None => None,
        Some(text) => {
            check_payload(limits, "the error details", &text)?;
            serde_json::from_str(&text).ok()
        }
    };
    Ok(ErrorInfo {
        code: e.code,
        message: e.message,
        details,
    })
}

pub(crate) fn error_to_guest(e: ErrorInfo) -> types::Error {
    types::Error {
        code: e.code,
        message: e.message,
        details: e.details.map(|d| d.to_string()),
    }
}

fn options_from_guest(o: types::StepOptions) -> StepOptions {
    StepOptions {
        retry: o
            .retry
            .map(|r| RetryPolicy {
                max_attempts: r.max_attempts.max(1),
                initial_delay_ms: r.initial_delay_ms,
                backoff_factor: r.backoff_factor,
                max_delay_ms: r.max_delay_ms,
                jitter: r.jitter,
            })
            .unwrap_or_default(),
        timeout_ms: o.timeout_ms,
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
        let (seq, resolution) = match self.journal.advance(&call) {
            Err(d) => return self.halt(Stop::Fail(non_deterministic(&d))),
            Ok(Position::Recorded(step)) => return Ok(start(self.replay(step))),
            Ok(Position::InFlight(step)) => (step.seq, self.driver.in_flight(&step).await),
            Ok(Position::New { seq }) => {
                if let Err(e) = self.check_history(seq) {
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
            Ok(Resolution::Execute { attempt, stored }) => {
                self.open_inline = Some(OpenInline {
                    seq,
                    call,
                    attempt,
                    stored,
                });
                Ok(steps::InlineStart::Execute(attempt))
            }
            Ok(Resolution::Done(step)) => Ok(start(self.settle(step))),
            Ok(Resolution::Suspend) => self.halt(Stop::Suspend),
            Err(e) => self.driver_failed(e),
        }
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
            Ok(Resolution::Done(step)) => Ok(start(self.settle(step))),
            Ok(Resolution::Execute { attempt, stored }) => {
                self.open_inline = Some(OpenInline {
                    attempt,
                    stored,
                    ..open
                });
                Ok(steps::InlineStart::Execute(attempt))
            }
            Ok(Resolution::Suspend) => self.halt(Stop::Suspend),
            Err(e) => self.driver_failed(e),
        }
    }

    async fn sleep(&mut self, step_name: String, duration_ms: u64) -> wasmtime::Result<()> {
        let call = StepCall {
            kind: StepKind::Sleep,
            name: step_name,
            rpc_name: None,
            input: Some(format!("{{\"durationMs\":{duration_ms}}}")),
            options: StepOptions::default(),
        };
        match self.resolve(call).await? {
            Ok(_) => Ok(()),
            // A sleep has no failure path; a recorded error means the journal
            // was tampered with or written by an incompatible host.
            Err(e) => self.fail(
                ErrorCode::StepProtocol,
                format!("sleep resolved with an error: {e}"),
            ),
        }
    }

    async fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(self.clock.now_ms())
    }

    async fn random(&mut self) -> wasmtime::Result<u64> {
        Ok(self.rng.next_u64())
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
