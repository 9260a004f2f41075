//! Retention on DynamoDB: a finished run expires, and the retention sweep
//! deletes it with everything it stored.
//!
//! A finished run item with an expiry carries three attributes:
//! - `expiresAt`: the expiry in epoch **seconds**, the runs table's TTL
//!   attribute. DynamoDB's TTL deletes the item by itself, typically days
//!   after that time: a backstop for a deployment whose sweep never runs.
//!   It deletes the run item only; the rest is the sweep's work.
//! - `purgeGroup` = `expiry#<k>` (one of [`SHARDS`] partitions, from the
//!   id) and `purgeKey` = the expiry zero-padded, `#`, the id: the keys of
//!   the sparse `purge-index` GSI (keys only). The sweep queries each
//!   partition for keys up to now, so its cost follows the runs that are
//!   due, not the runs kept. Sixteen partitions keep a burst of finishing
//!   runs (one index write each) off a single partition's write limit.
//!
//! The same index answers the sweep's second question, what else a run
//! stored in the runs table: its event inboxes, events, sender-id markers
//! and callbacks carry `purgeGroup` = the run's id and `purgeKey` = their
//! own key. (Journal chunks do not: their keys follow from the run's
//! `stepBase`.) One index serves both because CloudFormation creates one
//! GSI per stack update, and because a per-run list kept in an item of
//! its own would hit the 400 KB limit on a run with thousands of callbacks.
//! Steps, attempts and logs are found by the keys they already have: the
//! steps table's `runId-index` and the journal, each step's key in the
//! history table, the run's id in the logs table.
//!
//! Callback items have an `expiresAt` of their own, in milliseconds: TTL
//! reads it as a date tens of thousands of years away and leaves them
//! alone, and they have no `expiry#` group, so the sweep does not list
//! them as runs.

use super::items::{Item, get_n, get_s, n, opt_n, s, step_base};
use super::{DynamoStore, MAX_QUERY_PAGE, journal, quiet};
use crate::backend::StoreError;
use crate::backend::aws::store_error;
use crate::model::{Millis, RunId, RunRecord, RunStatus, StepRecord};
use aws_sdk_dynamodb::types::AttributeValue;
use futures::{StreamExt, TryStreamExt};
use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

/// The GSI's name.
pub const INDEX: &str = "purge-index";

/// The runs table's TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expiresAt";

/// Partitions of the due runs in the index: the quiet index's, by the same
/// hash of the id.
pub const SHARDS: u32 = quiet::SHARDS;

/// Digits of a zero-padded time in seconds.
const WIDTH: usize = 12;

/// History queries in flight at once while a run's attempts are found.
const PARALLEL_QUERIES: usize = 8;

fn expiry_group(shard: u32) -> String {
    format!("expiry#{shard}")
}

/// An expiry in milliseconds as TTL seconds, rounded up: never early.
fn seconds(at: Millis) -> u64 {
    at.div_ceil(1000)
}

/// The retention attributes of run `run`: `None` while it runs or if it is
/// kept for ever (the index then does not hold it, and TTL never deletes it).
pub fn run_attributes(run: &RunRecord) -> Option<[(String, AttributeValue); 3]> {
    let at = run.expires_at.filter(|_| run.status.is_terminal())?;
    let secs = seconds(at);
    Some([
        (TTL_ATTRIBUTE.into(), n(secs)),
        ("purgeGroup".into(), s(expiry_group(quiet::shard(&run.id)))),
        ("purgeKey".into(), s(format!("{secs:0WIDTH$}#{}", run.id))),
    ])
}

/// A run item's expiry, in milliseconds.
pub fn expires_at(item: &Item) -> Result<Option<Millis>, StoreError> {
    Ok(opt_n::<u64>(item, TTL_ATTRIBUTE)?.map(|secs| secs.saturating_mul(1000)))
}

/// The index attributes of an item of the runs table keyed `key` that run
/// `run` stored (an inbox, an event, a marker, a callback).
pub fn owned_by(run: &RunId, key: &str) -> [(String, AttributeValue); 2] {
    [
        ("purgeGroup".into(), s(run.as_str())),
        ("purgeKey".into(), s(key)),
    ]
}

/// The names a journal item holds (the run item's `stepNames`, a chunk's
/// `names`), read leniently: a damaged journal must not keep a run from
/// being deleted, and the steps are also found through their index.
fn names(item: &Item, attribute: &str) -> Vec<String> {
    item.get(attribute)
        .and_then(|v| v.as_l().ok())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_s().ok().cloned())
        .collect()
}

impl DynamoStore {
    /// See [`crate::backend::StateStore::expired_runs`].
    pub(super) async fn due_runs(
        &self,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<RunId>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Whole seconds at or before `now`; '$' sorts right after '#'.
        let last = format!("{:0WIDTH$}$", now / 1000);
        // Each partition's first `limit` entries hold the first `limit`.
        let mut due: Vec<(String, String)> = Vec::new();
        for shard in 0..SHARDS {
            let mut start: Option<Item> = None;
            let mut found = 0;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.runs)
                    .index_name(INDEX)
                    .key_condition_expression("purgeGroup = :group AND purgeKey <= :last")
                    .expression_attribute_values(":group", s(expiry_group(shard)))
                    .expression_attribute_values(":last", s(&last))
                    .limit((limit - found).min(MAX_QUERY_PAGE) as i32)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(store_error)?;
                for item in out.items() {
                    found += 1;
                    let key = item.get("purgeKey").and_then(|v| v.as_s().ok());
                    let id = item.get("id").and_then(|v| v.as_s().ok());
                    if let (Some(key), Some(id)) = (key, id) {
                        due.push((key.clone(), id.clone()));
                    }
                }
                start = out.last_evaluated_key().cloned();
                if start.is_none() || found >= limit {
                    break;
                }
            }
        }
        due.sort();
        due.truncate(limit);
        // The index is eventually consistent: a run deleted a moment ago
        // may still be listed. The runs as read, consistently, decide.
        let ids: Vec<String> = due.into_iter().map(|(_, id)| id).collect();
        let mut read = self.batch_get(&self.runs, "id", &ids).await?;
        let mut runs = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(item) = read.remove(&id) else {
                continue;
            };
            let finished =
                RunStatus::parse(&get_s(&item, "status")?).is_some_and(RunStatus::is_terminal);
            let expired = expires_at(&item)?.is_some_and(|at| at <= now);
            if finished && expired {
                runs.push(
                    RunId::from_str(&id)
                        .map_err(|_| StoreError::Corrupt(format!("run id {id:?} in {INDEX}")))?,
                );
            }
        }
        Ok(runs)
    }

    /// See [`crate::backend::StateStore::delete_run`]. The run item goes
    /// last: a sweep that stops half-way leaves the run expired and in the
    /// index, and the next sweep finds it and deletes the rest. Each kind
    /// of item is deleted before the items it is found through (attempts
    /// before their steps, steps before the journal).
    pub(super) async fn purge_run(&self, id: &RunId) -> Result<(), StoreError> {
        let Some(run) = self.runs_item(id.to_string()).await? else {
            return Ok(());
        };
        let status = get_s(&run, "status")?;
        if !RunStatus::parse(&status).is_some_and(RunStatus::is_terminal) {
            return Err(StoreError::Conflict(format!(
                "run {id} is {status}; only a finished run is deleted"
            )));
        }
        let version: u64 = get_n(&run, "version")?;

        // Its steps: those its journal names, and any its index holds.
        let chunk_keys: Vec<String> = journal::chunk_keys(id, step_base(&run)?).collect();
        let chunks = self.batch_get(&self.runs, "id", &chunk_keys).await?;
        let mut step_keys: BTreeSet<String> = chunks
            .values()
            .flat_map(|chunk| names(chunk, "names"))
            .chain(names(&run, "stepNames"))
            .map(|name| StepRecord::key(id, &name))
            .collect();
        let run_value = HashMap::from([(":run".to_string(), s(id.as_str()))]);
        let indexed = self
            .query_keys(
                &self.steps,
                Some("runId-index"),
                "runId = :run",
                run_value.clone(),
                &["runStepKey"],
                false,
            )
            .await?;
        step_keys.extend(
            indexed
                .iter()
                .filter_map(|k| k.get("runStepKey")?.as_s().ok().cloned()),
        );

        // Owned keys: the trait's boxed future cannot hold a closure over
        // borrowed ones (it would have to be general over their lifetime).
        let attempts: Vec<Vec<Item>> = futures::stream::iter(step_keys.clone())
            .map(|key: String| async move {
                let value = HashMap::from([(":step".to_string(), s(key))]);
                self.query_keys(
                    &self.history,
                    None,
                    "stepId = :step",
                    value,
                    &["stepId", "attemptCount"],
                    true,
                )
                .await
            })
            .buffer_unordered(PARALLEL_QUERIES)
            .try_collect()
            .await?;
        self.batch_delete(&self.history, attempts.into_iter().flatten().collect())
            .await?;

        let logs = self
            .query_keys(
                &self.logs,
                None,
                "runId = :run",
                run_value.clone(),
                &["runId", "seq"],
                true,
            )
            .await?;
        self.batch_delete(&self.logs, logs).await?;

        let steps = step_keys
            .into_iter()
            .map(|key| Item::from([("runStepKey".to_string(), s(key))]))
            .collect();
        self.batch_delete(&self.steps, steps).await?;

        // Its other items in the runs table: inboxes, events, markers and
        // callbacks through the index, and the journal's chunks.
        let owned = self
            .query_keys(
                &self.runs,
                Some(INDEX),
                "purgeGroup = :run",
                run_value,
                &["id"],
                false,
            )
            .await?;
        let own_keys: BTreeSet<String> = owned
            .iter()
            .filter_map(|k| k.get("id")?.as_s().ok().cloned())
            .chain(chunks.into_keys())
            .collect();
        let own_items = own_keys
            .into_iter()
            .map(|key| Item::from([("id".to_string(), s(key))]))
            .collect();
        self.batch_delete(&self.runs, own_items).await?;

        let result = self
            .client
            .delete_item()
            .table_name(&self.runs)
            .key("id", s(id.as_str()))
            .condition_expression("#version = :version")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":version", n(version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                match self.runs_item(id.to_string()).await? {
                    // A racing delete finished first.
                    None => Ok(()),
                    Some(_) => Err(StoreError::Conflict(format!(
                        "run {id} changed while it was being deleted"
                    ))),
                }
            }
            Err(e) => Err(store_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(expires_at: Option<Millis>) -> RunRecord {
        let mut run = RunRecord {
            id: RunId::generate(),
            workflow: "wf".into(),
            module_digest: crate::model::Digest::of(b"wf"),
            status: RunStatus::Completed,
            input: "{}".into(),
            output: None,
            error: None,
            created_at: 1,
            updated_at: 1,
            version: 1,
            lease: None,
            step_names: Default::default(),
            wake_at: None,
            deadline: None,
            awaiting: Vec::new(),
            parent: None,
            expires_at: None,
        };
        run.expires_at = expires_at;
        run
    }

    #[test]
    fn a_run_is_due_from_its_whole_second_and_never_early() {
        let run = finished(Some(1_700_000_001_000));
        let attrs = run_attributes(&run).expect("a finished run with an expiry");
        assert_eq!(attrs[0].1, n(1_700_000_001u64));
        let key = attrs[2].1.as_s().expect("a string key").clone();
        let last = |now: Millis| format!("{:0WIDTH$}$", now / 1000);
        assert!(key.as_str() <= last(1_700_000_001_000).as_str());
        assert!(key.as_str() > last(1_700_000_000_999).as_str());
        // A time between seconds is kept until the next second.
        let odd = finished(Some(1_700_000_000_001));
        let secs = run_attributes(&odd).expect("indexed")[0].1.clone();
        assert_eq!(secs, n(1_700_000_001u64));
    }

    #[test]
    fn only_finished_runs_with_an_expiry_are_indexed() {
        assert!(run_attributes(&finished(None)).is_none());
        let mut running = finished(Some(5_000));
        running.status = RunStatus::Running;
        assert!(run_attributes(&running).is_none());
    }
}
