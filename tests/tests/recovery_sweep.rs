//! The recovery sweep re-drives every quiet run it can, even when the
//! queue refuses some of its sends. (A 100-run chaos round on moto found
//! the sweep ending at its first failed send, so the runs after it in the
//! sweep's order were never re-driven while the queue stayed flaky.)

use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use weft::backend::sqlite::EmbeddedOptions;
use weft::backend::{Backends, Delivery, QueueError, WorkQueue};
use weft::config::RpcMode;
use weft::model::Envelope;
use weft::service::worker;
use weft_tests::{Service, example};

/// The embedded queue, refusing the next `refuse` sends and counting the
/// sends that went through.
struct RefusingQueue {
    inner: Arc<dyn WorkQueue>,
    refuse: AtomicUsize,
    sent: AtomicUsize,
}

#[async_trait]
impl WorkQueue for RefusingQueue {
    async fn send(&self, envelope: &Envelope, delay: Duration) -> Result<(), QueueError> {
        let refused = self
            .refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refused {
            return Err(QueueError::Backend("refused by the test".into()));
        }
        self.inner.send(envelope, delay).await?;
        self.sent.fetch_add(1, Ordering::SeqCst);
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

#[tokio::test]
async fn a_failed_send_does_not_end_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let mut backends = Backends::embedded(dir.path(), EmbeddedOptions::default()).unwrap();
    let queue = Arc::new(RefusingQueue {
        inner: backends.queue.clone(),
        refuse: AtomicUsize::new(0),
        sent: AtomicUsize::new(0),
    });
    backends.queue = queue.clone();
    // No worker: the runs stay as their start left them, quiet and held
    // by nobody, and a run is quiet as soon as it was written.
    let s = Service::with_backends(backends, RpcMode::Inline, |settings, _| {
        settings.repair_after = Duration::ZERO;
        settings.start_locally = false;
    });
    s.deploy("hello", &example("hello")).await;
    for name in ["a", "b", "c"] {
        s.svc
            .start_run("hello", &format!("{{\"name\":\"{name}\"}}"))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;

    // The first re-drive's send fails; the other two still go out.
    queue.refuse.store(1, Ordering::SeqCst);
    let before = queue.sent.load(Ordering::SeqCst);
    let resumed = worker::sweep_runs(&s.svc).await.expect("the sweep");
    assert_eq!(resumed, 2, "one send refused, two runs re-driven");
    assert_eq!(queue.sent.load(Ordering::SeqCst) - before, 2);

    // The next sweep re-drives all three, the one refused before included.
    assert_eq!(worker::sweep_runs(&s.svc).await.unwrap(), 3);
}
