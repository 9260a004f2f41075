//! The time left in the current invocation, for deadlines derived from it.
//!
//! A Lambda invocation ends at a fixed instant, whatever it is doing: an RPC
//! attempt still running then is killed before its outcome (or its timeout)
//! is recorded, and the other messages of its batch come back later with
//! their receive counts raised. So the Lambda worker runs each event inside
//! [`within`], and every in-invocation deadline is derived from it:
//!
//! - an RPC attempt is claimed only if its timeout ends before the
//!   invocation does, less [`WRAP_UP`] to record the outcome; otherwise the
//!   message is handed to a fresh invocation, unclaimed, with no retry spent;
//! - an activation that is still running [`WRAP_UP`] before the end stops,
//!   keeps what it recorded, and continues from a fresh message: running
//!   out of invocation time never fails a run.
//!
//! Outside an invocation (`weft dev`, the worker loop) there is no such
//! deadline and nothing changes.

use std::future::Future;
use std::time::{Duration, Instant};

tokio::task_local! {
    static ENDS_AT: Instant;
}

/// Kept back from the end of an invocation to record outcomes and send
/// the messages that carry the work on.
pub const WRAP_UP: Duration = Duration::from_secs(5);

/// Runs `work` as an invocation that ends at `ends_at`.
pub async fn within<F: Future>(ends_at: Instant, work: F) -> F::Output {
    ENDS_AT.scope(ends_at, work).await
}

/// Until when work started now may run: the invocation's end less
/// [`WRAP_UP`]. `None` outside an invocation.
pub fn usable_until() -> Option<Instant> {
    ENDS_AT
        .try_with(|end| end.checked_sub(WRAP_UP).unwrap_or(*end))
        .ok()
}

/// Whether work that may take `duration` ends before [`usable_until`].
pub fn fits(duration: Duration) -> bool {
    usable_until().is_none_or(|until| Instant::now() + duration <= until)
}

/// The part of an invocation of `limit` that one piece of work may span (an
/// RPC attempt, an API request's `?wait`): the limit less room to start (a
/// batch's other work) and to wrap up.
pub fn usable_span(limit: Duration) -> Duration {
    limit.saturating_sub(WRAP_UP * 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deadlines_exist_only_inside_an_invocation() {
        assert!(usable_until().is_none());
        assert!(fits(Duration::from_secs(3_600)));
        let ends = Instant::now() + Duration::from_secs(20);
        within(ends, async {
            let until = usable_until().unwrap();
            assert_eq!(until, ends - WRAP_UP);
            assert!(fits(Duration::from_secs(10)));
            assert!(!fits(Duration::from_secs(16)));
        })
        .await;
    }
}
