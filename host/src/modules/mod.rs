//! The module registry: validated, content-addressed Wasm components.
//!
//! [`ModuleStore`] is the storage seam (SQLite + files locally, DynamoDB + S3
//! on AWS); [`registry`] holds the logic every backend shares: validation
//! against the host's worlds, versioning, and the precompiled-artifact cache.

// Request and guest input flows through here: no unchecked indexing.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub mod aws;
pub mod registry;
pub mod sqlite;

use crate::model::{Digest, ModuleVersion};
use crate::store::StoreError;
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
    /// instead of compiling. Stores on the local disk have nothing to share
    /// beyond the artifact directory, hence the no-op default.
    async fn put_shared_artifact(
        &self,
        _module: &Digest,
        _engine_hash: &str,
        _bytes: &[u8],
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// The artifact [`ModuleStore::put_shared_artifact`] kept, if any. The
    /// caller checks it against [`ModuleStore::artifact_digest`] before use.
    async fn get_shared_artifact(
        &self,
        _module: &Digest,
        _engine_hash: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }

    /// A URL a client can `PUT` to, until `expires` from now, to stage an
    /// upload under `id`: for modules too big for one API request (Lambda
    /// caps requests at 6 MB). `None`: this store takes bytes in the request.
    async fn staged_upload_url(
        &self,
        _id: &str,
        _expires: std::time::Duration,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    /// Takes (reads and removes) the bytes staged under `id`, if any.
    async fn take_staged_upload(&self, _id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
}

/// Whether `latest` already is `candidate` (same bytes, same permissions),
/// which makes an upload a no-op.
pub(crate) fn same_version(latest: &ModuleVersion, candidate: &ModuleVersion) -> bool {
    latest.digest == candidate.digest && latest.allowed_hosts == candidate.allowed_hosts
}
