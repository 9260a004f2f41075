//! Mapping between model records and SQLite rows.

use super::db_err;
use crate::backend::{QuietCursor, QuietPage, RunQuery, StoreError};
use crate::model::{
    AttemptRecord, Digest, ErrorInfo, Lease, LogLine, Millis, ParentLink, RunHead, RunId,
    RunRecord, RunStatus, StepKind, StepOptions, StepRecord, StepStatus,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::str::FromStr;

const RUN_COLUMNS: &str = "id, workflow, module_digest, status, input, output, error, created_at, \
     updated_at, version, lease_owner, lease_expires_at, step_names, wake_at, deadline, awaiting, \
     parent_run_id, parent_step, parent_detached, expires_at";

const STEP_COLUMNS: &str = "run_id, step_name, seq, kind, rpc_name, input, status, result, error, \
     attempt_count, options, wake_at, lease_owner, lease_expires_at, created_at, updated_at, completed_at, \
     host_losses";

fn corrupt(what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidParameterName(format!("stored {what} is invalid: {value:?}"))
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serialising our own plain data types cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn from_json<T: serde::de::DeserializeOwned>(
    what: &str,
    text: Option<String>,
) -> rusqlite::Result<Option<T>> {
    match text {
        None => Ok(None),
        Some(t) => serde_json::from_str(&t)
            .map(Some)
            .map_err(|_| corrupt(what, &t)),
    }
}

fn lease(owner: Option<String>, expires_at: Option<i64>) -> Option<Lease> {
    Some(Lease {
        owner: owner?,
        expires_at: expires_at.unwrap_or(0) as u64,
    })
}

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let id: String = row.get(0)?;
    let digest: String = row.get(2)?;
    let status: String = row.get(3)?;
    Ok(RunRecord {
        id: RunId::from_str(&id).map_err(|_| corrupt("run id", &id))?,
        workflow: row.get(1)?,
        module_digest: Digest::parse(&digest).ok_or_else(|| corrupt("digest", &digest))?,
        status: RunStatus::parse(&status).ok_or_else(|| corrupt("run status", &status))?,
        input: row.get(4)?,
        output: row.get(5)?,
        error: from_json("error", row.get(6)?)?,
        created_at: row.get::<_, i64>(7)? as u64,
        updated_at: row.get::<_, i64>(8)? as u64,
        version: row.get::<_, i64>(9)? as u64,
        lease: lease(row.get(10)?, row.get(11)?),
        // Filled from the journal table by the callers (`with_journal`).
        step_names: Default::default(),
        wake_at: row.get::<_, Option<i64>>(13)?.map(|v| v as u64),
        deadline: row.get::<_, Option<i64>>(14)?.map(|v| v as u64),
        awaiting: from_json::<Vec<String>>("awaiting", row.get(15)?)?.unwrap_or_default(),
        parent: match (
            row.get::<_, Option<String>>(16)?,
            row.get::<_, Option<String>>(17)?,
        ) {
            (Some(run_id), Some(step)) => Some(ParentLink {
                run_id: RunId::from_str(&run_id).map_err(|_| corrupt("parent run id", &run_id))?,
                step,
                detached: row.get::<_, Option<bool>>(18)?.unwrap_or(false),
            }),
            _ => None,
        },
        expires_at: row.get::<_, Option<i64>>(19)?.map(|v| v as u64),
    })
}

fn step_from_row(row: &Row<'_>) -> rusqlite::Result<StepRecord> {
    let run_id: String = row.get(0)?;
    let kind: String = row.get(3)?;
    let status: String = row.get(6)?;
    let options: String = row.get(10)?;
    Ok(StepRecord {
        run_id: RunId::from_str(&run_id).map_err(|_| corrupt("run id", &run_id))?,
        name: row.get(1)?,
        seq: row.get(2)?,
        kind: StepKind::parse(&kind).ok_or_else(|| corrupt("step kind", &kind))?,
        rpc_name: row.get(4)?,
        input: row.get(5)?,
        status: StepStatus::parse(&status).ok_or_else(|| corrupt("step status", &status))?,
        result: row.get(7)?,
        error: from_json("error", row.get(8)?)?,
        attempt_count: row.get(9)?,
        options: from_json::<StepOptions>("options", Some(options))?.unwrap_or_default(),
        wake_at: row.get::<_, Option<i64>>(11)?.map(|v| v as u64),
        lease: lease(row.get(12)?, row.get(13)?),
        created_at: row.get::<_, i64>(14)? as u64,
        updated_at: row.get::<_, i64>(15)? as u64,
        completed_at: row.get::<_, Option<i64>>(16)?.map(|v| v as u64),
        host_losses: row.get(17)?,
    })
}

pub(super) fn insert_run(c: &Connection, r: &RunRecord) -> rusqlite::Result<()> {
    c.execute(
        &format!(
            "INSERT INTO runs ({RUN_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20)"
        ),
        params![
            r.id.as_str(),
            r.workflow,
            r.module_digest.as_str(),
            r.status.as_str(),
            r.input,
            r.output,
            r.error.as_ref().map(to_json),
            r.created_at as i64,
            r.updated_at as i64,
            r.version as i64,
            r.lease.as_ref().map(|l| l.owner.clone()),
            r.lease.as_ref().map(|l| l.expires_at as i64),
            "[]",
            r.wake_at.map(|v| v as i64),
            r.deadline.map(|v| v as i64),
            awaiting_json(r),
            r.parent.as_ref().map(|p| p.run_id.as_str().to_string()),
            r.parent.as_ref().map(|p| p.step.clone()),
            r.parent.as_ref().map(|p| p.detached),
            r.expires_at.map(|v| v as i64),
        ],
    )?;
    sync_journal(c, r)
}

/// The run's `awaiting` column: a JSON list of names, NULL when empty.
fn awaiting_json(r: &RunRecord) -> Option<String> {
    (!r.awaiting.is_empty()).then(|| to_json(&r.awaiting))
}

/// Makes the journal table hold `r.step_names`, touching only what
/// changed: normally one new name at the end.
fn sync_journal(c: &Connection, r: &RunRecord) -> rusqlite::Result<()> {
    let stored: i64 = c
        .prepare_cached("SELECT COALESCE(MAX(seq) + 1, 0) FROM journal WHERE run_id = ?1")?
        .query_row([r.id.as_str()], |row| row.get(0))?;
    let wanted = r.step_names.len() as i64;
    if wanted < stored {
        c.prepare_cached("DELETE FROM journal WHERE run_id = ?1 AND seq >= ?2")?
            .execute(params![r.id.as_str(), wanted])?;
    }
    let mut insert = c.prepare_cached(
        "INSERT OR REPLACE INTO journal (run_id, seq, step_name) VALUES (?1, ?2, ?3)",
    )?;
    for (seq, name) in r
        .step_names
        .iter()
        .enumerate()
        .skip(stored.min(wanted) as usize)
    {
        insert.execute(params![r.id.as_str(), seq as i64, name])?;
    }
    Ok(())
}

/// Fills in the run's journal index from the journal table.
fn with_journal(c: &Connection, mut r: RunRecord) -> rusqlite::Result<RunRecord> {
    let mut stmt =
        c.prepare_cached("SELECT step_name FROM journal WHERE run_id = ?1 ORDER BY seq")?;
    let names = stmt.query_map([r.id.as_str()], |row| row.get(0))?;
    r.step_names = names.collect::<rusqlite::Result<Vec<String>>>()?.into();
    Ok(r)
}

/// Writes `r` over the run if it is still at `expected_version`; returns
/// the number of rows changed (0 when the condition failed).
pub(super) fn update_run(
    c: &Connection,
    r: &RunRecord,
    expected_version: u64,
) -> rusqlite::Result<usize> {
    let n = c
        .prepare_cached(
            "UPDATE runs SET status = ?2, output = ?3, error = ?4, updated_at = ?5, version = ?6,
             lease_owner = ?7, lease_expires_at = ?8, wake_at = ?10, awaiting = ?11, expires_at = ?12
         WHERE id = ?1 AND version = ?9",
        )?
        .execute(params![
            r.id.as_str(),
            r.status.as_str(),
            r.output,
            r.error.as_ref().map(to_json),
            r.updated_at as i64,
            (expected_version + 1) as i64,
            r.lease.as_ref().map(|l| l.owner.clone()),
            r.lease.as_ref().map(|l| l.expires_at as i64),
            expected_version as i64,
            r.wake_at.map(|v| v as i64),
            awaiting_json(r),
            r.expires_at.map(|v| v as i64),
        ])?;
    if n == 1 {
        sync_journal(c, r)?;
    }
    Ok(n)
}

pub(super) fn get_run(c: &Connection, id: &RunId) -> Result<Option<RunRecord>, StoreError> {
    let run = c
        .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))
        .and_then(|mut stmt| stmt.query_row([id.as_str()], run_from_row).optional())
        .map_err(db_err)?;
    run.map(|r| with_journal(c, r)).transpose().map_err(db_err)
}

/// A run's [`RunHead`]: one row, no journal index.
pub(super) fn get_run_head(c: &Connection, id: &RunId) -> Result<Option<RunHead>, StoreError> {
    c.prepare_cached(
        "SELECT id, status, version, lease_owner, lease_expires_at, wake_at, deadline, awaiting
         FROM runs WHERE id = ?1",
    )
    .and_then(|mut stmt| {
        stmt.query_row([id.as_str()], |row| {
            let id: String = row.get(0)?;
            let status: String = row.get(1)?;
            Ok(RunHead {
                id: RunId::from_str(&id).map_err(|_| corrupt("run id", &id))?,
                status: RunStatus::parse(&status).ok_or_else(|| corrupt("run status", &status))?,
                version: row.get::<_, i64>(2)? as u64,
                lease: lease(row.get(3)?, row.get(4)?),
                wake_at: row.get::<_, Option<i64>>(5)?.map(|v| v as u64),
                deadline: row.get::<_, Option<i64>>(6)?.map(|v| v as u64),
                awaiting: from_json::<Vec<String>>("awaiting", row.get(7)?)?.unwrap_or_default(),
            })
        })
        .optional()
    })
    .map_err(db_err)
}

pub(super) fn list_runs(c: &Connection, q: &RunQuery) -> Result<Vec<RunRecord>, StoreError> {
    let limit = if q.limit == 0 { 100 } else { q.limit } as i64;
    let mut stmt = c
        .prepare(&format!(
            "SELECT {RUN_COLUMNS} FROM runs
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR workflow = ?2)
               AND (?4 IS NULL OR created_at < ?4 OR (created_at = ?4 AND id < ?5))
             ORDER BY created_at DESC, id DESC LIMIT ?3"
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map(
            params![
                q.status.map(|s| s.as_str()),
                q.workflow,
                limit,
                q.after.as_ref().map(|c| c.created_at as i64),
                q.after.as_ref().map(|c| c.id.as_str()),
            ],
            run_from_row,
        )
        .map_err(db_err)?;
    rows.map(|r| with_journal(c, r?))
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)
}

/// A running run's attention time in SQL; the `runs_quiet` index is on
/// this exact expression.
pub(super) const ATTENTION_AT: &str =
    "max(updated_at, coalesce(wake_at, 0), coalesce(lease_expires_at, 0))";

/// The statement behind [`list_quiet_runs`]. `INDEXED BY`: the planner,
/// without statistics, would rather read every running run through
/// `runs_by_status` and sort them.
pub(super) fn quiet_runs_sql() -> String {
    format!(
        "SELECT {RUN_COLUMNS} FROM runs INDEXED BY runs_quiet
         WHERE status = 'running' AND {ATTENTION_AT} <= ?1
           AND ({ATTENTION_AT}, id) > (?2, ?3)
         ORDER BY {ATTENTION_AT}, id LIMIT ?4"
    )
}

pub(super) fn list_quiet_runs(
    c: &Connection,
    quiet_before: Millis,
    after: Option<&QuietCursor>,
    limit: usize,
) -> Result<QuietPage, StoreError> {
    let limit = limit.max(1);
    let mut stmt = c.prepare_cached(&quiet_runs_sql()).map_err(db_err)?;
    let rows = stmt
        .query_map(
            params![
                quiet_before as i64,
                // Before every run when there is no cursor.
                after.map_or(-1, |c| c.at as i64),
                after.map_or("", |c| c.id.as_str()),
                limit as i64,
            ],
            run_from_row,
        )
        .map_err(db_err)?;
    let runs = rows
        .map(|r| with_journal(c, r?))
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    let next = (runs.len() == limit)
        .then(|| runs.last())
        .flatten()
        .and_then(|last| {
            Some(QuietCursor {
                at: last.attention_at()?,
                id: last.id.clone(),
            })
        });
    Ok(QuietPage { runs, next })
}

fn step_params(s: &StepRecord) -> [Box<dyn rusqlite::ToSql + '_>; 19] {
    [
        Box::new(StepRecord::key(&s.run_id, &s.name)),
        Box::new(s.run_id.as_str()),
        Box::new(&s.name),
        Box::new(s.seq),
        Box::new(s.kind.as_str()),
        Box::new(&s.rpc_name),
        Box::new(&s.input),
        Box::new(s.status.as_str()),
        Box::new(&s.result),
        Box::new(s.error.as_ref().map(to_json)),
        Box::new(s.attempt_count),
        Box::new(to_json(&s.options)),
        Box::new(s.wake_at.map(|v| v as i64)),
        Box::new(s.lease.as_ref().map(|l| l.owner.clone())),
        Box::new(s.lease.as_ref().map(|l| l.expires_at as i64)),
        Box::new(s.created_at as i64),
        Box::new(s.updated_at as i64),
        Box::new(s.completed_at.map(|v| v as i64)),
        Box::new(s.host_losses),
    ]
}

/// Inserts a step unless its key exists; returns whether it was inserted.
pub(super) fn insert_step(c: &Connection, s: &StepRecord) -> rusqlite::Result<bool> {
    let p = step_params(s);
    let n = c.execute(
        &format!(
            "INSERT OR IGNORE INTO steps (run_step_key, {STEP_COLUMNS})
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19)"
        ),
        rusqlite::params_from_iter(p.iter().map(|b| b.as_ref())),
    )?;
    Ok(n == 1)
}

/// Overwrites a step if it is in the expected state; returns whether it was.
pub(super) fn update_step(
    c: &Connection,
    s: &StepRecord,
    status: StepStatus,
    attempt_count: u32,
) -> rusqlite::Result<bool> {
    let p = step_params(s);
    let n = c.execute(
        "UPDATE steps SET status = ?8, result = ?9, error = ?10, attempt_count = ?11, options = ?12,
             wake_at = ?13, lease_owner = ?14, lease_expires_at = ?15, updated_at = ?17, completed_at = ?18,
             host_losses = ?19
         WHERE run_step_key = ?1 AND status = ?20 AND attempt_count = ?21",
        rusqlite::params_from_iter(
            p.iter()
                .map(|b| b.as_ref())
                .chain([&status.as_str() as &dyn rusqlite::ToSql, &attempt_count]),
        ),
    )?;
    Ok(n == 1)
}

pub(super) fn get_step(c: &Connection, key: &str) -> Result<Option<StepRecord>, StoreError> {
    c.query_row(
        &format!("SELECT {STEP_COLUMNS} FROM steps WHERE run_step_key = ?1"),
        [key],
        step_from_row,
    )
    .optional()
    .map_err(db_err)
}

pub(super) fn list_steps(c: &Connection, run_id: &RunId) -> Result<Vec<StepRecord>, StoreError> {
    let mut stmt = c
        .prepare(&format!(
            "SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ?1 ORDER BY seq"
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map([run_id.as_str()], step_from_row)
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

pub(super) fn put_attempt(c: &Connection, a: &AttemptRecord) -> rusqlite::Result<()> {
    c.execute(
        "INSERT OR REPLACE INTO step_history (step_id, attempt_count, status, error, started_at, ended_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            a.step_id,
            a.attempt,
            a.status.as_str(),
            a.error.as_ref().map(to_json),
            a.started_at as i64,
            a.ended_at.map(|v| v as i64),
        ],
    )?;
    Ok(())
}

pub(super) fn list_attempts(
    c: &Connection,
    step_id: &str,
) -> Result<Vec<AttemptRecord>, StoreError> {
    let mut stmt = c
        .prepare(
            "SELECT step_id, attempt_count, status, error, started_at, ended_at
             FROM step_history WHERE step_id = ?1 ORDER BY attempt_count",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map([step_id], |row| {
            let status: String = row.get(2)?;
            Ok(AttemptRecord {
                step_id: row.get(0)?,
                attempt: row.get(1)?,
                status: StepStatus::parse(&status)
                    .ok_or_else(|| corrupt("attempt status", &status))?,
                error: from_json::<ErrorInfo>("error", row.get(3)?)?,
                started_at: row.get::<_, i64>(4)? as u64,
                ended_at: row.get::<_, Option<i64>>(5)?.map(|v| v as u64),
            })
        })
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

pub(super) fn put_log(c: &Connection, run_id: &RunId, l: &LogLine) -> rusqlite::Result<()> {
    c.execute(
        "INSERT OR REPLACE INTO run_logs (run_id, position, idx, at, level, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            run_id.as_str(),
            l.position,
            l.index,
            l.at as i64,
            l.level,
            l.message
        ],
    )?;
    Ok(())
}

pub(super) fn list_logs(c: &Connection, run_id: &RunId) -> Result<Vec<LogLine>, StoreError> {
    let mut stmt = c
        .prepare(
            "SELECT position, idx, at, level, message FROM run_logs
             WHERE run_id = ?1 ORDER BY position, idx",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map([run_id.as_str()], |row| {
            Ok(LogLine {
                position: row.get(0)?,
                index: row.get(1)?,
                at: row.get::<_, i64>(2)? as u64,
                level: row.get(3)?,
                message: row.get(4)?,
            })
        })
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

/// Finished runs due for deletion at `now`, earliest expiry first.
pub(super) fn expired_runs(
    c: &Connection,
    now: Millis,
    limit: usize,
) -> Result<Vec<RunId>, StoreError> {
    let mut stmt = c
        .prepare_cached(
            "SELECT id FROM runs WHERE expires_at IS NOT NULL AND expires_at <= ?1
             ORDER BY expires_at LIMIT ?2",
        )
        .map_err(db_err)?;
    let ids = stmt
        .query_map(params![now as i64, limit as i64], |row| {
            let id: String = row.get(0)?;
            RunId::from_str(&id).map_err(|_| corrupt("run id", &id))
        })
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    Ok(ids)
}

/// Deletes a finished run and every row recorded for it, in one
/// transaction (the caller's).
pub(super) fn delete_run(c: &Connection, id: &RunId) -> Result<(), StoreError> {
    let status: Option<String> = c
        .query_row(
            "SELECT status FROM runs WHERE id = ?1",
            [id.as_str()],
            |row| row.get(0),
        )
        .optional()
        .map_err(db_err)?;
    match status.as_deref() {
        None => return Ok(()),
        Some("running") => {
            return Err(StoreError::Conflict(format!("run {id} is still running")));
        }
        Some(_) => {}
    }
    // Attempts are keyed by `runId#step`: the run's prefix, up to the `#`.
    let prefix = format!("{id}#");
    c.execute(
        "DELETE FROM step_history WHERE step_id >= ?1 AND step_id < ?2",
        params![prefix, format!("{id}$")],
    )
    .map_err(db_err)?;
    for sql in [
        "DELETE FROM steps WHERE run_id = ?1",
        "DELETE FROM run_logs WHERE run_id = ?1",
        "DELETE FROM journal WHERE run_id = ?1",
        "DELETE FROM events WHERE run_id = ?1",
        "DELETE FROM callbacks WHERE run_id = ?1",
        "DELETE FROM runs WHERE id = ?1",
    ] {
        c.execute(sql, [id.as_str()]).map_err(db_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sweep's statement is answered from the `runs_quiet` index: with
    /// the expression spelled differently (or the index missing) SQLite
    /// would scan every run and the sweep's cost would follow the table.
    #[test]
    fn quiet_runs_are_read_through_their_index() {
        let conn = Connection::open_in_memory().expect("open");
        super::super::schema::prepare(&conn).expect("schema");
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", quiet_runs_sql()))
            .expect("plan")
            .query_map(params![0i64, -1i64, "", 10i64], |r| r.get::<_, String>(3))
            .expect("rows")
            .collect::<rusqlite::Result<_>>()
            .expect("plan rows");
        assert!(
            plan.iter()
                .any(|step| step.contains("USING INDEX runs_quiet")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN runs")),
            "{plan:?}"
        );
    }
}
