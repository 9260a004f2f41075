//! Stowed payloads on AWS: S3 objects `payloads/<run>/<sha256>` in the
//! modules bucket, written before the DynamoDB item that names them.

use crate::backend::StoreError;
use crate::backend::aws::{AwsSettings, store_error};
use crate::backend::payloads::{BlobStore, PayloadRef};
use crate::model::RunId;
use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

pub struct S3Blobs {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Blobs {
    pub fn new(s3: aws_sdk_s3::Client, settings: &AwsSettings) -> Self {
        Self {
            s3,
            bucket: settings.modules_bucket.clone(),
        }
    }

    fn run_prefix(run: &RunId) -> String {
        format!("payloads/{run}/")
    }

    fn object_key(key: &PayloadRef) -> String {
        format!("payloads/{}", key.path())
    }

    /// Every object of the run: keys and sizes.
    async fn list_run(&self, run: &RunId) -> Result<Vec<(String, u64)>, StoreError> {
        let mut objects = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(Self::run_prefix(run))
                .set_continuation_token(token)
                .send()
                .await
                .map_err(store_error)?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    let size = object.size().unwrap_or(0).max(0) as u64;
                    objects.push((key.to_string(), size));
                }
            }
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() {
                return Ok(objects);
            }
        }
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put(&self, key: &PayloadRef, bytes: &[u8]) -> Result<(), StoreError> {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(Self::object_key(key))
            .content_type("application/json")
            .body(ByteStream::from(bytes.to_vec()))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn get(&self, key: &PayloadRef) -> Result<Option<Vec<u8>>, StoreError> {
        let object = Self::object_key(key);
        let result = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(&object)
            .send()
            .await;
        match result {
            Ok(out) => {
                let bytes = out.body.collect().await.map_err(|e| {
                    StoreError::Backend(format!("reading s3://{}/{object}: {e}", self.bucket))
                })?;
                Ok(Some(bytes.into_bytes().to_vec()))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn presigned_get(
        &self,
        key: &PayloadRef,
        lifetime: std::time::Duration,
    ) -> Result<Option<String>, StoreError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(lifetime)
            .map_err(|e| StoreError::Backend(format!("cannot presign a download: {e}")))?;
        let request = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(Self::object_key(key))
            .presigned(config)
            .await
            .map_err(store_error)?;
        Ok(Some(request.uri().to_string()))
    }

    async fn contains(&self, key: &PayloadRef) -> Result<bool, StoreError> {
        let result = self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(Self::object_key(key))
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.content_length() == Some(key.len as i64)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn run_bytes(&self, run: &RunId) -> Result<u64, StoreError> {
        Ok(self.list_run(run).await?.iter().map(|(_, size)| size).sum())
    }

    async fn delete_run(&self, run: &RunId) -> Result<(), StoreError> {
        let objects = self.list_run(run).await?;
        // DeleteObjects takes up to 1,000 keys.
        for chunk in objects.chunks(1000) {
            let ids = chunk
                .iter()
                .map(|(key, _)| ObjectIdentifier::builder().key(key).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::backend)?;
            let delete = Delete::builder()
                .set_objects(Some(ids))
                .quiet(true)
                .build()
                .map_err(StoreError::backend)?;
            let out = self
                .s3
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(store_error)?;
            // Quiet mode reports only the objects that were not deleted.
            if let Some(failed) = out.errors().first() {
                return Err(StoreError::Backend(format!(
                    "deleting s3://{}/{}: {}",
                    self.bucket,
                    failed.key().unwrap_or("?"),
                    failed.message().unwrap_or("failed")
                )));
            }
        }
        Ok(())
    }
}
