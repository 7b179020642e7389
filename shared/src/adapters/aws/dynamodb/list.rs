//! Listing: the catalog's partitions the filters select, read whole (or answered from memory) for
//! a full list, or merged in id order as far as a page needs. Apart from the commit, which writes
//! the partitions and tokens this reads; the in-memory cache itself is `list_cache`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use futures_util::future::try_join_all;
use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::value::RawValue;

use super::layout::{self, Item, Partition, other, s, text};
use super::list_cache::CachedPartition;
use super::{DynamoRowStore, classify};
use crate::domain::RowId;
use crate::error::StoreError;
use crate::registry::{ListPage, ListQuery, ListedRow};

/// Partitions a list reads at once: enough to hide the round trips, few enough for a function's
/// share of a core and its connections.
const PARALLEL_QUERIES: usize = 8;
/// The fewest entries a page asks a partition for at a time: fewer round trips for small pages.
const MIN_PAGE_BATCH: usize = 4;

impl DynamoRowStore {
    /// What `RowStore::list` answers: the partitions the query selects, a page of them or all.
    pub(super) async fn list_rows(&self, query: &ListQuery) -> Result<ListPage, StoreError> {
        let tokens = self.catalog().await?;
        self.cached.retain_current(&tokens);
        let partitions: Vec<(Partition, String)> = tokens
            .into_iter()
            .filter(|(p, _)| query.statuses.is_empty() || query.statuses.contains(&p.status))
            .filter(|(p, _)| query.categories.is_empty() || query.categories.contains(&p.category))
            .collect();
        let after = query.after.as_deref();
        if let Some(limit) = query.limit {
            if let Some(page) = self.cached.page(query, &partitions) {
                return Ok(page);
            }
            let page = self.page(&partitions, after, limit).await?;
            self.cached.keep_page(query, &partitions, &page);
            return Ok(page);
        }
        let reads: Vec<_> = partitions.iter().map(|(p, token)| self.whole_partition(p, token)).collect();
        let wholes: Vec<Arc<CachedPartition>> = stream::iter(reads).buffered(PARALLEL_QUERIES).try_collect().await?;
        let mut rows: Vec<Arc<ListedRow>> = wholes.iter().flat_map(|kept| kept.after(after).iter().cloned()).collect();
        rows.sort_unstable_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        Ok(ListPage { rows, next_after: None })
    }

    /// Every list partition with its current token, from one of the catalog's copies.
    async fn catalog(&self) -> Result<BTreeMap<Partition, String>, StoreError> {
        let copy = usize::from(uuid::Uuid::new_v4().as_bytes()[0]) % layout::CATALOG_COPIES;
        let item = self.get_item(layout::catalog_key(copy)).await?.unwrap_or_default();
        Ok(item
            .iter()
            .filter_map(|(name, value)| {
                let partition = Partition::parse(name.strip_prefix(layout::PARTITION_ATTRIBUTE)?)?;
                Some((partition, value.as_s().ok()?.clone()))
            })
            .collect())
    }

    /// Up to `limit` entries of a partition after `after` (all of them, for `None`), and whether
    /// the partition may hold more.
    async fn query_partition(
        &self,
        partition: &Partition,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<(Vec<Arc<ListedRow>>, bool), StoreError> {
        let mut rows = Vec::new();
        let mut start_key: Option<Item> = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_names("#pk", layout::PK)
                .expression_attribute_values(":pk", s(partition.pk()))
                .set_exclusive_start_key(start_key.take());
            request = match after {
                Some(after) => request
                    .key_condition_expression("#pk = :pk AND #sk > :after")
                    .expression_attribute_names("#sk", layout::SK)
                    .expression_attribute_values(":after", s(after)),
                None => request.key_condition_expression("#pk = :pk"),
            };
            if let Some(limit) = limit {
                request = request.limit(i32::try_from(limit - rows.len()).unwrap_or(i32::MAX));
            }
            let output = request.send().await.map_err(|e| classify("listing rows", e))?;
            for item in output.items() {
                rows.push(Arc::new(listed_row(partition, item)?));
            }
            start_key = output.last_evaluated_key;
            let full = limit.is_some_and(|limit| rows.len() >= limit);
            if start_key.is_none() || full {
                return Ok((rows, start_key.is_some()));
            }
        }
    }

    /// A partition whole: from memory when kept at `token`, else read and kept.
    async fn whole_partition(&self, partition: &Partition, token: &str) -> Result<Arc<CachedPartition>, StoreError> {
        if let Some(kept) = self.cached.get(partition, token) {
            return Ok(kept);
        }
        let (rows, _) = self.query_partition(partition, None, None).await?;
        let kept = Arc::new(CachedPartition::new(token.to_owned(), rows));
        self.cached.keep(partition.clone(), kept.clone());
        Ok(kept)
    }

    /// `limit` rows after `after`, merged in id order from `partitions`, reading each only as far
    /// as the page needs: about `limit` entries in all, never `limit` from each.
    async fn page(
        &self,
        partitions: &[(Partition, String)],
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        struct Source<'p> {
            partition: &'p Partition,
            buffered: VecDeque<Arc<ListedRow>>,
            /// Where the next read of the partition starts, while it may hold more.
            more_after: Option<Option<String>>,
        }
        let wanted = limit + 1;
        let mut sources: Vec<Source> = partitions
            .iter()
            .map(|(partition, token)| match self.cached.get(partition, token) {
                Some(kept) => Source {
                    partition,
                    buffered: kept.after(after).iter().take(wanted).cloned().collect(),
                    more_after: None,
                },
                None => Source { partition, buffered: VecDeque::new(), more_after: Some(after.map(str::to_owned)) },
            })
            .collect();
        let mut rows: Vec<Arc<ListedRow>> = Vec::new();
        loop {
            let open = sources.iter().filter(|s| s.more_after.is_some()).count();
            let batch = (wanted - rows.len()).div_ceil(open.max(1)).clamp(MIN_PAGE_BATCH.min(wanted), wanted);
            let refills = sources.iter_mut().filter(|s| s.buffered.is_empty() && s.more_after.is_some()).map(
                |source| async move {
                    let start = source.more_after.clone().flatten();
                    let (read, more) = self.query_partition(source.partition, start.as_deref(), Some(batch)).await?;
                    let last = read.last().map(|row| row.id.as_str().to_owned());
                    source.buffered.extend(read);
                    source.more_after = if more { Some(last.or(start)) } else { None };
                    Ok::<_, StoreError>(())
                },
            );
            try_join_all(refills).await?;
            // Take the smallest id while every partition that may hold more has some buffered.
            while rows.len() < wanted && !sources.iter().any(|s| s.buffered.is_empty() && s.more_after.is_some()) {
                let next = sources
                    .iter_mut()
                    .filter(|s| !s.buffered.is_empty())
                    .min_by(|a, b| a.buffered[0].id.as_str().cmp(b.buffered[0].id.as_str()));
                match next.and_then(|source| source.buffered.pop_front()) {
                    Some(row) => rows.push(row),
                    None => break,
                }
            }
            let exhausted = sources.iter().all(|s| s.buffered.is_empty() && s.more_after.is_none());
            if rows.len() == wanted || exhausted {
                break;
            }
        }
        let mut page = ListPage { rows, next_after: None };
        if page.rows.len() > limit {
            page.rows.truncate(limit);
            page.next_after = page.rows.last().map(|r| r.id.as_str().to_owned());
        }
        Ok(page)
    }
}

/// A list entry as list answers with it; its status and category are its partition's.
fn listed_row(partition: &Partition, item: &Item) -> Result<ListedRow, StoreError> {
    let id = text(item, layout::SK).ok_or_else(|| other(anyhow::anyhow!("a list entry without an id")))?;
    let view = text(item, "view").ok_or_else(|| other(anyhow::anyhow!("the list entry {id} has no view")))?;
    Ok(ListedRow {
        id: stored_row_id(id)?,
        status: partition.status,
        category: partition.category.clone(),
        view: RawValue::from_string(view.to_owned()).map_err(other)?,
    })
}

/// A row id as stored: it was checked when its row was registered.
fn stored_row_id(id: &str) -> Result<RowId, StoreError> {
    use serde::Deserialize;
    RowId::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(id)).map_err(other)
}
