//! The embedded backend: one SQLite database in the data directory.
//!
//! It mirrors the seed's DynamoDB tables (`runs`, `steps` with an index on
//! `run_id`, `step_history`) and also holds the work queue and the module
//! registry, so a single process needs nothing else. Every commit is
//! durable before it returns (WAL with `synchronous=FULL`), which is what
//! lets `weft dev` be killed at any moment and pick every run up again.

mod group_commit;
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

/// Where the embedded backend keeps its state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `weft.db` in the data directory; every commit fsynced before it
    /// returns (WAL, `synchronous=FULL`).
    #[default]
    Fsync,
    /// An in-memory database: nothing survives the process. For benchmarks
    /// and throwaway runs (`weft run`); module blobs still go to the data
    /// directory.
    Memory,
}

/// The embedded backend. Implements [`StateStore`], and also
/// [`crate::queue::WorkQueue`] and [`crate::modules::ModuleStore`] on the
/// same database.
pub struct SqliteBackend {
    conn: Arc<Mutex<Connection>>,
    /// A second connection for reads in durable mode: WAL readers do not
    /// wait for the writer, so a read never queues behind an fsync.
    reader: Option<Mutex<Connection>>,
    durability: Durability,
    /// Shares fsyncs between concurrent state writes (durable mode only).
    committer: Option<group_commit::GroupCommitter>,
    dir: PathBuf,
    pub(crate) queue_settings: QueueSettings,
    /// Wakes in-process receivers when a message is sent, so the local
    /// worker does not wait for its next poll.
    pub(crate) queue_signal: Notify,
}

impl SqliteBackend {
    /// Opens (creating if needed) the database in `dir`.
    pub fn open(dir: &Path, queue_settings: QueueSettings) -> Result<Self, StoreError> {
        Self::open_with(dir, queue_settings, Durability::Fsync)
    }

    /// [`SqliteBackend::open`] with a choice of [`Durability`].
    pub fn open_with(
        dir: &Path,
        queue_settings: QueueSettings,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Backend(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join("weft.db");
        let conn = match durability {
            Durability::Fsync => Connection::open(&path),
            Durability::Memory => Connection::open_in_memory(),
        }
        .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
        schema::prepare(&conn).map_err(StoreError::backend)?;
        let conn = Arc::new(Mutex::new(conn));
        let (committer, reader) = match durability {
            Durability::Fsync => {
                let committer = group_commit::GroupCommitter::start(Arc::clone(&conn))
                    .map_err(StoreError::backend)?;
                let reader = Connection::open(&path)
                    .and_then(|r| {
                        r.busy_timeout(Duration::from_secs(5))?;
                        Ok(r)
                    })
                    .map_err(|e| {
                        StoreError::Backend(format!("cannot open {}: {e}", path.display()))
                    })?;
                (Some(committer), Some(Mutex::new(reader)))
            }
            Durability::Memory => (None, None),
        };
        Ok(Self {
            conn,
            reader,
            durability,
            committer,
            dir: dir.to_path_buf(),
            queue_settings,
            queue_signal: Notify::new(),
        })
    }

    /// The data directory (module blobs and compiled artifacts live here too).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `f`, which may write, on the connection: on the blocking pool
    /// when a commit waits for an fsync, on this thread when nothing does
    /// (an in-memory database answers in microseconds, less than the hop to
    /// another thread costs).
    pub(crate) async fn with_conn<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        if self.durability == Durability::Memory {
            return f(&mut *locked(&self.conn)?);
        }
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || f(&mut *locked(&conn)?))
            .await
            .map_err(|e| StoreError::Backend(format!("database task failed: {e}")))?
    }
}

impl SqliteBackend {
    /// Runs `f`, which only reads, on this thread: a read takes
    /// microseconds and never waits for the disk (WAL readers do not fsync,
    /// and in durable mode reads have their own connection), so a hop to
    /// the blocking pool would cost more than the read.
    pub(crate) fn read_conn<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<R, StoreError>,
    {
        f(&mut *locked(self.reader.as_ref().unwrap_or(&self.conn))?)
    }

    /// Performs `work` as one atomic write: through the group committer in
    /// durable mode (sharing its fsync with concurrent writes), in a
    /// transaction on this thread in memory.
    pub(crate) async fn write<F>(&self, work: F) -> Result<(), StoreError>
    where
        F: FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        match &self.committer {
            Some(committer) => committer.commit(work).await,
            None => {
                let mut guard = locked(&self.conn)?;
                let tx = guard.transaction().map_err(db_err)?;
                work(&tx)?;
                tx.commit().map_err(db_err)
            }
        }
    }
}

/// The connection behind `m`, waiting for it if another call holds it.
fn locked(m: &Mutex<Connection>) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
    m.lock()
        .map_err(|_| StoreError::Backend("database mutex poisoned".into()))
}

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

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

    async fn list_runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>, StoreError> {
        self.read_conn(|c| rows::list_runs(c, query))
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
    for attempt in &write.attempts {
        rows::put_attempt(c, attempt).map_err(db_err)?;
    }
    for (run_id, line) in &write.logs {
        rows::put_log(c, run_id, line).map_err(db_err)?;
    }
    Ok(())
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
