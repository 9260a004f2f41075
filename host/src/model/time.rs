//! Wall-clock time as the stores and the wire see it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch. Every timestamp Weft persists uses this
/// unit, so DynamoDB numbers, SQLite integers and JSON agree.
pub type Millis = u64;

/// The host's current wall-clock time in [`Millis`].
pub fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// Where the service reads the time. Production uses [`SystemClock`]; tests
/// use [`ManualClock`] to let two hours pass in a moment.
pub trait Clock: Send + Sync + 'static {
    fn now_millis(&self) -> Millis;
}

/// The host's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> Millis {
        now_millis()
    }
}

/// The wall clock shifted by an offset that only moves forward.
#[derive(Debug, Default)]
pub struct ManualClock {
    offset_ms: std::sync::atomic::AtomicU64,
}

impl ManualClock {
    /// Moves this clock `by` into the future.
    pub fn advance(&self, by: std::time::Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as u64, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> Millis {
        now_millis() + self.offset_ms.load(std::sync::atomic::Ordering::SeqCst)
    }
}
