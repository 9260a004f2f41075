//! Admission control: what the service does when more work arrives than
//! its workers can take.
//!
//! Two bounds, so that overload turns into a clear answer rather than
//! timeouts and memory growth:
//!
//! - **Local starts.** A process that starts runs in-process
//!   ([`Settings::start_locally`](super::Settings)) does so for at most
//!   `WEFT_LOCAL_STARTS` runs at a time, and not while the queue has a
//!   backlog; otherwise a new run's first activation goes through the
//!   queue like any other message, where the workers take it in arrival
//!   order at their own concurrency.
//! - **Backlog.** Before a client's start, the queue's ready backlog is
//!   compared with `WEFT_MAX_BACKLOG`. At or over it, the start is refused
//!   with [`ServiceError::Overloaded`] (the API's `429` with
//!   `Retry-After`) and nothing is written: a client retrying after the
//!   advised delay loses nothing. Runs already admitted are never dropped;
//!   their own messages (steps, timers, children) are not refused.
//!
//! The backlog is read at most once a second; in between, each start this
//! process admits adds one to the last reading, so a burst is measured as
//! it arrives while the check costs one queue call per second, not one
//! per start.

use super::{ServiceError, Weft};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a read of the backlog is trusted.
const BACKLOG_FRESH: Duration = Duration::from_secs(1);
/// The longest delay a refused client is told to wait.
const MAX_RETRY_AFTER_SECS: u64 = 30;

/// The admission state of one service.
pub(crate) struct Admission {
    /// Refuse client starts at this many ready messages; 0: never.
    max_backlog: u64,
    /// The last backlog read.
    last: Mutex<Option<Reading>>,
    /// Permits for first activations run in this process.
    local_starts: Arc<Semaphore>,
}

impl Admission {
    pub(crate) fn new(max_backlog: u64, local_starts: usize) -> Self {
        Self {
            max_backlog,
            last: Mutex::new(None),
            local_starts: Arc::new(Semaphore::new(local_starts)),
        }
    }

    /// A permit to run one more first activation here, if one is free and
    /// the last reading found no backlog: a run started here must not
    /// overtake runs already waiting in the queue.
    pub(crate) fn local_start(&self) -> Option<OwnedSemaphorePermit> {
        if self.queue_busy() {
            return None;
        }
        Arc::clone(&self.local_starts).try_acquire_owned().ok()
    }

    /// Whether the last fresh reading found messages waiting.
    fn queue_busy(&self) -> bool {
        self.fresh_backlog().is_some_and(|backlog| backlog > 0)
    }

    /// The backlog of the last reading, if it is fresh enough to trust.
    fn fresh_backlog(&self) -> Option<u64> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .filter(|r| r.at.elapsed() < BACKLOG_FRESH)
            .map(|r| r.backlog)
    }

    /// Admits one start against `reading` (or the last reading): `Err`
    /// with the estimated backlog if it is at or over the limit; otherwise
    /// the start is counted against it.
    fn take(&self, reading: Option<u64>) -> Result<(), u64> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(backlog) = reading {
            *last = Some(Reading {
                at: Instant::now(),
                backlog,
                admitted: 0,
            });
        }
        let Some(last) = last.as_mut() else {
            return Ok(());
        };
        let estimate = last.backlog + last.admitted;
        if estimate >= self.max_backlog {
            return Err(estimate);
        }
        last.admitted += 1;
        Ok(())
    }
}

/// A read of the queue's backlog.
struct Reading {
    at: Instant,
    backlog: u64,
    /// Starts admitted since: messages the reading does not show yet.
    admitted: u64,
}

/// How long a client refused at `backlog` should wait: a second at the
/// limit, growing with how far past it the backlog is.
pub(crate) fn retry_after(backlog: u64, limit: u64) -> Duration {
    let over = backlog.saturating_sub(limit);
    let secs = 1 + over.saturating_mul(4) / limit.max(1);
    Duration::from_secs(secs.min(MAX_RETRY_AFTER_SECS))
}

impl Weft {
    /// Whether a client may start a run now: `Err(Overloaded)` while the
    /// queue's ready backlog is at or over `WEFT_MAX_BACKLOG`.
    pub(crate) async fn admit_start(&self) -> Result<(), ServiceError> {
        let limit = self.admission.max_backlog;
        if limit == 0 {
            return Ok(());
        }
        let reading = if self.admission.fresh_backlog().is_some() {
            None
        } else {
            match self.queue.backlog().await? {
                Some(backlog) => Some(backlog),
                // The queue cannot tell: nothing to compare.
                None => return Ok(()),
            }
        };
        let Err(backlog) = self.admission.take(reading) else {
            return Ok(());
        };
        self.metrics.start_refused();
        Err(ServiceError::Overloaded {
            backlog,
            limit,
            retry_after: retry_after(backlog, limit),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advised_wait_grows_with_the_excess_and_is_capped() {
        assert_eq!(retry_after(100, 100), Duration::from_secs(1));
        assert_eq!(retry_after(150, 100), Duration::from_secs(3));
        assert_eq!(retry_after(200, 100), Duration::from_secs(5));
        assert_eq!(retry_after(u64::MAX, 100), Duration::from_secs(30));
    }

    #[test]
    fn starts_between_readings_count_against_the_limit() {
        let admission = Admission::new(5, 1);
        assert_eq!(admission.take(Some(3)), Ok(()));
        assert_eq!(admission.take(None), Ok(()));
        assert_eq!(admission.take(None), Err(5));
        // A new reading replaces the estimate.
        assert_eq!(admission.take(Some(0)), Ok(()));
    }

    #[test]
    fn local_starts_are_bounded() {
        let admission = Admission::new(10, 2);
        let a = admission.local_start();
        let b = admission.local_start();
        assert!(a.is_some() && b.is_some());
        assert!(admission.local_start().is_none());
        drop(a);
        assert!(admission.local_start().is_some());
        // Not past runs waiting in the queue.
        drop(b);
        assert_eq!(admission.take(Some(1)), Ok(()));
        assert!(admission.local_start().is_none());
    }
}
