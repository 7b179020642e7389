use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use anyhow::Context;
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde_json::value::RawValue;

use super::cached_reads::CachedReads;

use crate::domain::{
    ConnectorRow, ImportAdmission, RowId, Status, StatusReason, Timestamp, Transition, TransitionPlan, Versions,
    admit_import, place, plan_transition,
};
use crate::error::StoreError;
use crate::registry::{
    AuditDraft, AuditOutbox, AuditRecord, Imported, ListPage, ListQuery, ListedRow, RowStore, Transitioned,
    render_read_view,
};

/// Rows by id, as JSON.
const ROWS: TableDefinition<&str, &[u8]> = TableDefinition::new("rows");
/// For each connector id, the id of its Live row: what a registration retires.
const LIVE: TableDefinition<&str, &str> = TableDefinition::new("live_row_by_connector");
/// (status, row id) of every row: a list by status decodes only the rows it answers with.
const BY_STATUS: TableDefinition<(&str, &str), ()> = TableDefinition::new("row_id_by_status");
/// Audit events of committed registrations, by `AuditRecord::outbox_key`, until delivered.
const OUTBOX: TableDefinition<&str, &str> = TableDefinition::new("audit_outbox");

/// redb's page cache (1 GiB by default) would keep every page ever read; the operating system
/// caches the file anyway, and list keeps its own rendered rows.
const CACHE_BYTES: usize = 128 * 1024;

/// Rendered list rows are kept in memory up to this many bytes of JSON (some 3,500 rows with
/// icons of a few KB); a larger registry lists from the database, through `BY_STATUS`.
pub const CACHED_LIST_BYTES: usize = 16 * 1024 * 1024;

/// Rows in a redb database: ACID transactions, committed durably, crash-safe by design.
#[derive(Clone)]
pub struct RedbRowStore {
    db: Arc<Database>,
    /// Every row, rendered for list, while they fit in `CACHED_LIST_BYTES`. redb lets one process
    /// hold the database, so this process sees every change and keeps these in step.
    cached: Arc<RwLock<Option<CachedRows>>>,
    /// Commits one at a time (redb's write transactions are anyway), so that the cached rows
    /// change in the order the database did.
    commits: Arc<Mutex<()>>,
    cache_budget: usize,
    /// The read answers of the rows read lately (within the same budget), dropped as commits
    /// change their rows.
    cached_reads: Arc<CachedReads>,
    /// Notified after every commit, so that a dispatcher delivers its event at once.
    committed: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct CachedRows {
    by_id: BTreeMap<String, Arc<ListedRow>>,
    bytes: usize,
}

impl CachedRows {
    fn insert(&mut self, row: Arc<ListedRow>) {
        self.bytes += row.view.get().len();
        if let Some(old) = self.by_id.insert(row.id.as_str().to_owned(), row) {
            self.bytes -= old.view.get().len();
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some(old) = self.by_id.remove(id) {
            self.bytes -= old.view.get().len();
        }
    }

    /// The query over the cached rows, exactly as the database answers it.
    fn page(&self, query: &ListQuery) -> ListPage {
        let start = match &query.after {
            Some(after) => Bound::Excluded(after.as_str()),
            None => Bound::Unbounded,
        };
        let mut page = ListPage::default();
        for row in self.by_id.range::<str, _>((start, Bound::Unbounded)).map(|(_, row)| row) {
            if !query.admits(row.id.as_str(), row.status, &row.category) {
                continue;
            }
            if query.limit.is_some_and(|limit| page.rows.len() == limit) {
                page.next_after = page.rows.last().map(|r| r.id.as_str().to_owned());
                break;
            }
            page.rows.push(row.clone());
        }
        page
    }
}

impl RedbRowStore {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        Self::open_with_cache(path, CACHED_LIST_BYTES)
    }

    /// `open`, keeping at most `cache_budget` bytes of rendered list rows and as many of read
    /// answers (0: list and read always read the database).
    pub fn open_with_cache(path: &Path, cache_budget: usize) -> anyhow::Result<Self> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .with_context(|| format!("opening {}", path.display()))?;
        // Create the tables up front so read transactions always find them; a database from
        // before the status index gets it built once.
        let txn = db.begin_write()?;
        {
            let rows = txn.open_table(ROWS)?;
            txn.open_table(LIVE)?;
            txn.open_table(OUTBOX)?;
            let mut by_status = txn.open_table(BY_STATUS)?;
            if by_status.is_empty()? {
                for entry in rows.iter()? {
                    let (id, value) = entry?;
                    by_status.insert((decode(value.value())?.status.as_str(), id.value()), ())?;
                }
            }
        }
        txn.commit()?;
        let store = Self {
            db: Arc::new(db),
            cached: Arc::default(),
            commits: Arc::default(),
            cache_budget,
            cached_reads: Arc::new(CachedReads::new(cache_budget)),
            committed: Arc::default(),
        };
        let kept = store.render_all()?;
        *store.cached.write().unwrap_or_else(PoisonError::into_inner) = kept;
        Ok(store)
    }

    /// Every row rendered for list, one at a time; `None` when they exceed the budget.
    fn render_all(&self) -> anyhow::Result<Option<CachedRows>> {
        let txn = self.db.begin_read()?;
        let mut kept = CachedRows::default();
        for entry in txn.open_table(ROWS)?.iter()? {
            let (_, value) = entry?;
            kept.insert(Arc::new(ListedRow::of(&decode(value.value())?)?));
            if kept.bytes > self.cache_budget {
                return Ok(None);
            }
        }
        Ok(Some(kept))
    }

    /// The answer from the cached rows, when they are cached.
    pub(super) fn cached_page(&self, query: &ListQuery) -> Option<ListPage> {
        self.cached.read().unwrap_or_else(PoisonError::into_inner).as_ref().map(|kept| kept.page(query))
    }

    /// The query from the database, reading only as far as the page needs: ids in id order from
    /// the rows table, or merged from the status index's ranges of the statuses asked for.
    fn list_blocking(&self, query: &ListQuery) -> anyhow::Result<ListPage> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ROWS)?;
        let by_status = txn.open_table(BY_STATUS)?;
        let after = query.after.as_deref().unwrap_or_default();
        let start = if query.after.is_some() { Bound::Excluded(after) } else { Bound::Unbounded };
        let mut ids: Box<dyn Iterator<Item = anyhow::Result<String>>> = if query.statuses.is_empty() {
            Box::new(table.range::<&str>((start, Bound::Unbounded))?.map(|entry| Ok(entry?.0.value().to_owned())))
        } else {
            let mut statuses = query.statuses.clone();
            statuses.sort_unstable();
            statuses.dedup();
            let mut ranges = Vec::new();
            for status in statuses {
                let range = by_status.range((status.as_str(), after)..)?.map(move |entry| {
                    let (key, _) = entry?;
                    let (entry_status, id) = key.value();
                    Ok((entry_status == status.as_str()).then(|| id.to_owned()))
                });
                // Each range ends where the next status begins; the cursor's own id is skipped.
                ranges.push(range.map_while(|id: anyhow::Result<Option<String>>| id.transpose()).peekable());
            }
            Box::new(MergedIds { ranges, after: query.after.clone() })
        };
        let mut page = ListPage::default();
        while let Some(id) = ids.next().transpose()? {
            let Some(value) = table.get(id.as_str())? else { continue };
            let row = decode(value.value())?;
            if !query.matches(&row) {
                continue;
            }
            if query.limit.is_some_and(|limit| page.rows.len() == limit) {
                page.next_after = page.rows.last().map(|r| r.id.as_str().to_owned());
                break;
            }
            page.rows.push(Arc::new(ListedRow::of(&row)?));
        }
        Ok(page)
    }

    /// Notified after every commit.
    pub fn commits(&self) -> Arc<tokio::sync::Notify> {
        self.committed.clone()
    }

    fn commit_blocking(
        &self,
        rows: &[ConnectorRow],
        now: Timestamp,
        audit: &AuditDraft,
        versions: Versions,
    ) -> Result<(), StoreError> {
        let _one_at_a_time = self.commits.lock().unwrap_or_else(PoisonError::into_inner);
        // Every row this commit writes (new ones and retired ones), rendered before the commit,
        // so that once it has happened nothing can fail.
        let mut written: Vec<Arc<ListedRow>> = Vec::new();
        let mut retired_ids: Vec<RowId> = Vec::new();
        let txn = self.db.begin_write().map_err(other)?;
        {
            let mut table = txn.open_table(ROWS).map_err(other)?;
            let mut live = txn.open_table(LIVE).map_err(other)?;
            let mut by_status = txn.open_table(BY_STATUS).map_err(other)?;
            for row in rows {
                let stored =
                    table.get(row.id.as_str()).map_err(other)?.map(|v| decode(v.value())).transpose().map_err(other)?;
                let previous_live = live.get(row.connector_id.as_str()).map_err(other)?.map(|v| v.value().to_owned());
                let live_row = match previous_live.filter(|id| id != row.id.as_str()) {
                    Some(previous) => table
                        .get(previous.as_str())
                        .map_err(other)?
                        .map(|v| decode(v.value()))
                        .transpose()
                        .map_err(other)?,
                    None => None,
                };
                let placement = place(row, stored.as_ref(), live_row.as_ref(), now, versions)?;
                if let Some(stored) = &stored {
                    by_status.remove((stored.status.as_str(), row.id.as_str())).map_err(other)?;
                }
                if let Some(retired) = placement.retired {
                    let id = retired.id.as_str();
                    table.insert(id, encode(&retired)?.as_slice()).map_err(other)?;
                    by_status.remove((Status::Live.as_str(), id)).map_err(other)?;
                    by_status.insert((Status::Retired.as_str(), id), ()).map_err(other)?;
                    written.push(Arc::new(ListedRow::of(&retired)?));
                    retired_ids.push(retired.id);
                }
                let new = placement.row;
                table.insert(row.id.as_str(), encode(&new)?.as_slice()).map_err(other)?;
                by_status.insert((new.status.as_str(), row.id.as_str()), ()).map_err(other)?;
                live.insert(row.connector_id.as_str(), row.id.as_str()).map_err(other)?;
                written.push(Arc::new(ListedRow::of(&new)?));
            }
            // The event, in the same transaction: committed with the rows or not at all.
            let record = audit.record(rows, &retired_ids, now);
            txn.open_table(OUTBOX)
                .map_err(other)?
                .insert(record.outbox_key().as_str(), record.to_json()?.as_str())
                .map_err(other)?;
        }
        // Dropping an uncommitted transaction (the early returns above) aborts it.
        self.finish(txn, written, &[])
    }

    /// Commits `txn`, which wrote the rows `written` and removed `removed`, and brings the cached
    /// rows in step. Whatever the commit's outcome, the read answers of its rows are not trusted
    /// after it.
    fn finish(
        &self,
        txn: redb::WriteTransaction,
        written: Vec<Arc<ListedRow>>,
        removed: &[&str],
    ) -> Result<(), StoreError> {
        let committed = txn.commit().map_err(other);
        self.cached_reads.forget(written.iter().map(|row| row.id.as_str()).chain(removed.iter().copied()));
        committed?;
        let mut kept = self.cached.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(rows) = kept.as_mut() {
            removed.iter().for_each(|id| rows.remove(id));
            written.into_iter().for_each(|row| rows.insert(row));
            if rows.bytes > self.cache_budget {
                *kept = None;
            }
        }
        self.committed.notify_one();
        Ok(())
    }

    fn transition_blocking(
        &self,
        id: &str,
        to: Transition,
        reason: Option<&StatusReason>,
        now: Timestamp,
        audit: &AuditDraft,
    ) -> Result<Option<Transitioned>, StoreError> {
        let _one_at_a_time = self.commits.lock().unwrap_or_else(PoisonError::into_inner);
        let txn = self.db.begin_write().map_err(other)?;
        let mut written: Vec<Arc<ListedRow>> = Vec::new();
        let transitioned;
        {
            let mut table = txn.open_table(ROWS).map_err(other)?;
            let mut live = txn.open_table(LIVE).map_err(other)?;
            let mut by_status = txn.open_table(BY_STATUS).map_err(other)?;
            let Some(row) = table.get(id).map_err(other)?.map(|v| decode(v.value())).transpose().map_err(other)? else {
                return Ok(None);
            };
            let connector = row.connector_id.as_str();
            let live_id = live.get(connector).map_err(other)?.map(|v| v.value().to_owned());
            let live_row = match live_id.as_deref() {
                Some(live_id) => {
                    table.get(live_id).map_err(other)?.map(|v| decode(v.value())).transpose().map_err(other)?
                }
                None => None,
            };
            let (after, retired) = match plan_transition(&row, live_row.as_ref(), to, reason, audit.subject(), now)? {
                TransitionPlan::Unchanged => return Ok(Some(Transitioned::unchanged(row, live_id))),
                TransitionPlan::Delete => {
                    table.remove(id).map_err(other)?;
                    by_status.remove((row.status.as_str(), id)).map_err(other)?;
                    (None, None)
                }
                TransitionPlan::Write { row: changed, retired } => {
                    if let Some(retired) = &retired {
                        table.insert(retired.id.as_str(), encode(retired)?.as_slice()).map_err(other)?;
                        by_status.remove((Status::Live.as_str(), retired.id.as_str())).map_err(other)?;
                        by_status.insert((Status::Retired.as_str(), retired.id.as_str()), ()).map_err(other)?;
                        written.push(Arc::new(ListedRow::of(retired)?));
                    }
                    table.insert(id, encode(&changed)?.as_slice()).map_err(other)?;
                    by_status.remove((row.status.as_str(), id)).map_err(other)?;
                    by_status.insert((changed.status.as_str(), id), ()).map_err(other)?;
                    written.push(Arc::new(ListedRow::of(&changed)?));
                    if changed.status == Status::Live {
                        live.insert(connector, id).map_err(other)?;
                    } else if live_id.as_deref() == Some(id) {
                        live.remove(connector).map_err(other)?;
                    }
                    (Some(*changed), retired.map(|retired| retired.id))
                }
            };
            transitioned = Transitioned::new(row, after, retired, live_id);
            let record = audit.transition_record(&transitioned.before, to, reason, &transitioned.retired_ids(), now);
            txn.open_table(OUTBOX)
                .map_err(other)?
                .insert(record.outbox_key().as_str(), record.to_json()?.as_str())
                .map_err(other)?;
        }
        let removed: Vec<&str> = if transitioned.after.is_none() { vec![id] } else { Vec::new() };
        self.finish(txn, written, &removed)?;
        Ok(Some(transitioned))
    }

    fn import_blocking(&self, row: &ConnectorRow) -> Result<Imported, StoreError> {
        let _one_at_a_time = self.commits.lock().unwrap_or_else(PoisonError::into_inner);
        let rendered = Arc::new(ListedRow::of(row)?);
        let txn = self.db.begin_write().map_err(other)?;
        {
            let mut table = txn.open_table(ROWS).map_err(other)?;
            let mut live = txn.open_table(LIVE).map_err(other)?;
            let mut by_status = txn.open_table(BY_STATUS).map_err(other)?;
            let stored =
                table.get(row.id.as_str()).map_err(other)?.map(|v| decode(v.value())).transpose().map_err(other)?;
            let live_id = live.get(row.connector_id.as_str()).map_err(other)?.map(|v| v.value().to_owned());
            let live_row = match live_id {
                Some(id) => {
                    table.get(id.as_str()).map_err(other)?.map(|v| decode(v.value())).transpose().map_err(other)?
                }
                None => None,
            };
            match admit_import(row, stored.as_ref(), live_row.as_ref()) {
                ImportAdmission::Present => return Ok(Imported::Present),
                ImportAdmission::SecondLive { live } => {
                    return Ok(Imported::Refused(format!("{} has the Live version {live} already", row.connector_id)));
                }
                ImportAdmission::Write => {}
            }
            table.insert(row.id.as_str(), encode(row)?.as_slice()).map_err(other)?;
            by_status.insert((row.status.as_str(), row.id.as_str()), ()).map_err(other)?;
            if row.status == Status::Live {
                live.insert(row.connector_id.as_str(), row.id.as_str()).map_err(other)?;
            }
        }
        let committed = txn.commit().map_err(other);
        self.cached_reads.forget(std::iter::once(row.id.as_str()));
        committed?;
        let mut kept = self.cached.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(rows) = kept.as_mut() {
            rows.insert(rendered);
            if rows.bytes > self.cache_budget {
                *kept = None;
            }
        }
        Ok(Imported::Written)
    }

    /// The stored row with this id, whatever its status. A point read is a few microseconds: not
    /// worth a trip to the blocking pool.
    fn stored(&self, id: &str) -> Result<Option<ConnectorRow>, StoreError> {
        let read = || -> anyhow::Result<Option<ConnectorRow>> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(ROWS)?;
            table.get(id)?.map(|v| decode(v.value())).transpose()
        };
        read().map_err(StoreError::Other)
    }

    fn pending_blocking(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(other)?;
        let table = txn.open_table(OUTBOX).map_err(other)?;
        let mut records = Vec::new();
        for entry in table.iter().map_err(other)?.take(limit) {
            let (_, value) = entry.map_err(other)?;
            records.push(AuditRecord::from_json(value.value())?);
        }
        Ok(records)
    }

    fn remove_blocking(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(other)?;
        txn.open_table(OUTBOX).map_err(other)?.remove(record.outbox_key().as_str()).map_err(other)?;
        txn.commit().map_err(other)
    }
}

#[async_trait]
impl RowStore for RedbRowStore {
    async fn get(&self, id: &str, status: Status) -> Result<Option<ConnectorRow>, StoreError> {
        Ok(self.stored(id)?.filter(|r| r.status == status))
    }

    async fn read_view(&self, id: &str, status: Status) -> Result<Option<Arc<RawValue>>, StoreError> {
        if let Some((kept_status, view)) = self.cached_reads.get(id) {
            return Ok((kept_status == status).then_some(view));
        }
        let generation = self.cached_reads.generation();
        let Some(row) = self.stored(id)? else { return Ok(None) };
        let view = render_read_view(&row)?;
        self.cached_reads.keep(generation, id, row.status, view.clone());
        Ok((row.status == status).then_some(view))
    }

    async fn list(&self, query: &ListQuery) -> Result<ListPage, StoreError> {
        // From memory it is a filter and some reference counts: no trip to the blocking pool.
        if let Some(page) = self.cached_page(query) {
            return Ok(page);
        }
        let store = self.clone();
        let query = query.clone();
        tokio::task::spawn_blocking(move || store.list_blocking(&query))
            .await
            .map_err(other)?
            .map_err(StoreError::Other)
    }

    async fn commit_registration(
        &self,
        rows: &[ConnectorRow],
        now: Timestamp,
        audit: &AuditDraft,
        versions: Versions,
    ) -> Result<(), StoreError> {
        let (store, rows, audit) = (self.clone(), rows.to_vec(), audit.clone());
        tokio::task::spawn_blocking(move || store.commit_blocking(&rows, now, &audit, versions)).await.map_err(other)?
    }

    async fn commit_transition(
        &self,
        id: &str,
        to: Transition,
        reason: Option<&StatusReason>,
        now: Timestamp,
        audit: &AuditDraft,
    ) -> Result<Option<Transitioned>, StoreError> {
        let (store, id, reason, audit) = (self.clone(), id.to_owned(), reason.cloned(), audit.clone());
        tokio::task::spawn_blocking(move || store.transition_blocking(&id, to, reason.as_ref(), now, &audit))
            .await
            .map_err(other)?
    }

    async fn import_row(&self, row: &ConnectorRow) -> Result<Imported, StoreError> {
        let (store, row) = (self.clone(), row.clone());
        let imported = tokio::task::spawn_blocking(move || store.import_blocking(&row)).await.map_err(other)??;
        self.committed.notify_one();
        Ok(imported)
    }
}

#[async_trait]
impl AuditOutbox for RedbRowStore {
    async fn pending(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.pending_blocking(limit)).await.map_err(other)?
    }

    async fn remove(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let (store, record) = (self.clone(), record.clone());
        tokio::task::spawn_blocking(move || store.remove_blocking(&record)).await.map_err(other)?
    }
}

/// Ids from sorted ranges, merged in id order, each once, after `after`.
struct MergedIds<I: Iterator<Item = anyhow::Result<String>>> {
    ranges: Vec<std::iter::Peekable<I>>,
    after: Option<String>,
}

impl<I: Iterator<Item = anyhow::Result<String>>> Iterator for MergedIds<I> {
    type Item = anyhow::Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let mut smallest: Option<(usize, String)> = None;
            for (i, range) in self.ranges.iter_mut().enumerate() {
                match range.peek() {
                    Some(Err(_)) => return range.next(),
                    Some(Ok(id)) if smallest.as_ref().is_none_or(|(_, s)| id < s) => smallest = Some((i, id.clone())),
                    _ => {}
                }
            }
            let (first, id) = smallest?;
            self.ranges[first].next();
            // The same id in another range (never, with one status per row) is skipped too.
            for range in &mut self.ranges {
                range.next_if(|other| matches!(other, Ok(other) if *other == id));
            }
            if self.after.as_deref().is_some_and(|after| id.as_str() <= after) {
                continue;
            }
            return Some(Ok(id));
        }
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
