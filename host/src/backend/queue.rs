//! The `WorkQueue` seam: at-least-once delivery of [`Envelope`]s.
//!
//! Semantics follow SQS so that the embedded queue and SQS are
//! interchangeable: a received message is invisible until acknowledged or
//! until its visibility timeout lapses, delays are capped (900 s), and a
//! message received more than `max_receives` times moves to a dead-letter
//! queue instead of being delivered again.

use crate::model::Envelope;
use async_trait::async_trait;
use std::time::Duration;

/// SQS's longest delivery delay; longer waits are re-armed until due.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// Why a queue call failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue backend failed: {0}")]
    Backend(String),
    #[error("message body is not a Weft envelope: {0}")]
    BadMessage(String),
}

impl QueueError {
    pub fn backend(e: impl std::fmt::Display) -> Self {
        Self::Backend(e.to_string())
    }

    /// Whether the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Backend(_))
    }
}

/// A received message.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// `Err` with the raw body when it is not a valid envelope (a poison
    /// message the worker acknowledges and logs).
    pub envelope: Result<Envelope, String>,
    /// Handle for [`WorkQueue::ack`] and [`WorkQueue::retry_later`].
    pub receipt: String,
    /// How many times this message has been received, this time included.
    pub receive_count: u32,
}

#[async_trait]
pub trait WorkQueue: Send + Sync + 'static {
    /// Enqueues `envelope`, delivered no sooner than `delay` (at most
    /// [`MAX_DELAY`]; longer delays are clamped, so callers set
    /// [`Envelope::not_before`] and workers re-arm).
    async fn send(&self, envelope: &Envelope, delay: Duration) -> Result<(), QueueError>;

    /// Receives up to `max` messages, waiting up to `wait` for the first.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError>;

    /// Deletes a handled message.
    async fn ack(&self, receipt: &str) -> Result<(), QueueError>;

    /// Makes a received message visible again after `delay`.
    async fn retry_later(&self, receipt: &str, delay: Duration) -> Result<(), QueueError>;

    /// Receives from the dead-letter queue, for the worker that fails the
    /// runs those messages belonged to.
    async fn receive_dead(&self, max: usize) -> Result<Vec<Delivery>, QueueError>;

    /// Deletes a handled dead letter.
    async fn ack_dead(&self, receipt: &str) -> Result<(), QueueError>;

    /// About how many messages are ready and waiting for a worker (not
    /// those in flight or delayed), if the queue can tell cheaply: what
    /// the API's admission control compares with its limit. SQS's figure
    /// is approximate and a few seconds old.
    async fn backlog(&self) -> Result<Option<u64>, QueueError> {
        Ok(None)
    }
}
