//! The embedded backend: archives as files and rows in a redb database, under one data folder.
//!
//! ```text
//! <data>/archives/connector-registry/<stored name>   the archives
//! <data>/staging/                                    uploads being read (emptied at start)
//! <data>/registry.redb                               the rows
//! ```

mod archives;
mod rows;

use std::path::Path;
use std::sync::Arc;

pub use archives::FileArchiveStore;
pub use rows::RedbRowStore;

use crate::registry::RowStore;

/// The embedded stores under `data_dir`, which is created when missing; presigned URLs point at
/// `public_url`.
pub fn open_stores(data_dir: &Path, public_url: &str) -> anyhow::Result<(Arc<FileArchiveStore>, Arc<dyn RowStore>)> {
    let archives = FileArchiveStore::open(data_dir, public_url)?;
    let rows = RedbRowStore::open(&data_dir.join("registry.redb"))?;
    Ok((Arc::new(archives), Arc::new(rows)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::registry::RowStore;
    use crate::test_support::conformance;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redb_row_store_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let counter = std::sync::atomic::AtomicUsize::new(0);
        conformance::row_store_suite(|| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let path = dir.path().join(format!("rows-{n}.redb"));
            async move { Arc::new(RedbRowStore::open(&path).unwrap()) as Arc<dyn RowStore> }
        })
        .await;
    }

    #[tokio::test]
    async fn file_archive_store_conforms() {
        let dir = tempfile::tempdir().unwrap();
        conformance::archive_store_suite(&FileArchiveStore::open(dir.path(), "http://127.0.0.1:3000").unwrap()).await;
    }

    #[tokio::test]
    async fn rows_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.redb");
        let now = conformance::at(0);
        {
            let store = RedbRowStore::open(&path).unwrap();
            store.commit_registration(&[conformance::row("kafka", "1", "stream", now)], now).await.unwrap();
        }
        let store = RedbRowStore::open(&path).unwrap();
        assert!(store.get("kafka-1", crate::domain::Status::Live).await.unwrap().is_some());
    }
}
