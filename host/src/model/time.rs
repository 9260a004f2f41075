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
