//! Schedules in DynamoDB: one item per schedule in the runs table, keyed
//! `schedule#<name>` (a run id has no `#`), holding the record as JSON and
//! its `version`.
//!
//! Every schedule item is in the `schedule-index` GSI: partition
//! `scheduleSet` (always `schedules`), sort key `scheduleDue`, the next fire
//! time zero-padded then `#` and the name (`~paused#<name>` while paused or
//! with no time ahead, which sorts after every time). Listing reads the one
//! partition; the tick asks for the keys up to now, so it reads the due
//! schedules only. One partition holds thousands of schedules, each
//! rewritten once per fire: far below a partition's write rate.

use super::items::{Item, get_n, get_s, n, s};
use super::{DynamoStore, Write};
use crate::backend::aws::store_error;
use crate::backend::{ScheduleWrite, StoreError};
use crate::model::{Millis, Schedule};
use std::collections::HashMap;

/// The GSI's name.
pub const INDEX: &str = "schedule-index";
/// The one value of `scheduleSet`.
const SET: &str = "schedules";
/// Digits of a zero-padded time.
const WIDTH: usize = 15;

fn key_of(name: &str) -> String {
    format!("schedule#{name}")
}

fn due_key(schedule: &Schedule) -> String {
    match schedule.next_fire_at.filter(|_| !schedule.paused) {
        Some(at) => format!("{at:0WIDTH$}#{}", schedule.name),
        None => format!("~paused#{}", schedule.name),
    }
}

fn schedule_from(item: &Item) -> Result<Schedule, StoreError> {
    let body = get_s(item, "body")?;
    let mut schedule: Schedule = serde_json::from_str(&body)
        .map_err(|e| StoreError::Corrupt(format!("stored schedule is not readable: {e}")))?;
    schedule.version = get_n(item, "version")?;
    Ok(schedule)
}

impl DynamoStore {
    pub(super) async fn put_schedule_item(&self, write: ScheduleWrite) -> Result<(), StoreError> {
        let mut record = write.record;
        record.version = write.expected_version.map_or(0, |v| v + 1);
        let body = serde_json::to_string(&record).unwrap_or_default();
        let item = Item::from([
            ("id".to_string(), s(key_of(&record.name))),
            ("body".to_string(), s(body)),
            ("version".to_string(), n(record.version)),
            ("scheduleSet".to_string(), s(SET)),
            ("scheduleDue".to_string(), s(due_key(&record))),
        ]);
        let (condition, values) = match write.expected_version {
            None => ("attribute_not_exists(id)".to_string(), HashMap::new()),
            Some(v) => (
                "#version = :expected".to_string(),
                HashMap::from([(":expected".to_string(), n(v))]),
            ),
        };
        let names = match write.expected_version {
            None => HashMap::new(),
            Some(_) => HashMap::from([("#version".to_string(), "version".to_string())]),
        };
        self.write_one(Write::Put {
            table: self.runs.clone(),
            item,
            condition: Some(condition),
            names,
            values,
        })
        .await
    }

    pub(super) async fn schedule(&self, name: &str) -> Result<Option<Schedule>, StoreError> {
        match self.runs_item(key_of(name)).await? {
            Some(item) => schedule_from(&item).map(Some),
            None => Ok(None),
        }
    }

    /// The schedules whose index keys are at most `last` (all of them
    /// without), read by key consistently, in index order.
    pub(super) async fn schedules_up_to(
        &self,
        last: Option<String>,
        limit: usize,
    ) -> Result<Vec<Schedule>, StoreError> {
        let mut ids = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.runs)
                .index_name(INDEX)
                .expression_attribute_values(":set", s(SET))
                .set_exclusive_start_key(start);
            request = match &last {
                Some(last) => request
                    .key_condition_expression("scheduleSet = :set AND scheduleDue <= :last")
                    .expression_attribute_values(":last", s(last)),
                None => request.key_condition_expression("scheduleSet = :set"),
            };
            let out = request.send().await.map_err(store_error)?;
            ids.extend(
                out.items()
                    .iter()
                    .filter_map(|item| item.get("id")?.as_s().ok().cloned()),
            );
            start = out.last_evaluated_key().cloned();
            if start.is_none() || ids.len() >= limit {
                break;
            }
        }
        ids.truncate(limit);
        let items = self.batch_get(&self.runs, "id", &ids).await?;
        // The index may lag: the items as read decide.
        ids.iter()
            .filter_map(|id| items.get(id))
            .map(schedule_from)
            .collect()
    }

    pub(super) async fn due(&self, now: Millis, limit: usize) -> Result<Vec<Schedule>, StoreError> {
        let last = format!("{now:0WIDTH$}#\u{10ffff}");
        let found = self.schedules_up_to(Some(last), limit).await?;
        Ok(found
            .into_iter()
            .filter(|s| !s.paused && s.next_fire_at.is_some_and(|at| at <= now))
            .collect())
    }

    pub(super) async fn delete_schedule_item(&self, name: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.runs)
            .key("id", s(key_of(name)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out.attributes().is_some())
    }
}
