//! Payloads too large for a state item, stored aside.
//!
//! A run's input and output, a step's input and result, an event's payload
//! and a callback's result are JSON text of any size up to
//! [`PayloadLimits::max_payload`]. A DynamoDB item holds 400 KB, so text
//! over [`PayloadLimits::inline`] goes to a [`BlobStore`] (S3 on AWS, files
//! in the data directory on the embedded backend) under the run and its
//! sha256, and the item keeps a [`reference`](PayloadRef) in its place.
//!
//! [`OffloadingStore`] does this for any [`StateStore`](crate::backend::StateStore): it stows on the way
//! in and fetches on the way out, so the service, the guests and the API
//! see the JSON as before. Backends store references as ordinary strings;
//! only this layer knows what they mean. A reference starts with `@`, which
//! no JSON text does, so it can never be mistaken for a payload.
//!
//! Blobs are written before the item that names them: a crash in between
//! leaves an unnamed blob (removed with its run), never a dangling name.

mod cache;
mod offloading;

pub use offloading::OffloadingStore;

use crate::backend::StoreError;
use crate::model::RunId;
use async_trait::async_trait;
use sha2::{Digest as _, Sha256};

/// Where stowed payloads live: one folder (prefix) per run, one blob per
/// distinct payload.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` as `key` durably (idempotent: a key always names the
    /// same bytes).
    async fn put(&self, key: &PayloadRef, bytes: &[u8]) -> Result<(), StoreError>;

    /// The bytes stored as `key`, if any.
    async fn get(&self, key: &PayloadRef) -> Result<Option<Vec<u8>>, StoreError>;

    /// Whether `key` is stored (without reading it).
    async fn contains(&self, key: &PayloadRef) -> Result<bool, StoreError>;

    /// Bytes stored for `run` so far, for the per-run limit.
    async fn run_bytes(&self, run: &RunId) -> Result<u64, StoreError>;

    /// Removes everything stored for `run`.
    async fn delete_run(&self, run: &RunId) -> Result<(), StoreError>;

    /// A URL a client can `GET` the blob from for `lifetime`, for payloads
    /// too large for an API response (Lambda answers 6 MB at most). An
    /// optional capability: `None` says the API serves the bytes itself.
    async fn presigned_get(
        &self,
        _key: &PayloadRef,
        _lifetime: std::time::Duration,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
}

/// How large a payload may be, and from what size it is stowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadLimits {
    /// Larger payloads are stored aside. Small enough that a step item
    /// (input and result) and a run item (input, output and its journal
    /// index) stay well inside DynamoDB's 400 KB.
    pub inline: usize,
    /// The largest single payload; larger ones are `payload_too_large`.
    pub max_payload: usize,
    /// The most one run may store aside in all.
    pub max_run: u64,
    /// Recently stowed or fetched payloads kept in memory, in bytes: replays
    /// read a run's large input on every activation.
    pub cache: usize,
}

impl Default for PayloadLimits {
    fn default() -> Self {
        Self {
            inline: 64 << 10,
            max_payload: 32 << 20,
            max_run: 256 << 20,
            cache: 64 << 20,
        }
    }
}

/// The name of a stowed payload: the run it belongs to, its sha256 and its
/// length. Written into items as `@payload:<run>/<sha256>:<length>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PayloadRef {
    pub run: RunId,
    pub sha256: String,
    pub len: usize,
}

const PREFIX: &str = "@payload:";

impl PayloadRef {
    pub fn of(run: &RunId, text: &str) -> Self {
        Self {
            run: run.clone(),
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            len: text.len(),
        }
    }

    /// The reference written in `text`, if `text` is one. JSON text never
    /// starts with `@`, so a payload is never read as a reference.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix(PREFIX)?;
        let (key, len) = rest.rsplit_once(':')?;
        let (run, sha256) = key.rsplit_once('/')?;
        Some(Self {
            run: run.parse().ok()?,
            sha256: sha256.to_string(),
            len: len.parse().ok()?,
        })
    }

    /// The blob's path below the store's root: `<run>/<sha256>`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.run, self.sha256)
    }
}

impl std::fmt::Display for PayloadRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX}{}/{}:{}", self.run, self.sha256, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_reads_back_and_json_is_never_one() {
        let r = PayloadRef::of(&RunId::generate(), "\"hello\"");
        assert_eq!(PayloadRef::parse(&r.to_string()), Some(r));
        for json in ["\"@payload:r/x:1\"", "{}", "null", "  @payload:r/x:1"] {
            assert_eq!(PayloadRef::parse(json), None, "{json}");
        }
    }
}
