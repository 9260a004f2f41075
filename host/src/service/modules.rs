//! Deploying modules and reading the registry, for the API and the CLI.

use super::{ServiceError, Weft};
use crate::model::ModuleVersion;
use crate::registry::{DeployError, valid_module_name};
use std::time::Duration;

/// A place to upload a module too big for one request.
#[derive(Clone, Debug)]
pub struct StagedUpload {
    pub id: String,
    pub url: String,
}

impl Weft {
    /// Validates and stores a module as the newest version of `name`.
    pub async fn deploy(&self, name: &str, bytes: Vec<u8>) -> Result<ModuleVersion, ServiceError> {
        self.deploy_with_hosts(name, bytes, &[]).await
    }

    /// [`Weft::deploy`] for an RPC module allowed to reach `allowed_hosts`.
    pub async fn deploy_with_hosts(
        &self,
        name: &str,
        bytes: Vec<u8>,
        allowed_hosts: &[String],
    ) -> Result<ModuleVersion, ServiceError> {
        Ok(self.registry.deploy(name, bytes, allowed_hosts).await?)
    }

    /// The version new runs of `name` use, if it is deployed.
    pub async fn latest_module(&self, name: &str) -> Result<Option<ModuleVersion>, ServiceError> {
        Ok(self.registry.store().latest(name).await?)
    }

    /// Every version of `name`, oldest first; [`ServiceError::UnknownModule`]
    /// if there is none.
    pub async fn module_versions(&self, name: &str) -> Result<Vec<ModuleVersion>, ServiceError> {
        let versions = self.registry.store().versions(name).await?;
        if versions.is_empty() {
            return Err(ServiceError::UnknownModule(name.to_string()));
        }
        Ok(versions)
    }

    /// The latest version of every module.
    pub async fn list_modules(&self) -> Result<Vec<ModuleVersion>, ServiceError> {
        Ok(self.registry.store().list_latest().await?)
    }

    /// A URL to `PUT` a module for `name` to, valid for `lifetime`; `None`
    /// when this backend takes module bytes in the request itself.
    pub async fn stage_upload(
        &self,
        name: &str,
        lifetime: Duration,
    ) -> Result<Option<StagedUpload>, ServiceError> {
        if !valid_module_name(name) {
            return Err(DeployError::InvalidName(name.to_string()).into());
        }
        let id = uuid::Uuid::new_v4().to_string();
        let url = self
            .registry
            .store()
            .staged_upload_url(&id, lifetime)
            .await?;
        Ok(url.map(|url| StagedUpload { id, url }))
    }

    /// Takes (once) the bytes staged as `upload_id`, for a caller that
    /// deploys them its own way (a replay-checked deploy).
    pub async fn take_upload(&self, upload_id: &str) -> Result<Option<Vec<u8>>, ServiceError> {
        Ok(self.registry.store().take_staged_upload(upload_id).await?)
    }

    /// Validates and deploys the module staged as `upload_id`; `None` if
    /// nothing was staged there (or it was registered already).
    pub async fn register_upload(
        &self,
        name: &str,
        upload_id: &str,
        allowed_hosts: &[String],
    ) -> Result<Option<ModuleVersion>, ServiceError> {
        let Some(bytes) = self.registry.store().take_staged_upload(upload_id).await? else {
            return Ok(None);
        };
        Ok(Some(
            self.deploy_with_hosts(name, bytes, allowed_hosts).await?,
        ))
    }
}
