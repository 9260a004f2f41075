//! Schedules on the embedded backend: the `schedules` table, one row per
//! schedule (the record as JSON), with its next fire time in a column of
//! its own and indexed, so finding the due ones reads only those.

use super::db_err;
use crate::backend::{ScheduleWrite, StoreError};
use crate::model::{Millis, Schedule};
use rusqlite::{Connection, OptionalExtension, params};

fn decode(body: String) -> Result<Schedule, StoreError> {
    serde_json::from_str(&body)
        .map_err(|e| StoreError::Corrupt(format!("stored schedule is not readable: {e}")))
}

fn encode(schedule: &Schedule) -> String {
    // Serialising our own plain data cannot fail.
    serde_json::to_string(schedule).unwrap_or_default()
}

pub(super) fn put(c: &Connection, write: &ScheduleWrite) -> Result<(), StoreError> {
    let mut record = write.record.clone();
    record.version = write.expected_version.map_or(0, |v| v + 1);
    let due = record
        .next_fire_at
        .filter(|_| !record.paused)
        .map(|t| t as i64);
    let changed = match write.expected_version {
        None => c.execute(
            "INSERT OR IGNORE INTO schedules (name, next_fire_at, version, body) VALUES (?1, ?2, ?3, ?4)",
            params![record.name, due, record.version as i64, encode(&record)],
        ),
        Some(expected) => c.execute(
            "UPDATE schedules SET next_fire_at = ?2, version = ?3, body = ?4 WHERE name = ?1 AND version = ?5",
            params![record.name, due, record.version as i64, encode(&record), expected as i64],
        ),
    }
    .map_err(db_err)?;
    if changed == 0 {
        return Err(StoreError::Conflict(format!(
            "schedule `{}` changed concurrently",
            record.name
        )));
    }
    Ok(())
}

pub(super) fn get(c: &Connection, name: &str) -> Result<Option<Schedule>, StoreError> {
    c.query_row(
        "SELECT body FROM schedules WHERE name = ?1",
        [name],
        |row| row.get::<_, String>(0),
    )
    .optional()
    .map_err(db_err)?
    .map(decode)
    .transpose()
}

fn query(
    c: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Schedule>, StoreError> {
    let mut stmt = c.prepare_cached(sql).map_err(db_err)?;
    let bodies = stmt
        .query_map(args, |row| row.get::<_, String>(0))
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(db_err)?;
    bodies.into_iter().map(decode).collect()
}

pub(super) fn list(c: &Connection) -> Result<Vec<Schedule>, StoreError> {
    query(c, "SELECT body FROM schedules ORDER BY name", [])
}

pub(super) fn due(c: &Connection, now: Millis, limit: usize) -> Result<Vec<Schedule>, StoreError> {
    query(
        c,
        "SELECT body FROM schedules INDEXED BY schedules_due
         WHERE next_fire_at IS NOT NULL AND next_fire_at <= ?1 ORDER BY next_fire_at LIMIT ?2",
        params![now as i64, limit as i64],
    )
}

pub(super) fn delete(c: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(c.execute("DELETE FROM schedules WHERE name = ?1", [name])
        .map_err(db_err)?
        > 0)
}
