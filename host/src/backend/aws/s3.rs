//! Module storage on AWS: version records in a DynamoDB table (PK `name`,
//! SK `version`), bytes in S3 under `modules/<sha256>.wasm`.
//!
//! Precompiled-artifact digests live in the same table under reserved names
//! (`@artifact:<module digest>:<engine hash>`, version 0); module names can
//! never start with `@`.

use crate::backend::ModuleStore;
use crate::backend::StoreError;
use crate::backend::aws::AwsSettings;
use crate::backend::aws::dynamo::items::{Item, get_n, get_s, n, s};
use crate::backend::aws::store_error;
use crate::model::{Digest, ModuleKind, ModuleVersion};
use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use std::collections::HashMap;

const ARTIFACT_PREFIX: &str = "@artifact:";

/// Modules in DynamoDB + S3.
#[derive(Clone)]
pub struct AwsModuleStore {
    dynamo: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    table: String,
    bucket: String,
}

fn version_from(item: &Item) -> Result<ModuleVersion, StoreError> {
    let digest = get_s(item, "digest")?;
    let kind = get_s(item, "kind")?;
    Ok(ModuleVersion {
        name: get_s(item, "name")?,
        version: get_n(item, "version")?,
        digest: Digest::parse(&digest)
            .ok_or_else(|| StoreError::Backend(format!("bad digest {digest}")))?,
        kind: ModuleKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend(format!("bad module kind {kind}")))?,
        size: get_n(item, "size")?,
        uploaded_at: get_n(item, "uploadedAt")?,
        allowed_hosts: match item.get("allowedHosts") {
            Some(v) => v
                .as_l()
                .map(|l| l.iter().filter_map(|h| h.as_s().ok().cloned()).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        },
    })
}

impl AwsModuleStore {
    pub fn new(
        dynamo: aws_sdk_dynamodb::Client,
        s3: aws_sdk_s3::Client,
        settings: &AwsSettings,
    ) -> Self {
        Self {
            dynamo,
            s3,
            table: settings.modules_table.clone(),
            bucket: settings.modules_bucket.clone(),
        }
    }

    fn blob_key(digest: &Digest) -> String {
        format!("modules/{}.wasm", digest.as_str())
    }

    async fn query_versions(
        &self,
        name: &str,
        newest_first: bool,
        limit: Option<i32>,
    ) -> Result<Vec<ModuleVersion>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .dynamo
                .query()
                .table_name(&self.table)
                .key_condition_expression("#name = :name")
                .expression_attribute_names("#name", "name")
                .expression_attribute_values(":name", s(name))
                .scan_index_forward(!newest_first)
                .consistent_read(true)
                .set_limit(limit)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_error)?;
            for item in page.items() {
                out.push(version_from(item)?);
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() || limit.is_some() {
                return Ok(out);
            }
        }
    }

    fn shared_artifact_key(module: &Digest, engine_hash: &str) -> String {
        format!("artifacts/{}-{engine_hash}.cwasm", module.as_str())
    }

    fn upload_key(id: &str) -> String {
        format!("uploads/{id}.wasm")
    }

    fn artifact_key(module: &Digest, engine_hash: &str) -> String {
        format!("{ARTIFACT_PREFIX}{}:{engine_hash}", module.as_str())
    }
}

impl AwsModuleStore {
    /// An object's bytes, `None` when there is no such key.
    async fn get_object(&self, key: String) -> Result<Option<Vec<u8>>, StoreError> {
        let result = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await;
        match result {
            Ok(out) => {
                let bytes = out.body.collect().await.map_err(|e| {
                    StoreError::Backend(format!("reading s3://{}/{key}: {e}", self.bucket))
                })?;
                Ok(Some(bytes.into_bytes().to_vec()))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }
}

#[async_trait]
impl ModuleStore for AwsModuleStore {
    async fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(Self::blob_key(digest))
            .content_type("application/wasm")
            .body(ByteStream::from(bytes.to_vec()))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_object(Self::blob_key(digest)).await
    }

    async fn put_shared_artifact(
        &self,
        module: &Digest,
        engine_hash: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(Self::shared_artifact_key(module, engine_hash))
            .content_type("application/octet-stream")
            .body(ByteStream::from(bytes.to_vec()))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn get_shared_artifact(
        &self,
        module: &Digest,
        engine_hash: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_object(Self::shared_artifact_key(module, engine_hash))
            .await
    }

    async fn add_version(&self, candidate: &ModuleVersion) -> Result<ModuleVersion, StoreError> {
        // Optimistic: write latest + 1 if that version does not exist yet;
        // a concurrent upload makes us look again.
        for _ in 0..10 {
            let latest = self.latest(&candidate.name).await?;
            if let Some(latest) = &latest
                && crate::backend::same_version(latest, candidate)
            {
                return Ok(latest.clone());
            }
            let record = ModuleVersion {
                version: latest.map_or(1, |l| l.version + 1),
                ..candidate.clone()
            };
            let hosts = record.allowed_hosts.iter().map(s).collect();
            let item = HashMap::from([
                ("name".to_string(), s(&record.name)),
                ("version".to_string(), n(record.version)),
                ("digest".to_string(), s(record.digest.as_str())),
                ("kind".to_string(), s(record.kind.as_str())),
                ("size".to_string(), n(record.size)),
                ("uploadedAt".to_string(), n(record.uploaded_at)),
                (
                    "allowedHosts".to_string(),
                    aws_sdk_dynamodb::types::AttributeValue::L(hosts),
                ),
            ]);
            let result = self
                .dynamo
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#name)")
                .expression_attribute_names("#name", "name")
                .send()
                .await;
            match result {
                Ok(_) => return Ok(record),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    continue;
                }
                Err(e) => return Err(store_error(e)),
            }
        }
        Err(StoreError::Conflict(format!(
            "module {:?} kept changing while being versioned",
            candidate.name
        )))
    }

    async fn versions(&self, name: &str) -> Result<Vec<ModuleVersion>, StoreError> {
        self.query_versions(name, false, None).await
    }

    async fn latest(&self, name: &str) -> Result<Option<ModuleVersion>, StoreError> {
        Ok(self
            .query_versions(name, true, Some(1))
            .await?
            .into_iter()
            .next())
    }

    async fn list_latest(&self) -> Result<Vec<ModuleVersion>, StoreError> {
        let mut latest: HashMap<String, ModuleVersion> = HashMap::new();
        let mut start = None;
        loop {
            let page = self
                .dynamo
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_error)?;
            for item in page.items() {
                if get_s(item, "name")?.starts_with(ARTIFACT_PREFIX) {
                    continue;
                }
                let v = version_from(item)?;
                if latest.get(&v.name).is_none_or(|l| l.version < v.version) {
                    latest.insert(v.name.clone(), v);
                }
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        let mut list: Vec<ModuleVersion> = latest.into_values().collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    async fn artifact_digest(
        &self,
        module: &Digest,
        engine_hash: &str,
    ) -> Result<Option<Digest>, StoreError> {
        let out = self
            .dynamo
            .get_item()
            .table_name(&self.table)
            .key("name", s(Self::artifact_key(module, engine_hash)))
            .key("version", n(0))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out
            .item()
            .and_then(|i| get_s(i, "digest").ok())
            .and_then(|d| Digest::parse(&d)))
    }

    async fn staged_upload_url(
        &self,
        id: &str,
        expires: std::time::Duration,
    ) -> Result<Option<String>, StoreError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires)
            .map_err(|e| StoreError::Backend(format!("cannot presign an upload: {e}")))?;
        let request = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(Self::upload_key(id))
            .presigned(config)
            .await
            .map_err(store_error)?;
        Ok(Some(request.uri().to_string()))
    }

    async fn take_staged_upload(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = Self::upload_key(id);
        let Some(bytes) = self.get_object(key.clone()).await? else {
            return Ok(None);
        };
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(store_error)?;
        Ok(Some(bytes))
    }

    async fn put_artifact_digest(
        &self,
        module: &Digest,
        engine_hash: &str,
        artifact: &Digest,
    ) -> Result<(), StoreError> {
        self.dynamo
            .put_item()
            .table_name(&self.table)
            .item("name", s(Self::artifact_key(module, engine_hash)))
            .item("version", n(0))
            .item("digest", s(artifact.as_str()))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
