//! Turning a work message into a service call.

use super::{ServiceError, Weft};
use crate::model::{Envelope, ErrorCode, ErrorInfo, WorkMessage};
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

impl Weft {
    /// Handles one work message. Idempotent: a duplicate or stale message
    /// finds its work done (or taken) and changes nothing.
    pub async fn handle(self: &Arc<Self>, envelope: &Envelope) -> Result<Handled, ServiceError> {
        if let Some(at) = envelope.not_before
            && at > self.now()
        {
            // Queues cap delays (SQS: 900 s); re-arm until due.
            self.send(envelope.message.clone(), Some(at)).await?;
            return Ok(Handled::Settled);
        }
        match &envelope.message {
            WorkMessage::Resume { run_id } => self.resume(run_id).await,
            WorkMessage::ExecuteStep { run_id, step, .. } => self.execute_step(run_id, step).await,
        }
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
        match self.handle(envelope).await? {
            Handled::Settled => Ok(()),
            Handled::Requeue(delay) => self.requeue(envelope, delay).await,
        }
    }

    /// Sends a fresh copy of `envelope` due after `delay`: how a message
    /// whose work is busy elsewhere comes back without counting as failed.
    pub async fn requeue(&self, envelope: &Envelope, delay: Duration) -> Result<(), ServiceError> {
        Ok(self
            .queue
            .send(&Envelope::now(envelope.message.clone()), delay)
            .await?)
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
            WorkMessage::Resume { .. } => "resuming the run".to_string(),
            WorkMessage::ExecuteStep { step, .. } => format!("executing step `{step}`"),
        };
        let error = ErrorInfo::host(
            ErrorCode::DeadLettered,
            format!(
                "{what} failed {receives} times in a row; the message was moved to the dead-letter queue"
            ),
        );
        tracing::error!(run = %envelope.message.run_id(), "{}", error.message);
        self.fail_run(envelope.message.run_id(), error).await
    }
}
