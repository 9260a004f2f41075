//! The module registry: validated, content-addressed Wasm components.
//!
//! [`ModuleStore`] is the storage seam (SQLite + files locally, DynamoDB + S3
//! on AWS); [`registry`] holds the logic every backend shares: validation
//! against the host's worlds, versioning, and the precompiled-artifact cache.

pub mod aws;
pub mod registry;
pub mod sqlite;

use crate::model::{Digest, Millis, ModuleKind, ModuleVersion};
use crate::store::StoreError;
use async_trait::async_trait;

#[async_trait]
pub trait ModuleStore: Send + Sync + 'static {
    /// Stores module bytes under their digest. Idempotent.
    async fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError>;

    async fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError>;

    /// Records `digest` as the newest version of `name`, unless it already
    /// is, in which case the existing version is returned unchanged.
    async fn add_version(
        &self,
        name: &str,
        digest: &Digest,
        kind: ModuleKind,
        size: u64,
        now: Millis,
    ) -> Result<ModuleVersion, StoreError>;

    /// Every version of `name`, oldest first.
    async fn versions(&self, name: &str) -> Result<Vec<ModuleVersion>, StoreError>;

    /// The version new runs of `name` use.
    async fn latest(&self, name: &str) -> Result<Option<ModuleVersion>, StoreError>;

    /// The latest version of every module.
    async fn list_latest(&self) -> Result<Vec<ModuleVersion>, StoreError>;

    /// The sha256 of the precompiled artifact this host produced for
    /// `module` under engine configuration `engine_hash`, if any. A cached
    /// artifact is only loaded when its bytes hash to this value.
    async fn artifact_digest(
        &self,
        module: &Digest,
        engine_hash: &str,
    ) -> Result<Option<Digest>, StoreError>;

    async fn put_artifact_digest(
        &self,
        module: &Digest,
        engine_hash: &str,
        artifact: &Digest,
    ) -> Result<(), StoreError>;
}
