//! The `ModuleStore` seam: where module bytes, versions and precompiled
//! artifacts live (SQLite + files locally, DynamoDB + S3 on AWS).
//!
//! Validation, versioning rules and the artifact cache are backend-free and
//! live in [`crate::registry`].

use crate::backend::StoreError;
use crate::model::{Digest, ModuleVersion};
use async_trait::async_trait;

#[async_trait]
pub trait ModuleStore: Send + Sync + 'static {
    /// Stores module bytes under their digest. Idempotent.
    async fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError>;

    async fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError>;

    /// Records `version` (its `version` number is ignored) as the newest
    /// version of its name, numbered one past the current newest, unless the
    /// newest already has the same digest and allowed hosts, in which case
    /// that one is returned unchanged.
    async fn add_version(&self, version: &ModuleVersion) -> Result<ModuleVersion, StoreError>;

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

    /// Shares a precompiled artifact with every host of this store, so a
    /// fresh container (a Lambda cold start has an empty `/tmp`) loads it
    /// instead of compiling. Idempotent.
    async fn put_shared_artifact(
        &self,
        module: &Digest,
        engine_hash: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError>;

    /// The artifact [`ModuleStore::put_shared_artifact`] kept, if any. The
    /// caller checks it against [`ModuleStore::artifact_digest`] before use.
    async fn get_shared_artifact(
        &self,
        module: &Digest,
        engine_hash: &str,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// A URL a client can `PUT` to, until `expires` from now, to stage an
    /// upload under `id`: for modules too big for one API request (Lambda
    /// caps requests at 6 MB). An optional capability: `None` says this
    /// store takes bytes in the request only (the embedded backend, whose
    /// server has no request size cap worth staging around).
    async fn staged_upload_url(
        &self,
        _id: &str,
        _expires: std::time::Duration,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    /// Takes (reads and removes) the bytes staged under `id`, if any: once,
    /// so an upload registers at most one version.
    async fn take_staged_upload(&self, _id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
}

/// Whether `latest` already is `candidate` (same bytes, same permissions),
/// which makes an upload a no-op.
pub(crate) fn same_version(latest: &ModuleVersion, candidate: &ModuleVersion) -> bool {
    latest.digest == candidate.digest && latest.allowed_hosts == candidate.allowed_hosts
}
