use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::domain::{ConnectorRow, Status, Timestamp};
use crate::error::StoreError;
use crate::registry::{ListPage, ListQuery, RowStore};

/// Rows by id, as JSON.
const ROWS: TableDefinition<&str, &[u8]> = TableDefinition::new("rows");
/// For each connector id, the id of its Live row: what a registration retires.
const LIVE: TableDefinition<&str, &str> = TableDefinition::new("live_row_by_connector");

/// redb's page cache (1 GiB by default) would keep every page ever read; the operating system
/// caches the file anyway, and list keeps its own rendered rows (`registry::Listing`).
const CACHE_BYTES: usize = 512 * 1024;

/// Rows in a redb database: ACID transactions, committed durably, crash-safe by design.
#[derive(Clone)]
pub struct RedbRowStore {
    db: Arc<Database>,
    /// Bumped after every commit attempt; redb lets one process hold the database, so this
    /// process sees every change.
    generation: Arc<AtomicU64>,
}

impl RedbRowStore {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .with_context(|| format!("opening {}", path.display()))?;
        // Create the tables up front so read transactions always find them.
        let txn = db.begin_write()?;
        txn.open_table(ROWS)?;
        txn.open_table(LIVE)?;
        txn.commit()?;
        Ok(Self { db: Arc::new(db), generation: Arc::new(AtomicU64::new(0)) })
    }

    fn list_blocking(&self, query: &ListQuery) -> anyhow::Result<ListPage> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ROWS)?;
        let start = match &query.after {
            Some(after) => Bound::Excluded(after.as_str()),
            None => Bound::Unbounded,
        };
        let mut page = ListPage::default();
        for entry in table.range::<&str>((start, Bound::Unbounded))? {
            let (_, value) = entry?;
            let row = decode(value.value())?;
            if !query.matches(&row) {
                continue;
            }
            if query.limit.is_some_and(|limit| page.rows.len() == limit) {
                page.next_after = page.rows.last().map(|r| r.id.as_str().to_owned());
                break;
            }
            page.rows.push(row);
        }
        Ok(page)
    }

    fn commit_blocking(&self, rows: &[ConnectorRow], now: Timestamp) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(other)?;
        {
            let mut table = txn.open_table(ROWS).map_err(other)?;
            let mut live = txn.open_table(LIVE).map_err(other)?;
            for row in rows {
                let existing =
                    table.get(row.id.as_str()).map_err(other)?.map(|v| decode(v.value())).transpose().map_err(other)?;
                let mut new = row.clone();
                if let Some(existing) = existing {
                    if existing.connector_id != row.connector_id {
                        return Err(StoreError::Conflict(format!(
                            "row id {} already belongs to connector {}",
                            row.id, existing.connector_id
                        )));
                    }
                    new.created_by = existing.created_by;
                    new.created_date = existing.created_date;
                    new.updated_by = existing.updated_by;
                    new.live_date = existing.live_date.or(new.live_date);
                }
                let previous_live = live.get(row.connector_id.as_str()).map_err(other)?.map(|v| v.value().to_owned());
                if let Some(previous) = previous_live.filter(|id| id != row.id.as_str()) {
                    let stored = table
                        .get(previous.as_str())
                        .map_err(other)?
                        .map(|v| decode(v.value()))
                        .transpose()
                        .map_err(other)?;
                    if let Some(mut retired) = stored.filter(|r| r.status == Status::Live) {
                        retired.status = Status::Retired;
                        retired.updated_date = now;
                        table.insert(previous.as_str(), encode(&retired)?.as_slice()).map_err(other)?;
                    }
                }
                table.insert(row.id.as_str(), encode(&new)?.as_slice()).map_err(other)?;
                live.insert(row.connector_id.as_str(), row.id.as_str()).map_err(other)?;
            }
        }
        // Dropping an uncommitted transaction (the early returns above) aborts it.
        txn.commit().map_err(other)
    }
}

#[async_trait]
impl RowStore for RedbRowStore {
    async fn get(&self, id: &str, status: Status) -> Result<Option<ConnectorRow>, StoreError> {
        // A point read is a few microseconds: not worth a trip to the blocking pool.
        let read = || -> anyhow::Result<Option<ConnectorRow>> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(ROWS)?;
            let row = table.get(id)?.map(|v| decode(v.value())).transpose()?;
            Ok(row.filter(|r| r.status == status))
        };
        read().map_err(StoreError::Other)
    }

    async fn list(&self, query: &ListQuery) -> Result<ListPage, StoreError> {
        let store = self.clone();
        let query = query.clone();
        tokio::task::spawn_blocking(move || store.list_blocking(&query))
            .await
            .map_err(other)?
            .map_err(StoreError::Other)
    }

    async fn commit_registration(&self, rows: &[ConnectorRow], now: Timestamp) -> Result<(), StoreError> {
        let store = self.clone();
        let rows = rows.to_vec();
        let committed = tokio::task::spawn_blocking(move || store.commit_blocking(&rows, now)).await;
        // Even a failed commit counts: whoever kept rows reads them again, which is always safe.
        self.generation.fetch_add(1, Ordering::Release);
        committed.map_err(other)?
    }

    fn generation(&self) -> Option<u64> {
        Some(self.generation.load(Ordering::Acquire))
    }
}

fn decode(bytes: &[u8]) -> anyhow::Result<ConnectorRow> {
    serde_json::from_slice(bytes).context("decoding a stored row")
}

fn encode(row: &ConnectorRow) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(row).map_err(other)
}

fn other(error: impl Into<anyhow::Error>) -> StoreError {
    StoreError::Other(error.into())
}
