//! Large payloads at the service's edge. Inside, payloads of any size up to
//! the limit flow as JSON text (the store's payload layer puts the large
//! ones aside). At the edge, a serverless API cannot take or give them in
//! one message (Lambda: 6 MB each way), so a client stages a large input
//! with a presigned upload and downloads a large payload from a presigned
//! link.

use super::modules::StagedUpload;
use super::{ServiceError, Weft};
use crate::model::RunId;
use std::time::Duration;

impl Weft {
    /// A URL to `PUT` a run input of `workflow` to, for an input too large
    /// for one API request; the run is then started from the upload.
    /// `None` where the store has no staging area (the embedded backend,
    /// whose server takes inputs up to the payload limit directly).
    pub async fn stage_input(
        &self,
        workflow: &str,
        lifetime: Duration,
    ) -> Result<Option<StagedUpload>, ServiceError> {
        self.workflow_version(workflow).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let url = self
            .registry
            .store()
            .staged_upload_url(&id, lifetime)
            .await?;
        Ok(url.map(|url| StagedUpload { id, url }))
    }

    /// Takes the input staged as `upload_id` (once); `None` if nothing was
    /// staged there or it was taken already.
    pub async fn take_staged_input(&self, upload_id: &str) -> Result<Option<String>, ServiceError> {
        let Some(bytes) = self.registry.store().take_staged_upload(upload_id).await? else {
            return Ok(None);
        };
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ServiceError::InvalidInput("the uploaded input is not UTF-8".into()))
    }

    /// Where a client can download `text`, a stored-aside payload of run
    /// `run`, for `lifetime`; `None` when the API should send it itself.
    pub async fn download_link(
        &self,
        run: &RunId,
        text: &str,
        lifetime: Duration,
    ) -> Result<Option<String>, ServiceError> {
        Ok(self.payloads.download_link(run, text, lifetime).await?)
    }
}
