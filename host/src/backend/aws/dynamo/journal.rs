//! The journal index on DynamoDB: a run's step names in order, kept in
//! fixed-size chunks, so that recording a step costs the same at step 10 as
//! at step 10 000 and no run item outgrows DynamoDB's 400 KB.
//!
//! The run item holds the names after the last full chunk (`stepNames`) and
//! how many names come before them (`stepBase`, a multiple of [`CHUNK`]).
//! Each full chunk is an item of its own in the runs table, keyed
//! `<run>#journal#<k>`, written in the same transaction as the run update
//! that fills it and never changed afterwards: the journal only grows, and
//! the run's version fences who may grow it. Chunk items have no `status`,
//! so the status index never lists them. They are read by key, consistently,
//! like everything replay decides on.
//!
//! Run items written before chunks existed have no `stepBase` and the whole
//! journal in `stepNames`; reading one writes its full chunks first (see
//! `DynamoStore::runs_from`), so the next update can move on from there.

use super::items::{Item, s};
use crate::backend::StoreError;
use crate::model::RunId;
use aws_sdk_dynamodb::types::AttributeValue;

/// Names per chunk item. With names of a few dozen bytes a chunk is a few
/// KB; a run writes one every `CHUNK` steps.
pub const CHUNK: usize = 100;

/// How many of `len` names live in chunk items: the full chunks.
pub fn base(len: usize) -> usize {
    len - len % CHUNK
}

/// The key of chunk `k` of `run`'s journal.
pub fn chunk_key(run: &RunId, k: usize) -> String {
    format!("{run}#journal#{k}")
}

/// The keys of the chunks holding a journal's first `base` names.
pub fn chunk_keys(run: &RunId, base: usize) -> impl Iterator<Item = String> + '_ {
    (0..base / CHUNK).map(move |k| chunk_key(run, k))
}

/// The chunks that a journal growing from `from` names to `names` fills:
/// `(k, names of chunk k)`. Empty unless the write crosses a chunk boundary.
pub fn filled(names: &[String], from: usize) -> impl Iterator<Item = (usize, &[String])> {
    (from / CHUNK..base(names.len()) / CHUNK).map(move |k| (k, &names[k * CHUNK..(k + 1) * CHUNK]))
}

/// The item of chunk `k`.
pub fn chunk_item(run: &RunId, k: usize, names: &[String]) -> Item {
    Item::from([
        ("id".into(), s(chunk_key(run, k))),
        (
            "names".into(),
            AttributeValue::L(names.iter().map(s).collect()),
        ),
    ])
}

/// The names a chunk item holds.
pub fn names_in(item: &Item, key: &str) -> Result<Vec<String>, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("journal chunk {key} has no valid `names`"));
    let names = item
        .get("names")
        .and_then(|v| v.as_l().ok())
        .ok_or_else(corrupt)?;
    let names: Vec<String> = names
        .iter()
        .map(|v| v.as_s().cloned().map_err(|_| corrupt()))
        .collect::<Result<_, _>>()?;
    if names.len() != CHUNK {
        return Err(corrupt());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("s{i}")).collect()
    }

    #[test]
    fn a_write_fills_exactly_the_chunks_it_completes() {
        let journal = names(2 * CHUNK + 5);
        assert_eq!(base(journal.len()), 2 * CHUNK);
        // One step past a boundary fills nothing; reaching it fills one.
        assert_eq!(filled(&journal[..CHUNK + 1], CHUNK).count(), 0);
        let one: Vec<_> = filled(&journal[..CHUNK], CHUNK - 1).collect();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].0, 0);
        assert_eq!(one[0].1, &journal[..CHUNK]);
        // A write that appends across two boundaries fills both.
        let two: Vec<usize> = filled(&journal, 3).map(|(k, _)| k).collect();
        assert_eq!(two, vec![0, 1]);
        assert_eq!(filled(&journal, 2 * CHUNK).count(), 0);
    }
}

/// Chunk items this process has read, by key. A chunk never changes once
/// written, so a copy is good for as long as it is kept: an activation in
/// a process that has seen the run reads only the chunks filled since,
/// and the run item's tail. Bounded: past [`ChunkCache::CAPACITY`] chunks
/// (a few KB each) the oldest are dropped.
#[derive(Debug, Default)]
pub struct ChunkCache {
    inner: std::sync::Mutex<Cached>,
}

#[derive(Debug, Default)]
struct Cached {
    chunks: std::collections::HashMap<String, std::sync::Arc<Vec<String>>>,
    order: std::collections::VecDeque<String>,
}

impl ChunkCache {
    /// Chunks kept, at most: about 10 MB of names.
    pub const CAPACITY: usize = 4_096;

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The names of chunk `key`, if kept.
    pub fn get(&self, key: &str) -> Option<std::sync::Arc<Vec<String>>> {
        self.lock().chunks.get(key).cloned()
    }

    /// Keeps chunk `key`'s names, dropping the oldest chunks over capacity.
    pub fn put(&self, key: String, names: std::sync::Arc<Vec<String>>) {
        let mut cached = self.lock();
        if cached.chunks.insert(key.clone(), names).is_none() {
            cached.order.push_back(key);
        }
        while cached.order.len() > Self::CAPACITY {
            if let Some(oldest) = cached.order.pop_front() {
                cached.chunks.remove(&oldest);
            }
        }
    }
}
