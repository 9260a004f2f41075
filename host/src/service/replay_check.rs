//! Replaying a recorded run against a module without recording anything:
//! what `weft replay` shows a user debugging a run on a laptop, and what a
//! replay-checked upgrade asks of every running run before it moves it to
//! a new module.
//!
//! The replay core checks each step the workflow asks for against the
//! journal, as in any activation. The difference is the driver: where a
//! normal activation would schedule, run or record a step past the end of
//! the journal, [`CheckDriver`] stops. So the guest runs up to the first
//! step the run has not reached yet (or to its end), and nothing is
//! written.

use super::{ServiceError, Weft};
use crate::model::{
    Digest, ErrorCode, ErrorInfo, LogLine, Millis, RunRecord, StepCall, StepOutcome, StepRecord,
};
use crate::registry::loader::LoadError;
use crate::replay::{
    self, ActivationEnd, ActivationInput, DriverError, Probe, Resolution, StepDriver,
};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};

/// How a replay of a recorded run went.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayCheck {
    /// Journal entries the replay passed, each asked for exactly as recorded.
    pub matched: u32,
    pub outcome: ReplayOutcome,
    /// What the workflow logged past the end of its journal.
    pub logs: Vec<LogLine>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ReplayOutcome {
    /// Every recorded step matched and the workflow stopped at a step the
    /// run has not finished: the module can carry the run on.
    Consistent,
    /// The workflow returned; `same` says whether its output (or error) is
    /// the one the run recorded, for a finished run. A running run that the
    /// module finishes from its journal alone counts as consistent too.
    Finished { outcome: StepOutcome, same: bool },
    /// The workflow asked for something other than the journal holds at
    /// `position` (or failed otherwise): `error` is `non_deterministic` with
    /// the journal's and the replay's descriptions, or the guest's failure.
    Diverged { error: ErrorInfo },
}

impl ReplayCheck {
    /// Whether the module replays the run as recorded.
    pub fn consistent(&self) -> bool {
        match &self.outcome {
            ReplayOutcome::Consistent => true,
            ReplayOutcome::Finished { same, .. } => *same,
            ReplayOutcome::Diverged { .. } => false,
        }
    }
}

impl Weft {
    /// Replays run `run` from `journal` (its recorded steps, in journal
    /// order) with the workflow module `digest`, recording nothing.
    pub async fn check_replay(
        &self,
        run: &RunRecord,
        journal: Vec<StepRecord>,
        digest: &Digest,
    ) -> Result<ReplayCheck, ServiceError> {
        let pre = match self.registry.workflow(digest).await {
            Ok(pre) => pre,
            Err(LoadError::Store(e)) => return Err(e.into()),
            Err(e) => {
                return Err(ServiceError::InvalidInput(format!(
                    "module {digest} cannot be loaded: {e}"
                )));
            }
        };
        let logs = Arc::new(Mutex::new(Vec::new()));
        let driver = CheckDriver {
            run_id: run.id.clone(),
            logs: Arc::clone(&logs),
            now: run.updated_at,
        };
        let input = ActivationInput {
            run_id: run.id.clone(),
            input: run.input.clone(),
            started_at: run.created_at,
            journal,
            ends_by: None,
            parking: None,
        };
        let report = replay::activate(&pre, &self.limits, input, Box::new(driver))
            .await
            .map_err(|e| ServiceError::InvalidInput(format!("the replay failed: {e}")))?;
        let recorded: Option<StepOutcome> = match (&run.output, &run.error) {
            (Some(output), _) if run.status.is_terminal() => Some(Ok(output.clone())),
            (_, Some(error)) if run.status.is_terminal() => Some(Err(error.clone())),
            _ => None,
        };
        let outcome = match report.outcome {
            ActivationEnd::Completed(output) => {
                let outcome = Ok(output);
                let same = recorded.as_ref().is_none_or(|r| *r == outcome);
                ReplayOutcome::Finished { outcome, same }
            }
            ActivationEnd::Failed(error) if is_divergence(&error) => {
                ReplayOutcome::Diverged { error }
            }
            ActivationEnd::Failed(error) => {
                let outcome = Err(error);
                let same = recorded.as_ref().is_none_or(|r| *r == outcome);
                ReplayOutcome::Finished { outcome, same }
            }
            ActivationEnd::Suspended | ActivationEnd::Released | ActivationEnd::OutOfTime => {
                ReplayOutcome::Consistent
            }
        };
        let logs = logs.lock().map(|l| l.clone()).unwrap_or_default();
        Ok(ReplayCheck {
            matched: report.replayed_steps,
            outcome,
            logs,
        })
    }
}

fn is_divergence(error: &ErrorInfo) -> bool {
    error.code == ErrorCode::NonDeterministic.as_str()
}

/// A driver that never decides anything: every step past the journal ends
/// the activation, and nothing is persisted.
struct CheckDriver {
    run_id: crate::model::RunId,
    logs: Arc<Mutex<Vec<LogLine>>>,
    now: Millis,
}

#[async_trait]
impl StepDriver for CheckDriver {
    async fn schedule(&mut self, _seq: u32, _call: &StepCall) -> Result<Resolution, DriverError> {
        Ok(Resolution::Suspend)
    }

    async fn in_flight(&mut self, _step: &StepRecord) -> Result<Resolution, DriverError> {
        Ok(Resolution::Suspend)
    }

    async fn inline_attempt(
        &mut self,
        _seq: u32,
        _call: &StepCall,
        _attempt: u32,
        _stored: Option<&StepRecord>,
        _outcome: StepOutcome,
    ) -> Result<Resolution, DriverError> {
        Ok(Resolution::Suspend)
    }

    /// A member started past the journal: as if started, never finishing.
    async fn start(&mut self, seq: u32, call: &StepCall) -> Result<StepRecord, DriverError> {
        Ok(StepRecord::new(&self.run_id, seq, call, self.now))
    }

    async fn probe(&mut self, _step: &StepRecord) -> Result<Probe, DriverError> {
        Ok(Probe::Suspended)
    }

    async fn join(
        &mut self,
        _seq: u32,
        _call: &StepCall,
        _chosen: &str,
    ) -> Result<Resolution, DriverError> {
        Ok(Resolution::Suspend)
    }

    async fn await_members(
        &mut self,
        _members: &[StepRecord],
        _wake_at: Option<Millis>,
    ) -> Result<Resolution, DriverError> {
        Ok(Resolution::Suspend)
    }

    fn log(&mut self, line: LogLine) {
        if let Ok(mut logs) = self.logs.lock() {
            logs.push(line);
        }
    }

    async fn finish(&mut self, _outcome: &ActivationEnd) -> Result<(), DriverError> {
        Ok(())
    }
}
