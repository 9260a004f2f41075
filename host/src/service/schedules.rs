//! Schedules: a workflow started on a cron expression (UTC).
//!
//! A schedule's next fire is driven two ways, both idempotent:
//! - a `fire-schedule` message for its next time, sent delayed when the
//!   schedule is written or fires (on time, found by key);
//! - the periodic tick ([`Weft::fire_due_schedules`], beside the recovery
//!   sweep; on Lambda the scheduled event), which reads the due schedules
//!   through their index and fires what a lost message missed.
//!
//! A fire at time `T` starts the run whose id derives from (schedule, `T`)
//! through the idempotent start, then moves the schedule on by a write
//! guarded by the version it read. Two workers firing the same `T` make one
//! run, and only the one whose write lands sends the next message.
//!
//! Missed times (the host was down, or the tick was late) are not made up
//! one by one: a fire starts one run, for the latest due time, and the
//! schedule goes on from the first time after now. While paused a schedule
//! has no next time; resuming it starts from the first time after the
//! resume.

use super::handler::Handled;
use super::{ServiceError, StartOptions, Weft};
use crate::backend::{ScheduleWrite, StoreError};
use crate::model::{Cron, Millis, Overlap, RunStatus, Schedule, WorkMessage, valid_schedule_name};
use std::sync::Arc;

/// What a client asks a schedule to do ([`Weft::put_schedule`]).
#[derive(Clone, Debug)]
pub struct ScheduleSpec {
    pub workflow: String,
    pub cron: String,
    /// JSON text.
    pub input: String,
    pub overlap: Overlap,
}

/// How often a schedule write is retried after losing a race.
const WRITE_ATTEMPTS: u32 = 10;
/// Due schedules fired per tick page.
const TICK_PAGE: usize = 100;
/// The most missed times a late fire walks over to find the latest one.
const CATCH_UP_STEPS: u32 = 100_000;

impl Weft {
    /// Creates schedule `name`, or replaces what it starts and when (its
    /// paused state and history stay). Its next fire is the first time
    /// after now.
    pub async fn put_schedule(
        self: &Arc<Self>,
        name: &str,
        spec: ScheduleSpec,
    ) -> Result<Schedule, ServiceError> {
        if !valid_schedule_name(name) {
            return Err(ServiceError::InvalidSchedule(format!(
                "schedule name {name:?} must be 1-128 of A-Z a-z 0-9 _ - ."
            )));
        }
        let cron =
            Cron::parse(&spec.cron).map_err(|e| ServiceError::InvalidSchedule(e.to_string()))?;
        self.check_client_payload("the schedule's input", &spec.input)?;
        // Kept in the schedule's own item, which is not stored aside: at
        // most what an item keeps in line.
        let inline = self.limits.inline_payload_bytes;
        if spec.input.len() > inline {
            return Err(ServiceError::PayloadTooLarge(format!(
                "the schedule's input is {} bytes; a schedule keeps at most {inline} \
                 (WEFT_INLINE_PAYLOAD_BYTES)",
                spec.input.len()
            )));
        }
        self.workflow_version(&spec.workflow).await?;
        let schedule = self
            .update_schedule(name, |now, existing| {
                let paused = existing.is_some_and(|s| s.paused);
                Ok(Schedule {
                    name: name.to_string(),
                    workflow: spec.workflow.clone(),
                    cron: spec.cron.clone(),
                    input: spec.input.clone(),
                    overlap: spec.overlap,
                    paused,
                    next_fire_at: (!paused).then(|| cron.next_after(now)).flatten(),
                    last_fire_at: existing.and_then(|s| s.last_fire_at),
                    last_run_id: existing.and_then(|s| s.last_run_id.clone()),
                    skipped: existing.map_or(0, |s| s.skipped),
                    created_at: existing.map_or(now, |s| s.created_at),
                    updated_at: now,
                    version: 0,
                })
            })
            .await?;
        self.arm(&schedule).await?;
        Ok(schedule)
    }

    pub async fn get_schedule(&self, name: &str) -> Result<Schedule, ServiceError> {
        self.state
            .get_schedule(name)
            .await?
            .ok_or_else(|| ServiceError::UnknownSchedule(name.to_string()))
    }

    pub async fn list_schedules(&self) -> Result<Vec<Schedule>, ServiceError> {
        Ok(self.state.list_schedules().await?)
    }

    /// Pauses a schedule: it fires no more until resumed.
    pub async fn pause_schedule(self: &Arc<Self>, name: &str) -> Result<Schedule, ServiceError> {
        self.update_schedule(name, |now, existing| {
            let mut s = existing
                .cloned()
                .ok_or_else(|| ServiceError::UnknownSchedule(name.to_string()))?;
            s.paused = true;
            s.next_fire_at = None;
            s.updated_at = now;
            Ok(s)
        })
        .await
    }

    /// Resumes a paused schedule from the first time after now: the times
    /// it missed while paused are skipped.
    pub async fn resume_schedule(self: &Arc<Self>, name: &str) -> Result<Schedule, ServiceError> {
        let schedule = self
            .update_schedule(name, |now, existing| {
                let mut s = existing
                    .cloned()
                    .ok_or_else(|| ServiceError::UnknownSchedule(name.to_string()))?;
                let cron = Cron::parse(&s.cron)
                    .map_err(|e| ServiceError::InvalidSchedule(e.to_string()))?;
                if s.paused || s.next_fire_at.is_none() {
                    s.next_fire_at = cron.next_after(now);
                }
                s.paused = false;
                s.updated_at = now;
                Ok(s)
            })
            .await?;
        self.arm(&schedule).await?;
        Ok(schedule)
    }

    /// Deletes a schedule; the runs it started are left as they are.
    pub async fn delete_schedule(&self, name: &str) -> Result<(), ServiceError> {
        if self.state.delete_schedule(name).await? {
            Ok(())
        } else {
            Err(ServiceError::UnknownSchedule(name.to_string()))
        }
    }

    /// Handles `fire-schedule`: fires `name` for `at` if that is still its
    /// next time (a schedule changed, paused or deleted since ends the
    /// message's chain here).
    pub(crate) async fn fire_schedule(
        self: &Arc<Self>,
        name: &str,
        at: Millis,
    ) -> Result<Handled, ServiceError> {
        if let Some(schedule) = self.state.get_schedule(name).await?
            && !schedule.paused
            && schedule.next_fire_at == Some(at)
        {
            self.fire(schedule).await?;
        }
        Ok(Handled::Settled)
    }

    /// The tick: fires every schedule that is due. Returns how many fired.
    pub async fn fire_due_schedules(self: &Arc<Self>) -> Result<usize, ServiceError> {
        let mut fired = 0;
        loop {
            let due = self.state.due_schedules(self.now(), TICK_PAGE).await?;
            let full = due.len() == TICK_PAGE;
            for schedule in due {
                fired += usize::from(self.fire(schedule).await?);
            }
            if !full {
                return Ok(fired);
            }
        }
    }

    /// Fires `schedule` for its latest due time and moves it on. Returns
    /// whether this call moved it (another worker may have got there first,
    /// having started the same run).
    async fn fire(self: &Arc<Self>, schedule: Schedule) -> Result<bool, ServiceError> {
        let now = self.now();
        let Some(due) = schedule.next_fire_at.filter(|at| *at <= now) else {
            return Ok(false);
        };
        let Ok(cron) = Cron::parse(&schedule.cron) else {
            tracing::error!(schedule = %schedule.name, "stored cron expression no longer parses");
            return Ok(false);
        };
        let mut at = due;
        for _ in 0..CATCH_UP_STEPS {
            match cron.next_after(at) {
                Some(later) if later <= now => at = later,
                _ => break,
            }
        }
        let mut next = schedule.clone();
        let previous_runs = match (&schedule.overlap, &schedule.last_run_id) {
            (Overlap::Skip, Some(id)) if *id != schedule.run_id(at) => self
                .state
                .get_run(id)
                .await?
                .is_some_and(|r| r.status == RunStatus::Running),
            _ => false,
        };
        if previous_runs {
            next.skipped += 1;
        } else {
            let options = StartOptions {
                idempotency_key: Some(schedule.start_key(at)),
                ..StartOptions::default()
            };
            match self
                .start_run_with(&schedule.workflow, &schedule.input, options)
                .await
            {
                Ok(id) => next.last_run_id = Some(id),
                // The workflow went away, or its input no longer fits: the
                // schedule goes on, and says so in the log.
                Err(e @ (ServiceError::UnknownWorkflow(_) | ServiceError::NotAWorkflow(_))) => {
                    tracing::warn!(schedule = %schedule.name, at, "cannot start the scheduled run: {e}");
                }
                Err(e) => return Err(e),
            }
        }
        next.last_fire_at = Some(at);
        next.next_fire_at = cron.next_after(now);
        next.updated_at = now;
        let write = ScheduleWrite {
            record: next.clone(),
            expected_version: Some(schedule.version),
        };
        match self.state.put_schedule(write).await {
            Ok(()) => {
                next.version = schedule.version + 1;
                self.arm(&next).await?;
                Ok(true)
            }
            // Another worker fired it (the same run) or it was changed.
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends the message that fires `schedule` at its next time.
    async fn arm(&self, schedule: &Schedule) -> Result<(), ServiceError> {
        if let Some(at) = schedule.next_fire_at.filter(|_| !schedule.paused) {
            let message = WorkMessage::FireSchedule {
                name: schedule.name.clone(),
                at,
            };
            self.send(message, Some(at)).await?;
        }
        Ok(())
    }

    /// Reads schedule `name`, lets `change` make its new state from the
    /// time and what is stored, and writes it guarded by the version read,
    /// reading again after losing a race.
    async fn update_schedule(
        &self,
        name: &str,
        mut change: impl FnMut(Millis, Option<&Schedule>) -> Result<Schedule, ServiceError>,
    ) -> Result<Schedule, ServiceError> {
        for _ in 0..WRITE_ATTEMPTS {
            let existing = self.state.get_schedule(name).await?;
            let mut record = change(self.now(), existing.as_ref())?;
            let expected_version = existing.as_ref().map(|s| s.version);
            let write = ScheduleWrite {
                record: record.clone(),
                expected_version,
            };
            match self.state.put_schedule(write).await {
                Ok(()) => {
                    record.version = expected_version.map_or(0, |v| v + 1);
                    return Ok(record);
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(format!("schedule `{name}` kept changing")).into())
    }
}
