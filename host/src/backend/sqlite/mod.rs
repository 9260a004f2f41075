//! The embedded backend: one SQLite database in the data directory.
//!
//! It mirrors the seed's DynamoDB tables (`runs`, `steps` with an index on
//! `run_id`, `step_history`) and also holds the work queue and the module
//! registry, so a single process needs nothing else. Every commit is
//! durable before it returns (WAL with `synchronous=FULL`), which is what
//! lets `weft dev` be killed at any moment and pick every run up again.

pub mod blobs;
mod callbacks;
mod events;
mod group_commit;
mod modules;
mod queue;
mod rows;
mod schedules;
mod schema;
mod state;

use crate::backend::{QueueError, StoreError};
use crate::model::{Clock, SystemClock};
use rusqlite::Connection;
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

/// How to open the embedded backend.
#[derive(Clone)]
pub struct EmbeddedOptions {
    pub queue: QueueSettings,
    pub durability: Durability,
    /// Where the queue reads the time (delays, visibility). The service's
    /// clock, so a test that moves time moves it for the queue too.
    pub clock: Arc<dyn Clock>,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            queue: QueueSettings::default(),
            durability: Durability::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// The embedded backend. Implements [`crate::backend::StateStore`],
/// [`crate::backend::WorkQueue`] and [`crate::backend::ModuleStore`] on the
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
    queue_settings: QueueSettings,
    clock: Arc<dyn Clock>,
    /// Wakes in-process receivers when a message is sent, so the local
    /// worker does not wait for its next poll.
    queue_signal: Notify,
}

impl SqliteBackend {
    /// Opens (creating if needed) the database in `dir`.
    pub fn open(dir: &Path, options: EmbeddedOptions) -> Result<Self, StoreError> {
        let EmbeddedOptions {
            queue: queue_settings,
            durability,
            clock,
        } = options;
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
            clock,
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
    async fn with_conn<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.on_conn(f).await
    }

    /// [`SqliteBackend::with_conn`] for the queue, which answers in its
    /// own error type.
    async fn with_queue_conn<R, F>(&self, f: F) -> Result<R, QueueError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, QueueError> + Send + 'static,
    {
        self.on_conn(f).await
    }

    async fn on_conn<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: DbFailure + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, E> + Send + 'static,
    {
        if self.durability == Durability::Memory {
            return f(&mut *locked(&self.conn).map_err(E::db)?);
        }
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || f(&mut *locked(&conn).map_err(E::db)?))
            .await
            .map_err(|e| E::db(format!("database task failed: {e}")))?
    }
}

impl SqliteBackend {
    /// Runs `f`, which only reads, on this thread: a read takes
    /// microseconds and never waits for the disk (WAL readers do not fsync,
    /// and in durable mode reads have their own connection), so a hop to
    /// the blocking pool would cost more than the read.
    fn read_conn<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<R, StoreError>,
    {
        f(
            &mut *locked(self.reader.as_ref().unwrap_or(&self.conn))
                .map_err(StoreError::Backend)?,
        )
    }

    /// Performs `work` as one atomic write: through the group committer in
    /// durable mode (sharing its fsync with concurrent writes), in a
    /// transaction on this thread in memory.
    async fn write<F>(&self, work: F) -> Result<(), StoreError>
    where
        F: FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        match &self.committer {
            Some(committer) => committer.commit(work).await,
            None => {
                let mut guard = locked(&self.conn).map_err(StoreError::Backend)?;
                let tx = guard.transaction().map_err(db_err)?;
                work(&tx)?;
                tx.commit().map_err(db_err)
            }
        }
    }
}

/// The connection behind `m`, waiting for it if another call holds it.
fn locked(m: &Mutex<Connection>) -> Result<std::sync::MutexGuard<'_, Connection>, String> {
    m.lock().map_err(|_| "database mutex poisoned".to_string())
}

/// The error each seam's own type gives a database failure, so the state
/// store answers [`StoreError`] and the queue [`QueueError`] from the same
/// connection helpers.
trait DbFailure {
    fn db(message: String) -> Self;
}

impl DbFailure for StoreError {
    fn db(message: String) -> Self {
        StoreError::Backend(message)
    }
}

impl DbFailure for QueueError {
    fn db(message: String) -> Self {
        QueueError::Backend(message)
    }
}

fn db_err(e: rusqlite::Error) -> StoreError {
    match e {
        // What `rows::corrupt` and row decoding report: the row is not
        // what Weft wrote.
        rusqlite::Error::InvalidParameterName(what)
        | rusqlite::Error::InvalidColumnType(_, what, _) => StoreError::Corrupt(what),
        e @ rusqlite::Error::FromSqlConversionFailure(..) => StoreError::Corrupt(e.to_string()),
        e => StoreError::Backend(e.to_string()),
    }
}
