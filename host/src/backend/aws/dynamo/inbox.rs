//! Run inboxes in DynamoDB: events live in the runs table beside the run,
//! under keys no run id can take (run ids have no `#`).
//!
//! - `<run>#inbox#<name>`: the inbox of one event name, with `sent` (events
//!   stored) and `taken` (events taken by waits). Events are taken oldest
//!   first, so the next one to take is always number `taken`: two reads by
//!   key find it, however many came before.
//! - `<run>#event#<name>#<seq>`: event `seq` (zero-padded), its payload and,
//!   once taken, `takenBy` (the wait step).
//! - `<run>#eventid#<name>#<id>`: the sender's id, pointing at its `seq`,
//!   so a re-send finds the event it repeats.
//!
//! Storing an event is one transaction: the run is running, the inbox count
//! moves from the value read, the event and its id are new. Taking one is
//! two more conditional updates inside the commit that records the wait's
//! outcome, so the event and the outcome land together or not at all.
//! None of these items has `status` or `quietShard`, so neither index
//! lists them; each is in the `purge-index` under its run's id, so the
//! retention sweep finds them (see `retention.rs`).

use super::items::{Item, check_size, get_n, get_s, n, opt_n, opt_s, s};
use super::{DynamoStore, Write, retention};
use crate::backend::aws::store_error;
use crate::backend::{EventTake, NewEvent, StoreError};
use crate::model::{EventRecord, EventSent, RunId, RunStatus};
use std::collections::HashMap;

/// Rounds of read-then-write a send tries when other sends to the same
/// inbox keep winning.
const SEND_ROUNDS: usize = 16;

fn inbox_key(run: &RunId, name: &str) -> String {
    format!("{run}#inbox#{name}")
}

fn event_key(run: &RunId, name: &str, seq: u64) -> String {
    format!("{run}#event#{name}#{seq:012}")
}

fn id_key(run: &RunId, name: &str, event_id: &str) -> String {
    format!("{run}#eventid#{name}#{event_id}")
}

fn event_item(e: &EventRecord) -> Item {
    let key = event_key(&e.run_id, &e.name, e.seq);
    let mut item = Item::from([
        ("eventId".into(), s(&e.event_id)),
        ("payload".into(), s(&e.payload)),
        ("sentAt".into(), n(e.sent_at)),
    ]);
    item.extend(retention::owned_by(&e.run_id, &key));
    item.insert("id".into(), s(key));
    item
}

fn event_from(run: &RunId, name: &str, seq: u64, item: &Item) -> Result<EventRecord, StoreError> {
    Ok(EventRecord {
        run_id: run.clone(),
        name: name.to_string(),
        seq,
        event_id: get_s(item, "eventId")?,
        payload: get_s(item, "payload")?,
        sent_at: get_n(item, "sentAt")?,
        taken_by: opt_s(item, "takenBy"),
    })
}

impl DynamoStore {
    /// An item of the runs table by key, read consistently.
    pub(super) async fn runs_item(&self, key: String) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.runs)
            .key("id", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out.item().cloned())
    }

    async fn event(
        &self,
        run: &RunId,
        name: &str,
        seq: u64,
    ) -> Result<Option<EventRecord>, StoreError> {
        match self.runs_item(event_key(run, name, seq)).await? {
            Some(item) => event_from(run, name, seq, &item).map(Some),
            None => Ok(None),
        }
    }

    /// `(sent, taken)` of an inbox; a missing inbox has had no events.
    async fn inbox_counts(&self, run: &RunId, name: &str) -> Result<(u64, u64), StoreError> {
        match self.runs_item(inbox_key(run, name)).await? {
            Some(item) => Ok((
                opt_n(&item, "sent")?.unwrap_or(0),
                opt_n(&item, "taken")?.unwrap_or(0),
            )),
            None => Ok((0, 0)),
        }
    }

    /// The event an earlier send with this id stored, if any.
    async fn event_by_id(&self, e: &NewEvent) -> Result<Option<EventRecord>, StoreError> {
        let Some(marker) = self
            .runs_item(id_key(&e.run_id, &e.name, &e.event_id))
            .await?
        else {
            return Ok(None);
        };
        let seq: u64 = get_n(&marker, "seq")?;
        match self.event(&e.run_id, &e.name, seq).await? {
            Some(event) => Ok(Some(event)),
            None => Err(StoreError::Corrupt(format!(
                "event id `{}` of run {} points at event #{seq} of `{}`, which is missing",
                e.event_id, e.run_id, e.name
            ))),
        }
    }

    /// Why a send's transaction failed when the inbox was not the reason.
    async fn refuses_events(&self, run: &RunId) -> Result<Option<StoreError>, StoreError> {
        let Some(item) = self.runs_item(run.to_string()).await? else {
            return Ok(Some(StoreError::NotFound(format!("run {run}"))));
        };
        let status = get_s(&item, "status")?;
        Ok((status != RunStatus::Running.as_str()).then(|| {
            StoreError::Conflict(format!("run {run} is {status}; it takes no more events"))
        }))
    }

    pub(super) async fn store_event(&self, e: NewEvent) -> Result<EventSent, StoreError> {
        for _ in 0..SEND_ROUNDS {
            if let Some(existing) = self.event_by_id(&e).await? {
                return Ok(EventSent::Duplicate(existing));
            }
            let (sent, _) = self.inbox_counts(&e.run_id, &e.name).await?;
            let record = EventRecord {
                run_id: e.run_id.clone(),
                name: e.name.clone(),
                seq: sent,
                event_id: e.event_id.clone(),
                payload: e.payload.clone(),
                sent_at: e.sent_at,
                taken_by: None,
            };
            let item = event_item(&record);
            check_size(&item, || format!("event `{}` of run {}", e.name, e.run_id))?;
            let marker_key = id_key(&e.run_id, &e.name, &e.event_id);
            let mut marker = Item::from([("seq".into(), n(sent))]);
            marker.extend(retention::owned_by(&e.run_id, &marker_key));
            marker.insert("id".into(), s(marker_key));
            let writes = vec![
                self.run_is_running(&e.run_id),
                self.counter_moves(&e.run_id, inbox_key(&e.run_id, &e.name), "sent", sent),
                self.new_item(item),
                self.new_item(marker),
            ];
            match self.transact(writes).await {
                Ok(()) => return Ok(EventSent::Stored(record)),
                Err(StoreError::Conflict(_)) => {
                    if let Some(refusal) = self.refuses_events(&e.run_id).await? {
                        return Err(refusal);
                    }
                    // Another send took this number or this id: read again.
                }
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::Conflict(format!(
            "the inbox `{}` of run {} kept changing; send again",
            e.name, e.run_id
        )))
    }

    /// Every event of run `run`, found through the `purge-index` (which
    /// lists what the run stored in the runs table), then read by key.
    /// The index lags writes, so a just-sent event may be missing.
    pub(super) async fn events_of(&self, run: &RunId) -> Result<Vec<EventRecord>, StoreError> {
        let prefix = format!("{run}#event#");
        let values = HashMap::from([
            (":run".to_string(), s(run.as_str())),
            (":prefix".to_string(), s(&prefix)),
        ]);
        let listed = self
            .query_keys(
                &self.runs,
                Some(retention::INDEX),
                "purgeGroup = :run AND begins_with(purgeKey, :prefix)",
                values,
                &["id"],
                false,
            )
            .await?;
        let keys: Vec<String> = listed
            .iter()
            .filter_map(|k| k.get("id")?.as_s().ok().cloned())
            .collect();
        let items = self.batch_get(&self.runs, "id", &keys).await?;
        let mut events = Vec::with_capacity(items.len());
        for (key, item) in &items {
            let (name, seq) = key
                .strip_prefix(&prefix)
                .and_then(|rest| rest.rsplit_once('#'))
                .and_then(|(name, seq)| Some((name, seq.parse::<u64>().ok()?)))
                .ok_or_else(|| StoreError::Corrupt(format!("event key {key:?}")))?;
            events.push(event_from(run, name, seq, item)?);
        }
        events.sort_by(|a, b| (&a.name, a.seq).cmp(&(&b.name, b.seq)));
        Ok(events)
    }

    pub(super) async fn oldest_untaken(
        &self,
        run: &RunId,
        name: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        let (sent, taken) = self.inbox_counts(run, name).await?;
        if taken >= sent {
            return Ok(None);
        }
        match self.event(run, name, taken).await? {
            Some(event) => Ok(Some(event)),
            None => Err(StoreError::Corrupt(format!(
                "the inbox `{name}` of run {run} counts {sent} events but #{taken} is missing"
            ))),
        }
    }

    /// The writes that bind event `take.seq` to its wait: the inbox's
    /// `taken` moves past it (so it was the oldest untaken) and the event
    /// gets its taker (so no other wait had it).
    pub(super) fn event_take(&self, take: &EventTake) -> [Write; 2] {
        [
            self.counter_moves(
                &take.run_id,
                inbox_key(&take.run_id, &take.name),
                "taken",
                take.seq,
            ),
            Write::Update {
                table: self.runs.clone(),
                key: Item::from([(
                    "id".to_string(),
                    s(event_key(&take.run_id, &take.name, take.seq)),
                )]),
                expression: "SET #taker = :step".into(),
                condition: "attribute_exists(id) AND attribute_not_exists(#taker)".into(),
                names: HashMap::from([("#taker".to_string(), "takenBy".to_string())]),
                values: HashMap::from([(":step".to_string(), s(&take.step))]),
            },
        ]
    }

    /// Moves counter `attribute` of run `run`'s inbox item `key` from
    /// `from` to `from + 1`, failing if it no longer holds `from` (an absent
    /// counter holds 0). The item is (re)marked as the run's for retention:
    /// an update that leaves an index key as it was costs no index write.
    fn counter_moves(&self, run: &RunId, key: String, attribute: &str, from: u64) -> Write {
        let condition = if from == 0 {
            "attribute_not_exists(#c)"
        } else {
            "#c = :from"
        };
        let [(_, group), (_, purge_key)] = retention::owned_by(run, &key);
        let mut values = HashMap::from([
            (":to".to_string(), n(from + 1)),
            (":group".to_string(), group),
            (":purgeKey".to_string(), purge_key),
        ]);
        if from > 0 {
            values.insert(":from".to_string(), n(from));
        }
        Write::Update {
            table: self.runs.clone(),
            key: Item::from([("id".to_string(), s(key))]),
            expression: "SET #c = :to, purgeGroup = :group, purgeKey = :purgeKey".into(),
            condition: condition.into(),
            names: HashMap::from([("#c".to_string(), attribute.to_string())]),
            values,
        }
    }

    /// A put of an item of the runs table that must not exist yet.
    pub(super) fn new_item(&self, item: Item) -> Write {
        Write::Put {
            table: self.runs.clone(),
            item,
            condition: Some("attribute_not_exists(id)".into()),
            names: HashMap::new(),
            values: HashMap::new(),
        }
    }
}
