//! What list answers: each row's list view, rendered to JSON once. When the row store is the only
//! writer of its rows (the embedded database), the rendered rows are kept between requests and
//! thrown away at the next commit, so a list costs a filter and a copy, not a decode of every
//! stored row; on DynamoDB, which other processes write, every list reads the table.

use std::sync::{Arc, RwLock};

use serde_json::value::RawValue;

use super::{ListQuery, RowStore};
use crate::domain::{Category, ConnectorRow, RowId, Status};
use crate::error::RegistryError;

/// One row as list shows it.
#[derive(Debug)]
pub struct ListedRow {
    pub id: RowId,
    pub status: Status,
    pub category: Category,
    /// `ConnectorRow::list_view`, as JSON.
    pub view: Box<RawValue>,
}

impl ListedRow {
    pub fn of(row: &ConnectorRow) -> Result<Self, RegistryError> {
        let view = serde_json::value::to_raw_value(&row.list_view()).map_err(RegistryError::internal)?;
        Ok(Self { id: row.id.clone(), status: row.status, category: row.category.clone(), view })
    }
}

/// A page of list.
#[derive(Debug, Default)]
pub struct Listing {
    pub rows: Vec<Arc<ListedRow>>,
    /// Set when more rows follow: the id to continue after.
    pub next_after: Option<String>,
}

/// Every row, rendered, as of one generation of the store.
struct Snapshot {
    generation: u64,
    /// In id order.
    rows: Vec<Arc<ListedRow>>,
}

#[derive(Clone, Default)]
pub(super) struct ListCache {
    current: Arc<RwLock<Option<Arc<Snapshot>>>>,
}

impl ListCache {
    pub(super) async fn list(&self, store: &dyn RowStore, query: &ListQuery) -> Result<Listing, RegistryError> {
        let Some(generation) = store.generation() else {
            let page = store.list(query).await?;
            let rows = page.rows.iter().map(|row| ListedRow::of(row).map(Arc::new)).collect::<Result<_, _>>()?;
            return Ok(Listing { rows, next_after: page.next_after });
        };
        let snapshot = match self.get(generation) {
            Some(snapshot) => snapshot,
            None => self.refresh(store, generation).await?,
        };
        Ok(snapshot.page(query))
    }

    fn get(&self, generation: u64) -> Option<Arc<Snapshot>> {
        let current = self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        current.as_ref().filter(|s| s.generation == generation).cloned()
    }

    /// Reads every row. `generation` was read before the rows, so rows committed meanwhile at
    /// worst make the snapshot newer than its tag, and the next list reads again.
    async fn refresh(&self, store: &dyn RowStore, generation: u64) -> Result<Arc<Snapshot>, RegistryError> {
        let page = store.list(&ListQuery::default()).await?;
        let rows = page.rows.iter().map(|row| ListedRow::of(row).map(Arc::new)).collect::<Result<_, _>>()?;
        let snapshot = Arc::new(Snapshot { generation, rows });
        let mut current = self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.as_ref().is_none_or(|s| s.generation <= generation) {
            *current = Some(snapshot.clone());
        }
        Ok(snapshot)
    }
}

impl Snapshot {
    /// The query over the snapshot, exactly as a store answers it.
    fn page(&self, query: &ListQuery) -> Listing {
        let start = match &query.after {
            Some(after) => self.rows.partition_point(|row| row.id.as_str() <= after.as_str()),
            None => 0,
        };
        let mut listing = Listing::default();
        for row in &self.rows[start..] {
            if !query.admits(row.id.as_str(), row.status, &row.category) {
                continue;
            }
            if query.limit.is_some_and(|limit| listing.rows.len() == limit) {
                listing.next_after = listing.rows.last().map(|r| r.id.as_str().to_owned());
                break;
            }
            listing.rows.push(row.clone());
        }
        listing
    }
}

#[cfg(all(test, feature = "embedded", feature = "test-support"))]
mod tests {
    use super::*;
    use crate::adapters::embedded::RedbRowStore;
    use crate::test_support::conformance::{at, row};

    fn ids(rows: impl IntoIterator<Item = impl AsRef<str>>) -> Vec<String> {
        rows.into_iter().map(|id| id.as_ref().to_owned()).collect()
    }

    fn queries() -> Vec<ListQuery> {
        let live = vec![Status::Live];
        let batch = vec![Category::parse("batch").unwrap()];
        let mut queries = vec![
            ListQuery::default(),
            ListQuery { statuses: live.clone(), ..Default::default() },
            ListQuery { categories: batch.clone(), ..Default::default() },
            ListQuery { statuses: vec![Status::Retired], categories: batch, ..Default::default() },
        ];
        for limit in [1, 2, 3, 100] {
            queries.push(ListQuery { limit: Some(limit), ..Default::default() });
            queries.push(ListQuery { statuses: live.clone(), limit: Some(limit), ..Default::default() });
        }
        for after in ["a", "kafka-connector-1.0.0", "kafka-connector-1.0.0x", "s3-connector-2.0.0", "zzz"] {
            queries.push(ListQuery { after: Some(after.to_owned()), limit: Some(2), ..Default::default() });
        }
        queries
    }

    /// The kept snapshot answers every query exactly as the store does, before and after a commit.
    #[tokio::test]
    async fn kept_rows_answer_as_the_store_and_follow_each_commit() {
        let folder = tempfile::tempdir().unwrap();
        let store = RedbRowStore::open(&folder.path().join("rows.redb")).unwrap();
        let cache = ListCache::default();
        let commits = [
            vec![row("kafka-connector", "1.0.0", "stream", at(1))],
            vec![row("s3-connector", "1.0.0", "batch", at(2)), row("s3-connector", "2.0.0", "batch", at(3))],
            vec![row("kafka-connector", "1.1.0", "stream", at(4))],
        ];
        for rows in commits {
            // Warm the cache, then commit: the next answers must include the commit.
            cache.list(&store, &ListQuery::default()).await.unwrap();
            store.commit_registration(&rows, rows[0].updated_date).await.unwrap();
            for query in queries() {
                let expected = store.list(&query).await.unwrap();
                let kept = cache.list(&store, &query).await.unwrap();
                assert_eq!(
                    ids(kept.rows.iter().map(|r| r.id.as_str())),
                    ids(expected.rows.iter().map(|r| r.id.as_str())),
                    "{query:?}"
                );
                assert_eq!(kept.next_after, expected.next_after, "{query:?}");
                for (listed, stored) in kept.rows.iter().zip(&expected.rows) {
                    assert_eq!(listed.view.get(), serde_json::to_string(&stored.list_view()).unwrap());
                }
            }
        }
    }
}
