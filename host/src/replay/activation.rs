//! One activation: instantiate the workflow, replay it against its journal
//! until it finishes or suspends, and report what happened.

use super::budget::{Leg, Timed};
use super::driver::{DriverError, StepDriver};
use super::fuel;
use super::journal::Divergence;
use super::journal::Journal;
use super::park::ParkingSpot;
use super::state::{Stop, WorkflowState, non_deterministic};
use crate::config::Limits;
use crate::engine::bindings::workflow::WorkflowPre;
use crate::engine::convert::{check_payload, error_from_guest};
use crate::engine::pool::{self, instantiate_when_free};
use crate::model::{ErrorCode, ErrorInfo, Millis, RunId, StepRecord};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{Store, Trap};

/// How an activation ended.
#[derive(Clone, Debug, PartialEq)]
pub enum ActivationEnd {
    /// The workflow returned this JSON output.
    Completed(String),
    /// The workflow returned an error, or the host failed the run.
    Failed(ErrorInfo),
    /// The workflow reached a step without an outcome.
    Suspended,
    /// The process's time ran out (`ActivationInput::ends_by`) before the
    /// workflow finished or suspended. Nothing past what the driver already
    /// recorded was decided: the run continues in another activation.
    OutOfTime,
    /// A parked guest was let go ([`super::park`]): the leg that parked
    /// it wrote all there was, and the run continues from its journal.
    Released,
}

/// What an activation needs to know about the run.
pub struct ActivationInput {
    pub run_id: RunId,
    pub input: String,
    /// The run's creation time: logical time starts here.
    pub started_at: Millis,
    /// Recorded steps in journal order.
    pub journal: Vec<StepRecord>,
    /// When the process running the activation must have it ended (a
    /// Lambda invocation's end, less time to wrap up). `None`: no limit
    /// but the guest's own budget.
    pub ends_by: Option<Instant>,
    /// Where the guest waits when it suspends, if the host keeps suspended
    /// guests ([`super::park`]). `None`: a suspension ends the activation.
    pub parking: Option<Arc<dyn ParkingSpot>>,
}

/// Figures about one activation, for logs and benchmarks.
#[derive(Clone, Debug)]
pub struct ActivationReport {
    pub outcome: ActivationEnd,
    pub replayed_steps: u32,
    pub new_steps: u32,
    pub fuel_used: u64,
    pub elapsed: Duration,
}

/// Why an activation was stopped before the guest returned.
enum Cut {
    /// The guest's own time ran past `WEFT_ACTIVATION_TIMEOUT_SECS`.
    Budget,
    /// The process's time ran out ([`ActivationInput::ends_by`]).
    OutOfTime,
}

/// How often a long-running guest yields to the async runtime, in fuel.
/// Keeps one busy guest from starving other tasks on the same thread.
const FUEL_YIELD_INTERVAL: u64 = 10_000_000;

/// Runs one activation of a workflow. `driver` resolves new steps and
/// persists the result; an `Err` means infrastructure failed and the
/// activation should be retried (nothing about the run was decided).
pub async fn activate(
    pre: &WorkflowPre<WorkflowState>,
    limits: &Limits,
    input: ActivationInput,
    driver: Box<dyn StepDriver>,
) -> Result<ActivationReport, DriverError> {
    let leg = Arc::new(Leg::new(input.ends_by));
    let host_time = Arc::clone(&leg.host_time);
    let driver = Box::new(Timed::new(driver, Arc::clone(&host_time)));
    let journal = Journal::new(input.journal);
    let mut state = WorkflowState::new(
        input.run_id.as_str(),
        input.started_at,
        journal,
        driver,
        limits,
    );
    state.leg = Arc::clone(&leg);
    state.parking = input.parking;
    let mut store = Store::new(pre.engine(), state);
    store.limiter(|s| &mut s.limiter);
    let fuel_ok = fuel::install(&mut store)
        && store
            .fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL))
            .is_ok();

    // A slot first: waiting for one (every slot taken) is the host's
    // delay, not the guest's, so it is outside the guest's budget, and a
    // wait that runs out abandons the activation for a retry rather than
    // failing the run.
    let instantiated = match instantiate_when_free!(pre, store) {
        Err(e) if pool::is_full(&e) => return Err(DriverError::Infra(e.into())),
        instantiated => instantiated,
    };

    // The guest's budget: its deadline moves out by every host call.
    let result = {
        let run = async { instantiated?.call_run(&mut store, &input.input).await };
        let mut run = std::pin::pin!(run);
        loop {
            // A parked guest spends no budget; a new leg brings its own.
            if leg.parked() {
                tokio::select! {
                    returned = run.as_mut() => break Ok(returned),
                    () = leg.changed() => continue,
                }
            }
            let started = leg.started();
            let ends_by = leg.ends_by();
            let budget = host_time.deadline(started, limits.activation_timeout);
            let cut_at = || ends_by.map(|end| host_time.outside_calls(end));
            let deadline = cut_at().map_or(budget, |end| end.min(budget));
            let timed = tokio::select! {
                timed = tokio::time::timeout_at(deadline.into(), run.as_mut()) => timed,
                () = leg.changed() => continue,
            };
            match timed {
                Ok(returned) => break Ok(returned),
                Err(_) if cut_at().is_some_and(|end| Instant::now() >= end) => {
                    break Err(Cut::OutOfTime);
                }
                Err(_)
                    if Instant::now() >= host_time.deadline(started, limits.activation_timeout) =>
                {
                    break Err(Cut::Budget);
                }
                Err(_) => continue,
            }
        }
    };

    let fuel_used = if fuel_ok {
        let left = store.get_fuel().unwrap_or(0);
        store.data().fuel.used(left)
    } else {
        0
    };
    let state = store.data_mut();
    state.flush_output();
    let outcome = match result {
        Err(Cut::OutOfTime) => ActivationEnd::OutOfTime,
        Err(Cut::Budget) => ActivationEnd::Failed(ErrorInfo::host(
            ErrorCode::ActivationTimeout,
            format!(
                "the workflow's own code ran longer than {} s in one activation, time in host calls not counted (WEFT_ACTIVATION_TIMEOUT_SECS)",
                limits.activation_timeout.as_secs()
            ),
        )),
        Ok(Ok(returned)) => match unconsumed_steps(&state.journal) {
            Some(divergence) => ActivationEnd::Failed(non_deterministic(&divergence)),
            None => match returned {
                Ok(output) => match check_payload(limits, "the workflow output", &output) {
                    Ok(()) => ActivationEnd::Completed(output),
                    Err(e) => ActivationEnd::Failed(e),
                },
                Err(guest_error) => {
                    let error = error_from_guest(limits, guest_error).unwrap_or_else(|e| e);
                    ActivationEnd::Failed(state.limiter.attribute(error, "the workflow"))
                }
            },
        },
        Ok(Err(trap)) => match state.stop.take() {
            Some(Stop::Suspend) => ActivationEnd::Suspended,
            Some(Stop::Released) => {
                return Ok(ActivationReport {
                    outcome: ActivationEnd::Released,
                    replayed_steps: 0,
                    new_steps: 0,
                    fuel_used: 0,
                    elapsed: Duration::ZERO,
                });
            }
            Some(Stop::Fail(e)) => ActivationEnd::Failed(e),
            Some(Stop::Driver(e)) => return Err(e),
            None => ActivationEnd::Failed(classify_trap(
                &trap,
                state.limiter.memory_limit_hit(),
                &state.last_stderr,
            )),
        },
    };
    state.driver.finish(&outcome).await?;
    Ok(ActivationReport {
        outcome,
        replayed_steps: state.replayed_steps,
        new_steps: state.new_steps,
        fuel_used,
        elapsed: leg.started().elapsed(),
    })
}

/// Instantiates a workflow in a fresh store and drops it without running
/// it: the fixed cost every activation pays, measured by the benchmarks.
pub async fn instantiate_only(
    pre: &WorkflowPre<WorkflowState>,
    limits: &Limits,
    run_id: &RunId,
    driver: Box<dyn StepDriver>,
) -> wasmtime::Result<()> {
    let state = WorkflowState::new(run_id.as_str(), 0, Journal::new(Vec::new()), driver, limits);
    let mut store = Store::new(pre.engine(), state);
    store.limiter(|s| &mut s.limiter);
    store.set_fuel(limits.workflow_fuel)?;
    instantiate_when_free!(pre, store)?;
    Ok(())
}

/// A workflow that finishes while the journal still has steps it never
/// reached took a different path than before.
fn unconsumed_steps(journal: &Journal) -> Option<Divergence> {
    let next = journal.unconsumed().first()?;
    Some(Divergence {
        position: next.seq,
        recorded: format!(
            "{} more step(s), starting with {} step `{}`",
            journal.unconsumed().len(),
            next.kind.as_str(),
            next.name
        ),
        replayed: "the workflow returned without reaching them".into(),
    })
}

/// Names the reason a guest trapped on its own.
fn classify_trap(err: &wasmtime::Error, memory_limit_hit: bool, last_stderr: &str) -> ErrorInfo {
    if crate::engine::is_invalid_string(err) {
        return ErrorInfo::host(
            ErrorCode::InvalidOutput,
            format!(
                "the workflow passed the host a string that is not UTF-8: {}",
                root_message(err)
            ),
        );
    }
    let trap = err.downcast_ref::<Trap>().copied();
    let (code, what) = match trap {
        Some(Trap::OutOfFuel) => (
            ErrorCode::CpuLimit,
            "the workflow used up its CPU budget for one activation (WEFT_FUEL_PER_ACTIVATION)"
                .to_string(),
        ),
        Some(Trap::StackOverflow) => (
            ErrorCode::StackOverflow,
            "the workflow overflowed its call stack".to_string(),
        ),
        _ if memory_limit_hit => (
            ErrorCode::MemoryLimit,
            "the workflow tried to grow its memory past the limit (WEFT_MEMORY_LIMIT_MB)"
                .to_string(),
        ),
        _ => (
            ErrorCode::Trap,
            format!("the workflow trapped: {}", root_message(err)),
        ),
    };
    let message = if last_stderr.is_empty() {
        what
    } else {
        format!("{what}; stderr: {}", tail(last_stderr, 600))
    };
    ErrorInfo {
        code: code.as_str().into(),
        message,
        details: Some(serde_json::json!({ "trace": format!("{err:?}") })),
    }
}

fn root_message(err: &wasmtime::Error) -> String {
    match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => err.to_string(),
    }
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
