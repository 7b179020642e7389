//! An Obsrv installation's connector archives in a folder (a copy or a mount of its container):
//! `<folder>/connector-registry/<source_url>`, read by `registry-server import-obsrv` and filled by
//! the mirror, so that Obsrv's own url-access serves the registry's archives.

use std::path::PathBuf;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::registry::obsrv::ObsrvArchives;
use crate::registry::{ARCHIVE_PREFIX, ArchiveStore, StoredName, staged_copy};

pub struct ObsrvFolder {
    root: PathBuf,
}

impl ObsrvFolder {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
}

#[async_trait]
impl ObsrvArchives for ObsrvFolder {
    async fn open(&self, name: &StoredName) -> Result<Option<std::fs::File>, StoreError> {
        // A stored name is one plain path segment, so the path stays inside the folder.
        let path = self.root.join(name.key().as_str());
        match std::fs::File::open(&path) {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Other(anyhow::Error::new(e).context(format!("opening {}", path.display())))),
        }
    }

    async fn copy_in(&self, name: &StoredName, from: &dyn ArchiveStore) -> Result<(), StoreError> {
        let path = self.root.join(name.key().as_str());
        if path.exists() {
            return Ok(());
        }
        let Some(source) = from.open(&name.key()).await? else {
            return Err(StoreError::Other(anyhow::anyhow!("the registry has no archive {name}")));
        };
        // Whole or not at all: written beside, then renamed into place.
        let staged = staged_copy(source, &self.root.join(ARCHIVE_PREFIX)).await?;
        staged.persist(&path).map(drop).map_err(|e| {
            StoreError::Other(anyhow::Error::new(e.error).context(format!("copying into {}", path.display())))
        })
    }
}
