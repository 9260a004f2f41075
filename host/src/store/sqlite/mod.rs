//! The embedded backend: one SQLite database in the data directory.
//!
//! It mirrors the seed's DynamoDB tables (`runs`, `steps` with an index on
//! `run_id`, `step_history`) and also holds the work queue and the module
//! registry, so a single process needs nothing else. Every commit is
//! durable before it returns (WAL with `synchronous=FULL`), which is what
//! lets `weft dev` be killed at any moment and pick every run up again.

mod rows;
mod schema;

use crate::model::{AttemptRecord, LogLine, Millis, RunId, RunRecord, StepRecord};
use crate::store::{RunQuery, StateStore, StateWrite, StepExpect, StoreError};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Tuning of the embedded queue; defaults match SQS's behaviour closely
/// enough that the same worker code is correct on both.
#[derive(Clone, Debug)]
pub struct QueueSettings {
    /// How long a received message stays invisible before redelivery.
    pub visibility_timeout: Duration,
    /// Receives after which a message is moved to the dead-letter queue.
    pub max_receives: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(60),
            max_receives: 5,
        }
    }
}

/// The embedded backend. Implements [`StateStore`], and also
/// [`crate::queue::WorkQueue`] and [`crate::modules::ModuleStore`] on the
/// same database.
pub struct SqliteBackend {
    conn: Arc<Mutex<Connection>>,
    dir: PathBuf,
    pub(crate) queue_settings: QueueSettings,
    /// Wakes in-process receivers when a message is sent, so the local
    /// worker does not wait for its next poll.
    pub(crate) queue_signal: Notify,
}

impl SqliteBackend {
    /// Opens (creating if needed) the database in `dir`.
    pub fn open(dir: &Path, queue_settings: QueueSettings) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Backend(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join("weft.db");
        let conn = Connection::open(&path)
            .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
        schema::prepare(&conn).map_err(StoreError::backend)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            dir: dir.to_path_buf(),
            queue_settings,
            queue_signal: Notify::new(),
        })
    }

    /// The data directory (module blobs and compiled artifacts live here too).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `f` on the connection on the blocking pool: SQLite calls block,
    /// and a commit waits for an fsync.
    pub(crate) async fn with_conn<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Backend("database mutex poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("database task failed: {e}")))?
    }
}

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

#[async_trait]
impl StateStore for SqliteBackend {
    async fn create_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let run = run.clone();
        self.with_conn(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            let exists: bool = tx
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
            rows::insert_run(&tx, &run).map_err(db_err)?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn get_run(&self, id: &RunId) -> Result<Option<RunRecord>, StoreError> {
        let id = id.clone();
        self.with_conn(move |c| rows::get_run(c, &id)).await
    }

    async fn list_runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>, StoreError> {
        let query = query.clone();
        self.with_conn(move |c| rows::list_runs(c, &query)).await
    }

    async fn acquire_run_lease(
        &self,
        id: &RunId,
        owner: &str,
        now: Millis,
        ttl_ms: u64,
    ) -> Result<RunRecord, StoreError> {
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
            let run = rows::get_run(&tx, &id)?;
            let Some(run) = run else {
                return Err(StoreError::NotFound(format!("run {id}")));
            };
            if updated == 0 {
                return Err(StoreError::Conflict(lease_conflict(&run)));
            }
            tx.commit().map_err(db_err)?;
            Ok(run)
        })
        .await
    }

    async fn commit(&self, write: StateWrite) -> Result<(), StoreError> {
        if write.is_empty() {
            return Ok(());
        }
        self.with_conn(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            if let Some(run) = &write.run {
                let n = rows::update_run(&tx, &run.record, run.expected_version).map_err(db_err)?;
                if n == 0 {
                    return Err(StoreError::Conflict(format!(
                        "run {} is no longer at version {}",
                        run.record.id, run.expected_version
                    )));
                }
            }
            for step in &write.steps {
                let applied = match step.expect {
                    StepExpect::Absent => rows::insert_step(&tx, &step.record).map_err(db_err)?,
                    StepExpect::State {
                        status,
                        attempt_count,
                    } => rows::update_step(&tx, &step.record, status, attempt_count)
                        .map_err(db_err)?,
                };
                if !applied {
                    return Err(StoreError::Conflict(format!(
                        "step {} is not in the expected state ({:?})",
                        StepRecord::key(&step.record.run_id, &step.record.name),
                        step.expect
                    )));
                }
            }
            for attempt in &write.attempts {
                rows::put_attempt(&tx, attempt).map_err(db_err)?;
            }
            for (run_id, line) in &write.logs {
                rows::put_log(&tx, run_id, line).map_err(db_err)?;
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn get_step(&self, run_id: &RunId, name: &str) -> Result<Option<StepRecord>, StoreError> {
        let key = StepRecord::key(run_id, name);
        self.with_conn(move |c| rows::get_step(c, &key)).await
    }

    async fn get_steps(
        &self,
        run_id: &RunId,
        names: &[String],
    ) -> Result<Vec<StepRecord>, StoreError> {
        let keys: Vec<String> = names.iter().map(|n| StepRecord::key(run_id, n)).collect();
        self.with_conn(move |c| {
            let mut out = Vec::with_capacity(keys.len());
            for key in &keys {
                if let Some(step) = rows::get_step(c, key)? {
                    out.push(step);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn list_steps(&self, run_id: &RunId) -> Result<Vec<StepRecord>, StoreError> {
        let run_id = run_id.clone();
        self.with_conn(move |c| rows::list_steps(c, &run_id)).await
    }

    async fn list_attempts(&self, step_key: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let key = step_key.to_string();
        self.with_conn(move |c| rows::list_attempts(c, &key)).await
    }

    async fn list_logs(&self, run_id: &RunId) -> Result<Vec<LogLine>, StoreError> {
        let run_id = run_id.clone();
        self.with_conn(move |c| rows::list_logs(c, &run_id)).await
    }
}

fn lease_conflict(run: &RunRecord) -> String {
    match (&run.status, &run.lease) {
        (status, _) if status.is_terminal() => format!("run {} is {}", run.id, status.as_str()),
        (_, Some(lease)) => format!(
            "run {} is leased by {} until {}",
            run.id, lease.owner, lease.expires_at
        ),
        _ => format!("run {} changed concurrently", run.id),
    }
}
