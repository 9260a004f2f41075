//! Fault injection at the queue seam.

use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use weft::model::Envelope;
use weft::queue::{Delivery, QueueError, WorkQueue};

/// Sends every message twice, as an at-least-once queue may deliver it.
pub struct Duplicating {
    inner: Arc<dyn WorkQueue>,
    pub duplicates: AtomicU64,
}

impl Duplicating {
    pub fn new(inner: Arc<dyn WorkQueue>) -> Self {
        Self {
            inner,
            duplicates: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl WorkQueue for Duplicating {
    async fn send(&self, envelope: &Envelope, delay: Duration) -> Result<(), QueueError> {
        self.inner.send(envelope, delay).await?;
        self.inner.send(envelope, delay).await?;
        self.duplicates.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        self.inner.receive(max, wait).await
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        self.inner.ack(receipt).await
    }

    async fn retry_later(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        self.inner.retry_later(receipt, delay).await
    }

    async fn receive_dead(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        self.inner.receive_dead(max).await
    }

    async fn ack_dead(&self, receipt: &str) -> Result<(), QueueError> {
        self.inner.ack_dead(receipt).await
    }
}
