use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;

use async_trait::async_trait;

use super::{ArchiveKey, AuditDraft};
use crate::domain::{Category, ConnectorRow, RowId, Status, StatusReason, Timestamp, Transition, Versions};
use crate::error::StoreError;

/// Where connector archives are kept.
#[async_trait]
pub trait ArchiveStore: Send + Sync {
    /// A folder for staging uploads, chosen so that `put` from it is cheap.
    fn staging_dir(&self) -> &Path;

    /// Stores the staged file under `key`. Never overwrites: a taken key is
    /// `StoreError::AlreadyExists`.
    async fn put(&self, key: &ArchiveKey, staged: &Path) -> Result<(), StoreError>;

    /// Copies the archive at `from` to `to` inside the store. Never overwrites: a taken `to` is
    /// `StoreError::AlreadyExists`.
    async fn copy(&self, from: &ArchiveKey, to: &ArchiveKey) -> Result<(), StoreError>;

    /// Removes an archive; removing a missing one is not an error.
    async fn delete(&self, key: &ArchiveKey) -> Result<(), StoreError>;

    async fn exists(&self, key: &ArchiveKey) -> Result<bool, StoreError>;

    /// The archive's content as a local file to read from the start, or `None` when there is no
    /// such archive. Remote stores stream it into a temporary file in the staging folder.
    async fn open(&self, key: &ArchiveKey) -> Result<Option<std::fs::File>, StoreError>;

    /// A URL its holder may `PUT` the archive for `key` to, until `expiry` has passed.
    async fn presign_put(&self, key: &ArchiveKey, expiry: Duration) -> Result<String, StoreError>;

    /// A URL its holder may `GET` the archive at `key` from, until `expiry` has passed.
    async fn presign_get(&self, key: &ArchiveKey, expiry: Duration) -> Result<String, StoreError>;

    /// Every object whose key starts with `prefix` (e.g. `connector-registry/`), in no particular
    /// order: what the store holds there, whoever wrote it. For collecting what no row references.
    async fn list(&self, prefix: &str) -> Result<Vec<StoredObject>, StoreError>;
}

/// An object `ArchiveStore::list` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub key: ArchiveKey,
    /// When it was last written.
    pub modified: Timestamp,
    pub bytes: u64,
}

/// A copy of `file`, from its start, in a new temporary file in `folder`, written whole and
/// synced: what a store takes in (`ArchiveStore::put`) or renames into place. Stores may hand a
/// file over positioned where their download ended.
pub async fn staged_copy(mut file: std::fs::File, folder: &Path) -> Result<tempfile::NamedTempFile, StoreError> {
    let folder = folder.to_owned();
    tokio::task::spawn_blocking(move || -> std::io::Result<tempfile::NamedTempFile> {
        use std::io::{Seek, SeekFrom};
        std::fs::create_dir_all(&folder)?;
        let mut staged = tempfile::NamedTempFile::new_in(&folder)?;
        file.seek(SeekFrom::Start(0))?;
        std::io::copy(&mut file, staged.as_file_mut())?;
        staged.as_file().sync_all()?;
        Ok(staged)
    })
    .await
    .map_err(|e| StoreError::Other(e.into()))?
    .map_err(|e| StoreError::Other(anyhow::Error::new(e).context("staging a copy of an archive")))
}

/// Where registry rows are kept.
#[async_trait]
pub trait RowStore: Send + Sync {
    /// The row with this id, if it has this status.
    async fn get(&self, id: &str, status: Status) -> Result<Option<ConnectorRow>, StoreError>;

    /// The row with this id, whatever its status.
    async fn get_any(&self, id: &str) -> Result<Option<ConnectorRow>, StoreError> {
        for status in Status::ALL {
            if let Some(row) = self.get(id, status).await? {
                return Ok(Some(row));
            }
        }
        Ok(None)
    }

    /// What read answers with: the row's read view rendered to JSON, if the row has this status.
    /// A store that keeps rendered rows answers from memory; others render `get`'s row.
    async fn read_view(&self, id: &str, status: Status) -> Result<Option<Arc<RawValue>>, StoreError> {
        self.get(id, status).await?.map(|row| render_read_view(&row)).transpose()
    }

    /// Rows matching the query, in `id` order.
    async fn list(&self, query: &ListQuery) -> Result<ListPage, StoreError>;

    /// Every archive name (`source_url`) a row references, whatever its status.
    async fn source_urls(&self) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let mut names = std::collections::BTreeSet::new();
        let mut query = ListQuery { limit: Some(1000), ..ListQuery::default() };
        loop {
            let page = self.list(&query).await?;
            for listed in &page.rows {
                names.extend(self.get_any(listed.id.as_str()).await?.map(|row| row.source_url));
            }
            match page.next_after {
                Some(after) => query.after = Some(after),
                None => return Ok(names),
            }
        }
    }

    /// Commits one package's rows in one atomic step. For each row:
    /// - a stored row with the same id but another connector is a `StoreError::Conflict`;
    /// - every other `Live` row of the same connector becomes `Retired` (with `updated_date = now`);
    /// - the row is written; if its id was stored already, the stored `created_by`,
    ///   `created_date`, `updated_by` and `live_date` are kept.
    ///
    /// - the audit event, `audit.record(rows, retired ids, now)`, goes to the store's outbox.
    ///
    /// Either all of it happens or none; concurrent commits for one connector leave exactly one
    /// `Live` version. Under `Versions::Immutable`, a stored row of the same id from another
    /// archive is a `StoreError::VersionExists`.
    async fn commit_registration(
        &self,
        rows: &[ConnectorRow],
        now: Timestamp,
        audit: &AuditDraft,
        versions: Versions,
    ) -> Result<(), StoreError>;

    /// Moves the row `id` to `to` in one atomic step, as `domain::plan_transition` decides (by
    /// the audit draft's subject): the row in its new state, or gone; the connector's Live row of
    /// another version retired when `to` is Live; and, when anything changed, the audit event
    /// (`AuditDraft::transition_record`) in the outbox. `None`: there is no such row. Transitions
    /// racing each other and registrations leave at most one Live version per connector.
    async fn commit_transition(
        &self,
        id: &str,
        to: Transition,
        reason: Option<&StatusReason>,
        now: Timestamp,
        audit: &AuditDraft,
    ) -> Result<Option<Transitioned>, StoreError>;

    /// Writes a row brought in from another registry as it is: status, dates and all, in one
    /// atomic step, as `domain::admit_import` decides (a stored row of the same id stays as it
    /// is; a second Live version of a connector is refused). No audit event: nothing was
    /// registered.
    async fn import_row(&self, row: &ConnectorRow) -> Result<Imported, StoreError>;
}

/// What a status transition did.
#[derive(Debug, Clone, PartialEq)]
pub struct Transitioned {
    /// The row as it was.
    pub before: ConnectorRow,
    /// The row as it is now; `None` when it was deleted.
    pub after: Option<ConnectorRow>,
    /// The connector's Live row of another version that the transition retired.
    pub retired: Option<RowId>,
    /// The connector's Live row after it, if it has one.
    pub live: Option<String>,
}

impl Transitioned {
    /// What a transition of `before` to `after` (`None`: deleted) does, which retired `retired`,
    /// where the connector's head pointed at `live_before` (as the store read it).
    pub fn new(
        before: ConnectorRow,
        after: Option<ConnectorRow>,
        retired: Option<RowId>,
        live_before: Option<String>,
    ) -> Self {
        let live = match &after {
            Some(after) if after.status == Status::Live => Some(after.id.as_str().to_owned()),
            _ => live_before.filter(|live| live != before.id.as_str()),
        };
        Self { before, after, retired, live }
    }

    /// Nothing written: the row has the state asked for already.
    pub fn unchanged(row: ConnectorRow, live_before: Option<String>) -> Self {
        Self { after: Some(row.clone()), before: row, retired: None, live: live_before }
    }

    /// Whether anything was written (a transition to the state the row has writes nothing).
    pub fn changed(&self) -> bool {
        self.after.as_ref() != Some(&self.before)
    }

    /// What the audit event names as retired: the connector's Live row, or the row itself.
    pub fn retired_ids(&self) -> Vec<RowId> {
        match (&self.retired, &self.after) {
            (Some(retired), _) => vec![retired.clone()],
            (None, Some(after)) if after.status == Status::Retired && self.before.status != Status::Retired => {
                vec![after.id.clone()]
            }
            _ => Vec::new(),
        }
    }
}

/// What importing a row did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    Written,
    /// The store holds a row of this id already; it is kept.
    Present,
    /// Refused, with the reason.
    Refused(String),
}

/// A list query: rows whose status is one of `statuses` (any, when empty) and whose category is
/// one of `categories` (any, when empty), after the row id `after`, at most `limit` of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ListQuery {
    pub statuses: Vec<Status>,
    pub categories: Vec<Category>,
    pub after: Option<String>,
    pub limit: Option<usize>,
}

impl ListQuery {
    pub fn matches(&self, row: &ConnectorRow) -> bool {
        self.admits(row.id.as_str(), row.status, &row.category)
    }

    /// Whether a row with this id, status and category is in the answer.
    pub fn admits(&self, id: &str, status: Status, category: &Category) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&status))
            && (self.categories.is_empty() || self.categories.contains(category))
            && self.after.as_deref().is_none_or(|after| id > after)
    }
}

/// One row as list shows it: its list view rendered to JSON once, by the store, so that a store
/// may keep rendered rows and a list costs a filter and a copy.
#[derive(Debug)]
pub struct ListedRow {
    pub id: RowId,
    pub status: Status,
    pub category: Category,
    /// `ConnectorRow::list_view`, as JSON.
    pub view: Box<RawValue>,
}

impl ListedRow {
    pub fn of(row: &ConnectorRow) -> Result<Self, StoreError> {
        let view = render(&row.list_view())?;
        Ok(Self { id: row.id.clone(), status: row.status, category: row.category.clone(), view })
    }
}

/// `ConnectorRow::read_view`, as JSON.
pub fn render_read_view(row: &ConnectorRow) -> Result<Arc<RawValue>, StoreError> {
    render(&row.read_view()).map(Arc::from)
}

fn render(view: &impl serde::Serialize) -> Result<Box<RawValue>, StoreError> {
    serde_json::value::to_raw_value(view)
        .map_err(|e| StoreError::Other(anyhow::Error::new(e).context("rendering a row")))
}

#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub rows: Vec<Arc<ListedRow>>,
    /// Set when more rows follow: the id to continue after.
    pub next_after: Option<String>,
}
