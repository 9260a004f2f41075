//! Persisting one activation's decisions: the service's [`StepDriver`].
//!
//! Each step the workflow reaches becomes a fenced store write (append a
//! step, update it, release the lease) and, where the run must wait, a
//! message that resumes it. RPCs run here in inline mode.

use super::invocation;
use super::steps::AttemptResult;
use super::{ServiceError, Weft};
use crate::backend::{
    CallbackWrite, EventTake, RunWrite, StateWrite, StepExpect, StepWrite, StoreError,
};
use crate::config::RpcMode;
use crate::model::{
    AttemptRecord, CallbackRecord, CallbackState, CallbackStep, ErrorCode, ErrorInfo, EventWait,
    Lease, LogLine, Millis, RunRecord, RunStatus, StepCall, StepKind, StepOutcome, StepRecord,
    StepStatus, WorkMessage,
};
use crate::replay::{ActivationEnd, DriverError, Probe, Resolution, StepDriver};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

mod members;

/// What a write does with the run's lease.
#[derive(Clone, Copy, Debug)]
enum After {
    /// Keep (and extend) the lease: the activation goes on.
    Continue,
    /// Give the lease up: the activation ends. A timer will resume the run
    /// at `wake_at`, if any; until then the recovery sweep leaves it alone.
    Release { wake_at: Option<Millis> },
}

/// Persists one activation's decisions. Every write is fenced by the run
/// version this activation holds, so an activation that lost its lease
/// cannot change the run.
pub(crate) struct RunDriver {
    svc: Arc<Weft>,
    /// The run as last written by this activation; `version` is the fence.
    run: RunRecord,
    logs: Vec<LogLine>,
    /// Writes that must land with the step write the next commit carries:
    /// the event a wait takes, the callback a step creates or expires.
    alongside: Alongside,
    /// Whether the last write gave the lease up (the activation is ending).
    released: bool,
    /// What the run waits for once this activation lets go
    /// ([`RunRecord::awaiting`]): set by an await of started RPC or child
    /// steps.
    awaiting: Vec<String>,
}

/// Writes bound to a step's write (see [`RunDriver::alongside`]).
#[derive(Default)]
struct Alongside {
    events: Vec<EventTake>,
    callbacks: Vec<CallbackWrite>,
}

/// How often a run waiting for an event or a callback without a nearer
/// timeout is looked at anyway: the backstop for a send or completion whose
/// resume message was lost (what it delivered is stored, so the next look
/// takes it).
const WAIT_RECHECK: Duration = Duration::from_secs(3600);

/// The most started steps a run records as awaited
/// ([`RunRecord::awaiting`]); an await of more wakes on any outcome.
const AWAITING_MAX: usize = 32;

/// The driver's failures travel through the replay core as opaque
/// [`DriverError::Infra`] sources; `RunDriver::error_of` unwraps them.
impl From<StoreError> for DriverError {
    fn from(e: StoreError) -> Self {
        DriverError::infra(e)
    }
}

impl From<crate::backend::QueueError> for DriverError {
    fn from(e: crate::backend::QueueError) -> Self {
        DriverError::infra(e)
    }
}

impl From<ServiceError> for DriverError {
    fn from(e: ServiceError) -> Self {
        DriverError::infra(e)
    }
}

impl RunDriver {
    /// The service error behind an infrastructure failure this driver
    /// reported (a store or queue error, or a service error of its own).
    pub(super) fn error_of(source: Box<dyn std::error::Error + Send + Sync>) -> ServiceError {
        let source = match source.downcast::<StoreError>() {
            Ok(e) => return ServiceError::Store(*e),
            Err(other) => other,
        };
        let source = match source.downcast::<crate::backend::QueueError>() {
            Ok(e) => return ServiceError::Queue(*e),
            Err(other) => other,
        };
        match source.downcast::<ServiceError>() {
            Ok(e) => *e,
            Err(other) => ServiceError::Store(StoreError::Backend(other.to_string())),
        }
    }

    pub(super) fn new(svc: Arc<Weft>, run: RunRecord) -> Self {
        Self {
            svc,
            run,
            logs: Vec::new(),
            alongside: Alongside::default(),
            released: false,
            awaiting: Vec::new(),
        }
    }

    fn lease(&self, now: u64) -> Lease {
        Lease {
            owner: self.svc.settings.worker_id.clone(),
            expires_at: now + self.svc.settings.run_lease.as_millis() as u64,
        }
    }

    /// Writes the run (changed by `change`) together with `steps` and
    /// `attempts` and the buffered logs, atomically and fenced.
    async fn commit(
        &mut self,
        change: impl FnOnce(&mut RunRecord),
        steps: Vec<StepWrite>,
        attempts: Vec<AttemptRecord>,
        after: After,
    ) -> Result<(), DriverError> {
        let now = self.svc.now();
        // Changed in place and copied once for the write: the journal index
        // grows with every step, so every copy of it costs. A failed write
        // ends the activation, so the changed record is never used after one.
        let expected_version = self.run.version;
        let expected_steps = self.run.step_names.len();
        change(&mut self.run);
        self.run.stamp(now, self.svc.settings.retention);
        let release = matches!(after, After::Release { .. });
        self.run.lease = (!release).then(|| self.lease(now));
        self.run.wake_at = match after {
            After::Release { wake_at } => wake_at,
            After::Continue => None,
        };
        self.run.awaiting = if release {
            self.awaiting.clone()
        } else {
            Vec::new()
        };
        let run_id = self.run.id.clone();
        let write = StateWrite {
            run: Some(RunWrite {
                record: self.run.clone(),
                expected_version,
                expected_steps,
            }),
            // The run write's version fences this batch already.
            require_running: None,
            steps,
            events: std::mem::take(&mut self.alongside.events),
            callbacks: std::mem::take(&mut self.alongside.callbacks),
            attempts,
            logs: self.logs.drain(..).map(|l| (run_id.clone(), l)).collect(),
        };
        self.svc.state.commit(write).await?;
        self.run.version = expected_version + 1;
        self.released = release;
        Ok(())
    }

    /// Records a brand-new step (appending it to the journal index).
    async fn append(
        &mut self,
        step: &StepRecord,
        attempts: Vec<AttemptRecord>,
        after: After,
    ) -> Result<(), DriverError> {
        if step.seq as usize != self.run.step_names.len() {
            return Err(StoreError::Conflict(format!(
                "step `{}` has position {} but the journal index has {} entries",
                step.name,
                step.seq,
                self.run.step_names.len()
            ))
            .into());
        }
        let name = step.name.clone();
        let write = StepWrite {
            record: step.clone(),
            expect: StepExpect::Absent,
        };
        self.commit(
            move |r| r.step_names.push(name),
            vec![write],
            attempts,
            after,
        )
        .await
    }

    /// Updates a step already in the journal, from the state in `expected`.
    async fn update(
        &mut self,
        step: &StepRecord,
        expected: &StepRecord,
        attempts: Vec<AttemptRecord>,
        after: After,
    ) -> Result<(), DriverError> {
        let write = StepWrite {
            record: step.clone(),
            expect: StepExpect::State {
                status: expected.status,
                attempt_count: expected.attempt_count,
            },
        };
        self.commit(|_| {}, vec![write], attempts, after).await
    }

    /// Records `step`: appended when it is new (`stored` is `None`),
    /// otherwise updated from the state `stored` holds.
    async fn write_step(
        &mut self,
        step: &StepRecord,
        stored: Option<&StepRecord>,
        attempts: Vec<AttemptRecord>,
        after: After,
    ) -> Result<(), DriverError> {
        match stored {
            None => self.append(step, attempts, after).await,
            Some(previous) => self.update(step, previous, attempts, after).await,
        }
    }

    /// Ends the activation here: gives the lease up, recording `wake_at`
    /// (when what the run waits for is due: the sweep leaves it alone until
    /// then), then sends `message` (which will resume the run) no sooner
    /// than `at`. The wake time is the step's, whether or not a message is
    /// sent: an early resume must not erase a long sleep's wake time.
    async fn suspend(
        &mut self,
        wake_at: Option<Millis>,
        message: Option<(WorkMessage, Option<u64>)>,
    ) -> Result<Resolution, DriverError> {
        if !self.released {
            self.commit(|_| {}, vec![], vec![], After::Release { wake_at })
                .await?;
        }
        if let Some((message, at)) = message {
            self.svc.send(message, at).await?;
        }
        Ok(Resolution::Suspend)
    }

    fn resume_message(&self) -> WorkMessage {
        WorkMessage::Resume {
            run_id: self.run.id.clone(),
        }
    }

    /// Hands a finished step to the guest, or, when replaying after every
    /// step, suspends so the next activation replays it from the journal.
    async fn deliver(&mut self, step: StepRecord) -> Result<Resolution, DriverError> {
        if self.svc.settings.replay_every_step {
            let resume = self.resume_message();
            return self.suspend(None, Some((resume, None))).await;
        }
        Ok(Resolution::Recorded(step))
    }

    /// Executes an RPC step here, inside the activation, retrying short
    /// backoffs in place, and hands its outcome to the guest.
    /// `claimed` says whether `step` is already persisted with its next
    /// attempt claimed by this worker (a new step is appended that way, which
    /// saves a write).
    async fn run_rpc_inline(
        &mut self,
        step: StepRecord,
        claimed: bool,
    ) -> Result<Resolution, DriverError> {
        match self.execute_in_place(step, claimed).await? {
            Probe::Done(done) => self.deliver(*done).await,
            Probe::Pending { .. } | Probe::Suspended => Ok(Resolution::Suspend),
        }
    }

    /// Runs an RPC step's attempts here until it has an outcome (`Done`),
    /// or ends the activation (`Suspended`) when the next attempt is due
    /// too late to wait for, another process holds the step, or this
    /// invocation cannot hold an attempt.
    async fn execute_in_place(
        &mut self,
        mut step: StepRecord,
        mut claimed: bool,
    ) -> Result<Probe, DriverError> {
        loop {
            let attempt = if std::mem::take(&mut claimed) {
                self.svc.run_claimed(step.clone()).await?
            } else {
                self.svc.execute_attempt(&step).await?
            };
            match attempt {
                AttemptResult::Finished(done) => return Ok(Probe::Done(Box::new(done))),
                AttemptResult::RetryAt(waiting, at) => {
                    let wait = Duration::from_millis(at.saturating_sub(self.svc.now()));
                    if wait <= self.svc.settings.inline_retry_max_wait {
                        // Keep the run lease alive while waiting.
                        self.commit(|_| {}, vec![], vec![], After::Continue).await?;
                        tokio::time::sleep(wait).await;
                        step = waiting;
                        continue;
                    }
                    let resume = self.resume_message();
                    self.suspend(Some(at), Some((resume, Some(at)))).await?;
                    return Ok(Probe::Suspended);
                }
                // Another process holds the step; it resumes the run when done.
                AttemptResult::Busy(_) | AttemptResult::Gone => {
                    self.suspend(None, None).await?;
                    return Ok(Probe::Suspended);
                }
                // This invocation cannot hold the attempt: a fresh one will.
                AttemptResult::Deferred => {
                    let resume = self.resume_message();
                    self.suspend(None, Some((resume, None))).await?;
                    return Ok(Probe::Suspended);
                }
            }
        }
    }

    /// An event wait, new (`stored` is `None`) or recorded without an
    /// outcome: take the oldest waiting event of its name, or time out, or
    /// end the activation until one arrives (its send resumes the run) or
    /// the timeout or the next recheck is due.
    async fn wait_for_event(
        &mut self,
        step: StepRecord,
        stored: Option<&StepRecord>,
    ) -> Result<Resolution, DriverError> {
        let (outcome, deadline) = self.event_outcome(&step).await?;
        self.settle_or_wait(step, stored, outcome, deadline).await
    }

    /// What event wait `step` gets now: the oldest untaken event of its
    /// name (its take joins the next commit), a timeout once the deadline
    /// passed, or nothing yet; and the wait's deadline.
    async fn event_outcome(
        &mut self,
        step: &StepRecord,
    ) -> Result<(Option<StepOutcome>, Option<Millis>), DriverError> {
        let Some(wait) = EventWait::of(step.input.as_deref()) else {
            return Err(DriverError::FailRun(ErrorInfo::host(
                ErrorCode::StepProtocol,
                format!(
                    "event step `{}` does not say which event it waits for",
                    step.name
                ),
            )));
        };
        let now = self.svc.now();
        let deadline = wait.timeout_ms.map(|t| step.created_at.saturating_add(t));
        let next = self.svc.state.next_event(&self.run.id, &wait.event).await?;
        let outcome = match (next, deadline) {
            (Some(event), _) => {
                self.alongside.events.push(EventTake {
                    run_id: self.run.id.clone(),
                    name: wait.event.clone(),
                    seq: event.seq,
                    step: step.name.clone(),
                });
                Some(Ok(event.payload))
            }
            (None, Some(deadline)) if deadline <= now => Some(Err(ErrorInfo::host(
                ErrorCode::Timeout,
                format!(
                    "no event `{}` arrived within {} ms",
                    wait.event,
                    wait.timeout_ms.unwrap_or(0)
                ),
            ))),
            (None, _) => None,
        };
        Ok((outcome, deadline))
    }

    /// A callback wait: the outcome the callback was completed with, or a
    /// timeout once it expired (the expiry written with it, and losing to a
    /// completion that landed first), or an end of the activation until the
    /// completion resumes the run or the expiry comes.
    async fn wait_for_callback(
        &mut self,
        step: StepRecord,
        stored: Option<&StepRecord>,
    ) -> Result<Resolution, DriverError> {
        let (outcome, expiry) = self.callback_outcome(&step).await?;
        self.settle_or_wait(step, stored, outcome, expiry).await
    }

    /// What callback wait `step` gets now (an expiry joins the next
    /// commit), and when its callback expires.
    async fn callback_outcome(
        &mut self,
        step: &StepRecord,
    ) -> Result<(Option<StepOutcome>, Option<Millis>), DriverError> {
        let protocol = |message: String| {
            DriverError::FailRun(ErrorInfo::host(ErrorCode::StepProtocol, message))
        };
        let Some(hash) = CallbackStep::of(step.input.as_deref()).and_then(|c| c.callback) else {
            return Err(protocol(format!(
                "callback wait `{}` does not say which callback it waits for",
                step.name
            )));
        };
        let callback: Option<CallbackRecord> = self.svc.state.get_callback(&hash).await?;
        let Some(callback) = callback.filter(|c| c.run_id == self.run.id) else {
            return Err(protocol(format!(
                "callback wait `{}` was given a token this run did not create",
                step.name
            )));
        };
        let now = self.svc.now();
        let expired = || {
            Err(ErrorInfo::host(
                ErrorCode::Timeout,
                format!(
                    "callback `{}` expired before it was completed",
                    callback.step
                ),
            ))
        };
        let outcome = match &callback.state {
            CallbackState::Completed { .. } => callback.outcome(),
            CallbackState::Expired => Some(expired()),
            CallbackState::Waiting if callback.open_at(now) => None,
            CallbackState::Waiting => {
                self.alongside
                    .callbacks
                    .push(CallbackWrite::Expire { hash });
                Some(expired())
            }
        };
        Ok((outcome, callback.expires_at))
    }

    /// Creates a callback: the step's result is the token, and the callback
    /// (stored by the token's hash) lands in the same write.
    async fn create_callback(&mut self, mut step: StepRecord) -> Result<Resolution, DriverError> {
        let timeout_ms = CallbackStep::of(step.input.as_deref()).and_then(|c| c.timeout_ms);
        let now = self.svc.now();
        let token = super::callbacks::new_token();
        self.alongside
            .callbacks
            .push(CallbackWrite::Create(CallbackRecord {
                hash: crate::model::token_hash(&token),
                run_id: self.run.id.clone(),
                step: step.name.clone(),
                created_at: now,
                expires_at: timeout_ms.map(|t| now.saturating_add(t)),
                state: CallbackState::Waiting,
            }));
        step.finish(Ok(serde_json::Value::String(token).to_string()), now);
        self.append(&step, vec![], After::Continue).await?;
        self.deliver(step).await
    }

    /// A wait (for an event or a callback) that has its `outcome`: record
    /// and deliver it. One that has none: end the activation until
    /// `deadline` (or the next recheck, if sooner), re-arming when a
    /// recheck came due with nothing to take.
    async fn settle_or_wait(
        &mut self,
        mut step: StepRecord,
        stored: Option<&StepRecord>,
        outcome: Option<StepOutcome>,
        deadline: Option<Millis>,
    ) -> Result<Resolution, DriverError> {
        let now = self.svc.now();
        if let Some(outcome) = outcome {
            step.finish(outcome, now);
            self.write_step(&step, stored, vec![], After::Continue)
                .await?;
            return self.deliver(step).await;
        }
        let recheck = now.saturating_add(WAIT_RECHECK.as_millis() as u64);
        let wake_at = deadline.map_or(recheck, |d| d.min(recheck));
        match stored {
            None => {
                step.status = StepStatus::Scheduled;
                step.wake_at = Some(wake_at);
                let after = After::Release {
                    wake_at: Some(wake_at),
                };
                self.append(&step, vec![], after).await?;
            }
            // The timer set for the last wake time is still on its way.
            Some(previous) if previous.wake_at.is_some_and(|at| at > now) => {
                let timer = self
                    .looks_stranded(previous, now)
                    .then(|| (self.resume_message(), previous.wake_at));
                return self.suspend(previous.wake_at, timer).await;
            }
            // A recheck came due with nothing to take: arm the next one.
            Some(previous) => {
                step.wake_at = Some(wake_at);
                step.updated_at = now;
                let after = After::Release {
                    wake_at: Some(wake_at),
                };
                self.update(&step, previous, vec![], after).await?;
            }
        }
        let resume = self.resume_message();
        self.suspend(Some(wake_at), Some((resume, Some(wake_at))))
            .await
    }

    /// Whether an unfinished step's message may have been lost: it has not
    /// changed for longer than the repair threshold past when it was due.
    fn looks_stranded(&self, step: &StepRecord, now: u64) -> bool {
        let repair = self.svc.settings.repair_after.as_millis() as u64;
        let due = step.wake_at.unwrap_or(step.updated_at).max(step.updated_at);
        now > due + repair
    }
}

#[async_trait]
impl StepDriver for RunDriver {
    async fn schedule(&mut self, seq: u32, call: &StepCall) -> Result<Resolution, DriverError> {
        let now = self.svc.now();
        let mut step = StepRecord::new(&self.run.id, seq, call, now);
        match call.kind {
            StepKind::Sleep => {
                let duration = sleep_duration(call);
                if duration == 0 {
                    step.finish(Ok("null".into()), now);
                    self.append(&step, vec![], After::Continue).await?;
                    return self.deliver(step).await;
                }
                let wake_at = now.saturating_add(duration);
                step.status = StepStatus::Scheduled;
                step.wake_at = Some(wake_at);
                let after = After::Release {
                    wake_at: Some(wake_at),
                };
                self.append(&step, vec![], after).await?;
                let resume = self.resume_message();
                self.suspend(Some(wake_at), Some((resume, Some(wake_at))))
                    .await
            }
            StepKind::Rpc => match self.svc.settings.rpc_mode {
                RpcMode::Inline if invocation::fits(self.svc.rpc_timeout(&step)) => {
                    let claimed = self.svc.claimed(&step, now);
                    self.append(&claimed, vec![], After::Continue).await?;
                    self.run_rpc_inline(claimed, true).await
                }
                // Recorded unclaimed; a fresh invocation runs the attempt.
                RpcMode::Inline => {
                    self.append(&step, vec![], After::Release { wake_at: None })
                        .await?;
                    let resume = self.resume_message();
                    self.suspend(None, Some((resume, None))).await
                }
                RpcMode::Queued => {
                    let after = After::Release { wake_at: None };
                    self.append(&step, vec![], after).await?;
                    let execute = WorkMessage::ExecuteStep {
                        run_id: self.run.id.clone(),
                        step: step.name.clone(),
                        attempt: 1,
                    };
                    self.suspend(None, Some((execute, None))).await
                }
            },
            StepKind::Event => self.wait_for_event(step, None).await,
            StepKind::CallbackWait => self.wait_for_callback(step, None).await,
            StepKind::Callback => self.create_callback(step).await,
            StepKind::DetachedChild => {
                let outcome = match self.svc.start_child(&self.run.id, &step, true).await? {
                    Ok(id) => Ok(serde_json::Value::from(id.as_str()).to_string()),
                    Err(e) => Err(e),
                };
                step.finish(outcome, now);
                self.append(&step, vec![], After::Continue).await?;
                self.deliver(step).await
            }
            StepKind::Inline | StepKind::Join | StepKind::Child => {
                Err(DriverError::FailRun(ErrorInfo::host(
                    ErrorCode::StepProtocol,
                    format!(
                        "{} step `{}` cannot be scheduled",
                        call.kind.as_str(),
                        call.name
                    ),
                )))
            }
        }
    }

    async fn in_flight(&mut self, step: &StepRecord) -> Result<Resolution, DriverError> {
        let now = self.svc.now();
        let due = step.wake_at.is_none_or(|at| at <= now);
        let lease_live = step.lease.as_ref().is_some_and(|l| l.is_live(now));
        match (step.kind, step.status) {
            (StepKind::Event, _) => self.wait_for_event(step.clone(), Some(step)).await,
            (StepKind::CallbackWait, _) => self.wait_for_callback(step.clone(), Some(step)).await,
            // Created and finished in one write: never in flight.
            (StepKind::Callback | StepKind::Join | StepKind::DetachedChild, _) => {
                Err(DriverError::FailRun(ErrorInfo::host(
                    ErrorCode::StepProtocol,
                    format!(
                        "{} step `{}` is recorded without its outcome",
                        step.kind.as_str(),
                        step.name
                    ),
                )))
            }
            // Started, never scheduled: only an await looks at it.
            (StepKind::Child, _) => self.suspend(None, None).await,
            (StepKind::Sleep, _) if due => {
                let mut done = step.clone();
                done.finish(Ok("null".into()), now);
                self.update(&done, step, vec![], After::Continue).await?;
                self.deliver(done).await
            }
            (StepKind::Inline, _) if due => Ok(Resolution::Execute {
                attempt: step.attempt_count + 1,
                stored: Some(step.clone()),
            }),
            (StepKind::Sleep | StepKind::Inline, _) => {
                let timer = self
                    .looks_stranded(step, now)
                    .then(|| (self.resume_message(), step.wake_at));
                self.suspend(step.wake_at, timer).await
            }
            (StepKind::Rpc, status) => match self.svc.settings.rpc_mode {
                RpcMode::Inline if status == StepStatus::Running && lease_live => {
                    self.suspend(None, None).await
                }
                RpcMode::Inline if due => self.run_rpc_inline(step.clone(), false).await,
                RpcMode::Inline => {
                    let timer = self
                        .looks_stranded(step, now)
                        .then(|| (self.resume_message(), step.wake_at));
                    self.suspend(step.wake_at, timer).await
                }
                RpcMode::Queued => {
                    let lost = status == StepStatus::Running && !lease_live;
                    let redispatch = (lost
                        || (status != StepStatus::Running && self.looks_stranded(step, now)))
                    .then(|| {
                        let execute = WorkMessage::ExecuteStep {
                            run_id: self.run.id.clone(),
                            step: step.name.clone(),
                            attempt: step.attempt_count + 1,
                        };
                        (
                            execute,
                            step.wake_at.filter(|_| status == StepStatus::Scheduled),
                        )
                    });
                    let wake_at = step.wake_at.filter(|_| status == StepStatus::Scheduled);
                    self.suspend(wake_at, redispatch).await
                }
            },
        }
    }

    async fn inline_attempt(
        &mut self,
        seq: u32,
        call: &StepCall,
        attempt: u32,
        stored: Option<&StepRecord>,
        outcome: StepOutcome,
    ) -> Result<Resolution, DriverError> {
        let now = self.svc.now();
        let mut step = stored
            .cloned()
            .unwrap_or_else(|| StepRecord::new(&self.run.id, seq, call, now));
        step.attempt_count = attempt;
        step.updated_at = now;
        let history = AttemptRecord::ended(&step, attempt, &outcome, now, now);
        let retry_at =
            step.options
                .retry
                .next_attempt_at(attempt, &outcome, now, rand::random::<f64>());
        let waits_in_place = retry_at.is_some_and(|at| {
            Duration::from_millis(at - now) <= self.svc.settings.inline_retry_max_wait
        });
        let after = match retry_at {
            Some(at) if !waits_in_place => After::Release { wake_at: Some(at) },
            _ => After::Continue,
        };
        step.end_attempt(outcome, retry_at, now);
        self.write_step(&step, stored, vec![history], after).await?;
        match (retry_at, waits_in_place) {
            (None, _) => self.deliver(step).await,
            (Some(at), true) => {
                tokio::time::sleep(Duration::from_millis(at.saturating_sub(self.svc.now()))).await;
                Ok(Resolution::Execute {
                    attempt: attempt + 1,
                    stored: Some(step),
                })
            }
            (Some(at), false) => {
                let resume = self.resume_message();
                self.suspend(Some(at), Some((resume, Some(at)))).await
            }
        }
    }

    async fn start(&mut self, seq: u32, call: &StepCall) -> Result<StepRecord, DriverError> {
        self.start_member(seq, call).await
    }

    async fn probe(&mut self, step: &StepRecord) -> Result<Probe, DriverError> {
        self.probe_member(step).await
    }

    async fn join(
        &mut self,
        seq: u32,
        call: &StepCall,
        chosen: &str,
    ) -> Result<Resolution, DriverError> {
        let now = self.svc.now();
        let mut join = StepRecord::new(&self.run.id, seq, call, now);
        join.finish(Ok(serde_json::Value::from(chosen).to_string()), now);
        self.append(&join, vec![], After::Continue).await?;
        self.deliver(join).await
    }

    async fn await_members(
        &mut self,
        members: &[StepRecord],
        wake_at: Option<Millis>,
    ) -> Result<Resolution, DriverError> {
        // Only RPC and child outcomes announce themselves (`StepFinished`); a run
        // that also waits for timers, events or callbacks, or for many
        // steps, is resumed by whatever comes.
        if members.len() <= AWAITING_MAX
            && members
                .iter()
                .all(|m| matches!(m.kind, StepKind::Rpc | StepKind::Child))
        {
            self.awaiting = members.iter().map(|m| m.name.clone()).collect();
        }
        let timer = wake_at.map(|at| (self.resume_message(), Some(at)));
        self.suspend(wake_at, timer).await
    }

    fn log(&mut self, line: LogLine) {
        self.logs.push(line);
    }

    fn checkpoint(&self) -> Option<RunRecord> {
        Some(self.run.clone())
    }

    async fn finish(&mut self, outcome: &ActivationEnd) -> Result<(), DriverError> {
        match outcome {
            ActivationEnd::Completed(output) => {
                let output = output.clone();
                self.commit(
                    move |r| {
                        r.status = RunStatus::Completed;
                        r.output = Some(output);
                    },
                    vec![],
                    vec![],
                    After::Release { wake_at: None },
                )
                .await
            }
            ActivationEnd::Failed(error) => {
                let error = error.clone();
                self.commit(
                    move |r| {
                        r.status = RunStatus::Failed;
                        r.error = Some(error);
                    },
                    vec![],
                    vec![],
                    After::Release { wake_at: None },
                )
                .await
            }
            ActivationEnd::Suspended if !self.released || !self.logs.is_empty() => {
                let wake_at = if self.released {
                    self.run.wake_at
                } else {
                    None
                };
                self.commit(|_| {}, vec![], vec![], After::Release { wake_at })
                    .await
            }
            ActivationEnd::Suspended => Ok(()),
            // Write nothing from this driver's copy of the run: the caller
            // gives the lease up from a fresh read and sends the message
            // that carries the run on, so the cut's timing cannot matter.
            ActivationEnd::OutOfTime => Ok(()),
            // The leg that parked the guest wrote everything.
            ActivationEnd::Released => Ok(()),
        }
    }
}

/// How long sleep step `call` sleeps, from its journal input.
fn sleep_duration(call: &StepCall) -> u64 {
    call.input
        .as_deref()
        .and_then(|i| serde_json::from_str::<serde_json::Value>(i).ok())
        .and_then(|v| v.get("durationMs").and_then(|d| d.as_u64()))
        .unwrap_or(0)
}
