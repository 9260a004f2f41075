//! Run inboxes on the embedded backend: the `events` table.
//!
//! Events of one (run, name) are numbered densely from 0 in the order they
//! were stored; a wait takes the lowest-numbered one not yet taken, inside
//! the transaction that records the wait's outcome.

use super::db_err;
use crate::backend::{EventTake, NewEvent, StoreError};
use crate::model::{EventRecord, EventSent, RunId, RunStatus};
use rusqlite::{Connection, OptionalExtension, Row, params};

const COLUMNS: &str = "name, seq, event_id, payload, sent_at, taken_by";

/// Reads a row of `COLUMNS` as an event of `run_id` (the rows are always
/// selected by run).
fn reader(run_id: &RunId) -> impl Fn(&Row<'_>) -> rusqlite::Result<EventRecord> + '_ {
    move |row| {
        Ok(EventRecord {
            run_id: run_id.clone(),
            name: row.get(0)?,
            seq: row.get::<_, i64>(1)? as u64,
            event_id: row.get(2)?,
            payload: row.get(3)?,
            sent_at: row.get::<_, i64>(4)? as u64,
            taken_by: row.get(5)?,
        })
    }
}

/// Stores `event` unless its id is there already (a repeat is answered as
/// such even once the run has ended); a new event needs a running run.
pub(super) fn send(c: &Connection, event: &NewEvent) -> Result<EventSent, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM events WHERE run_id = ?1 AND name = ?2 AND event_id = ?3");
    let existing = c
        .query_row(
            &sql,
            params![event.run_id.as_str(), event.name, event.event_id],
            reader(&event.run_id),
        )
        .optional()
        .map_err(db_err)?;
    if let Some(existing) = existing {
        return Ok(EventSent::Duplicate(existing));
    }
    let status: Option<String> = c
        .query_row(
            "SELECT status FROM runs WHERE id = ?1",
            [event.run_id.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?;
    match status.as_deref() {
        None => return Err(StoreError::NotFound(format!("run {}", event.run_id))),
        Some(s) if s != RunStatus::Running.as_str() => {
            return Err(StoreError::Conflict(format!(
                "run {} is {s}; it takes no more events",
                event.run_id
            )));
        }
        Some(_) => {}
    }
    let seq: i64 = c
        .query_row(
            "SELECT coalesce(max(seq) + 1, 0) FROM events WHERE run_id = ?1 AND name = ?2",
            params![event.run_id.as_str(), event.name],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    c.execute(
        "INSERT INTO events (run_id, name, seq, event_id, payload, sent_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            event.run_id.as_str(),
            event.name,
            seq,
            event.event_id,
            event.payload,
            event.sent_at as i64
        ],
    )
    .map_err(db_err)?;
    Ok(EventSent::Stored(EventRecord {
        run_id: event.run_id.clone(),
        name: event.name.clone(),
        seq: seq as u64,
        event_id: event.event_id.clone(),
        payload: event.payload.clone(),
        sent_at: event.sent_at,
        taken_by: None,
    }))
}

/// The oldest event of `name` no wait has taken.
pub(super) fn next(
    c: &Connection,
    run_id: &RunId,
    name: &str,
) -> Result<Option<EventRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE run_id = ?1 AND name = ?2 AND taken_by IS NULL ORDER BY seq LIMIT 1"
    );
    c.query_row(&sql, params![run_id.as_str(), name], reader(run_id))
        .optional()
        .map_err(db_err)
}

/// Every event of the run, by name and number.
pub(super) fn list(c: &Connection, run_id: &RunId) -> Result<Vec<EventRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM events WHERE run_id = ?1 ORDER BY name, seq");
    let mut statement = c.prepare(&sql).map_err(db_err)?;
    let rows = statement
        .query_map([run_id.as_str()], reader(run_id))
        .map_err(db_err)?;
    rows.collect::<Result<_, _>>().map_err(db_err)
}

/// Binds event `take.seq` to its wait step, if it is the oldest untaken.
pub(super) fn take(c: &Connection, take: &EventTake) -> Result<(), StoreError> {
    let taken = c
        .execute(
            "UPDATE events SET taken_by = ?4
             WHERE run_id = ?1 AND name = ?2 AND seq = ?3 AND taken_by IS NULL
               AND NOT EXISTS (SELECT 1 FROM events e
                               WHERE e.run_id = ?1 AND e.name = ?2 AND e.seq < ?3 AND e.taken_by IS NULL)",
            params![take.run_id.as_str(), take.name, take.seq as i64, take.step],
        )
        .map_err(db_err)?;
    if taken == 0 {
        return Err(StoreError::Conflict(format!(
            "event `{}` #{} of run {} is taken, missing or not the oldest waiting",
            take.name, take.seq, take.run_id
        )));
    }
    Ok(())
}
