//! The local sink of audit events: one JSON object per line, appended to a file (and flushed to
//! the disk before the outbox record is removed) or written to stdout.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use crate::error::StoreError;
use crate::registry::{AuditRecord, AuditSink};

/// Where the JSON lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonLines {
    File(PathBuf),
    Stdout,
}

pub struct JsonLinesSink {
    target: JsonLines,
    /// Appends one at a time, so that lines never interleave.
    lock: Arc<Mutex<()>>,
}

impl JsonLinesSink {
    pub fn new(target: JsonLines) -> Self {
        Self { target, lock: Arc::default() }
    }

    fn append(path: &Path, line: &[u8]) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        file.write_all(line)?;
        // On the disk before the record leaves the outbox: a crash then loses nothing.
        file.sync_data()
    }
}

#[async_trait]
impl AuditSink for JsonLinesSink {
    async fn publish(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let mut line = record.to_line()?;
        line.push('\n');
        let (target, lock) = (self.target.clone(), self.lock.clone());
        tokio::task::spawn_blocking(move || {
            let _one = lock.lock().unwrap_or_else(PoisonError::into_inner);
            match &target {
                JsonLines::File(path) => Self::append(path, line.as_bytes())
                    .map_err(|e| anyhow::Error::new(e).context(format!("appending to {}", path.display()))),
                JsonLines::Stdout => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(line.as_bytes()).and_then(|()| out.flush()).map_err(anyhow::Error::new)
                }
            }
        })
        .await
        .map_err(|e| StoreError::Other(e.into()))?
        .map_err(StoreError::Other)
    }
}
