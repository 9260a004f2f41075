//! Retention: a finished run is kept for [`Settings::retention`] and then
//! deleted with everything it stored (steps, attempts, logs, events,
//! callbacks and stored-aside payloads).
//!
//! A run gets its expiry when it finishes ([`RunRecord::stamp`]); the API
//! shows it as `expiresAt`. The sweep below runs with the recovery sweep
//! (`weft dev`'s worker, the Lambda worker's scheduled event) and finds
//! due runs through the store's expiry index, so its cost follows the
//! runs that expire, not the runs kept.
//!
//! [`Settings::retention`]: super::Settings::retention
//! [`RunRecord::stamp`]: crate::model::RunRecord::stamp

use super::{ServiceError, Weft};
use crate::backend::StoreError;
use crate::model::Millis;
use futures::StreamExt;

/// Expired runs read and deleted at once.
const PURGE_PAGE: usize = 100;
/// Deletes of one page in flight together. One after another, each waits
/// for its own commit, and a busy process finishes runs faster than that
/// deletes them (the soak measured it: a thousand runs a second outran a
/// sequential purge); together, the embedded backend commits them as one
/// group and DynamoDB serves them in parallel.
const PURGE_CONCURRENCY: usize = 16;

impl Weft {
    /// Deletes every finished run whose expiry is at or before `now`;
    /// returns how many. A run that cannot be deleted now (a passing store
    /// error) stays expired and is tried again by the next sweep.
    pub async fn purge_expired(&self, now: Millis) -> Result<usize, ServiceError> {
        let mut purged = 0;
        loop {
            let due = self.state.expired_runs(now, PURGE_PAGE).await?;
            let page = due.len();
            let before = purged;
            let mut deletes = futures::stream::iter(due)
                .map(|id| async move { self.state.delete_run(&id).await })
                .buffer_unordered(PURGE_CONCURRENCY);
            let mut failed = None;
            while let Some(deleted) = deletes.next().await {
                match deleted {
                    Ok(()) => purged += 1,
                    // A run is never both expired and running; a conflict
                    // means a racing delete got there first.
                    Err(StoreError::Conflict(_)) => {}
                    Err(e) => failed = Some(e),
                }
            }
            if let Some(e) = failed {
                return Err(e.into());
            }
            // A short page was the last; a page that deleted nothing would
            // come back the same.
            if page < PURGE_PAGE || purged == before {
                break;
            }
        }
        if purged > 0 {
            tracing::info!(purged, "retention deleted expired runs");
        }
        Ok(purged)
    }
}
