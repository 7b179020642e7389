//! The embedded backend: archives as files and rows in a redb database, under one data folder.
//!
//! ```text
//! <data>/archives/connector-registry/<stored name>   the archives
//! <data>/staging/                                    uploads being read (emptied at start)
//! <data>/registry.redb                               the rows (and the audit outbox)
//! <data>/audit-events.jsonl                          the audit events delivered (by default)
//! ```

mod archives;
mod audit;
mod cached_reads;
mod rows;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

pub use archives::FileArchiveStore;
pub use audit::{JsonLines, JsonLinesSink};
pub use rows::RedbRowStore;

/// Where audit events go by default: a JSON-lines file in the data folder.
pub const AUDIT_EVENTS_FILE: &str = "audit-events.jsonl";

/// The embedded stores under `data_dir`, which is created when missing; presigned URLs point at
/// `public_url`.
pub fn open_stores(data_dir: &Path, public_url: &str) -> anyhow::Result<(Arc<FileArchiveStore>, Arc<RedbRowStore>)> {
    // The database first: it is held by one process at a time, so a second process on the folder
    // (a one-shot command beside a running server) stops here, before the archive store empties
    // the staging folder the first one is using.
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let rows = RedbRowStore::open(&data_dir.join("registry.redb"))?;
    let archives = FileArchiveStore::open(data_dir, public_url)?;
    Ok((Arc::new(archives), Arc::new(rows)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::Versions;
    use crate::registry::{AuditOutbox, RowStore};
    use crate::test_support::conformance;

    async fn redb_row_store_conforms_keeping(cache_budget: usize) {
        let dir = tempfile::tempdir().unwrap();
        let counter = std::sync::atomic::AtomicUsize::new(0);
        conformance::row_store_suite(|| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let path = dir.path().join(format!("rows-{n}.redb"));
            async move { Arc::new(RedbRowStore::open_with_cache(&path, cache_budget).unwrap()) as Arc<dyn RowStore> }
        })
        .await;
    }

    /// Lists answered from the rendered rows kept in memory.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redb_row_store_conforms() {
        redb_row_store_conforms_keeping(rows::CACHED_LIST_BYTES).await;
    }

    /// Lists answered from the database and its status index (a registry too big to keep).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redb_row_store_conforms_listing_from_the_database() {
        redb_row_store_conforms_keeping(0).await;
    }

    /// Between two budgets: the rows are kept until a commit takes them past it, and lists
    /// answer the same before and after.
    #[tokio::test]
    async fn lists_answer_the_same_once_the_rows_outgrow_memory() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbRowStore::open_with_cache(&dir.path().join("rows.redb"), 2_000).unwrap();
        let live = crate::registry::ListQuery { statuses: vec![crate::domain::Status::Live], ..Default::default() };
        let mut seen = Vec::new();
        for version in 0..12 {
            let now = conformance::at(version);
            let rows = [conformance::row("kafka", &format!("{version}"), "stream", now)];
            store.commit_registration(&rows, now, &conformance::draft(), Versions::Immutable).await.unwrap();
            let page = store.list(&live).await.unwrap();
            assert_eq!(page.rows.len(), 1, "one Live row after version {version}");
            assert_eq!(page.rows[0].id.as_str(), format!("kafka-{version}"));
            seen.push(store.cached_page(&Default::default()).is_some());
            assert_eq!(store.list(&Default::default()).await.unwrap().rows.len(), version as usize + 1);
        }
        assert!(seen.first() == Some(&true) && seen.last() == Some(&false), "kept, then outgrown: {seen:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redb_outbox_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let counter = std::sync::atomic::AtomicUsize::new(0);
        conformance::outbox_suite(|| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let path = dir.path().join(format!("outbox-{n}.redb"));
            async move { Arc::new(RedbRowStore::open(&path).unwrap()) }
        })
        .await;
    }

    /// Delivered events are lines of the file, each on the disk before it leaves the outbox, and
    /// records not yet delivered survive a restart.
    #[tokio::test]
    async fn events_go_to_a_json_lines_file_and_survive_a_restart_undelivered() {
        use crate::registry::audit::deliver_pending;
        let dir = tempfile::tempdir().unwrap();
        let store = reopened_after_a_commit(&dir.path().join("rows.redb")).await;
        let events = dir.path().join(AUDIT_EVENTS_FILE);
        let sink = JsonLinesSink::new(JsonLines::File(events.clone()));
        assert_eq!(deliver_pending(&store, &sink).await.unwrap(), 1);
        let later = conformance::at(5);
        store
            .commit_registration(
                &[conformance::row("kafka", "2", "stream", later)],
                later,
                &conformance::draft(),
                Versions::Immutable,
            )
            .await
            .unwrap();
        assert_eq!(deliver_pending(&store, &sink).await.unwrap(), 1);
        let text = std::fs::read_to_string(&events).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["source"], "connector-registry");
        assert_eq!(lines[0]["detail"]["rows"][0]["id"], "kafka-1");
        assert_eq!(lines[1]["detail"]["retired_ids"], serde_json::json!(["kafka-1"]));
        assert_eq!(lines[1]["id"], lines[1]["detail"]["event_id"]);
        assert!(store.pending(10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn file_archive_store_conforms() {
        let dir = tempfile::tempdir().unwrap();
        conformance::archive_store_suite(&FileArchiveStore::open(dir.path(), "http://127.0.0.1:3000").unwrap()).await;
    }

    /// A database that committed `kafka-1` and was closed, opened again.
    async fn reopened_after_a_commit(path: &std::path::Path) -> RedbRowStore {
        let now = conformance::at(0);
        {
            let store = RedbRowStore::open(path).unwrap();
            let rows = [conformance::row("kafka", "1", "stream", now)];
            store.commit_registration(&rows, now, &conformance::draft(), Versions::Immutable).await.unwrap();
        }
        RedbRowStore::open(path).unwrap()
    }

    #[tokio::test]
    async fn rows_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopened_after_a_commit(&dir.path().join("rows.redb")).await;
        assert!(store.get("kafka-1", crate::domain::Status::Live).await.unwrap().is_some());
    }
}
