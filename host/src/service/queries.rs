//! Reading runs for display, for waiting, and for replaying them elsewhere
//! (`weft replay`); never for a replay that records.

use super::{ServiceError, StepView, Weft};
use crate::backend::RunQuery;
use crate::model::{Digest, EventRecord, LogLine, RunId, RunRecord, RunStatus, StepRecord};
use std::collections::HashMap;
use std::time::Duration;

impl Weft {
    /// The step a running run is waiting on (its last, unfinished step), so
    /// an operator can see why it has not finished.
    pub async fn waiting_on(&self, run: &RunRecord) -> Result<Option<StepRecord>, ServiceError> {
        let Some(last) = run
            .step_names
            .last()
            .filter(|_| run.status == RunStatus::Running)
        else {
            return Ok(None);
        };
        let step = self.state.get_step(&run.id, last).await?;
        Ok(step.filter(|s| !s.status.is_final()))
    }

    /// Reads a run, strongly consistent.
    pub async fn get_run(&self, id: &RunId) -> Result<RunRecord, ServiceError> {
        self.state
            .get_run(id)
            .await?
            .ok_or_else(|| ServiceError::UnknownRun(id.to_string()))
    }

    pub async fn list_runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>, ServiceError> {
        Ok(self.state.list_runs(query).await?)
    }

    /// A run's steps in journal order, each with its attempts.
    pub async fn steps(&self, id: &RunId) -> Result<Vec<StepView>, ServiceError> {
        let run = self.get_run(id).await?;
        let steps = self.state.get_steps(&run.id, &run.step_names).await?;
        let mut out = Vec::with_capacity(steps.len());
        for step in steps {
            let attempts = self
                .state
                .list_attempts(&StepRecord::key(&step.run_id, &step.name))
                .await?;
            out.push(StepView { step, attempts });
        }
        Ok(out)
    }

    /// A run with its journal (its recorded steps, in journal order, read
    /// by key as a replay reads them): what `weft replay` replays.
    pub async fn journal(&self, id: &RunId) -> Result<(RunRecord, Vec<StepRecord>), ServiceError> {
        let run = self.get_run(id).await?;
        let steps = self.state.get_steps(&run.id, &run.step_names).await?;
        Ok((run, steps))
    }

    /// The bytes of the module with `digest`, if any is stored.
    pub async fn module_bytes(&self, digest: &Digest) -> Result<Option<Vec<u8>>, ServiceError> {
        Ok(self.registry.store().get_blob(digest).await?)
    }

    /// Every event sent to a run, taken or not.
    pub async fn events(&self, id: &RunId) -> Result<Vec<EventRecord>, ServiceError> {
        self.get_run(id).await?;
        Ok(self.state.list_events(id).await?)
    }

    /// How many of `workflow`'s runs are still running on each module
    /// digest: which versions are still in use.
    pub async fn running_by_digest(
        &self,
        workflow: &str,
    ) -> Result<HashMap<Digest, usize>, ServiceError> {
        let mut counts = HashMap::new();
        for run in self.running_runs(workflow).await? {
            *counts.entry(run.module_digest).or_insert(0) += 1;
        }
        Ok(counts)
    }

    pub async fn logs(&self, id: &RunId) -> Result<Vec<LogLine>, ServiceError> {
        self.get_run(id).await?;
        Ok(self.state.list_logs(id).await?)
    }

    /// Waits up to `timeout` for the run to finish; returns it either way.
    pub async fn wait_for(&self, id: &RunId, timeout: Duration) -> Result<RunRecord, ServiceError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut poll = Duration::from_millis(20);
        loop {
            let notified = self.finished.notified();
            let run = self.get_run(id).await?;
            let now = tokio::time::Instant::now();
            if run.status.is_terminal() || now >= deadline {
                return Ok(run);
            }
            // Runs finished by another process are only seen by polling.
            let nap = poll.min(deadline - now);
            let _ = tokio::time::timeout(nap, notified).await;
            poll = (poll * 2).min(Duration::from_millis(500));
        }
    }
}
