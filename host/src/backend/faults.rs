//! Fault injection at the queue seam, for chaos testing a deployment.
//!
//! Off unless `WEFT_FAULT_DUPLICATE_RATE` or `WEFT_FAULT_DELAY_RATE` is set:
//! then a fraction of sent messages is sent twice (as an at-least-once queue
//! may deliver them), and a fraction is held back by a random extra delay
//! (as a slow queue would). Every injected fault is logged with
//! `fault=...`, so a test can count them.

use crate::backend::{Delivery, QueueError, WorkQueue};
use crate::config::env_num;
use crate::model::Envelope;
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What to inject, as probabilities per sent message.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultPlan {
    pub duplicate_rate: f64,
    pub delay_rate: f64,
    pub max_extra_delay: Duration,
}

impl FaultPlan {
    /// The plan from `WEFT_FAULT_*`, or `None` when no fault is enabled.
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        let rate = |name: &str| -> anyhow::Result<f64> {
            match std::env::var(name) {
                Ok(v) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| {
                        anyhow::anyhow!("{name}={v:?} is not a probability between 0 and 1")
                    }),
                Err(_) => Ok(0.0),
            }
        };
        let plan = Self {
            duplicate_rate: rate("WEFT_FAULT_DUPLICATE_RATE")?,
            delay_rate: rate("WEFT_FAULT_DELAY_RATE")?,
            max_extra_delay: Duration::from_millis(env_num("WEFT_FAULT_DELAY_MAX_MS", 2_000)?),
        };
        Ok((plan.duplicate_rate > 0.0 || plan.delay_rate > 0.0).then_some(plan))
    }

    /// Every message duplicated, none delayed.
    pub fn always_duplicate() -> Self {
        Self {
            duplicate_rate: 1.0,
            delay_rate: 0.0,
            max_extra_delay: Duration::ZERO,
        }
    }
}

/// A queue that injects the faults of a [`FaultPlan`] into another.
pub struct FaultyQueue {
    inner: Arc<dyn WorkQueue>,
    plan: FaultPlan,
    pub duplicates: AtomicU64,
    pub delays: AtomicU64,
}

impl FaultyQueue {
    pub fn new(inner: Arc<dyn WorkQueue>, plan: FaultPlan) -> Self {
        Self {
            inner,
            plan,
            duplicates: AtomicU64::new(0),
            delays: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl WorkQueue for FaultyQueue {
    async fn send(&self, envelope: &Envelope, delay: Duration) -> Result<(), QueueError> {
        let mut delay = delay;
        if rand::random::<f64>() < self.plan.delay_rate {
            let extra = self.plan.max_extra_delay.mul_f64(rand::random::<f64>());
            delay += extra;
            self.delays.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                fault = "delay",
                extra_ms = extra.as_millis() as u64,
                "injected fault"
            );
        }
        self.inner.send(envelope, delay).await?;
        if rand::random::<f64>() < self.plan.duplicate_rate {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            tracing::info!(fault = "duplicate", "injected fault");
            self.inner.send(envelope, delay).await?;
        }
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
