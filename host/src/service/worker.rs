//! The worker loop: receive work messages, handle them concurrently,
//! acknowledge or retry them; fail the runs of dead-lettered messages; and
//! periodically re-drive runs that lost their messages.

use super::Weft;
use crate::backend::Delivery;
use crate::model::WorkMessage;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Worker tuning.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Messages handled at once.
    pub concurrency: usize,
    /// Longest wait of one receive call (SQS long polling allows 20 s).
    pub receive_wait: Duration,
    /// How often the dead-letter queue is drained.
    pub dead_letter_interval: Duration,
    /// How often runs are checked for lost messages.
    pub sweep_interval: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 16,
            receive_wait: Duration::from_secs(1),
            dead_letter_interval: Duration::from_secs(5),
            sweep_interval: Duration::from_secs(30),
        }
    }
}

/// Backoff for a message whose handler failed (store or queue trouble).
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// Runs the worker until the task is dropped or aborted.
pub async fn run(svc: Arc<Weft>, options: WorkerOptions) {
    let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let maintenance = tokio::spawn(maintain(Arc::clone(&svc), options.clone()));
    let _abort_on_exit = AbortOnDrop(maintenance);
    loop {
        let free = permits.available_permits().max(1);
        let batch = match svc.queue.receive(free.min(10), options.receive_wait).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!("receiving work failed: {e}");
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
        };
        for delivery in batch {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            let svc = Arc::clone(&svc);
            tokio::spawn(async move {
                process(&svc, delivery).await;
                drop(permit);
            });
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Handles one delivery and settles it with the queue.
pub async fn process(svc: &Arc<Weft>, delivery: Delivery) {
    let envelope = match &delivery.envelope {
        Ok(e) => e,
        Err(body) => {
            tracing::error!("dropping a message that is not a Weft envelope: {body:.200}");
            let _ = svc.queue.ack(&delivery.receipt).await;
            return;
        }
    };
    let settled = match svc.process_envelope(envelope).await {
        Ok(()) => svc.queue.ack(&delivery.receipt).await,
        Err(e) => {
            tracing::warn!(run = ?envelope.message.run_id(), "handling {:?} failed: {e}", envelope.message);
            svc.queue
                .retry_later(&delivery.receipt, ERROR_BACKOFF)
                .await
        }
    };
    if let Err(e) = settled {
        tracing::error!("settling a message with the queue failed: {e}");
    }
}

/// Background duties: dead letters, the recovery sweep, the schedule tick
/// (which fires what a lost `fire-schedule` message missed) and retention.
async fn maintain(svc: Arc<Weft>, options: WorkerOptions) {
    let mut dead = tokio::time::interval(options.dead_letter_interval);
    let mut sweep = tokio::time::interval(options.sweep_interval);
    loop {
        tokio::select! {
            _ = dead.tick() => drain_dead_letters(&svc).await,
            _ = sweep.tick() => {
                if let Err(e) = sweep_runs(&svc).await {
                    tracing::warn!("recovery sweep failed: {e}");
                }
                if let Err(e) = svc.fire_due_schedules().await {
                    tracing::warn!("schedule tick failed: {e}");
                }
                if let Err(e) = svc.purge_expired(svc.now()).await {
                    tracing::warn!("retention sweep failed: {e}");
                }
            }
        }
    }
}

/// Fails the runs whose messages were dead-lettered.
pub async fn drain_dead_letters(svc: &Arc<Weft>) {
    let dead = match svc.queue.receive_dead(10).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("reading the dead-letter queue failed: {e}");
            return;
        }
    };
    for delivery in dead {
        let handled = match &delivery.envelope {
            Ok(envelope) => svc
                .handle_dead_letter(envelope, delivery.receive_count)
                .await
                .is_ok(),
            Err(body) => {
                tracing::error!("discarding an unreadable dead letter: {body:.200}");
                true
            }
        };
        if handled && let Err(e) = svc.queue.ack_dead(&delivery.receipt).await {
            tracing::warn!("deleting a dead letter failed: {e}");
        }
    }
}

/// Re-drives running runs that nobody holds and that have not changed for
/// a while: a crash between a state write and the message that should
/// follow it would otherwise strand them. A resume is idempotent, and the
/// replay re-sends whatever message an unfinished step is missing.
pub async fn sweep_runs(svc: &Arc<Weft>) -> Result<usize, super::ServiceError> {
    sweep_runs_in_pages(svc, SWEEP_PAGE).await
}

/// Quiet runs the sweep reads at once.
const SWEEP_PAGE: usize = 100;

/// [`sweep_runs`], reading the quiet runs `page` at a time: every one of
/// them is looked at, however many there are, and only they are (the
/// store lists running runs by when they went quiet; see
/// [`crate::backend::StateStore::list_quiet_runs`]).
pub async fn sweep_runs_in_pages(
    svc: &Arc<Weft>,
    page: usize,
) -> Result<usize, super::ServiceError> {
    let now = svc.now();
    let stale_after = svc.settings.repair_after.as_millis() as u64;
    let quiet_before = now.saturating_sub(stale_after);
    let mut resumed = 0;
    let mut after = None;
    loop {
        let found = svc
            .state
            .list_quiet_runs(quiet_before, after.as_ref(), page.max(1))
            .await?;
        resumed += redrive_idle(svc, &found.runs, now, stale_after).await?;
        match found.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if resumed > 0 {
        tracing::info!(resumed, "recovery sweep re-drove idle runs");
    }
    Ok(resumed)
}

/// Sends a resume for each of `runs` that nobody holds and that has been
/// quiet for longer than `stale_after`; returns how many.
async fn redrive_idle(
    svc: &Arc<Weft>,
    runs: &[crate::model::RunRecord],
    now: crate::model::Millis,
    stale_after: u64,
) -> Result<usize, super::ServiceError> {
    let mut resumed = 0;
    for run in runs {
        // A run a timer will wake is not idle before the timer is due.
        let quiet_since = run.updated_at.max(run.wake_at.unwrap_or(0));
        let idle = now.saturating_sub(quiet_since) > stale_after;
        let free = run.lease.as_ref().is_none_or(|l| !l.is_live(now));
        if !(idle && free) {
            continue;
        }
        // One failed send must not end the sweep: the runs after it in the
        // order would otherwise wait for a sweep in which every send
        // succeeds, which a large sweep on a flaky queue seldom is. The
        // next sweep retries the ones that failed.
        let resume = WorkMessage::Resume {
            run_id: run.id.clone(),
        };
        match svc.send(resume, None).await {
            Ok(()) => resumed += 1,
            Err(e) => {
                tracing::warn!(run = %run.id, error = %e, "the recovery sweep could not re-drive a run; the next sweep retries it")
            }
        }
    }
    Ok(resumed)
}
