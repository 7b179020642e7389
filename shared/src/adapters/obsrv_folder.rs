//! An Obsrv installation's connector archives in a folder (a copy or a mount of its container):
//! `<folder>/connector-registry/<source_url>`, for `registry-server import-obsrv`.

use std::path::PathBuf;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::registry::StoredName;
use crate::registry::obsrv::ObsrvArchives;

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
}
