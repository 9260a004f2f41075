//! Replay-checked upgrades: a new version of a workflow is replayed against
//! the journals of the runs still running on older versions before any of
//! them moves, and only the runs it replays exactly are moved onto it.
//!
//! Runs stay pinned to the module they started with unless an upgrade moves
//! them. The check is [`Weft::check_replay`] on each run's journal; the move
//! is a conditional write on the run's version ([`StateStore::repin_run`]),
//! so a run that took a step between its check and its move is checked
//! again on its new journal rather than moved on an old verdict.
//!
//! [`StateStore::repin_run`]: crate::backend::StateStore::repin_run

use super::{ServiceError, Weft};
use crate::backend::{RunCursor, RunQuery, StoreError};
use crate::model::{ErrorInfo, ModuleKind, ModuleVersion, RunId, RunRecord, RunStatus};
use crate::registry::DeployError;

/// What a checked deploy does besides checking.
#[derive(Clone, Copy, Debug, Default)]
pub struct UpgradeOptions {
    /// Publish the module as the newest version and move every run it
    /// replays exactly onto it. Without: only report.
    pub upgrade: bool,
    /// Check at most this many running runs (newest first); the others are
    /// neither checked nor moved.
    pub sample: Option<usize>,
}

/// A run the new module does not replay as recorded.
#[derive(Clone, Debug)]
pub struct Diverging {
    pub run: RunId,
    /// `non_deterministic` with the position, the journal's step and the
    /// replay's, or how the replay otherwise went wrong.
    pub error: ErrorInfo,
}

/// The outcome of a checked deploy.
#[derive(Clone, Debug)]
pub struct UpgradeReport {
    /// The module checked, as it would be (or was) published.
    pub module: ModuleVersion,
    /// Whether it was published as the newest version.
    pub published: bool,
    /// Running runs of the workflow on another module.
    pub running: usize,
    pub checked: usize,
    /// Runs the module replays exactly.
    pub compatible: Vec<RunId>,
    pub diverging: Vec<Diverging>,
    /// Runs moved onto the module (an upgrade).
    pub moved: Vec<RunId>,
    /// Runs that finished between their check and their move.
    pub finished: Vec<RunId>,
}

/// How often a run that keeps moving between its check and its move is
/// checked again before it is left where it is.
const MOVE_ATTEMPTS: usize = 5;

/// Running runs read per page.
const PAGE: usize = 200;

impl Weft {
    /// Validates `bytes` as a new version of workflow `name`, replays the
    /// journal of each of its running runs (all, or `options.sample`) with
    /// it, and, with `options.upgrade`, publishes it and moves the runs it
    /// replays exactly onto it.
    pub async fn deploy_checked(
        &self,
        name: &str,
        bytes: Vec<u8>,
        options: UpgradeOptions,
    ) -> Result<UpgradeReport, ServiceError> {
        let module = self.registry.stage(name, bytes, &[]).await?;
        if module.kind != ModuleKind::Workflow {
            return Err(DeployError::Invalid(format!(
                "{name}: only a workflow's runs can be checked; this is an RPC module"
            ))
            .into());
        }
        let runs = self.running_runs(name).await?;
        let others: Vec<RunRecord> = runs
            .into_iter()
            .filter(|r| r.module_digest != module.digest)
            .collect();
        let mut report = UpgradeReport {
            running: others.len(),
            checked: 0,
            compatible: Vec::new(),
            diverging: Vec::new(),
            moved: Vec::new(),
            finished: Vec::new(),
            published: false,
            module,
        };
        let sample = options.sample.unwrap_or(others.len());
        let mut checked_versions = Vec::new();
        for run in others.iter().take(sample) {
            report.checked += 1;
            match self.verdict(&run.id, &report.module).await? {
                Verdict::Compatible(version) => {
                    report.compatible.push(run.id.clone());
                    checked_versions.push((run.id.clone(), version));
                }
                Verdict::Diverges(error) => report.diverging.push(Diverging {
                    run: run.id.clone(),
                    error,
                }),
                Verdict::Finished => report.finished.push(run.id.clone()),
            }
        }
        if !options.upgrade {
            return Ok(report);
        }
        report.module = self.registry.publish(&report.module).await?;
        report.published = true;
        for (id, version) in checked_versions {
            self.move_run(&id, version, &mut report).await?;
        }
        Ok(report)
    }

    /// Every running run of `workflow`, newest first.
    pub(super) async fn running_runs(
        &self,
        workflow: &str,
    ) -> Result<Vec<RunRecord>, ServiceError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .state
                .list_runs(&RunQuery {
                    status: Some(RunStatus::Running),
                    workflow: Some(workflow.to_string()),
                    limit: PAGE,
                    after: after.take(),
                })
                .await?;
            let last = page.last().map(RunCursor::after);
            let full = page.len() == PAGE;
            all.extend(page);
            match last {
                Some(cursor) if full => after = Some(cursor),
                _ => return Ok(all),
            }
        }
    }

    /// Replays run `id` as it stands now with `module`.
    async fn verdict(&self, id: &RunId, module: &ModuleVersion) -> Result<Verdict, ServiceError> {
        let (run, journal) = self.journal(id).await?;
        if run.status.is_terminal() {
            return Ok(Verdict::Finished);
        }
        let check = self.check_replay(&run, journal, &module.digest).await?;
        Ok(if check.consistent() {
            Verdict::Compatible(run.version)
        } else {
            Verdict::Diverges(match check.outcome {
                super::ReplayOutcome::Diverged { error } => error,
                super::ReplayOutcome::Finished {
                    outcome: Err(error),
                    ..
                } => error,
                other => ErrorInfo::new(
                    "non_deterministic",
                    format!("the replay ended differently: {other:?}"),
                ),
            })
        })
    }

    /// Moves a checked run onto the published module, checking it again
    /// whenever it moved on since its last check.
    async fn move_run(
        &self,
        id: &RunId,
        mut version: u64,
        report: &mut UpgradeReport,
    ) -> Result<(), ServiceError> {
        for _ in 0..MOVE_ATTEMPTS {
            match self
                .state
                .repin_run(id, version, &report.module.digest)
                .await
            {
                Ok(()) => {
                    report.moved.push(id.clone());
                    self.forget(id);
                    return Ok(());
                }
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
            match self.verdict(id, &report.module).await? {
                Verdict::Compatible(now) => version = now,
                Verdict::Diverges(error) => {
                    report.compatible.retain(|c| c != id);
                    report.diverging.push(Diverging {
                        run: id.clone(),
                        error,
                    });
                    return Ok(());
                }
                Verdict::Finished => {
                    report.compatible.retain(|c| c != id);
                    report.finished.push(id.clone());
                    return Ok(());
                }
            }
        }
        tracing::warn!(run = %id, "the run kept moving; it stays on its module");
        Ok(())
    }
}

enum Verdict {
    /// Replays exactly, as of this run version.
    Compatible(u64),
    Diverges(ErrorInfo),
    Finished,
}
