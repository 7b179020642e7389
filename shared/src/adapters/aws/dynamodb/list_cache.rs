//! List entries kept in memory between calls, each partition under the catalog token it was read
//! at, and recent pages under the tokens of the partitions they merged: a warm list reads one
//! small catalog item and answers from here when nothing changed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use super::layout::Partition;
use crate::registry::{ListPage, ListQuery, ListedRow};

/// At most this many bytes of list entries are kept (some 12,000 entries of benchmark size); past it,
/// partitions are read for each list instead. A function has 256 MB.
pub const CACHED_BYTES: usize = 48 * 1024 * 1024;

/// Pages kept: the most recent ones, up to this many bytes of list entries in all.
const CACHED_PAGE_BYTES: usize = 16 * 1024 * 1024;

/// Every row of one partition, in id order, as read at `token`.
pub struct CachedPartition {
    pub token: String,
    pub rows: Vec<Arc<ListedRow>>,
    bytes: usize,
}

impl CachedPartition {
    pub fn new(token: String, rows: Vec<Arc<ListedRow>>) -> Self {
        let bytes = rows.iter().map(|row| row.view.get().len()).sum();
        Self { token, rows, bytes }
    }

    /// The rows after `after`, in id order.
    pub fn after(&self, after: Option<&str>) -> &[Arc<ListedRow>] {
        let start = after.map_or(0, |after| self.rows.partition_point(|row| row.id.as_str() <= after));
        &self.rows[start..]
    }
}

/// A page as answered, and the partitions (with their tokens) it was merged from.
struct CachedPage {
    sources: Vec<(Partition, String)>,
    page: ListPage,
    bytes: usize,
}

#[derive(Default)]
pub struct CachedLists {
    partitions: Mutex<HashMap<Partition, Arc<CachedPartition>>>,
    pages: Mutex<VecDeque<(ListQuery, CachedPage)>>,
}

impl CachedLists {
    /// The partition as kept, if it was kept at `token`.
    pub fn get(&self, partition: &Partition, token: &str) -> Option<Arc<CachedPartition>> {
        let partitions = self.partitions.lock().unwrap_or_else(PoisonError::into_inner);
        partitions.get(partition).filter(|kept| kept.token == token).cloned()
    }

    /// Keeps a partition read whole, replacing what was kept of it, if the budget allows.
    pub fn keep(&self, partition: Partition, kept: Arc<CachedPartition>) {
        let mut partitions = self.partitions.lock().unwrap_or_else(PoisonError::into_inner);
        partitions.remove(&partition);
        let used: usize = partitions.values().map(|p| p.bytes).sum();
        if used + kept.bytes <= CACHED_BYTES {
            partitions.insert(partition, kept);
        }
    }

    /// The page answered for `query` before, if it was merged from exactly `sources` (the
    /// partitions the query selects now, at their current tokens).
    pub fn page(&self, query: &ListQuery, sources: &[(Partition, String)]) -> Option<ListPage> {
        let pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
        pages.iter().find(|(q, kept)| q == query && kept.sources == sources).map(|(_, kept)| kept.page.clone())
    }

    pub fn keep_page(&self, query: &ListQuery, sources: &[(Partition, String)], page: &ListPage) {
        let bytes = page.rows.iter().map(|row| row.view.get().len()).sum();
        let mut pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
        pages.retain(|(q, _)| q != query);
        pages.push_back((query.clone(), CachedPage { sources: sources.to_vec(), page: page.clone(), bytes }));
        while pages.iter().map(|(_, kept)| kept.bytes).sum::<usize>() > CACHED_PAGE_BYTES {
            pages.pop_front();
        }
    }

    /// Drops partitions and pages the catalog no longer names or names at another token.
    pub fn retain_current(&self, tokens: &BTreeMap<Partition, String>) {
        let current = |(partition, token): &(Partition, String)| tokens.get(partition) == Some(token);
        let mut partitions = self.partitions.lock().unwrap_or_else(PoisonError::into_inner);
        partitions.retain(|partition, kept| tokens.get(partition) == Some(&kept.token));
        drop(partitions);
        let mut pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
        pages.retain(|(_, kept)| kept.sources.iter().all(current));
    }
}
