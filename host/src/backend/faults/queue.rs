//! [`FaultyQueue`]: a work queue that loses, repeats and delays.

use super::{FaultCounts, FaultPlan, faulted};
use crate::backend::{Delivery, QueueError, WorkQueue};
use crate::model::Envelope;
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A queue that injects the faults of a [`FaultPlan`] into another.
pub struct FaultyQueue {
    inner: Arc<dyn WorkQueue>,
    plan: FaultPlan,
    counts: Arc<FaultCounts>,
}

impl FaultyQueue {
    pub fn new(inner: Arc<dyn WorkQueue>, plan: FaultPlan) -> Self {
        Self::counting(inner, plan, Arc::default())
    }

    /// A faulty queue that adds what it injects to `counts`.
    pub fn counting(inner: Arc<dyn WorkQueue>, plan: FaultPlan, counts: Arc<FaultCounts>) -> Self {
        Self {
            inner,
            plan,
            counts,
        }
    }

    /// What was injected so far.
    pub fn counts(&self) -> &FaultCounts {
        &self.counts
    }

    async fn call<T>(
        &self,
        name: &'static str,
        writes: bool,
        call: impl Future<Output = Result<T, QueueError>>,
    ) -> Result<T, QueueError> {
        faulted(
            &self.plan,
            &self.counts,
            "queue",
            name,
            writes,
            call,
            |_, message| QueueError::Backend(message),
        )
        .await
    }
}

#[async_trait]
impl WorkQueue for FaultyQueue {
    async fn send(&self, envelope: &Envelope, delay: Duration) -> Result<(), QueueError> {
        let mut delay = delay;
        if rand::random::<f64>() < self.plan.delay_rate {
            let extra = self.plan.max_extra_delay.mul_f64(rand::random::<f64>());
            delay += extra;
            self.counts.delay.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                fault = "delay",
                extra_ms = extra.as_millis() as u64,
                "injected fault"
            );
        }
        self.call("send", true, self.inner.send(envelope, delay))
            .await?;
        if rand::random::<f64>() < self.plan.duplicate_rate {
            self.counts.duplicate.fetch_add(1, Ordering::Relaxed);
            tracing::info!(fault = "duplicate", "injected fault");
            self.inner.send(envelope, delay).await?;
        }
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        // Not a write: a receive that "failed" after taking messages would
        // only hide them until their visibility timeout, as a lost ack does.
        self.call("receive", false, self.inner.receive(max, wait))
            .await
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        self.call("ack", true, self.inner.ack(receipt)).await
    }

    async fn retry_later(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        self.call("retry_later", true, self.inner.retry_later(receipt, delay))
            .await
    }

    async fn receive_dead(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        self.call("receive_dead", false, self.inner.receive_dead(max))
            .await
    }

    async fn ack_dead(&self, receipt: &str) -> Result<(), QueueError> {
        self.call("ack_dead", true, self.inner.ack_dead(receipt))
            .await
    }

    async fn backlog(&self) -> Result<Option<u64>, QueueError> {
        self.call("backlog", false, self.inner.backlog()).await
    }
}
