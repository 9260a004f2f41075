//! The AWS backend's `StateStore`: DynamoDB, in the seed's layout.
//!
//! - Every transition is a conditional write; multi-item transitions are
//!   one `TransactWriteItems`, single-item ones a plain conditional write
//!   (half the write units).
//! - Replay reads the run with a consistent `GetItem`, the full chunks of
//!   its journal index and then its steps by key with consistent
//!   `BatchGetItem`s, in the order the journal gives; the `runId-index` GSI
//!   is only used for display. The journal is chunked (module `journal`),
//!   so a step's write does not grow with the run.
//! - Items over DynamoDB's 400 KB limit are refused with
//!   [`StoreError::TooLarge`] before they are sent.
//! - A finished run expires: its item carries a TTL attribute, and the
//!   retention sweep finds it through the `purge-index` GSI and deletes it
//!   with everything it stored (module `retention`).

mod callbacks;
mod inbox;
pub mod items;
mod journal;
mod quiet;
pub mod retention;
mod schedules;

use crate::backend::aws::AwsSettings;
use crate::backend::aws::store_error;
use crate::backend::{
    NewEvent, QuietCursor, QuietPage, RunQuery, RunWrite, ScheduleWrite, StateStore, StateWrite,
    StepExpect, StepWrite, StoreError,
};
use crate::model::{
    AttemptRecord, CallbackRecord, EventRecord, EventSent, LogLine, Millis, RunHead, RunId,
    RunRecord, RunStatus, Schedule, StepOutcome, StepRecord,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, KeysAndAttributes, Put, ReturnValue, TransactWriteItem, Update,
    WriteRequest,
};
use items::{Item, check_size, n, s};
use std::collections::HashMap;
use std::sync::Arc;

/// Items per `TransactWriteItems` (DynamoDB's limit).
const MAX_TRANSACTION_ITEMS: usize = 100;
/// Keys per `BatchGetItem`.
const MAX_BATCH_GET: usize = 100;
/// Index entries read per listing query: each page is then read by key.
const MAX_LIST_PAGE: usize = 100;

/// Entries a quiet-index query asks for at once (keys only: small).
const MAX_QUERY_PAGE: usize = 1000;
/// Items per `BatchWriteItem`.
const MAX_BATCH_WRITE: usize = 25;

/// Runs, steps, attempts and logs in DynamoDB.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    runs: String,
    steps: String,
    history: String,
    logs: String,
    /// Journal chunks read before (they never change), shared by the
    /// store's clones.
    chunks: Arc<journal::ChunkCache>,
}

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Backend(format!("cannot build DynamoDB request: {e}"))
}

/// One conditional write, ready for either a plain call or a transaction.
enum Write {
    Put {
        table: String,
        item: Item,
        condition: Option<String>,
        names: HashMap<String, String>,
        values: HashMap<String, AttributeValue>,
    },
    Update {
        table: String,
        key: Item,
        expression: String,
        condition: String,
        names: HashMap<String, String>,
        values: HashMap<String, AttributeValue>,
    },
    /// A condition on an item the batch does not write (transactions only).
    Check {
        table: String,
        key: Item,
        condition: String,
        names: HashMap<String, String>,
        values: HashMap<String, AttributeValue>,
    },
}

impl Write {
    fn into_transact(self) -> Result<TransactWriteItem, StoreError> {
        Ok(match self {
            Write::Put {
                table,
                item,
                condition,
                names,
                values,
            } => TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(table)
                        .set_item(Some(item))
                        .set_condition_expression(condition)
                        .set_expression_attribute_names((!names.is_empty()).then_some(names))
                        .set_expression_attribute_values((!values.is_empty()).then_some(values))
                        .build()
                        .map_err(build_err)?,
                )
                .build(),
            Write::Update {
                table,
                key,
                expression,
                condition,
                names,
                values,
            } => TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(table)
                        .set_key(Some(key))
                        .update_expression(expression)
                        .condition_expression(condition)
                        .set_expression_attribute_names(Some(names))
                        .set_expression_attribute_values(Some(values))
                        .build()
                        .map_err(build_err)?,
                )
                .build(),
            Write::Check {
                table,
                key,
                condition,
                names,
                values,
            } => TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(table)
                        .set_key(Some(key))
                        .condition_expression(condition)
                        .set_expression_attribute_names(Some(names))
                        .set_expression_attribute_values(Some(values))
                        .build()
                        .map_err(build_err)?,
                )
                .build(),
        })
    }
}

impl DynamoStore {
    /// Up to `limit` runs in `status` (newest first by the `status-index`
    /// GSI), filtered by workflow if the query names one.
    async fn list_runs_in(
        &self,
        status: RunStatus,
        query: &RunQuery,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let mut runs = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            // The status-index GSI keeps listing (and the recovery sweep)
            // proportional to the runs in that status, not the table. It
            // holds keys and the workflow only (so step writes, which do
            // not touch them, cost no index writes), and it is eventually
            // consistent: it only says which runs to read, by key,
            // consistently, and the runs as read decide.
            let page = (limit - runs.len()).clamp(1, MAX_LIST_PAGE);
            let mut request = self
                .client
                .query()
                .table_name(&self.runs)
                .index_name("status-index")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", s(status.as_str()))
                .scan_index_forward(false)
                .limit(page as i32)
                .set_exclusive_start_key(start);
            request = match &query.after {
                // The cursor's own time is included; ties are settled below.
                Some(cursor) => request
                    .key_condition_expression("#status = :status AND createdAt <= :after")
                    .expression_attribute_values(":after", n(cursor.created_at)),
                None => request.key_condition_expression("#status = :status"),
            };
            if let Some(w) = &query.workflow {
                request = request
                    .filter_expression("workflow = :workflow")
                    .expression_attribute_values(":workflow", s(w));
            }
            let out = request.send().await.map_err(store_error)?;
            let ids: Vec<String> = out
                .items()
                .iter()
                .filter_map(|item| item.get("id")?.as_s().ok().cloned())
                .collect();
            let mut read = self.batch_get(&self.runs, "id", &ids).await?;
            let found: Vec<Item> = ids.iter().filter_map(|id| read.remove(id)).collect();
            for run in self.runs_from(&found).await? {
                let listed = run.status == status
                    && query.workflow.as_ref().is_none_or(|w| &run.workflow == w)
                    && query.after.as_ref().is_none_or(|c| c.precedes(&run));
                if listed && runs.len() < limit {
                    runs.push(run);
                }
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() || runs.len() >= limit {
                break;
            }
        }
        Ok(runs)
    }

    /// The first `limit` entries of one partition of the quiet index after
    /// `after` and at or before `quiet_before`, and whether it has more.
    async fn quiet_entries(
        &self,
        shard: u32,
        quiet_before: Millis,
        after: Option<&QuietCursor>,
        limit: usize,
    ) -> Result<(Vec<QuietCursor>, bool), StoreError> {
        let (from, last) = quiet::range(quiet_before, after);
        let mut entries = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.runs)
                .index_name(quiet::INDEX)
                .expression_attribute_values(":shard", n(shard))
                .expression_attribute_values(":last", s(&last))
                .limit((limit - entries.len() + 1).min(MAX_QUERY_PAGE) as i32)
                .set_exclusive_start_key(start);
            request = match &from {
                Some(from) => request
                    .key_condition_expression(
                        "quietShard = :shard AND quietKey BETWEEN :from AND :last",
                    )
                    .expression_attribute_values(":from", s(from)),
                None => {
                    request.key_condition_expression("quietShard = :shard AND quietKey <= :last")
                }
            };
            let out = request.send().await.map_err(store_error)?;
            for entry in out.items().iter().filter_map(quiet::position) {
                let past_cursor =
                    after.is_none_or(|c| quiet::order(&entry, c) == std::cmp::Ordering::Greater);
                if past_cursor {
                    entries.push(entry);
                }
            }
            start = out.last_evaluated_key().cloned();
            if entries.len() > limit {
                entries.truncate(limit);
                return Ok((entries, true));
            }
            if start.is_none() {
                return Ok((entries, false));
            }
        }
    }

    /// Puts every running run that is not in the quiet index yet into it:
    /// runs written before the index existed, which the sweep would never
    /// see otherwise. `weft aws init` runs it; writes are guarded by the
    /// version read, so a run that moves meanwhile (and so indexes itself)
    /// is left alone. Returns how many runs it indexed.
    pub async fn index_quiet_runs(&self) -> Result<usize, StoreError> {
        let mut indexed = 0;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.runs)
                .index_name("status-index")
                .key_condition_expression("#status = :running")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":running", s(RunStatus::Running.as_str()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_error)?;
            let ids: Vec<String> = out
                .items()
                .iter()
                .filter_map(|item| item.get("id")?.as_s().ok().cloned())
                .collect();
            let read = self.batch_get(&self.runs, "id", &ids).await?;
            let missing: Vec<&Item> = read
                .values()
                .filter(|item| !item.contains_key("quietKey"))
                .collect();
            for item in missing {
                let Some(run) = self.runs_from(std::slice::from_ref(item)).await?.pop() else {
                    continue;
                };
                let Some([(_, shard), (_, key)]) = quiet::attributes(&run) else {
                    continue;
                };
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.runs)
                    .key("id", s(run.id.as_str()))
                    .update_expression("SET quietShard = :shard, quietKey = :key")
                    .condition_expression("#version = :version")
                    .expression_attribute_names("#version", "version")
                    .expression_attribute_values(":shard", shard)
                    .expression_attribute_values(":key", key)
                    .expression_attribute_values(":version", n(run.version))
                    .send()
                    .await;
                match result {
                    Ok(_) => indexed += 1,
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
                    Err(e) => return Err(store_error(e)),
                }
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(indexed);
            }
        }
    }

    /// Items of `table` by their string key `key`, read consistently, in
    /// batches; missing ones are absent from the answer.
    async fn batch_get(
        &self,
        table: &str,
        key: &str,
        values: &[String],
    ) -> Result<HashMap<String, Item>, StoreError> {
        let mut found = HashMap::with_capacity(values.len());
        for chunk in values.chunks(MAX_BATCH_GET) {
            let keys: Vec<Item> = chunk
                .iter()
                .map(|v| Item::from([(key.to_string(), s(v))]))
                .collect();
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(build_err)?,
            );
            while let Some(request) = pending.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .map_err(store_error)?;
                for item in out
                    .responses()
                    .and_then(|r| r.get(table))
                    .into_iter()
                    .flatten()
                {
                    if let Some(k) = item.get(key).and_then(|v| v.as_s().ok()) {
                        found.insert(k.clone(), item.clone());
                    }
                }
                pending = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
                if pending.is_some() {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        }
        Ok(found)
    }

    pub fn new(client: Client, settings: &AwsSettings) -> Self {
        Self {
            client,
            runs: settings.runs_table.clone(),
            steps: settings.steps_table.clone(),
            history: settings.history_table.clone(),
            logs: settings.logs_table.clone(),
            chunks: Arc::default(),
        }
    }

    /// Takes run `id`'s lease (see [`StateStore::acquire_run_lease`]) and
    /// returns the run item as written.
    async fn lease_run_item(
        &self,
        id: &RunId,
        owner: &str,
        now: Millis,
        ttl_ms: u64,
    ) -> Result<Item, StoreError> {
        // Held until `expires`, the run needs no sweep before then. (Its
        // wake time, if later, is not known here; the release that follows
        // writes the exact time, and a holder that crashes first only has
        // the sweep look at the run early and leave it.)
        let expires = now + ttl_ms;
        let [(_, shard), (_, quiet_key)] = quiet::attributes_at(id, expires);
        let result = self
            .client
            .update_item()
            .table_name(&self.runs)
            .key("id", s(id.as_str()))
            .update_expression(
                "SET leaseOwner = :owner, leaseExpiresAt = :expires, #version = #version + :one, \
                 updatedAt = :now, quietShard = :shard, quietKey = :quietKey",
            )
            .condition_expression(
                "attribute_exists(id) AND #status = :running AND \
                 (attribute_not_exists(leaseOwner) OR leaseExpiresAt <= :now)",
            )
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":expires", n(expires))
            .expression_attribute_values(":shard", shard)
            .expression_attribute_values(":quietKey", quiet_key)
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":running", s("running"))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes
                .ok_or_else(|| StoreError::Backend("lease update returned no item".into())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                match self.get_run_head(id).await? {
                    None => Err(StoreError::NotFound(format!("run {id}"))),
                    Some(run) if run.status.is_terminal() => Err(StoreError::Conflict(format!(
                        "run {id} is {}",
                        run.status.as_str()
                    ))),
                    Some(run) => Err(StoreError::Conflict(format!(
                        "run {id} is leased by {}",
                        run.lease.map(|l| l.owner).unwrap_or_default()
                    ))),
                }
            }
            Err(e) => Err(store_error(e)),
        }
    }

    /// The condition that run `id` is still `running`.
    fn run_is_running(&self, id: &RunId) -> Write {
        Write::Check {
            table: self.runs.clone(),
            key: HashMap::from([("id".to_string(), s(id.as_str()))]),
            condition: "#status = :running".into(),
            names: HashMap::from([("#status".to_string(), "status".to_string())]),
            values: HashMap::from([(":running".to_string(), s(RunStatus::Running.as_str()))]),
        }
    }

    /// The update of a run's mutable fields, guarded by its version. The
    /// pinned fields (workflow, module digest, input, creation time) are
    /// not written here (only an upgrade moves the digest: `repin_run`).
    fn run_update(&self, w: &RunWrite) -> Write {
        let r = &w.record;
        let (base, tail) = items::journal_tail(&r.step_names);
        let mut set = vec![
            "#status = :status",
            "#updatedAt = :updatedAt",
            "#version = :newVersion",
            "#stepNames = :stepNames",
            "#stepBase = :stepBase",
        ];
        let mut remove = Vec::new();
        let mut values = HashMap::from([
            (":status".to_string(), s(r.status.as_str())),
            (":updatedAt".to_string(), n(r.updated_at)),
            (":newVersion".to_string(), n(w.expected_version + 1)),
            (":stepNames".to_string(), tail),
            (":stepBase".to_string(), n(base)),
            (":expected".to_string(), n(w.expected_version)),
        ]);
        match &r.output {
            Some(o) => {
                set.push("#output = :output");
                values.insert(":output".into(), s(o));
            }
            None => remove.push("#output"),
        }
        match &r.error {
            Some(e) => {
                set.push("#error = :error");
                values.insert(":error".into(), items::error_value(e));
            }
            None => remove.push("#error"),
        }
        match r.wake_at {
            Some(at) => {
                set.push("#wakeAt = :wakeAt");
                values.insert(":wakeAt".into(), n(at));
            }
            None => remove.push("#wakeAt"),
        }
        match r.awaiting.as_slice() {
            [] => remove.push("#awaiting"),
            names => {
                set.push("#awaiting = :awaiting");
                values.insert(":awaiting".into(), items::awaiting_value(names));
            }
        }
        match &r.lease {
            Some(l) => {
                set.push("#leaseOwner = :leaseOwner");
                set.push("#leaseExpiresAt = :leaseExpiresAt");
                values.insert(":leaseOwner".into(), s(&l.owner));
                values.insert(":leaseExpiresAt".into(), n(l.expires_at));
            }
            None => remove.extend(["#leaseOwner", "#leaseExpiresAt"]),
        }
        match quiet::attributes(r) {
            Some([(_, shard), (_, key)]) => {
                set.push("#quietShard = :quietShard");
                set.push("#quietKey = :quietKey");
                values.insert(":quietShard".into(), shard);
                values.insert(":quietKey".into(), key);
            }
            None => remove.extend(["#quietShard", "#quietKey"]),
        }
        match retention::run_attributes(r) {
            Some([(_, at), (_, group), (_, key)]) => {
                set.push("#expiresAt = :expiresAt");
                set.push("#purgeGroup = :purgeGroup");
                set.push("#purgeKey = :purgeKey");
                values.insert(":expiresAt".into(), at);
                values.insert(":purgeGroup".into(), group);
                values.insert(":purgeKey".into(), key);
            }
            None => remove.extend(["#expiresAt", "#purgeGroup", "#purgeKey"]),
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let names = [
            "status",
            "updatedAt",
            "version",
            "stepNames",
            "stepBase",
            "output",
            "error",
            "leaseOwner",
            "leaseExpiresAt",
            "wakeAt",
            "awaiting",
            "quietShard",
            "quietKey",
            "expiresAt",
            "purgeGroup",
            "purgeKey",
        ]
        .into_iter()
        .map(|a| (format!("#{a}"), a.to_string()))
        .collect();
        Write::Update {
            table: self.runs.clone(),
            key: Item::from([("id".into(), s(r.id.as_str()))]),
            expression,
            condition: "#version = :expected".into(),
            names,
            values,
        }
    }

    /// The journal chunks a run update fills, each put once (see
    /// [`journal`]).
    fn journal_puts(&self, w: &RunWrite) -> Result<Vec<Write>, StoreError> {
        let run = &w.record.id;
        journal::filled(&w.record.step_names, w.expected_steps)
            .map(|(k, names)| {
                let item = journal::chunk_item(run, k, names);
                check_size(&item, || format!("journal chunk {k} of run {run}"))?;
                Ok(Self::plain_put(&self.runs, item))
            })
            .collect()
    }

    /// Run records from their items, each with its whole journal: the
    /// chunks before each run's `stepNames` are read by key, consistently,
    /// in one batch for all of them.
    async fn runs_from(&self, run_items: &[Item]) -> Result<Vec<RunRecord>, StoreError> {
        let mut runs = Vec::with_capacity(run_items.len());
        let mut keys = Vec::new();
        // Every chunk this call needs, from the cache or read now: kept for
        // the call whatever the cache drops meanwhile.
        let mut known = HashMap::new();
        for item in run_items {
            let run = items::run_from(item)?;
            let base = items::step_base(item)?;
            if base == 0 && run.step_names.len() >= journal::CHUNK {
                // Written before chunks existed: the whole journal is in
                // the item. Its full chunks go where the next update
                // expects them (idempotent: the names never change).
                let chunks = journal::filled(&run.step_names, 0)
                    .map(|(k, names)| journal::chunk_item(&run.id, k, names))
                    .collect();
                self.batch_put(&self.runs, chunks).await?;
            }
            for key in journal::chunk_keys(&run.id, base) {
                match self.chunks.get(&key) {
                    Some(names) => {
                        known.insert(key, names);
                    }
                    None => keys.push(key),
                }
            }
            runs.push((run, base));
        }
        if !keys.is_empty() {
            for (key, chunk) in self.batch_get(&self.runs, "id", &keys).await? {
                let names = Arc::new(journal::names_in(&chunk, &key)?);
                self.chunks.put(key.clone(), Arc::clone(&names));
                known.insert(key, names);
            }
        }
        runs.into_iter()
            .map(|(mut run, base)| {
                if base == 0 {
                    return Ok(run);
                }
                let mut names = Vec::with_capacity(base + run.step_names.len());
                for key in journal::chunk_keys(&run.id, base) {
                    let chunk = known.get(&key).ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "run {}: journal chunk {key} is missing",
                            run.id
                        ))
                    })?;
                    names.extend(chunk.iter().cloned());
                }
                names.extend(run.step_names.iter().cloned());
                run.step_names = names.into();
                Ok(run)
            })
            .collect()
    }

    fn step_put(&self, w: &StepWrite) -> Result<Write, StoreError> {
        let item = items::step_item(&w.record);
        check_size(&item, || {
            format!("step `{}` of run {}", w.record.name, w.record.run_id)
        })?;
        let (condition, names, values) = match w.expect {
            StepExpect::Absent => (
                "attribute_not_exists(runStepKey)".to_string(),
                HashMap::new(),
                HashMap::new(),
            ),
            StepExpect::State {
                status,
                attempt_count,
            } => (
                "#status = :expectedStatus AND attemptCount = :expectedAttempts".to_string(),
                HashMap::from([("#status".to_string(), "status".to_string())]),
                HashMap::from([
                    (":expectedStatus".to_string(), s(status.as_str())),
                    (":expectedAttempts".to_string(), n(attempt_count)),
                ]),
            ),
        };
        Ok(Write::Put {
            table: self.steps.clone(),
            item,
            condition: Some(condition),
            names,
            values,
        })
    }

    fn plain_put(table: &str, item: Item) -> Write {
        Write::Put {
            table: table.to_string(),
            item,
            condition: None,
            names: HashMap::new(),
            values: HashMap::new(),
        }
    }

    /// Executes one write on its own (cheaper than a transaction).
    async fn write_one(&self, write: Write) -> Result<(), StoreError> {
        let conflict = |code: Option<&str>| code == Some("ConditionalCheckFailedException");
        match write {
            // A check on its own has no single-item form.
            check @ Write::Check { .. } => self.transact(vec![check]).await,
            Write::Put {
                table,
                item,
                condition,
                names,
                values,
            } => {
                let result = self
                    .client
                    .put_item()
                    .table_name(table)
                    .set_item(Some(item))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names((!names.is_empty()).then_some(names))
                    .set_expression_attribute_values((!values.is_empty()).then_some(values))
                    .send()
                    .await;
                match result {
                    Ok(_) => Ok(()),
                    Err(e) if conflict(e.as_service_error().and_then(|s| s.code())) => {
                        Err(StoreError::Conflict("the item changed first".into()))
                    }
                    Err(e) => Err(store_error(e)),
                }
            }
            Write::Update {
                table,
                key,
                expression,
                condition,
                names,
                values,
            } => {
                let result = self
                    .client
                    .update_item()
                    .table_name(table)
                    .set_key(Some(key))
                    .update_expression(expression)
                    .condition_expression(condition)
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values(Some(values))
                    .send()
                    .await;
                match result {
                    Ok(_) => Ok(()),
                    Err(e) if conflict(e.as_service_error().and_then(|s| s.code())) => Err(
                        StoreError::Conflict("the run changed first (stale version)".into()),
                    ),
                    Err(e) => Err(store_error(e)),
                }
            }
        }
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let items = writes
            .into_iter()
            .map(Write::into_transact)
            .collect::<Result<Vec<_>, _>>()?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let reasons: Vec<String> = match e.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(t)) => t
                        .cancellation_reasons()
                        .iter()
                        .filter_map(|r| r.code().map(str::to_string))
                        .collect(),
                    _ => Vec::new(),
                };
                let lost_race = reasons
                    .iter()
                    .any(|c| c == "ConditionalCheckFailed" || c == "TransactionConflict");
                if lost_race {
                    Err(StoreError::Conflict(format!(
                        "a condition failed: {reasons:?}"
                    )))
                } else {
                    Err(store_error(e))
                }
            }
        }
    }

    /// Writes unconditional items in batches of 25, retrying unprocessed ones.
    async fn batch_put(&self, table: &str, items: Vec<Item>) -> Result<(), StoreError> {
        let requests = items
            .into_iter()
            .map(|item| {
                let put = aws_sdk_dynamodb::types::PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(build_err)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(table, requests).await
    }

    /// Deletes items by key (each key once) in batches of 25, retrying
    /// unprocessed ones. A key with no item is no error.
    async fn batch_delete(&self, table: &str, keys: Vec<Item>) -> Result<(), StoreError> {
        let requests = keys
            .into_iter()
            .map(|key| {
                let delete = aws_sdk_dynamodb::types::DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map_err(build_err)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(table, requests).await
    }

    /// `BatchWriteItem`s of 25 requests (DynamoDB's limit), each retried
    /// while DynamoDB leaves some unprocessed (it does when throttled).
    async fn batch_write(
        &self,
        table: &str,
        requests: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        for chunk in requests.chunks(MAX_BATCH_WRITE) {
            let mut pending = chunk.to_vec();
            for _ in 0..8 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .await
                    .map_err(store_error)?;
                pending = out
                    .unprocessed_items()
                    .and_then(|u| u.get(table))
                    .cloned()
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            if !pending.is_empty() {
                return Err(StoreError::Backend(format!(
                    "{} items for {table} were still unprocessed after 8 rounds (throttled)",
                    pending.len()
                )));
            }
        }
        Ok(())
    }

    /// The keys (`attributes`, projected) of every item a query finds, all
    /// pages: what a delete needs, without the items' payloads.
    async fn query_keys(
        &self,
        table: &str,
        index: Option<&str>,
        condition: &str,
        values: HashMap<String, AttributeValue>,
        attributes: &[&str],
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        // Names for every attribute: some (`seq`) may be reserved words.
        let names: HashMap<String, String> = attributes
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("#k{i}"), a.to_string()))
            .collect();
        let projection = (0..attributes.len())
            .map(|i| format!("#k{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(table)
                .set_index_name(index.map(str::to_string))
                .key_condition_expression(condition)
                .set_expression_attribute_values(Some(values.clone()))
                .set_expression_attribute_names(Some(names.clone()))
                .projection_expression(&projection)
                .consistent_read(consistent)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_error)?;
            out.extend(page.items().iter().cloned());
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// All pages of a query.
    async fn query_all(
        &self,
        table: &str,
        index: Option<&str>,
        condition: &str,
        values: HashMap<String, AttributeValue>,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(table)
                .set_index_name(index.map(str::to_string))
                .key_condition_expression(condition)
                .set_expression_attribute_values(Some(values.clone()))
                .consistent_read(consistent)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_error)?;
            out.extend(page.items().iter().cloned());
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(out);
            }
        }
    }
}

#[async_trait]
impl StateStore for DynamoStore {
    async fn create_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let item = items::run_item(run);
        check_size(&item, || format!("run {}", run.id))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.runs)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict(format!(
                    "run {} already exists",
                    run.id
                )))
            }
            Err(e) => Err(store_error(e)),
        }
    }

    async fn get_run(&self, id: &RunId) -> Result<Option<RunRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.runs)
            .key("id", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        match out.item() {
            Some(item) => Ok(self.runs_from(std::slice::from_ref(item)).await?.pop()),
            None => Ok(None),
        }
    }

    async fn get_run_head(&self, id: &RunId) -> Result<Option<RunHead>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.runs)
            .key("id", s(id.as_str()))
            .projection_expression(items::RUN_HEAD_PROJECTION)
            .expression_attribute_names("#status", "status")
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        out.item().map(items::run_head_from).transpose()
    }

    async fn list_runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>, StoreError> {
        let limit = if query.limit == 0 { 100 } else { query.limit };
        let mut runs = match query.status {
            Some(status) => self.list_runs_in(status, query, limit).await?,
            // Newest first across statuses: the newest `limit` of each
            // status's index partition hold the newest `limit` overall. (A
            // table scan would return an arbitrary `limit`, not the newest.)
            None => {
                let mut all = Vec::new();
                for status in RunStatus::ALL {
                    all.extend(self.list_runs_in(status, query, limit).await?);
                }
                all
            }
        };
        runs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        runs.truncate(limit);
        Ok(runs)
    }

    async fn list_quiet_runs(
        &self,
        quiet_before: Millis,
        after: Option<&QuietCursor>,
        limit: usize,
    ) -> Result<QuietPage, StoreError> {
        let limit = limit.clamp(1, MAX_BATCH_GET);
        // Each partition's first `limit` entries hold the first `limit` of
        // all of them.
        let mut entries = Vec::new();
        let mut more = false;
        for shard in 0..quiet::SHARDS {
            let (found, has_more) = self
                .quiet_entries(shard, quiet_before, after, limit)
                .await?;
            entries.extend(found);
            more |= has_more;
        }
        entries.sort_by(quiet::order);
        more |= entries.len() > limit;
        entries.truncate(limit);
        let next = if more { entries.last().cloned() } else { None };
        let ids: Vec<String> = entries.iter().map(|e| e.id.to_string()).collect();
        let mut read = self.batch_get(&self.runs, "id", &ids).await?;
        let items: Vec<Item> = ids.iter().filter_map(|id| read.remove(id)).collect();
        // The index may lag: a run that moved on since is not quiet.
        let runs = self
            .runs_from(&items)
            .await?
            .into_iter()
            .filter(|run| run.attention_at().is_some_and(|at| at <= quiet_before))
            .collect();
        Ok(QuietPage { runs, next })
    }

    async fn acquire_run_lease(
        &self,
        id: &RunId,
        owner: &str,
        now: Millis,
        ttl_ms: u64,
    ) -> Result<RunRecord, StoreError> {
        let item = self.lease_run_item(id, owner, now, ttl_ms).await?;
        self.runs_from(std::slice::from_ref(&item))
            .await?
            .pop()
            .ok_or_else(|| StoreError::Backend("lease update returned no item".into()))
    }

    async fn acquire_run_lease_head(
        &self,
        id: &RunId,
        owner: &str,
        now: Millis,
        ttl_ms: u64,
    ) -> Result<RunHead, StoreError> {
        let item = self.lease_run_item(id, owner, now, ttl_ms).await?;
        items::run_head_from(&item)
    }

    async fn commit(&self, write: StateWrite) -> Result<(), StoreError> {
        let mut conditional = Vec::new();
        if let Some(run) = &write.run {
            // An update rewrites the whole item in effect: check what the
            // run will be, so an oversized output or journal index is a
            // clear `TooLarge`, not a ValidationException retried.
            let after = items::run_item(&run.record);
            check_size(&after, || format!("run {}", run.record.id))?;
            conditional.push(self.run_update(run));
            conditional.extend(self.journal_puts(run)?);
        }
        if let Some(id) = &write.require_running {
            conditional.push(self.run_is_running(id));
        }
        for step in &write.steps {
            conditional.push(self.step_put(step)?);
        }
        for take in &write.events {
            conditional.extend(self.event_take(take));
        }
        for change in &write.callbacks {
            conditional.push(self.callback_write(change));
        }
        let attempts: Vec<Write> = write
            .attempts
            .iter()
            .map(|a| Self::plain_put(&self.history, items::attempt_item(a)))
            .collect();
        let log_items: Vec<Item> = write
            .logs
            .iter()
            .map(|(run, l)| items::log_item(run, l))
            .collect();

        let mut writes = conditional;
        writes.extend(attempts);
        // Logs ride in the transaction when there is room; otherwise they
        // go first, so a failure to write them fails the commit before any
        // state moved (their keys are deterministic: the retry rewrites the
        // same lines, and lines of a commit that then fails are rewritten
        // identically by the replay that follows).
        let logs_fit = writes.len() + log_items.len() <= MAX_TRANSACTION_ITEMS;
        let mut leading_logs = Vec::new();
        if logs_fit {
            writes.extend(
                log_items
                    .into_iter()
                    .map(|i| Self::plain_put(&self.logs, i)),
            );
        } else {
            leading_logs = log_items;
        }
        if !leading_logs.is_empty() {
            self.batch_put(&self.logs, leading_logs).await?;
        }
        match writes.len() {
            0 => {}
            1 => self.write_one(writes.remove(0)).await?,
            _ => self.transact(writes).await?,
        }
        Ok(())
    }

    async fn get_step(&self, run_id: &RunId, name: &str) -> Result<Option<StepRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.steps)
            .key("runStepKey", s(StepRecord::key(run_id, name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        out.item().map(items::step_from).transpose()
    }

    async fn get_steps(
        &self,
        run_id: &RunId,
        names: &[String],
    ) -> Result<Vec<StepRecord>, StoreError> {
        let keys: Vec<String> = names.iter().map(|n| StepRecord::key(run_id, n)).collect();
        let mut found = self.batch_get(&self.steps, "runStepKey", &keys).await?;
        keys.iter()
            .filter_map(|k| found.remove(k))
            .map(|item| items::step_from(&item))
            .collect()
    }

    async fn list_steps(&self, run_id: &RunId) -> Result<Vec<StepRecord>, StoreError> {
        let values = HashMap::from([(":run".to_string(), s(run_id.as_str()))]);
        let items = self
            .query_all(
                &self.steps,
                Some("runId-index"),
                "runId = :run",
                values,
                false,
            )
            .await?;
        let mut steps = items
            .iter()
            .map(items::step_from)
            .collect::<Result<Vec<_>, _>>()?;
        steps.sort_by_key(|s| s.seq);
        Ok(steps)
    }

    async fn list_attempts(&self, step_key: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let values = HashMap::from([(":step".to_string(), s(step_key))]);
        let items = self
            .query_all(&self.history, None, "stepId = :step", values, true)
            .await?;
        items.iter().map(items::attempt_from).collect()
    }

    async fn list_logs(&self, run_id: &RunId) -> Result<Vec<LogLine>, StoreError> {
        let values = HashMap::from([(":run".to_string(), s(run_id.as_str()))]);
        let items = self
            .query_all(&self.logs, None, "runId = :run", values, true)
            .await?;
        items.iter().map(items::log_from).collect()
    }

    async fn send_event(&self, event: NewEvent) -> Result<EventSent, StoreError> {
        self.store_event(event).await
    }

    async fn put_schedule(&self, write: ScheduleWrite) -> Result<(), StoreError> {
        self.put_schedule_item(write).await
    }

    async fn get_schedule(&self, name: &str) -> Result<Option<Schedule>, StoreError> {
        self.schedule(name).await
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        let mut all = self.schedules_up_to(None, usize::MAX).await?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    async fn due_schedules(&self, now: Millis, limit: usize) -> Result<Vec<Schedule>, StoreError> {
        self.due(now, limit).await
    }

    async fn delete_schedule(&self, name: &str) -> Result<bool, StoreError> {
        self.delete_schedule_item(name).await
    }

    async fn expired_runs(&self, now: Millis, limit: usize) -> Result<Vec<RunId>, StoreError> {
        self.due_runs(now, limit).await
    }

    async fn delete_run(&self, id: &RunId) -> Result<(), StoreError> {
        self.purge_run(id).await
    }

    async fn repin_run(
        &self,
        id: &RunId,
        expected_version: u64,
        digest: &crate::model::Digest,
    ) -> Result<(), StoreError> {
        self.write_one(Write::Update {
            table: self.runs.clone(),
            key: HashMap::from([("id".to_string(), s(id.as_str()))]),
            expression: "SET #moduleDigest = :digest, #version = :newVersion".into(),
            condition: "#version = :expected AND #status = :running".into(),
            names: HashMap::from([
                ("#moduleDigest".to_string(), "moduleDigest".to_string()),
                ("#version".to_string(), "version".to_string()),
                ("#status".to_string(), "status".to_string()),
            ]),
            values: HashMap::from([
                (":digest".to_string(), s(digest.as_str())),
                (":newVersion".to_string(), n(expected_version + 1)),
                (":expected".to_string(), n(expected_version)),
                (":running".to_string(), s(RunStatus::Running.as_str())),
            ]),
        })
        .await
    }

    async fn list_events(&self, run_id: &RunId) -> Result<Vec<EventRecord>, StoreError> {
        self.events_of(run_id).await
    }

    async fn next_event(
        &self,
        run_id: &RunId,
        name: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        self.oldest_untaken(run_id, name).await
    }

    async fn get_callback(&self, hash: &str) -> Result<Option<CallbackRecord>, StoreError> {
        self.callback(hash).await
    }

    async fn complete_callback(
        &self,
        hash: &str,
        outcome: StepOutcome,
        now: Millis,
    ) -> Result<CallbackRecord, StoreError> {
        self.complete(hash, outcome, now).await
    }
}
