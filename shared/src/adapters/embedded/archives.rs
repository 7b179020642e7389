use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;
use async_trait::async_trait;

use crate::error::StoreError;
use crate::registry::{ArchiveKey, ArchiveStore};

/// Archives as files. Uploads are staged on the same file system, so storing one is a hard link:
/// atomic, and never over an existing archive.
pub struct FileArchiveStore {
    root: PathBuf,
    staging: PathBuf,
}

impl FileArchiveStore {
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let root = data_dir.join("archives");
        let staging = data_dir.join("staging");
        fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        // Anything left in staging belongs to a process that died mid-upload.
        if staging.exists() {
            fs::remove_dir_all(&staging).with_context(|| format!("emptying {}", staging.display()))?;
        }
        fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
        Ok(Self { root, staging })
    }

    fn path_of(&self, key: &ArchiveKey) -> PathBuf {
        self.root.join(key.as_str())
    }
}

#[async_trait]
impl ArchiveStore for FileArchiveStore {
    fn staging_dir(&self) -> &Path {
        &self.staging
    }

    async fn put(&self, key: &ArchiveKey, staged: &Path) -> Result<(), StoreError> {
        let target = self.path_of(key);
        let staged = staged.to_owned();
        blocking(move || {
            File::open(&staged)?.sync_all()?;
            let parent = target.parent().expect("archive keys have a prefix folder");
            fs::create_dir_all(parent)?;
            match fs::hard_link(&staged, &target) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(Err(StoreError::AlreadyExists)),
                other => other?,
            }
            // Make the new name durable before the rows that point at it are committed.
            File::open(parent)?.sync_all()?;
            Ok(Ok(()))
        })
        .await?
    }

    async fn delete(&self, key: &ArchiveKey) -> Result<(), StoreError> {
        let target = self.path_of(key);
        blocking(move || match fs::remove_file(&target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        })
        .await
    }

    async fn exists(&self, key: &ArchiveKey) -> Result<bool, StoreError> {
        let target = self.path_of(key);
        blocking(move || target.try_exists()).await
    }
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> io::Result<T> + Send + 'static) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(StoreError::Other(anyhow::Error::new(e).context("archive file operation"))),
        Err(join) => Err(StoreError::Other(join.into())),
    }
}
