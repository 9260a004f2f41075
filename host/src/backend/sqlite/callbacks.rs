//! Callbacks on the embedded backend: the `callbacks` table, keyed by the
//! token's hash. A callback leaves `waiting` by one conditional update,
//! to `completed` (its completion) or `expired` (its wait timed out).

use super::db_err;
use crate::backend::{CallbackWrite, StoreError};
use crate::model::{CallbackRecord, CallbackState, ErrorInfo, Millis, RunId, StepOutcome};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::str::FromStr;

const COLUMNS: &str =
    "hash, run_id, step, created_at, expires_at, state, result, error, completed_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<CallbackRecord> {
    let bad = |what: &str| rusqlite::Error::InvalidParameterName(format!("callback {what}"));
    let run_id: String = row.get(1)?;
    let state: String = row.get(5)?;
    let error: Option<String> = row.get(7)?;
    let error: Option<ErrorInfo> = match error {
        Some(text) => Some(serde_json::from_str(&text).map_err(|_| bad("error"))?),
        None => None,
    };
    Ok(CallbackRecord {
        hash: row.get(0)?,
        run_id: RunId::from_str(&run_id).map_err(|_| bad("run id"))?,
        step: row.get(2)?,
        created_at: row.get::<_, i64>(3)? as u64,
        expires_at: row.get::<_, Option<i64>>(4)?.map(|t| t as u64),
        state: match state.as_str() {
            "waiting" => CallbackState::Waiting,
            "expired" => CallbackState::Expired,
            "completed" => CallbackState::Completed {
                result: row.get(6)?,
                error,
                completed_at: row.get::<_, Option<i64>>(8)?.unwrap_or(0) as u64,
            },
            _ => return Err(bad("state")),
        },
    })
}

pub(super) fn get(c: &Connection, hash: &str) -> Result<Option<CallbackRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM callbacks WHERE hash = ?1");
    c.query_row(&sql, [hash], from_row)
        .optional()
        .map_err(db_err)
}

/// Applies one callback change of a state write, or fails it whole.
pub(super) fn apply(c: &Connection, write: &CallbackWrite) -> Result<(), StoreError> {
    let changed = match write {
        CallbackWrite::Create(cb) => c
            .execute(
                "INSERT OR IGNORE INTO callbacks (hash, run_id, step, created_at, expires_at, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'waiting')",
                params![
                    cb.hash,
                    cb.run_id.as_str(),
                    cb.step,
                    cb.created_at as i64,
                    cb.expires_at.map(|t| t as i64)
                ],
            )
            .map_err(db_err)?,
        CallbackWrite::Expire { hash } => c
            .execute(
                "UPDATE callbacks SET state = 'expired' WHERE hash = ?1 AND state = 'waiting'",
                [hash],
            )
            .map_err(db_err)?,
    };
    if changed == 0 {
        return Err(StoreError::Conflict(format!(
            "callback change {write:?} found the callback in another state"
        )));
    }
    Ok(())
}

/// Completes a waiting callback that has not expired at `now`.
pub(super) fn complete(
    c: &Connection,
    hash: &str,
    outcome: &StepOutcome,
    now: Millis,
) -> Result<CallbackRecord, StoreError> {
    let (result, error) = match outcome {
        Ok(json) => (Some(json.clone()), None),
        Err(e) => (None, Some(serde_json::to_string(e).unwrap_or_default())),
    };
    let changed = c
        .execute(
            "UPDATE callbacks SET state = 'completed', result = ?2, error = ?3, completed_at = ?4
             WHERE hash = ?1 AND state = 'waiting' AND (expires_at IS NULL OR expires_at > ?4)",
            params![hash, result, error, now as i64],
        )
        .map_err(db_err)?;
    let stored = get(c, hash)?;
    match (changed, stored) {
        (_, None) => Err(StoreError::NotFound("callback".into())),
        (0, Some(_)) => Err(StoreError::Conflict(
            "the callback was completed or has expired".into(),
        )),
        (_, Some(cb)) => Ok(cb),
    }
}
