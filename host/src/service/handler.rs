//! Turning a work message into a service call.

use super::{ServiceError, Weft};
use crate::model::{Envelope, ErrorCode, ErrorInfo, Millis, StepStatus, WorkMessage};
use std::sync::Arc;
use std::time::Duration;

/// What the worker should do with a message after handling it.
#[derive(Debug, PartialEq, Eq)]
pub enum Handled {
    /// Delete it.
    Settled,
    /// The message is fine but its work is busy elsewhere (a live lease):
    /// send a fresh copy due after this long and delete this one. Unlike a
    /// failed delivery, waiting must not count towards dead-lettering.
    Requeue(Duration),
}

/// The first wait of a message whose work is busy elsewhere.
const BUSY_BACKOFF_BASE: Duration = Duration::from_millis(250);
/// The longest wait a busy message's backoff adds (a step's lease can ask
/// for longer: it is waited out).
const BUSY_BACKOFF_CAP: Duration = Duration::from_secs(5);

/// The wait before try `retries` + 1 of a message whose handling failed
/// for a passing reason: 1 s doubling to a minute.
fn transient_backoff(retries: u32) -> Duration {
    Duration::from_secs(1u64 << retries.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

impl Weft {
    /// Handles one work message. Idempotent: a duplicate or stale message
    /// finds its work done (or taken) and changes nothing.
    pub async fn handle(self: &Arc<Self>, envelope: &Envelope) -> Result<Handled, ServiceError> {
        if let Some(at) = envelope.not_before
            && at > self.now()
        {
            // Queues cap delays (SQS: 900 s); re-arm until due, as long as
            // something still waits for this time. A finished run or a
            // superseded timer ends its chain here.
            if self.still_waits_for(&envelope.message, at).await? {
                self.send(envelope.message.clone(), Some(at)).await?;
            }
            return Ok(Handled::Settled);
        }
        match &envelope.message {
            WorkMessage::Resume { run_id } => self.resume(run_id).await,
            WorkMessage::StepFinished { run_id, step } => self.step_finished(run_id, step).await,
            WorkMessage::ExecuteStep { run_id, step, .. } => self.execute_step(run_id, step).await,
            WorkMessage::FireSchedule { name, at } => self.fire_schedule(name, *at).await,
        }
    }

    /// Whether `message`, due at `at`, still has something waiting for it:
    /// a running run whose wake time or deadline is `at`, or a step whose
    /// next attempt is due then.
    async fn still_waits_for(
        &self,
        message: &WorkMessage,
        at: Millis,
    ) -> Result<bool, ServiceError> {
        let run_id = match message {
            WorkMessage::FireSchedule { name, at: due } => {
                let schedule = self.state.get_schedule(name).await?;
                return Ok(schedule.is_some_and(|s| s.next_fire_at == Some(*due) && !s.paused));
            }
            other => other.run_id(),
        };
        let Some(run) = run_id.map(|id| self.state.get_run(id)) else {
            return Ok(false);
        };
        let Some(run) = run.await? else {
            return Ok(false);
        };
        if run.status.is_terminal() {
            return Ok(false);
        }
        Ok(match message {
            WorkMessage::Resume { .. } => run.wake_at == Some(at) || run.deadline == Some(at),
            // A busy run's copy, due once its holder let go.
            WorkMessage::StepFinished { .. } => true,
            WorkMessage::ExecuteStep { run_id, step, .. } => self
                .state
                .get_step(run_id, step)
                .await?
                .is_some_and(|s| s.status == StepStatus::Scheduled && s.wake_at == Some(at)),
            WorkMessage::FireSchedule { .. } => false,
        })
    }

    /// Handles `envelope` to the end: done, or handed back to the queue as a
    /// fresh copy when its work is busy elsewhere. An error means the
    /// delivery should be retried (the queue redelivers it, and after its
    /// receive limit dead-letters it). Shared by the worker loop and the
    /// Lambda worker, which differ only in how they settle the delivery.
    pub async fn process_envelope(
        self: &Arc<Self>,
        envelope: &Envelope,
    ) -> Result<(), ServiceError> {
        match self.handle(envelope).await {
            Ok(Handled::Settled) => Ok(()),
            Ok(Handled::Requeue(delay)) => self.requeue(envelope, delay).await,
            // A passing failure is retried from a fresh copy, spaced out by
            // how often it failed already: the queue's receive count (whose
            // limit dead-letters the message and fails the run) is kept for
            // messages that can never be handled.
            Err(e) if e.is_transient() => {
                let retries = envelope.retries.saturating_add(1);
                let delay = transient_backoff(retries);
                tracing::warn!(
                    run = ?envelope.message.run_id(),
                    retries,
                    "handling {:?} failed, trying again in {delay:?}: {e}",
                    envelope.message
                );
                let copy = Envelope {
                    retries,
                    ..Envelope::now(envelope.message.clone())
                };
                Ok(self.queue.send(&copy, delay).await?)
            }
            Err(e) => Err(e),
        }
    }

    /// Sends a fresh copy of `envelope` due after `delay`: how a message
    /// whose work is busy elsewhere comes back without counting as failed.
    ///
    /// Each time the same work is found busy again the copy waits longer
    /// (from `delay`, doubling to `BUSY_BACKOFF_CAP`): a run held for a
    /// while (its holder died and the lease has yet to lapse) is looked at a
    /// handful of times, not hundreds, and duplicated messages for it do not
    /// multiply lap after lap.
    pub async fn requeue(&self, envelope: &Envelope, delay: Duration) -> Result<(), ServiceError> {
        let retries = envelope.retries.saturating_add(1);
        let backoff = BUSY_BACKOFF_BASE
            .saturating_mul(1u32 << retries.saturating_sub(1).min(16))
            .min(BUSY_BACKOFF_CAP);
        let copy = Envelope {
            retries,
            ..Envelope::now(envelope.message.clone())
        };
        Ok(self.queue.send(&copy, delay.max(backoff)).await?)
    }

    /// Handles a message that could not be processed after the queue's
    /// maximum number of receives: its run fails with the reason, rather
    /// than waiting forever for work that will never happen.
    pub async fn handle_dead_letter(
        &self,
        envelope: &Envelope,
        receives: u32,
    ) -> Result<(), ServiceError> {
        let what = match &envelope.message {
            WorkMessage::Resume { .. } | WorkMessage::StepFinished { .. } => {
                "resuming the run".to_string()
            }
            WorkMessage::ExecuteStep { step, .. } => format!("executing step `{step}`"),
            // No run to fail: the periodic tick fires the schedule anyway.
            WorkMessage::FireSchedule { name, at } => {
                tracing::error!(schedule = %name, at, "a schedule's fire failed {receives} times; the tick will fire it");
                return Ok(());
            }
        };
        let error = ErrorInfo::host(
            ErrorCode::DeadLettered,
            format!(
                "{what} failed {receives} times in a row; the message was moved to the dead-letter queue"
            ),
        );
        // A run that a live activation holds is making progress: the
        // message that died is not what it waits for. Hand it back once more
        // rather than failing a healthy run.
        let Some(run_id) = envelope.message.run_id() else {
            return Ok(());
        };
        if let Some(run) = self.state.get_run(run_id).await?
            && run.lease.as_ref().is_some_and(|l| l.is_live(self.now()))
        {
            tracing::warn!(run = %run_id, "a dead letter for a run with a live lease goes back to the queue");
            return self.requeue(envelope, Duration::from_secs(1)).await;
        }
        tracing::error!(run = %run_id, "{}", error.message);
        self.fail_run(run_id, error).await
    }
}
