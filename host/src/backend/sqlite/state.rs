//! The embedded backend's [`StateStore`]: runs, steps, attempts and logs as
//! rows, every write applied with its conditions inside one transaction.

use super::{SqliteBackend, callbacks, db_err, events, rows, schedules};
use crate::backend::{
    NewEvent, QuietCursor, QuietPage, RunQuery, ScheduleWrite, StateStore, StateWrite, StepExpect,
    StoreError,
};
use crate::model::{
    AttemptRecord, CallbackRecord, EventRecord, EventSent, LogLine, Millis, RunHead, RunId,
    RunRecord, RunStatus, Schedule, StepOutcome, StepRecord,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

#[async_trait]
impl StateStore for SqliteBackend {
    async fn create_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let run = run.clone();
        self.write(move |c| {
            let exists: bool = c
                .query_row(
                    "SELECT 1 FROM runs WHERE id = ?1",
                    [run.id.as_str()],
                    |_| Ok(true),
                )
                .optional()
                .map_err(db_err)?
                .unwrap_or(false);
            if exists {
                return Err(StoreError::Conflict(format!(
                    "run {} already exists",
                    run.id
                )));
            }
            rows::insert_run(c, &run).map_err(db_err)
        })
        .await
    }

    async fn get_run(&self, id: &RunId) -> Result<Option<RunRecord>, StoreError> {
        self.read_conn(|c| rows::get_run(c, id))
    }

    async fn get_run_head(&self, id: &RunId) -> Result<Option<RunHead>, StoreError> {
        self.read_conn(|c| rows::get_run_head(c, id))
    }

    async fn list_runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>, StoreError> {
        self.read_conn(|c| rows::list_runs(c, query))
    }

    async fn list_quiet_runs(
        &self,
        quiet_before: Millis,
        after: Option<&QuietCursor>,
        limit: usize,
    ) -> Result<QuietPage, StoreError> {
        self.read_conn(|c| rows::list_quiet_runs(c, quiet_before, after, limit))
    }

    async fn acquire_run_lease(
        &self,
        id: &RunId,
        owner: &str,
        now: Millis,
        ttl_ms: u64,
    ) -> Result<RunRecord, StoreError> {
        self.lease_run(id, owner, now, ttl_ms, rows::get_run).await
    }

    async fn acquire_run_lease_head(
        &self,
        id: &RunId,
        owner: &str,
        now: Millis,
        ttl_ms: u64,
    ) -> Result<RunHead, StoreError> {
        self.lease_run(id, owner, now, ttl_ms, rows::get_run_head)
            .await
    }

    async fn commit(&self, write: StateWrite) -> Result<(), StoreError> {
        if write.is_empty() {
            return Ok(());
        }
        self.write(move |c| apply_write(c, &write)).await
    }

    async fn get_step(&self, run_id: &RunId, name: &str) -> Result<Option<StepRecord>, StoreError> {
        let key = StepRecord::key(run_id, name);
        self.read_conn(move |c| rows::get_step(c, &key))
    }

    async fn get_steps(
        &self,
        run_id: &RunId,
        names: &[String],
    ) -> Result<Vec<StepRecord>, StoreError> {
        let keys: Vec<String> = names.iter().map(|n| StepRecord::key(run_id, n)).collect();
        self.read_conn(move |c| {
            let mut out = Vec::with_capacity(keys.len());
            for key in &keys {
                if let Some(step) = rows::get_step(c, key)? {
                    out.push(step);
                }
            }
            Ok(out)
        })
    }

    async fn list_steps(&self, run_id: &RunId) -> Result<Vec<StepRecord>, StoreError> {
        let run_id = run_id.clone();
        self.read_conn(move |c| rows::list_steps(c, &run_id))
    }

    async fn list_attempts(&self, step_key: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let key = step_key.to_string();
        self.read_conn(move |c| rows::list_attempts(c, &key))
    }

    async fn list_logs(&self, run_id: &RunId) -> Result<Vec<LogLine>, StoreError> {
        let run_id = run_id.clone();
        self.read_conn(move |c| rows::list_logs(c, &run_id))
    }

    async fn send_event(&self, event: NewEvent) -> Result<EventSent, StoreError> {
        self.with_conn(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            let sent = events::send(&tx, &event)?;
            tx.commit().map_err(db_err)?;
            Ok(sent)
        })
        .await
    }

    async fn list_events(&self, run_id: &RunId) -> Result<Vec<EventRecord>, StoreError> {
        self.read_conn(|c| events::list(c, run_id))
    }

    async fn next_event(
        &self,
        run_id: &RunId,
        name: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        self.read_conn(|c| events::next(c, run_id, name))
    }

    async fn put_schedule(&self, write: ScheduleWrite) -> Result<(), StoreError> {
        self.write(move |c| schedules::put(c, &write)).await
    }

    async fn get_schedule(&self, name: &str) -> Result<Option<Schedule>, StoreError> {
        self.read_conn(|c| schedules::get(c, name))
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        self.read_conn(|c| schedules::list(c))
    }

    async fn due_schedules(&self, now: Millis, limit: usize) -> Result<Vec<Schedule>, StoreError> {
        self.read_conn(|c| schedules::due(c, now, limit))
    }

    async fn delete_schedule(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.with_conn(move |c| schedules::delete(c, &name)).await
    }

    async fn expired_runs(&self, now: Millis, limit: usize) -> Result<Vec<RunId>, StoreError> {
        self.read_conn(|c| rows::expired_runs(c, now, limit))
    }

    async fn delete_run(&self, id: &RunId) -> Result<(), StoreError> {
        let id = id.clone();
        self.write(move |c| rows::delete_run(c, &id)).await
    }

    async fn repin_run(
        &self,
        id: &RunId,
        expected_version: u64,
        digest: &crate::model::Digest,
    ) -> Result<(), StoreError> {
        let (id, digest) = (id.clone(), digest.clone());
        self.write(move |c| {
            let changed = c
                .execute(
                    "UPDATE runs SET module_digest = ?2, version = version + 1
                     WHERE id = ?1 AND version = ?3 AND status = 'running'",
                    rusqlite::params![id.as_str(), digest.as_str(), expected_version as i64],
                )
                .map_err(db_err)?;
            if changed == 0 {
                return Err(StoreError::Conflict(format!(
                    "run {id} changed or finished before it could be moved"
                )));
            }
            Ok(())
        })
        .await
    }

    async fn get_callback(&self, hash: &str) -> Result<Option<CallbackRecord>, StoreError> {
        self.read_conn(|c| callbacks::get(c, hash))
    }

    async fn complete_callback(
        &self,
        hash: &str,
        outcome: StepOutcome,
        now: Millis,
    ) -> Result<CallbackRecord, StoreError> {
        let hash = hash.to_string();
        self.with_conn(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            let done = callbacks::complete(&tx, &hash, &outcome, now)?;
            tx.commit().map_err(db_err)?;
            Ok(done)
        })
        .await
    }
}

/// One state write, conditions checked, inside the caller's transaction
/// (or savepoint): nothing of it lands if any condition fails.
fn apply_write(c: &Connection, write: &StateWrite) -> Result<(), StoreError> {
    if let Some(run) = &write.run {
        let n = rows::update_run(c, &run.record, run.expected_version).map_err(db_err)?;
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "run {} is no longer at version {}",
                run.record.id, run.expected_version
            )));
        }
    }
    if let Some(id) = &write.require_running {
        let status: Option<String> = c
            .query_row(
                "SELECT status FROM runs WHERE id = ?1",
                params![id.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)?;
        if status.as_deref() != Some(RunStatus::Running.as_str()) {
            return Err(StoreError::Conflict(format!(
                "run {id} is {}, not running",
                status.as_deref().unwrap_or("gone")
            )));
        }
    }
    for step in &write.steps {
        let applied = match step.expect {
            StepExpect::Absent => rows::insert_step(c, &step.record).map_err(db_err)?,
            StepExpect::State {
                status,
                attempt_count,
            } => rows::update_step(c, &step.record, status, attempt_count).map_err(db_err)?,
        };
        if !applied {
            return Err(StoreError::Conflict(format!(
                "step {} is not in the expected state ({:?})",
                StepRecord::key(&step.record.run_id, &step.record.name),
                step.expect
            )));
        }
    }
    for take in &write.events {
        events::take(c, take)?;
    }
    for change in &write.callbacks {
        callbacks::apply(c, change)?;
    }
    for attempt in &write.attempts {
        rows::put_attempt(c, attempt).map_err(db_err)?;
    }
    for (run_id, line) in &write.logs {
        rows::put_log(c, run_id, line).map_err(db_err)?;
    }
    Ok(())
}

/// What a lease read returns: the run, or its head.
trait LeasedRun: Send + 'static {
    fn head(&self) -> RunHead;
}

impl LeasedRun for RunRecord {
    fn head(&self) -> RunHead {
        RunHead::from(self)
    }
}

impl LeasedRun for RunHead {
    fn head(&self) -> RunHead {
        self.clone()
    }
}

impl SqliteBackend {
    /// Takes run `id`'s lease and reads it back with `read`.
    async fn lease_run<T: LeasedRun>(
        &self,
        id: &RunId,
        owner: &str,
        now: Millis,
        ttl_ms: u64,
        read: fn(&rusqlite::Connection, &RunId) -> Result<Option<T>, StoreError>,
    ) -> Result<T, StoreError> {
        let (id, owner) = (id.clone(), owner.to_string());
        self.with_conn(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            let updated = tx
                .execute(
                    "UPDATE runs SET lease_owner = ?2, lease_expires_at = ?3, version = version + 1, updated_at = ?4
                     WHERE id = ?1 AND status = 'running'
                       AND (lease_owner IS NULL OR lease_expires_at <= ?4)",
                    params![id.as_str(), owner, (now + ttl_ms) as i64, now as i64],
                )
                .map_err(db_err)?;
            let Some(run) = read(&tx, &id)? else {
                return Err(StoreError::NotFound(format!("run {id}")));
            };
            if updated == 0 {
                return Err(StoreError::Conflict(lease_conflict(&run.head())));
            }
            tx.commit().map_err(db_err)?;
            Ok(run)
        })
        .await
    }
}

fn lease_conflict(run: &RunHead) -> String {
    match (&run.status, &run.lease) {
        (status, _) if status.is_terminal() => format!("run {} is {}", run.id, status.as_str()),
        (_, Some(lease)) => format!(
            "run {} is leased by {} until {}",
            run.id, lease.owner, lease.expires_at
        ),
        _ => format!("run {} changed concurrently", run.id),
    }
}
