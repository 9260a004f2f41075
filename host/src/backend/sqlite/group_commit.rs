//! Group commit: state writes from concurrent activations share one SQLite
//! transaction, and so one fsync.
//!
//! Each write still commits atomically and conditionally on its own (a
//! savepoint inside the shared transaction, rolled back alone if its
//! condition fails), and none is acknowledged before the fsync that makes
//! it durable. A lone write pays one fsync as before; fifty writes arriving
//! together pay one between them instead of fifty.

use super::db_err;
use crate::backend::StoreError;
use rusqlite::Connection;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Most writes folded into one transaction: bounds how long readers wait
/// for the connection.
const MAX_BATCH: usize = 128;

/// One write: runs inside the shared transaction (in its own savepoint).
type Work = Box<dyn FnOnce(&Connection) -> Result<(), StoreError> + Send>;

struct Job {
    work: Work,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// The handle writers send to; the thread behind it ends when it is dropped.
pub(super) struct GroupCommitter {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl GroupCommitter {
    /// Starts the committing thread on `conn`.
    pub(super) fn start(conn: Arc<Mutex<Connection>>) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("weft-sqlite-commit".into())
            .spawn(move || run(&conn, &queue))?;
        Ok(Self {
            jobs: Mutex::new(jobs),
        })
    }

    /// Performs `work` and commits it durably, together with whatever else
    /// is waiting. An error from `work` undoes only `work`.
    pub(super) async fn commit<F>(&self, work: F) -> Result<(), StoreError>
    where
        F: FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        self.jobs
            .lock()
            .map_err(|_| StoreError::Backend("commit queue poisoned".into()))?
            .send(Job {
                work: Box::new(work),
                done,
            })
            .map_err(|_| StoreError::Backend("the commit thread has stopped".into()))?;
        result
            .await
            .map_err(|_| StoreError::Backend("the commit thread dropped a write".into()))?
    }
}

fn run(conn: &Mutex<Connection>, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (works, dones): (Vec<Work>, Vec<_>) =
            batch.into_iter().map(|j| (j.work, j.done)).unzip();
        // The work (and what it owns) is gone before anyone is answered.
        let results = commit_batch(conn, works);
        for (done, result) in dones.into_iter().zip(results) {
            let _ = done.send(result);
        }
    }
}

/// One transaction for the batch; one savepoint per write. Returns each
/// write's result; if the final commit fails, every write failed.
fn commit_batch(conn: &Mutex<Connection>, works: Vec<Work>) -> Vec<Result<(), StoreError>> {
    let count = works.len();
    let fail_all = |e: StoreError| (0..count).map(|_| Err(e.clone())).collect();
    let mut guard = match super::locked(conn) {
        Ok(g) => g,
        Err(e) => return fail_all(StoreError::Backend(e)),
    };
    let mut tx = match guard.transaction() {
        Ok(tx) => tx,
        Err(e) => return fail_all(db_err(e)),
    };
    let mut results = Vec::with_capacity(count);
    for work in works {
        let result = (|| {
            let savepoint = tx.savepoint().map_err(db_err)?;
            work(&savepoint)?;
            savepoint.commit().map_err(db_err)
        })();
        // Some errors (I/O, a full disk, no memory) make SQLite roll the
        // whole transaction back on its own. The writes already answered
        // "done" in it are gone then: fail them all, rather than let a
        // later savepoint's COMMIT report them durable.
        if result.is_err() && tx.is_autocommit() {
            return fail_all(StoreError::Backend(
                "SQLite rolled the batch back after an error".into(),
            ));
        }
        results.push(result);
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => fail_all(db_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write that fills the disk makes SQLite roll the whole shared
    /// transaction back on its own. Whatever the batch answers, each answer
    /// must match the database: "done" only for a row that is there.
    #[test]
    fn answers_match_the_database_when_sqlite_rolls_a_batch_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = Connection::open(dir.path().join("t.db")).expect("open");
        conn.execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY, body BLOB)")
            .expect("schema");
        // A tiny database: the second write below cannot fit (SQLITE_FULL).
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .expect("page count");
        conn.pragma_update(None, "max_page_count", pages + 2)
            .expect("cap");
        let insert = |id: &'static str, size: usize| -> Work {
            Box::new(move |c: &Connection| {
                c.execute(
                    "INSERT INTO t (id, body) VALUES (?1, ?2)",
                    rusqlite::params![id, vec![7u8; size]],
                )
                .map(drop)
                .map_err(db_err)
            })
        };
        let conn = Mutex::new(conn);
        let works = vec![insert("a", 10), insert("full", 1 << 20), insert("c", 10)];
        let results = commit_batch(&conn, works);

        let guard = conn.lock().expect("lock");
        for (id, result) in ["a", "full", "c"].into_iter().zip(&results) {
            let present = guard
                .query_row("SELECT 1 FROM t WHERE id = ?1", [id], |_| Ok(()))
                .is_ok();
            assert_eq!(
                result.is_ok(),
                present,
                "write {id} was answered {result:?} but is {} the database",
                if present { "in" } else { "not in" }
            );
        }
        assert!(results[1].is_err(), "the oversized write must fail");
    }
}
