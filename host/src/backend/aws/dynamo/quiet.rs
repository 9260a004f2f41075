//! The quiet index on DynamoDB: running runs by the time they may next need
//! the recovery sweep ([`RunRecord::attention_at`]), so a sweep reads the
//! runs that went quiet and not every running run.
//!
//! A running run item carries `quietShard` (one of [`SHARDS`] partitions,
//! from its id) and `quietKey` (its attention time, rounded up to
//! [`GRAIN_MS`], zero-padded, then `#` and the id: one total order, so a
//! page can end anywhere). The `quiet-index` GSI is keyed on the two and
//! projects keys only. A finished run drops both attributes, so the index
//! only ever holds running runs.
//!
//! Why sharded: one partition of a GSI takes about 1 000 writes a second.
//! Every running run's key moves as it works; sixteen partitions keep that
//! from capping the whole deployment. Why rounded: an update that leaves an
//! index key as it was costs no index write, so a run taking a step a second
//! rewrites its index entry once per grain, not once per step. The sweep
//! then sees a run up to one grain late, which its own quiet threshold
//! (a minute) dwarfs.
//!
//! The index is eventually consistent and only says which runs to read: the
//! runs are read by key, consistently, and the records as read decide.

use super::items::{Item, n, s};
use crate::backend::QuietCursor;
use crate::model::{Millis, RunId, RunRecord};
use aws_sdk_dynamodb::types::AttributeValue;

/// Partitions of the quiet index.
pub const SHARDS: u32 = 16;

/// The attention time's resolution in the index.
pub const GRAIN_MS: Millis = 10_000;

/// The GSI's name.
pub const INDEX: &str = "quiet-index";

/// Digits of a zero-padded time: every millisecond timestamp fits.
const WIDTH: usize = 15;

/// Which partition `id` is indexed under (FNV-1a over the whole id: stable
/// across builds, and spread even for time-ordered ids sharing a prefix).
pub fn shard(id: &RunId) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in id.as_str().bytes() {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    hash % SHARDS
}

/// `at` rounded up to the grain: the index may say late, never early.
fn rounded(at: Millis) -> Millis {
    at.div_ceil(GRAIN_MS).saturating_mul(GRAIN_MS)
}

/// The sort key of `id` with attention time `at` (already rounded).
fn sort_key(at: Millis, id: &str) -> String {
    format!("{at:0WIDTH$}#{id}")
}

/// The index attributes of `run`: `None` for a finished run, which the
/// index does not hold.
pub fn attributes(run: &RunRecord) -> Option<[(String, AttributeValue); 2]> {
    Some(attributes_at(&run.id, run.attention_at()?))
}

/// The index attributes of a running run whose attention time is `at`.
pub fn attributes_at(id: &RunId, at: Millis) -> [(String, AttributeValue); 2] {
    [
        ("quietShard".into(), n(shard(id))),
        ("quietKey".into(), s(sort_key(rounded(at), id.as_str()))),
    ]
}

/// The first key of the range a page reads, if it starts at a cursor
/// (inclusive: the caller drops the cursor's own entry), and the last.
pub fn range(quiet_before: Millis, after: Option<&QuietCursor>) -> (Option<String>, String) {
    let from = after.map(|c| sort_key(c.at, c.id.as_str()));
    // Rounded times at or before `quiet_before`; '$' sorts right after '#'.
    let last = quiet_before - quiet_before % GRAIN_MS;
    (from, format!("{last:0WIDTH$}$"))
}

/// An index entry as a cursor position.
pub fn position(item: &Item) -> Option<QuietCursor> {
    let key = item.get("quietKey")?.as_s().ok()?;
    let (at, id) = key.split_once('#')?;
    Some(QuietCursor {
        at: at.parse().ok()?,
        id: id.parse().ok()?,
    })
}

/// The order of positions: the index's sort key order.
pub fn order(a: &QuietCursor, b: &QuietCursor) -> std::cmp::Ordering {
    a.at.cmp(&b.at)
        .then_with(|| a.id.as_str().cmp(b.id.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_time_then_id_and_never_say_early() {
        let a = sort_key(rounded(1), "z");
        let b = sort_key(rounded(10_001), "a");
        assert!(a < b);
        assert_eq!(rounded(10_000), 10_000);
        assert_eq!(rounded(10_001), 20_000);
        let (_, last) = range(25_000, None);
        assert!(sort_key(rounded(20_000), "any") < last);
        assert!(sort_key(rounded(20_001), "any") > last);
    }

    #[test]
    fn shards_spread_time_ordered_ids() {
        let used: std::collections::BTreeSet<u32> =
            (0..200).map(|_| shard(&RunId::generate())).collect();
        assert_eq!(used.len(), SHARDS as usize);
    }
}
