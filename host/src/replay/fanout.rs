//! Fan-out: steps started without waiting, and the awaits that join them.
//!
//! A `start-*` call is a journal entry like any step: replay matches it
//! against the journal, so a replay that starts another set of members
//! diverges with the usual diff. It never suspends; the driver records the
//! step and sets its work going.
//!
//! Awaits come in two kinds:
//! - `await-step(name)` waits for one member. Its answer depends only on
//!   that member's outcome, which is final once recorded, so it needs no
//!   journal entry of its own.
//! - `await-any(members)` returns whichever member finished first. That
//!   choice depends on timing, so it is recorded as a `join` step whose
//!   result names the member; a replay returns the recorded name even when
//!   every member has finished by then.
//!
//! An await that finds nothing finished asks the driver to end the
//! activation until a member's completion resumes the run. One resume
//! then consumes every outcome that arrived in the meantime: the replay
//! finds them all final in the journal it loaded.

use super::driver::{DriverError, Probe, Resolution};
use super::journal::Position;
use super::state::{Stop, WorkflowState, missing_outcome, non_deterministic, parkable};
use crate::engine::entropy::Segment;
use crate::model::{
    ErrorCode, ErrorInfo, Millis, StepCall, StepKind, StepOptions, StepOutcome, StepRecord,
};

/// What an await learnt about one member.
enum Looked {
    Done(Box<StepRecord>),
    Pending(Option<Millis>),
    Suspended,
    Failed(DriverError),
}

impl WorkflowState {
    /// Starts fan-out member `call`: from the journal on replay, through the
    /// driver the first time. The code after a start draws randomness from
    /// the stream of the journal position past it, live and on replay alike.
    pub(super) async fn start_member(&mut self, call: StepCall) -> wasmtime::Result<()> {
        self.flush_output();
        if let Err(e) = self.check_not_nested(&call) {
            return self.halt(Stop::Fail(e));
        }
        let seq = match self.journal.advance(&call) {
            Err(d) => return self.halt(Stop::Fail(non_deterministic(&d))),
            Ok(Position::Recorded(step) | Position::InFlight(step)) => {
                self.replayed_steps += 1;
                step.seq
            }
            Ok(Position::New { seq }) => {
                if let Err(e) = self.check_step_limit(seq) {
                    return self.halt(Stop::Fail(e));
                }
                self.new_steps += 1;
                match self.driver.start(seq, &call).await {
                    Ok(step) => self.journal.settle(step),
                    Err(e) => return self.driver_failed(e),
                }
                seq
            }
        };
        self.entropy.enter(Segment::After {
            steps: seq.saturating_add(1),
        });
        Ok(())
    }

    /// Waits for started step `name` and returns its outcome, parking the
    /// guest if it must wait.
    pub(super) async fn await_member(&mut self, name: String) -> wasmtime::Result<StepOutcome> {
        self.flush_output();
        parkable!(self, self.await_member_once(&name).await)
    }

    /// [`WorkflowState::await_member`], up to a suspension.
    async fn await_member_once(&mut self, name: &str) -> wasmtime::Result<StepOutcome> {
        let step = match self.started(name, "await-step") {
            Ok(step) => step,
            Err(e) => return self.halt(Stop::Fail(e)),
        };
        let step = match self.look(step.clone()).await {
            Looked::Done(step) => *step,
            Looked::Pending(wake_at) => return self.wait_for(&[step], wake_at).await,
            Looked::Suspended => return self.halt(Stop::Suspend),
            Looked::Failed(e) => return self.driver_failed(e),
        };
        Ok(self.deliver_member(&step))
    }

    /// Returns the name of the first of `members` to finish: recorded in
    /// join step `call`, so a replay returns the same one. Parks the guest
    /// if it must wait.
    pub(super) async fn await_any(
        &mut self,
        step_name: String,
        members: Vec<String>,
    ) -> wasmtime::Result<String> {
        self.flush_output();
        parkable!(
            self,
            self.await_any_once(step_name.clone(), members.clone())
                .await
        )
    }

    /// [`WorkflowState::await_any`], up to a suspension.
    async fn await_any_once(
        &mut self,
        step_name: String,
        members: Vec<String>,
    ) -> wasmtime::Result<String> {
        let call = StepCall {
            kind: StepKind::Join,
            name: step_name,
            rpc_name: None,
            input: Some(serde_json::json!({ "members": members }).to_string()),
            options: StepOptions::default(),
        };
        if let Err(e) = self.check_not_nested(&call) {
            return self.halt(Stop::Fail(e));
        }
        if members.is_empty() {
            return self.fail(
                ErrorCode::StepProtocol,
                format!("await-any `{}` names no step to wait for", call.name),
            );
        }
        let mut started = Vec::with_capacity(members.len());
        for name in &members {
            match self.started(name, &format!("await-any `{}`", call.name)) {
                Ok(step) => started.push(step),
                Err(e) => return self.halt(Stop::Fail(e)),
            }
        }
        let seq = match self.journal.advance(&call) {
            Err(d) => return self.halt(Stop::Fail(non_deterministic(&d))),
            Ok(Position::Recorded(join)) => return self.replay_join(join, &members),
            Ok(Position::InFlight(join)) => {
                return self.fail(
                    ErrorCode::StepProtocol,
                    format!("join step `{}` is recorded without its choice", join.name),
                );
            }
            Ok(Position::New { seq }) => seq,
        };
        if let Err(e) = self.check_step_limit(seq) {
            return self.halt(Stop::Fail(e));
        }
        // Prefer what the journal already holds; only when nothing has
        // finished look at each member (timers, events, inline RPCs).
        let mut finished: Vec<StepRecord> = started
            .iter()
            .filter(|s| s.status.is_final())
            .cloned()
            .collect();
        let mut wake_at: Option<Millis> = None;
        let mut pending = Vec::new();
        if finished.is_empty() {
            for step in started {
                match self.look(step.clone()).await {
                    Looked::Done(step) => finished.push(*step),
                    Looked::Pending(at) => {
                        pending.push(step);
                        wake_at = match (wake_at, at) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        }
                    }
                    Looked::Suspended => return self.halt(Stop::Suspend),
                    Looked::Failed(e) => return self.driver_failed(e),
                }
            }
        }
        let Some(first) = finished
            .iter()
            .min_by_key(|s| (s.completed_at.unwrap_or(Millis::MAX), s.seq))
        else {
            return self.wait_for(&pending, wake_at).await;
        };
        let chosen = first.name.clone();
        self.new_steps += 1;
        match self.driver.join(seq, &call, &chosen).await {
            Ok(Resolution::Recorded(join)) => {
                self.pass_join(&join);
                self.journal.settle(join);
                Ok(chosen)
            }
            Ok(Resolution::Suspend) => self.halt(Stop::Suspend),
            Ok(Resolution::Execute { .. }) => self.fail(
                ErrorCode::StepProtocol,
                format!("the host asked to execute join step `{}`", call.name),
            ),
            Err(e) => self.driver_failed(e),
        }
    }

    /// A recorded join: the member it chose, which must be one of `members`.
    fn replay_join(&mut self, join: StepRecord, members: &[String]) -> wasmtime::Result<String> {
        self.replayed_steps += 1;
        let chosen = join
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str::<String>(r).ok())
            .filter(|c| members.contains(c));
        let Some(chosen) = chosen else {
            return self.fail(
                ErrorCode::StepProtocol,
                format!(
                    "join step `{}` is recorded with a choice outside its members",
                    join.name
                ),
            );
        };
        self.pass_join(&join);
        Ok(chosen)
    }

    /// Logical time moves to when the join was decided; randomness to the
    /// stream past it.
    fn pass_join(&mut self, join: &StepRecord) {
        if let Some(at) = join.completed_at {
            self.clock.advance_to(at);
        }
        self.entropy.enter(Segment::After {
            steps: join.seq.saturating_add(1),
        });
    }

    /// Member `name`, which this execution must have started (`what` names
    /// the await, for the error).
    fn started(&self, name: &str, what: &str) -> Result<StepRecord, ErrorInfo> {
        match self.journal.passed(name) {
            Some(step) if step.kind.can_start() => Ok(step.clone()),
            Some(step) => Err(ErrorInfo::host(
                ErrorCode::StepProtocol,
                format!(
                    "{what} waits for {} step `{name}`, which was not started with a start call",
                    step.kind.as_str()
                ),
            )),
            None => Err(ErrorInfo::host(
                ErrorCode::StepProtocol,
                format!("{what} waits for step `{name}`, which this run has not started"),
            )),
        }
    }

    /// The member's outcome if it has one, asking the driver when the
    /// journal has none; a new outcome is kept in the journal.
    async fn look(&mut self, step: StepRecord) -> Looked {
        if step.status.is_final() {
            return Looked::Done(Box::new(step));
        }
        match self.driver.probe(&step).await {
            Ok(Probe::Done(step)) => {
                self.journal.settle((*step).clone());
                Looked::Done(step)
            }
            Ok(Probe::Pending { wake_at }) => Looked::Pending(wake_at),
            Ok(Probe::Suspended) => Looked::Suspended,
            Err(e) => Looked::Failed(e),
        }
    }

    /// Ends the activation until one of `members` finishes.
    async fn wait_for<T>(
        &mut self,
        members: &[StepRecord],
        wake_at: Option<Millis>,
    ) -> wasmtime::Result<T> {
        match self.driver.await_members(members, wake_at).await {
            Ok(_) => self.halt(Stop::Suspend),
            Err(e) => self.driver_failed(e),
        }
    }

    /// Hands a member's outcome to the guest; logical time moves to when it
    /// finished. Randomness stays where it is: an await is no journal
    /// position, so the stream goes on the same live and on replay.
    fn deliver_member(&mut self, step: &StepRecord) -> StepOutcome {
        if let Some(at) = step.completed_at {
            self.clock.advance_to(at);
        }
        step.outcome().unwrap_or_else(|| Err(missing_outcome(step)))
    }
}
