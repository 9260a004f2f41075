//! Callbacks in DynamoDB: one item per callback in the runs table, keyed
//! `callback#<hash>` (a run id has no `#`, so no run shares the key; the
//! item has no `status` or `quietShard`, so neither of those indexes lists
//! it; it is in the `purge-index` under its run's id, so the retention sweep
//! deletes it with the run). Its `state`
//! leaves `waiting` by one conditional update: a completion, or the expiry
//! a timed-out wait writes inside its own transaction.

use super::items::{Item, error_value, get_n, get_s, n, opt_error, opt_n, opt_s, s};
use super::{DynamoStore, Write, retention};
use crate::backend::{CallbackWrite, StoreError};
use crate::model::{CallbackRecord, CallbackState, Millis, RunId, StepOutcome};
use std::collections::HashMap;
use std::str::FromStr;

fn key_of(hash: &str) -> String {
    format!("callback#{hash}")
}

fn key(hash: &str) -> Item {
    Item::from([("id".to_string(), s(key_of(hash)))])
}

fn state_names() -> HashMap<String, String> {
    HashMap::from([("#state".to_string(), "state".to_string())])
}

fn callback_from(hash: &str, item: &Item) -> Result<CallbackRecord, StoreError> {
    let run = get_s(item, "runId")?;
    let state = match get_s(item, "state")?.as_str() {
        "waiting" => CallbackState::Waiting,
        "expired" => CallbackState::Expired,
        "completed" => CallbackState::Completed {
            result: opt_s(item, "result"),
            error: opt_error(item, "error")?,
            completed_at: opt_n(item, "completedAt")?.unwrap_or(0),
        },
        other => {
            return Err(StoreError::Corrupt(format!(
                "callback {hash} has state {other:?}"
            )));
        }
    };
    Ok(CallbackRecord {
        hash: hash.to_string(),
        run_id: RunId::from_str(&run)
            .map_err(|_| StoreError::Corrupt(format!("callback {hash} has run id {run:?}")))?,
        step: get_s(item, "step")?,
        created_at: get_n(item, "createdAt")?,
        expires_at: opt_n(item, "expiresAt")?,
        state,
    })
}

impl DynamoStore {
    pub(super) async fn callback(&self, hash: &str) -> Result<Option<CallbackRecord>, StoreError> {
        match self.runs_item(key_of(hash)).await? {
            Some(item) => callback_from(hash, &item).map(Some),
            None => Ok(None),
        }
    }

    /// The write of one callback change inside a commit.
    pub(super) fn callback_write(&self, change: &CallbackWrite) -> Write {
        match change {
            CallbackWrite::Create(cb) => {
                let mut item = key(&cb.hash);
                item.extend(retention::owned_by(&cb.run_id, &key_of(&cb.hash)));
                item.insert("runId".into(), s(cb.run_id.as_str()));
                item.insert("step".into(), s(&cb.step));
                item.insert("createdAt".into(), n(cb.created_at));
                item.insert("state".into(), s("waiting"));
                if let Some(at) = cb.expires_at {
                    item.insert("expiresAt".into(), n(at));
                }
                self.new_item(item)
            }
            CallbackWrite::Expire { hash } => Write::Update {
                table: self.runs.clone(),
                key: key(hash),
                expression: "SET #state = :expired".into(),
                condition: "#state = :waiting".into(),
                names: state_names(),
                values: HashMap::from([
                    (":expired".to_string(), s("expired")),
                    (":waiting".to_string(), s("waiting")),
                ]),
            },
        }
    }

    pub(super) async fn complete(
        &self,
        hash: &str,
        outcome: StepOutcome,
        now: Millis,
    ) -> Result<CallbackRecord, StoreError> {
        // The outcome goes to `result` or to `error`, never both.
        let (attribute, value) = match &outcome {
            Ok(json) => ("result", s(json)),
            Err(e) => ("error", error_value(e)),
        };
        let values = HashMap::from([
            (":completed".to_string(), s("completed")),
            (":waiting".to_string(), s("waiting")),
            (":now".to_string(), n(now)),
            (":outcome".to_string(), value),
        ]);
        let mut names = state_names();
        names.insert("#outcome".into(), attribute.into());
        let write = Write::Update {
            table: self.runs.clone(),
            key: key(hash),
            expression: "SET #state = :completed, completedAt = :now, #outcome = :outcome".into(),
            condition:
                "#state = :waiting AND (attribute_not_exists(expiresAt) OR expiresAt > :now)".into(),
            names,
            values,
        };
        let written = self.write_one(write).await;
        let stored = self.callback(hash).await?;
        match (written, stored) {
            (_, None) => Err(StoreError::NotFound("callback".into())),
            (Err(StoreError::Conflict(_)), Some(_)) => Err(StoreError::Conflict(
                "the callback was completed or has expired".into(),
            )),
            (Err(e), Some(_)) => Err(e),
            (Ok(()), Some(cb)) => Ok(cb),
        }
    }
}
