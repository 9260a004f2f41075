//! Fan-out members in the service's driver: starting a step without
//! waiting for it, and probing a started step an await looks at (a due
//! timer, an event or callback to take, an RPC to run here or to dispatch
//! again, a child run that ended).

use super::{After, RunDriver, WAIT_RECHECK, sleep_duration};
use crate::config::RpcMode;
use crate::model::{
    ErrorCode, ErrorInfo, EventWait, Millis, StepCall, StepKind, StepOutcome, StepRecord,
    StepStatus, WorkMessage,
};
use crate::replay::{DriverError, Probe, Resolution};
use crate::service::{Weft, invocation};

impl RunDriver {
    /// Records fan-out member `call` at `seq` and sets its work going
    /// without ending the activation: a queued RPC is dispatched, a timer
    /// armed, a wait begun. An RPC in inline mode runs when an await first
    /// looks at it.
    pub(super) async fn start_member(
        &mut self,
        seq: u32,
        call: &StepCall,
    ) -> Result<StepRecord, DriverError> {
        let now = self.svc.now();
        let mut step = StepRecord::new(&self.run.id, seq, call, now);
        let recheck = now.saturating_add(WAIT_RECHECK.as_millis() as u64);
        match call.kind {
            StepKind::Sleep => match sleep_duration(call) {
                0 => step.finish(Ok("null".into()), now),
                ms => {
                    step.status = StepStatus::Scheduled;
                    step.wake_at = Some(now.saturating_add(ms));
                }
            },
            StepKind::Event => {
                let timeout = EventWait::of(call.input.as_deref()).and_then(|w| w.timeout_ms);
                let deadline = timeout.map(|t| now.saturating_add(t));
                step.status = StepStatus::Scheduled;
                step.wake_at = Some(deadline.map_or(recheck, |d| d.min(recheck)));
            }
            StepKind::CallbackWait => {
                step.status = StepStatus::Scheduled;
                step.wake_at = Some(recheck);
            }
            StepKind::Rpc => {}
            // The child first: if this process dies before the step is
            // recorded, the replay starts the same child again, and finds it.
            StepKind::Child => {
                if let Err(e) = self.svc.start_child(&self.run.id, &step, false).await? {
                    step.finish(Err(e), now);
                }
            }
            StepKind::Inline | StepKind::Callback | StepKind::DetachedChild | StepKind::Join => {
                return Err(DriverError::FailRun(ErrorInfo::host(
                    ErrorCode::StepProtocol,
                    format!(
                        "{} step `{}` cannot be started",
                        call.kind.as_str(),
                        call.name
                    ),
                )));
            }
        }
        if let Err(e) = self.append(&step, vec![], After::Continue).await {
            if call.kind == StepKind::Child {
                let child = Weft::child_of(&self.run.id, &step);
                self.svc.reap_unrecorded_child(&child).await;
            }
            return Err(e);
        }
        if call.kind == StepKind::Rpc && self.svc.settings.rpc_mode == RpcMode::Queued {
            let execute = WorkMessage::ExecuteStep {
                run_id: self.run.id.clone(),
                step: step.name.clone(),
                attempt: 1,
            };
            self.svc.send(execute, None).await?;
        }
        Ok(step)
    }

    /// Where started member `step` (no outcome in the journal) stands now:
    /// a due timer or an event or callback to take is recorded here; an
    /// RPC in inline mode runs here; a queued RPC whose message looks lost
    /// is dispatched again.
    pub(super) async fn probe_member(&mut self, step: &StepRecord) -> Result<Probe, DriverError> {
        let now = self.svc.now();
        let due = step.wake_at.is_none_or(|at| at <= now);
        let lease_live = step.lease.as_ref().is_some_and(|l| l.is_live(now));
        let recheck = now.saturating_add(WAIT_RECHECK.as_millis() as u64);
        let (outcome, wake_at) = match step.kind {
            StepKind::Sleep if due => (Some(Ok("null".to_string())), None),
            StepKind::Sleep => (None, step.wake_at),
            StepKind::Event => self.event_outcome(step).await?,
            StepKind::CallbackWait => self.callback_outcome(step).await?,
            StepKind::Rpc => return self.probe_rpc(step, now, due, lease_live).await,
            StepKind::Child => (self.child_outcome(step).await?, None),
            StepKind::Inline | StepKind::Callback | StepKind::DetachedChild | StepKind::Join => {
                return Err(DriverError::FailRun(ErrorInfo::host(
                    ErrorCode::StepProtocol,
                    format!(
                        "{} step `{}` is not a started step",
                        step.kind.as_str(),
                        step.name
                    ),
                )));
            }
        };
        let Some(outcome) = outcome else {
            let wake_at = match step.kind {
                // A child's end announces itself to its parent.
                StepKind::Sleep | StepKind::Child => wake_at,
                // A wait's deadline, or the next look at its inbox.
                _ => Some(wake_at.map_or(recheck, |d| d.min(recheck))),
            };
            return Ok(Probe::Pending { wake_at });
        };
        let mut done = step.clone();
        done.finish(outcome, now);
        self.update(&done, step, vec![], After::Continue).await?;
        self.deliver_member(done).await
    }

    /// The outcome of child step `step`: its child's, once the child ended.
    /// A child that is not there (its start was lost) is started again.
    async fn child_outcome(
        &mut self,
        step: &StepRecord,
    ) -> Result<Option<StepOutcome>, DriverError> {
        let id = Weft::child_of(&self.run.id, step);
        match self.svc.state.get_run(&id).await? {
            Some(child) => Ok(crate::service::children::child_outcome(&child)),
            None => match self.svc.start_child(&self.run.id, step, false).await? {
                Ok(_) => Ok(None),
                Err(e) => Ok(Some(Err(e))),
            },
        }
    }

    /// [`RunDriver::probe_member`] for an RPC step.
    async fn probe_rpc(
        &mut self,
        step: &StepRecord,
        now: Millis,
        due: bool,
        lease_live: bool,
    ) -> Result<Probe, DriverError> {
        let status = step.status;
        let scheduled_at = step.wake_at.filter(|_| status == StepStatus::Scheduled);
        match self.svc.settings.rpc_mode {
            RpcMode::Inline if status == StepStatus::Running && lease_live => {
                Ok(Probe::Pending { wake_at: None })
            }
            RpcMode::Inline if due && invocation::fits(self.svc.rpc_timeout(step)) => {
                match self.execute_in_place(step.clone(), false).await? {
                    Probe::Done(done) => self.deliver_member(*done).await,
                    other => Ok(other),
                }
            }
            // Due, but this invocation has too little time left: a fresh
            // one runs it.
            RpcMode::Inline if due => {
                let resume = self.resume_message();
                self.suspend(None, Some((resume, None))).await?;
                Ok(Probe::Suspended)
            }
            RpcMode::Inline => Ok(Probe::Pending {
                wake_at: step.wake_at,
            }),
            RpcMode::Queued => {
                let lost = status == StepStatus::Running && !lease_live;
                if lost || (status != StepStatus::Running && self.looks_stranded(step, now)) {
                    let execute = WorkMessage::ExecuteStep {
                        run_id: self.run.id.clone(),
                        step: step.name.clone(),
                        attempt: step.attempt_count + 1,
                    };
                    self.svc.send(execute, scheduled_at).await?;
                }
                // The worker that records its outcome resumes the run.
                Ok(Probe::Pending { wake_at: None })
            }
        }
    }

    /// A member outcome this activation just recorded goes to the guest;
    /// when replaying after every step, the next activation takes it from
    /// the journal instead.
    async fn deliver_member(&mut self, done: StepRecord) -> Result<Probe, DriverError> {
        match self.deliver(done).await? {
            Resolution::Recorded(done) => Ok(Probe::Done(Box::new(done))),
            _ => Ok(Probe::Suspended),
        }
    }
}
