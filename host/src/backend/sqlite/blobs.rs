//! Stowed payloads on the embedded backend: one file per payload in
//! `<data dir>/payloads/<run>/<sha256>`, written durably before the row
//! that names it commits.

use crate::backend::StoreError;
use crate::backend::payloads::{BlobStore, PayloadRef};
use crate::model::RunId;
use async_trait::async_trait;
use std::path::{Path, PathBuf};

pub struct FileBlobs {
    root: PathBuf,
}

impl FileBlobs {
    /// Blobs under `data_dir/payloads`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.join("payloads"),
        }
    }

    fn run_dir(&self, run: &RunId) -> PathBuf {
        self.root.join(run.as_str())
    }
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::backend(format!("payload files: {e}"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(StoreError::backend)?
        .map_err(io)
}

#[async_trait]
impl BlobStore for FileBlobs {
    async fn put(&self, key: &PayloadRef, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = self.run_dir(&key.run);
        let root = self.root.clone();
        let path = dir.join(&key.sha256);
        let bytes = bytes.to_vec();
        blocking(move || {
            if !dir.exists() {
                std::fs::create_dir_all(&dir)?;
                // The run's folder must survive a power loss as its file does.
                std::fs::File::open(&root)?.sync_all()?;
            }
            crate::util::write_file_atomically(&path, &bytes)
        })
        .await
    }

    async fn get(&self, key: &PayloadRef) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.run_dir(&key.run).join(&key.sha256);
        blocking(move || match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    async fn contains(&self, key: &PayloadRef) -> Result<bool, StoreError> {
        let path = self.run_dir(&key.run).join(&key.sha256);
        let len = key.len as u64;
        blocking(move || match std::fs::metadata(&path) {
            Ok(meta) => Ok(meta.len() == len),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        })
        .await
    }

    async fn run_bytes(&self, run: &RunId) -> Result<u64, StoreError> {
        let dir = self.run_dir(run);
        blocking(move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            };
            let mut total = 0;
            for entry in entries {
                total += entry?.metadata()?.len();
            }
            Ok(total)
        })
        .await
    }

    async fn delete_run(&self, run: &RunId) -> Result<(), StoreError> {
        let dir = self.run_dir(run);
        blocking(move || match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await
    }
}
