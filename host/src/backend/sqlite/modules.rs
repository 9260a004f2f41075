//! Module storage for the embedded backend: version records in SQLite,
//! bytes as files named by digest under `<data-dir>/modules/`.

use super::SqliteBackend;
use crate::backend::ModuleStore;
use crate::backend::StoreError;
use crate::model::{Digest, ModuleKind, ModuleVersion};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};
use std::path::PathBuf;

fn version_from_row(row: &Row<'_>) -> rusqlite::Result<ModuleVersion> {
    let digest: String = row.get(2)?;
    let kind: String = row.get(3)?;
    let bad = |what: &str, v: &str| {
        rusqlite::Error::InvalidParameterName(format!("stored {what} is invalid: {v}"))
    };
    Ok(ModuleVersion {
        name: row.get(0)?,
        version: row.get(1)?,
        digest: Digest::parse(&digest).ok_or_else(|| bad("digest", &digest))?,
        kind: ModuleKind::parse(&kind).ok_or_else(|| bad("module kind", &kind))?,
        size: row.get::<_, i64>(4)? as u64,
        uploaded_at: row.get::<_, i64>(5)? as u64,
        allowed_hosts: serde_json::from_str(&row.get::<_, String>(6)?).unwrap_or_default(),
    })
}

const COLUMNS: &str = "name, version, digest, kind, size, uploaded_at, allowed_hosts";

impl SqliteBackend {
    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir()
            .join("modules")
            .join(format!("{}.wasm", digest.as_str()))
    }

    fn shared_artifact_path(&self, module: &Digest, engine_hash: &str) -> PathBuf {
        self.dir()
            .join("artifacts")
            .join(format!("{}-{engine_hash}.cwasm", module.as_str()))
    }
}

/// Reads a file, `None` if it does not exist.
async fn read_if_present(path: PathBuf) -> Result<Option<Vec<u8>>, StoreError> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::backend(e)),
    }
}

/// Writes a file so readers see all of it or nothing, off the async threads.
async fn write_atomically(path: PathBuf, bytes: Vec<u8>) -> Result<(), StoreError> {
    tokio::task::spawn_blocking(move || crate::util::write_file_atomically(&path, &bytes))
        .await
        .map_err(StoreError::backend)?
        .map_err(StoreError::backend)
}

#[async_trait]
impl ModuleStore for SqliteBackend {
    async fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.blob_path(digest);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(());
        }
        write_atomically(path, bytes.to_vec()).await
    }

    async fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        read_if_present(self.blob_path(digest)).await
    }

    /// Hosts sharing this data directory are processes on this machine:
    /// the artifact is a file beside the module bytes.
    async fn put_shared_artifact(
        &self,
        module: &Digest,
        engine_hash: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        write_atomically(
            self.shared_artifact_path(module, engine_hash),
            bytes.to_vec(),
        )
        .await
    }

    async fn get_shared_artifact(
        &self,
        module: &Digest,
        engine_hash: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        read_if_present(self.shared_artifact_path(module, engine_hash)).await
    }

    async fn add_version(&self, candidate: &ModuleVersion) -> Result<ModuleVersion, StoreError> {
        let candidate = candidate.clone();
        self.with_conn(move |c| {
            let err = StoreError::backend;
            let tx = c.transaction().map_err(err)?;
            let latest = tx
                .query_row(
                    &format!("SELECT {COLUMNS} FROM modules WHERE name = ?1 ORDER BY version DESC LIMIT 1"),
                    [&candidate.name],
                    version_from_row,
                )
                .optional()
                .map_err(err)?;
            if let Some(latest) = &latest
                && crate::backend::same_version(latest, &candidate)
            {
                return Ok(latest.clone());
            }
            let record = ModuleVersion {
                version: latest.map_or(1, |l| l.version + 1),
                ..candidate
            };
            tx.execute(
                &format!("INSERT INTO modules ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    record.name,
                    record.version,
                    record.digest.as_str(),
                    record.kind.as_str(),
                    record.size as i64,
                    record.uploaded_at as i64,
                    serde_json::to_string(&record.allowed_hosts).unwrap_or_else(|_| "[]".into()),
                ],
            )
            .map_err(err)?;
            tx.commit().map_err(err)?;
            Ok(record)
        })
        .await
    }

    async fn versions(&self, name: &str) -> Result<Vec<ModuleVersion>, StoreError> {
        let name = name.to_string();
        self.read_conn(move |c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM modules WHERE name = ?1 ORDER BY version"
                ))
                .map_err(StoreError::backend)?;
            let rows = stmt
                .query_map([name], version_from_row)
                .map_err(StoreError::backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(StoreError::backend)
        })
    }

    async fn latest(&self, name: &str) -> Result<Option<ModuleVersion>, StoreError> {
        let name = name.to_string();
        self.read_conn(move |c| {
            c.query_row(
                &format!(
                    "SELECT {COLUMNS} FROM modules WHERE name = ?1 ORDER BY version DESC LIMIT 1"
                ),
                [name],
                version_from_row,
            )
            .optional()
            .map_err(StoreError::backend)
        })
    }

    async fn list_latest(&self) -> Result<Vec<ModuleVersion>, StoreError> {
        self.read_conn(move |c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM modules m
                     WHERE version = (SELECT MAX(version) FROM modules WHERE name = m.name)
                     ORDER BY name"
                ))
                .map_err(StoreError::backend)?;
            let rows = stmt
                .query_map([], version_from_row)
                .map_err(StoreError::backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(StoreError::backend)
        })
    }

    async fn artifact_digest(
        &self,
        module: &Digest,
        engine_hash: &str,
    ) -> Result<Option<Digest>, StoreError> {
        let (module, engine_hash) = (module.clone(), engine_hash.to_string());
        self.read_conn(move |c| {
            let found: Option<String> = c
                .query_row(
                    "SELECT artifact_digest FROM artifacts WHERE module_digest = ?1 AND engine_hash = ?2",
                    params![module.as_str(), engine_hash],
                    |r| r.get(0),
                )
                .optional()
                .map_err(StoreError::backend)?;
            Ok(found.and_then(|d| Digest::parse(&d)))
        })
    }

    async fn put_artifact_digest(
        &self,
        module: &Digest,
        engine_hash: &str,
        artifact: &Digest,
    ) -> Result<(), StoreError> {
        let (module, engine_hash, artifact) =
            (module.clone(), engine_hash.to_string(), artifact.clone());
        self.with_conn(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO artifacts (module_digest, engine_hash, artifact_digest) VALUES (?1, ?2, ?3)",
                params![module.as_str(), engine_hash, artifact.as_str()],
            )
            .map_err(StoreError::backend)?;
            Ok(())
        })
        .await
    }
}
