//! The store data of one workflow activation: the journal, the driver, the
//! guest's sandbox, its logs, and the rules every step call passes through
//! (journal match, step limit, payload checks). `host.rs` exposes it to the
//! guest as the `weft:workflow/steps` imports.

use super::ActivationEnd;
use super::ActivationReport;
use super::budget::{Leg, Timed};
use super::driver::{DriverError, Resolution, StepDriver};
use super::fuel::FuelBudget;
use super::journal::{Divergence, Journal, Position};
use super::park::{ParkedGuest, ParkingSpot};
use crate::config::Limits;
use crate::engine::bindings::workflow::weft::workflow::steps;
use crate::engine::entropy::{Entropy, Segment};
use crate::engine::limiter::GuestLimiter;
use crate::engine::output::OutputCapture;
use crate::engine::sandbox::{LogicalClock, workflow_wasi};
use crate::model::{ErrorCode, ErrorInfo, LogLine, StepCall, StepOutcome, StepRecord};
use std::sync::Arc;
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
    /// A parked guest was let go: the leg that parked it wrote everything,
    /// and the run goes on from its journal. End without writing.
    Released,
}

/// An inline step whose code the guest is running.
pub(super) struct OpenInline {
    pub(super) seq: u32,
    pub(super) call: StepCall,
    pub(super) attempt: u32,
    pub(super) stored: Option<StepRecord>,
}

/// Runs step call `$call` on `$state`; when it suspends the guest and the
/// guest parks ([`WorkflowState::pause`]), runs it again, from the journal
/// position where it began, once the run resumes here: what a replay would
/// do on reaching this call.
macro_rules! parkable {
    ($state:ident, $call:expr) => {{
        let mark = $state.journal.position();
        loop {
            let result = $call;
            if !$state.parks(&result) {
                break result;
            }
            $state.pause().await?;
            $state.journal.rewind(mark);
        }
    }};
}
pub(super) use parkable;

/// Longest single log line kept; longer lines are cut.
const MAX_LOG_LINE: usize = 8 * 1024;

/// The store data of a workflow activation.
pub struct WorkflowState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: GuestLimiter,
    pub(crate) journal: Journal,
    pub(crate) clock: LogicalClock,
    pub(super) entropy: Entropy,
    pub(crate) driver: Box<dyn StepDriver>,
    stdout: OutputCapture,
    stderr: OutputCapture,
    pub(super) open_inline: Option<OpenInline>,
    /// Where the next live log line goes: journal position and index there.
    log_position: u32,
    log_index: u32,
    log_bytes: usize,
    /// The last stderr text, quoted in trap messages (a panic message).
    pub(crate) last_stderr: String,
    pub(crate) stop: Option<Stop>,
    pub(super) limits: Limits,
    pub(crate) replayed_steps: u32,
    pub(crate) new_steps: u32,
    pub(super) fuel: FuelBudget,
    /// Where the guest waits when it suspends, if the host keeps it.
    pub(super) parking: Option<Arc<dyn ParkingSpot>>,
    pub(super) leg: Arc<Leg>,
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
        let entropy = Entropy::new(run_id);
        let journal_len = journal.len();
        Self {
            wasi: workflow_wasi(run_id, &entropy, &clock, &stdout, &stderr),
            table: ResourceTable::new(),
            limiter: GuestLimiter::new(limits.memory_bytes),
            journal,
            clock,
            entropy,
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
            fuel: FuelBudget::new(limits.workflow_fuel, journal_len),
            parking: None,
            leg: Arc::new(Leg::new(None)),
        }
    }

    /// Records why the guest stops and returns the trap that stops it.
    pub(super) fn halt<T>(&mut self, stop: Stop) -> wasmtime::Result<T> {
        let text = match &stop {
            Stop::Suspend => "weft: workflow suspended".to_string(),
            Stop::Fail(e) => format!("weft: run failed: {e}"),
            Stop::Driver(e) => format!("weft: activation abandoned: {e}"),
            Stop::Released => "weft: parked workflow released".to_string(),
        };
        self.stop = Some(stop);
        Err(wasmtime::Error::msg(text))
    }

    /// Whether the step call that returned `result` suspended the guest
    /// and the guest should park rather than trap; if so, the suspension
    /// is taken back (the guest goes on once woken).
    pub(super) fn parks<T>(&mut self, result: &wasmtime::Result<T>) -> bool {
        let parks =
            result.is_err() && matches!(self.stop, Some(Stop::Suspend)) && self.parking.is_some();
        if parks {
            self.stop = None;
        }
        parks
    }

    /// Ends the leg with the guest suspended, as the end of an activation
    /// would (output flushed, the driver's `finish`), and parks the guest
    /// until its run resumes in this process: then the guest has a new
    /// driver, its journal caught up, a fresh budget, and `Ok` (the step
    /// call starts over, see [`parkable!`]). A guest let go halts.
    pub(super) async fn pause(&mut self) -> wasmtime::Result<()> {
        let Some(spot) = self.parking.clone() else {
            return self.halt(Stop::Suspend);
        };
        if self.driver.checkpoint().is_none() {
            return self.halt(Stop::Suspend);
        }
        self.flush_output();
        let end = ActivationEnd::Suspended;
        if let Err(e) = self.driver.finish(&end).await {
            return self.driver_failed(e);
        }
        // After the finish, which may have written (the leg's logs).
        let Some(run) = self.driver.checkpoint() else {
            return self.halt(Stop::Released);
        };
        let guest = ParkedGuest {
            report: ActivationReport {
                outcome: end,
                replayed_steps: self.replayed_steps,
                new_steps: self.new_steps,
                fuel_used: self.fuel.used_at_call(),
                elapsed: self.leg.started().elapsed(),
            },
            run,
            journal: self.journal.parked(),
            memory_bytes: self.limiter.memory_used(),
        };
        self.leg.park();
        let Some(next) = spot.park(guest).await else {
            return self.halt(Stop::Released);
        };
        if let Err(e) = self.journal.refresh(next.steps) {
            // The store disagrees with what the guest saw: replay instead.
            tracing::warn!("a parked workflow cannot go on: {e}");
            return self.halt(Stop::Released);
        }
        self.driver = Box::new(Timed::new(next.driver, Arc::clone(&self.leg.host_time)));
        self.replayed_steps = 0;
        self.new_steps = 0;
        self.log_bytes = 0;
        self.stdout.renew_budget();
        self.stderr.renew_budget();
        self.fuel.new_leg();
        self.leg.resume(next.ends_by);
        Ok(())
    }

    pub(super) fn fail<T>(
        &mut self,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> wasmtime::Result<T> {
        self.halt(Stop::Fail(ErrorInfo::host(code, message)))
    }

    pub(super) fn driver_failed<T>(&mut self, e: DriverError) -> wasmtime::Result<T> {
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
    pub(super) fn emit(&mut self, level: &str, message: &str) {
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
    pub(super) fn check_payload(&mut self, what: &str, json: &str) -> Result<(), ErrorInfo> {
        crate::engine::convert::check_payload(&self.limits, what, json)
    }

    /// Guards every step call: no step may start inside an inline step.
    pub(super) fn check_not_nested(&mut self, call: &StepCall) -> Result<(), ErrorInfo> {
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

    /// Resolves an RPC or sleep step: from the journal, or through the
    /// driver, parking the guest if it must wait.
    pub(super) async fn resolve(&mut self, call: StepCall) -> wasmtime::Result<StepOutcome> {
        parkable!(self, self.resolve_once(call.clone()).await)
    }

    /// [`WorkflowState::resolve`], up to a suspension.
    async fn resolve_once(&mut self, call: StepCall) -> wasmtime::Result<StepOutcome> {
        self.flush_output();
        if let Err(e) = self.check_not_nested(&call) {
            return self.halt(Stop::Fail(e));
        }
        let resolution = match self.journal.advance(&call) {
            Err(d) => return self.halt(Stop::Fail(non_deterministic(&d))),
            Ok(Position::Recorded(step)) => return Ok(self.replay(step)),
            Ok(Position::InFlight(step)) => self.driver.in_flight(&step).await,
            Ok(Position::New { seq }) => {
                if let Err(e) = self.check_step_limit(seq) {
                    return self.halt(Stop::Fail(e));
                }
                self.new_steps += 1;
                self.driver.schedule(seq, &call).await
            }
        };
        match resolution {
            Ok(Resolution::Recorded(step)) => Ok(self.settle(step)),
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

    pub(super) fn check_step_limit(&self, seq: u32) -> Result<(), ErrorInfo> {
        if seq >= self.limits.max_steps_per_run {
            return Err(ErrorInfo::host(
                ErrorCode::StepLimit,
                format!(
                    "the run reached its limit of {} steps (WEFT_MAX_STEPS_PER_RUN)",
                    self.limits.max_steps_per_run
                ),
            ));
        }
        Ok(())
    }

    /// Moves the guest's world past a resolved step: logical time to when it
    /// completed, randomness to the stream of the code that follows it. Both
    /// depend only on the journal, so replayed and live runs agree.
    fn pass(&mut self, step: &StepRecord) {
        if let Some(at) = step.completed_at {
            self.clock.advance_to(at);
        }
        self.entropy.enter(Segment::After {
            steps: step.seq.saturating_add(1),
        });
    }

    /// Opens the body of inline step `seq` for `attempt`: the body draws from
    /// its own random streams, so skipping it on replay shifts nothing.
    pub(super) fn open_body(&mut self, open: OpenInline) -> steps::InlineStart {
        self.entropy.enter(Segment::Body {
            seq: open.seq,
            attempt: open.attempt,
        });
        let attempt = open.attempt;
        self.open_inline = Some(open);
        steps::InlineStart::Execute(attempt)
    }

    /// Delivers a recorded outcome and moves logical time to when it happened.
    pub(super) fn replay(&mut self, step: StepRecord) -> StepOutcome {
        self.replayed_steps += 1;
        self.pass(&step);
        step.outcome()
            .unwrap_or_else(|| Err(missing_outcome(&step)))
    }

    /// Stores a freshly resolved step in the journal and delivers it.
    pub(super) fn settle(&mut self, step: StepRecord) -> StepOutcome {
        self.pass(&step);
        let outcome = step
            .outcome()
            .unwrap_or_else(|| Err(missing_outcome(&step)));
        self.journal.settle(step);
        outcome
    }
}

pub(super) fn missing_outcome(step: &StepRecord) -> ErrorInfo {
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
