//! The registry mirrored into an Obsrv installation's PostgreSQL table `connector_registry`, which
//! the rest of Obsrv reads: publishing a dataset references its ids, deploying joins it for
//! `runtime` and `source`, the connector runtimes select `source_url` and `source` of the Live
//! rows, the SDKs join it for `type` and `status`. The registry's own store stays the truth: the
//! mirror copies its current state, so a late or repeated copy can only bring the table up to
//! date, and an older state never replaces a newer one (the table's port refuses to).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDateTime;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::Notify;

use super::{ArchiveStore, AuditDraft, Imported, ListPage, ListQuery, RowStore, StoredName};
use crate::distribution::{ArchiveFormat, Distribution, Limits, declared_row_ids, read_distribution};
use crate::domain::{
    CONNECTOR_TYPE, Category, ConnectorId, ConnectorRow, RowId, SourceInfo, Status, StatusReason, Timestamp,
    Transition, Version, Versions,
};
use crate::error::{StoreError, error_chain};
use crate::quoting::quote;

/// One row of `connector_registry`, column by column, in the values Obsrv's command-service
/// writes: `type` `source`, `source` the JSON of `{source, main_class, main_program}`, the dates
/// as timestamps without a zone (UTC).
#[derive(Debug, Clone, PartialEq)]
pub struct ObsrvRow {
    pub id: String,
    pub connector_id: String,
    pub name: String,
    pub r#type: String,
    pub category: String,
    pub version: String,
    pub description: Option<String>,
    pub technology: String,
    pub runtime: String,
    pub licence: String,
    pub owner: String,
    pub iconurl: Option<String>,
    pub status: String,
    pub ui_spec: Value,
    pub source_url: String,
    pub source: Value,
    pub created_by: String,
    pub updated_by: String,
    pub created_date: NaiveDateTime,
    pub updated_date: NaiveDateTime,
    pub live_date: Option<NaiveDateTime>,
}

/// The columns, in the table's order.
pub const OBSRV_COLUMNS: [&str; 21] = [
    "id",
    "connector_id",
    "name",
    "type",
    "category",
    "version",
    "description",
    "technology",
    "runtime",
    "licence",
    "owner",
    "iconurl",
    "status",
    "ui_spec",
    "source_url",
    "source",
    "created_by",
    "updated_by",
    "created_date",
    "updated_date",
    "live_date",
];

fn naive(timestamp: Timestamp) -> NaiveDateTime {
    timestamp.as_datetime().naive_utc()
}

impl ObsrvRow {
    pub fn of(row: &ConnectorRow) -> Result<Self, StoreError> {
        let ui_spec = serde_json::from_str(row.ui_spec.get())
            .map_err(|e| StoreError::Other(anyhow::Error::new(e).context("a stored ui_spec that is not JSON")))?;
        Ok(Self {
            id: row.id.as_str().to_owned(),
            connector_id: row.connector_id.as_str().to_owned(),
            name: row.name.clone(),
            r#type: CONNECTOR_TYPE.to_owned(),
            category: row.category.as_str().to_owned(),
            version: row.version.as_str().to_owned(),
            description: row.description.clone(),
            technology: row.technology.clone(),
            runtime: row.runtime.clone(),
            licence: row.licence.clone(),
            owner: row.owner.clone(),
            iconurl: row.iconurl.clone(),
            status: row.status.as_str().to_owned(),
            ui_spec,
            source_url: row.source_url.clone(),
            source: serde_json::json!({
                "source": row.source.source,
                "main_class": row.source.main_class,
                "main_program": row.source.main_program,
            }),
            created_by: row.created_by.clone(),
            updated_by: row.updated_by.clone(),
            created_date: naive(row.created_date),
            updated_date: naive(row.updated_date),
            live_date: row.live_date.map(naive),
        })
    }

    /// The columns whose values differ from `other`'s.
    pub fn differences(&self, other: &ObsrvRow) -> Vec<&'static str> {
        let pairs: [(&'static str, bool); 21] = [
            ("id", self.id == other.id),
            ("connector_id", self.connector_id == other.connector_id),
            ("name", self.name == other.name),
            ("type", self.r#type == other.r#type),
            ("category", self.category == other.category),
            ("version", self.version == other.version),
            ("description", self.description == other.description),
            ("technology", self.technology == other.technology),
            ("runtime", self.runtime == other.runtime),
            ("licence", self.licence == other.licence),
            ("owner", self.owner == other.owner),
            ("iconurl", self.iconurl == other.iconurl),
            ("status", self.status == other.status),
            ("ui_spec", self.ui_spec == other.ui_spec),
            ("source_url", self.source_url == other.source_url),
            ("source", self.source == other.source),
            ("created_by", self.created_by == other.created_by),
            ("updated_by", self.updated_by == other.updated_by),
            ("created_date", self.created_date == other.created_date),
            ("updated_date", self.updated_date == other.updated_date),
            ("live_date", self.live_date == other.live_date),
        ];
        pairs.into_iter().filter(|(_, same)| !same).map(|(column, _)| column).collect()
    }
}

/// What the table holds of a row, enough to tell whether it is behind the registry's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObsrvSummary {
    pub status: String,
    pub updated_date: NaiveDateTime,
}

/// Why a row was not removed from the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// A connector instance references it (Obsrv's foreign key keeps it).
    Referenced,
    Absent,
}

/// Which of the table's rows a write may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Only rows that are not newer (by `updated_date`): the mirror's writes, which may arrive
    /// late or twice.
    NotNewer,
    /// Any row: a repair, where the registry is the truth whatever the table's dates say.
    Any,
}

/// Obsrv's `connector_registry` table.
#[async_trait]
pub trait ObsrvTable: Send + Sync {
    /// Writes the rows in one transaction, replacing what `replace` allows. Rows that are not
    /// Live are written first, so that the table never holds two Live versions of a connector
    /// after the transaction.
    async fn upsert(&self, rows: &[ObsrvRow], replace: Replace) -> Result<(), StoreError>;
    /// Removes a row unless a connector instance references it.
    async fn remove(&self, id: &str) -> Result<Removal, StoreError>;
    /// The ids of the connector instances that use the row `id`.
    async fn instances_of(&self, id: &str) -> Result<Vec<String>, StoreError>;
    /// Every row's status and last update, by id.
    async fn summaries(&self) -> Result<BTreeMap<String, ObsrvSummary>, StoreError>;
    /// Every row, by id.
    async fn rows(&self) -> Result<BTreeMap<String, ObsrvRow>, StoreError>;
}

/// The registry's current row of each id, in whatever status it has.
async fn current_rows(rows: &dyn RowStore, ids: &BTreeSet<String>) -> Result<Vec<ConnectorRow>, StoreError> {
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        found.extend(rows.get_any(id).await?);
    }
    Ok(found)
}

/// Every row id of the registry, with its status and last update as list renders them.
async fn registry_summaries(rows: &dyn RowStore) -> Result<BTreeMap<String, ObsrvSummary>, StoreError> {
    let page = rows.list(&ListQuery::default()).await?;
    let mut summaries = BTreeMap::new();
    for listed in page.rows {
        #[derive(serde::Deserialize)]
        struct Dates {
            updated_date: Timestamp,
        }
        let dates: Dates = serde_json::from_str(listed.view.get())
            .map_err(|e| StoreError::Other(anyhow::Error::new(e).context("a list view without updated_date")))?;
        summaries.insert(
            listed.id.as_str().to_owned(),
            ObsrvSummary { status: listed.status.as_str().to_owned(), updated_date: naive(dates.updated_date) },
        );
    }
    Ok(summaries)
}

/// Copies the registry's current state of `ids` into the table (the rows a commit wrote, retired
/// or deleted), each row's archive first when Obsrv's container takes them; a row the registry no
/// longer has leaves the table too, unless a connector instance references it. Repeating it
/// changes nothing.
pub async fn mirror_rows(rows: &dyn RowStore, obsrv: &Obsrv, ids: &BTreeSet<String>) -> Result<usize, StoreError> {
    let current = current_rows(rows, ids).await?;
    for gone in ids.iter().filter(|id| !current.iter().any(|row| row.id.as_str() == id.as_str())) {
        if obsrv.table.remove(gone).await? == Removal::Referenced {
            tracing::warn!(id = %gone, "a deleted version stays in Obsrv's table: a connector instance references it");
        }
    }
    if let Some(copy) = &obsrv.archives {
        let names: BTreeSet<&str> = current.iter().map(|row| row.source_url.as_str()).collect();
        for name in names {
            let stored = StoredName::parse(name)
                .ok_or_else(|| StoreError::Other(anyhow::anyhow!("a row's source_url {name:?} is no stored name")))?;
            copy.to.copy_in(&stored, &*copy.from).await?;
        }
    }
    let current: Vec<ObsrvRow> = current.iter().map(ObsrvRow::of).collect::<Result<_, _>>()?;
    obsrv.table.upsert(&current, Replace::NotNewer).await?;
    Ok(current.len())
}

/// Brings the table up to the registry: every row whose status or last update differs (or that
/// the table lacks) is written again. Rows only the table has are left alone (they may predate
/// the registry: `registry-server import-obsrv` brings those in, `sync-obsrv` repairs the rest).
/// Answers how many rows were written and the oldest change among them, for the mirror's lag.
pub async fn catch_up(rows: &dyn RowStore, obsrv: &Obsrv) -> Result<CaughtUp, StoreError> {
    let ours = registry_summaries(rows).await?;
    let theirs = obsrv.table.summaries().await?;
    let behind: BTreeSet<String> =
        ours.iter().filter(|(id, summary)| theirs.get(*id) != Some(*summary)).map(|(id, _)| id.clone()).collect();
    let oldest_change = behind.iter().filter_map(|id| ours.get(id)).map(|s| s.updated_date).min();
    let written = if behind.is_empty() { 0 } else { mirror_rows(rows, obsrv, &behind).await? };
    Ok(CaughtUp { written, oldest_change })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaughtUp {
    pub written: usize,
    pub oldest_change: Option<NaiveDateTime>,
}

/// What a comparison of the whole table with the registry found, row by row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Rows the table lacks.
    pub missing: Vec<String>,
    /// Rows whose columns differ, with the columns.
    pub differing: Vec<(String, Vec<&'static str>)>,
    /// Rows only the table has, and what became (or would become) of each.
    pub extra: Vec<(String, Removal)>,
    /// Rows equal on both sides.
    pub equal: usize,
}

impl SyncReport {
    pub fn is_in_sync(&self) -> bool {
        self.missing.is_empty() && self.differing.is_empty() && self.extra.is_empty()
    }
}

/// Compares the whole table with the registry, column by column, and unless `dry_run` repairs it:
/// rows missing or differing are written as the registry has them, rows the registry does not
/// have are removed unless a connector instance references them.
pub async fn sync(rows: &dyn RowStore, table: &dyn ObsrvTable, dry_run: bool) -> Result<SyncReport, StoreError> {
    let ids: BTreeSet<String> = registry_summaries(rows).await?.into_keys().collect();
    let ours: BTreeMap<String, ObsrvRow> = current_rows(rows, &ids)
        .await?
        .iter()
        .map(|row| ObsrvRow::of(row).map(|obsrv| (obsrv.id.clone(), obsrv)))
        .collect::<Result<_, _>>()?;
    let theirs = table.rows().await?;
    let mut report = SyncReport::default();
    let mut writes = Vec::new();
    for (id, row) in &ours {
        match theirs.get(id) {
            None => report.missing.push(id.clone()),
            Some(their) => {
                let columns = row.differences(their);
                if columns.is_empty() {
                    report.equal += 1;
                    continue;
                }
                report.differing.push((id.clone(), columns));
            }
        }
        writes.push(row.clone());
    }
    for id in theirs.keys().filter(|id| !ours.contains_key(*id)) {
        let outcome = if dry_run { Removal::Absent } else { table.remove(id).await? };
        report.extra.push((id.clone(), outcome));
    }
    if !dry_run && !writes.is_empty() {
        // The registry is the truth here, newer or not: a repair overwrites.
        table.upsert(&writes, Replace::Any).await?;
    }
    Ok(report)
}

/// Where an Obsrv installation keeps its connector archives: `connector-registry/<source_url>` of
/// its container (a folder, or a bucket and prefix).
#[async_trait]
pub trait ObsrvArchives: Send + Sync {
    /// The archive of a row, opened for reading from its start; `None` when there is none.
    async fn open(&self, name: &StoredName) -> Result<Option<std::fs::File>, StoreError>;

    /// Stores the registry's archive `name` (from `from`) as `connector-registry/<name>`, unless
    /// it is there already, so that Obsrv's own url-access serves it.
    async fn copy_in(&self, name: &StoredName, from: &dyn ArchiveStore) -> Result<(), StoreError>;
}

/// Where the mirror writes: Obsrv's table, and, when Obsrv's own url-access serves the archives,
/// its container, which receives each row's archive before the row.
#[derive(Clone)]
pub struct Obsrv {
    pub table: Arc<dyn ObsrvTable>,
    pub archives: Option<ArchiveCopy>,
}

/// The registry's archives, copied into Obsrv's.
#[derive(Clone)]
pub struct ArchiveCopy {
    pub from: Arc<dyn ArchiveStore>,
    pub to: Arc<dyn ObsrvArchives>,
}

impl Obsrv {
    pub fn table_only(table: Arc<dyn ObsrvTable>) -> Self {
        Self { table, archives: None }
    }
}

/// What Obsrv's connector runtimes cannot do with a package, even with the original registry:
/// they choose their extractor from the extension of the row's `source.source` (`<id>-<version>`),
/// so a zip is never unpacked; and they keep a folder they unpacked once, so a version registered
/// again with other bytes does not reach them. `previous` are the SHA-256s of the archives the
/// package's rows were registered from before, if any.
pub fn runtime_warnings<'a>(distribution: &Distribution, previous: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let folder = distribution.metadata.source_folder();
    let mut warnings = Vec::new();
    if distribution.format == ArchiveFormat::Zip && !folder.ends_with(".zip") {
        warnings.push(format!(
            "Obsrv's connector runtimes will not unpack this package: they choose the extractor by the \
             extension of {}, not of the archive, and open a zip as a tar. Register it as a .tar.gz.",
            quote(&folder)
        ));
    }
    if previous.into_iter().any(|sha256| sha256 != distribution.sha256) {
        warnings.push(format!(
            "This version was registered before with other bytes: Obsrv's connector runtimes that unpacked \
             {} already keep the earlier package. Register a new version to reach them.",
            quote(&folder)
        ));
    }
    warnings
}

/// What an import did, row by row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows written (or, in a dry run, that would be).
    pub imported: Vec<String>,
    /// Rows the registry has already: left as they are.
    pub present: Vec<String>,
    /// Rows not imported, with the reason: they stay in Obsrv's table only.
    pub refused: Vec<(String, String)>,
}

/// The registry's row of an Obsrv row, kept as it is (id, status, dates, `created_by`,
/// `source_url`, `iconurl`, `ui_spec`), with the SHA-256 of its archive.
pub fn row_of_obsrv(obsrv: &ObsrvRow, archive_sha256: &str) -> Result<ConnectorRow, String> {
    let connector_id = ConnectorId::parse(&obsrv.connector_id).map_err(|e| format!("connector_id: {e}"))?;
    let version = Version::parse(&obsrv.version).map_err(|e| format!("version: {e}"))?;
    let id = RowId::new(&connector_id, &version);
    if id.as_str() != obsrv.id {
        return Err(format!("its id is not <connector_id>-<version> ({id})"));
    }
    let status: Status =
        obsrv.status.parse().map_err(|_| format!("status {:?} is none of the registry's", obsrv.status))?;
    let category = Category::parse(&obsrv.category).map_err(|e| format!("category: {e}"))?;
    let text = |value: &Value, name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    let source = SourceInfo {
        source: text(&obsrv.source, "source").ok_or("source has no source folder")?,
        main_class: text(&obsrv.source, "main_class"),
        main_program: text(&obsrv.source, "main_program"),
    };
    let ui_spec = serde_json::value::to_raw_value(&obsrv.ui_spec).map_err(|e| format!("ui_spec: {e}"))?;
    let at = |naive: NaiveDateTime| Timestamp::from(naive.and_utc());
    Ok(ConnectorRow {
        id,
        connector_id,
        name: obsrv.name.clone(),
        category,
        version,
        description: obsrv.description.clone(),
        technology: obsrv.technology.clone(),
        runtime: obsrv.runtime.clone(),
        licence: obsrv.licence.clone(),
        owner: obsrv.owner.clone(),
        iconurl: obsrv.iconurl.clone(),
        status,
        ui_spec,
        source_url: obsrv.source_url.clone(),
        source,
        archive_sha256: archive_sha256.to_owned(),
        created_by: obsrv.created_by.clone(),
        updated_by: obsrv.updated_by.clone(),
        created_date: at(obsrv.created_date),
        updated_date: at(obsrv.updated_date),
        live_date: obsrv.live_date.map(at),
        status_reason: None,
    })
}

/// Brings an Obsrv installation's registrations into the registry: every row of its table, with
/// its archive read again by this registry's rules (and its SHA-256 recorded), the archive stored
/// under the same name, the row kept as it is. A row whose archive is missing or invalid, or
/// that would be a second Live version of its connector, is refused and reported; a row the
/// registry has already is left alone, so importing again changes nothing. With `dry_run`
/// nothing is written.
pub async fn import(
    obsrv: &dyn ObsrvTable,
    source: &dyn ObsrvArchives,
    archives: &dyn ArchiveStore,
    rows: &dyn RowStore,
    limits: &Limits,
    dry_run: bool,
) -> Result<ImportReport, StoreError> {
    let mut report = ImportReport::default();
    // Other versions first, then Live ones newest first: of two Live versions of a connector, the
    // newer is imported and the older refused.
    let mut ordered: Vec<ObsrvRow> = obsrv.rows().await?.into_values().collect();
    ordered.sort_by_key(|row| (row.status == "Live", std::cmp::Reverse(row.updated_date)));
    for obsrv_row in ordered {
        let id = obsrv_row.id.clone();
        match import_one(&obsrv_row, source, archives, rows, limits, dry_run).await? {
            Ok(Imported::Written) => report.imported.push(id),
            Ok(Imported::Present) => report.present.push(id),
            Ok(Imported::Refused(reason)) | Err(reason) => report.refused.push((id, reason)),
        }
    }
    Ok(report)
}

/// `Err` of the outer result: a store failed (the import stops); of the inner: this row is refused.
async fn import_one(
    obsrv_row: &ObsrvRow,
    source: &dyn ObsrvArchives,
    archives: &dyn ArchiveStore,
    rows: &dyn RowStore,
    limits: &Limits,
    dry_run: bool,
) -> Result<Result<Imported, String>, StoreError> {
    if rows.get_any(&obsrv_row.id).await?.is_some() {
        return Ok(Ok(Imported::Present));
    }
    let Some(name) = StoredName::parse(&obsrv_row.source_url) else {
        return Ok(Err(format!("source_url {:?} is not an archive's file name", obsrv_row.source_url)));
    };
    let Some(file) = source.open(&name).await? else {
        return Ok(Err(format!("its archive connector-registry/{name} is missing")));
    };
    let limits = *limits;
    let read = tokio::task::spawn_blocking(move || {
        let mut file = file;
        read_distribution(&mut file, &limits).map(|distribution| (distribution, file))
    })
    .await
    .map_err(|e| StoreError::Other(e.into()))?;
    let (distribution, file) = match read {
        Ok(read) => read,
        Err(error) => return Ok(Err(format!("its archive is refused: {error}"))),
    };
    if !declared_row_ids(&distribution).iter().any(|declared| declared.as_str() == obsrv_row.id) {
        return Ok(Err(format!("its archive does not declare {}", obsrv_row.id)));
    }
    let row = match row_of_obsrv(obsrv_row, &distribution.sha256) {
        Ok(row) => row,
        Err(reason) => return Ok(Err(reason)),
    };
    if dry_run {
        return Ok(Ok(Imported::Written));
    }
    let key = name.key();
    if !archives.exists(&key).await? {
        let staged = super::staged_copy(file, archives.staging_dir()).await?;
        archives.put(&key, staged.path()).await?;
    }
    Ok(Ok(rows.import_row(&row).await?))
}

/// A row store that signals every commit, so that the mirror catches up at once.
pub struct SignallingRows {
    pub inner: Arc<dyn RowStore>,
    pub committed: Arc<Notify>,
}

#[async_trait]
impl RowStore for SignallingRows {
    async fn get(&self, id: &str, status: Status) -> Result<Option<ConnectorRow>, StoreError> {
        self.inner.get(id, status).await
    }

    async fn read_view(&self, id: &str, status: Status) -> Result<Option<Arc<RawValue>>, StoreError> {
        self.inner.read_view(id, status).await
    }

    async fn list(&self, query: &ListQuery) -> Result<ListPage, StoreError> {
        self.inner.list(query).await
    }

    async fn commit_registration(
        &self,
        rows: &[ConnectorRow],
        now: Timestamp,
        audit: &AuditDraft,
        versions: Versions,
    ) -> Result<(), StoreError> {
        let committed = self.inner.commit_registration(rows, now, audit, versions).await;
        // Also after a failure: a commit whose answer was lost may have landed.
        self.committed.notify_one();
        committed
    }

    async fn commit_transition(
        &self,
        id: &str,
        to: Transition,
        reason: Option<&StatusReason>,
        now: Timestamp,
        audit: &AuditDraft,
    ) -> Result<Option<super::Transitioned>, StoreError> {
        let committed = self.inner.commit_transition(id, to, reason, now, audit).await;
        self.committed.notify_one();
        committed
    }

    async fn import_row(&self, row: &ConnectorRow) -> Result<super::Imported, StoreError> {
        let imported = self.inner.import_row(row).await;
        self.committed.notify_one();
        imported
    }
}

/// How often the mirror looks for changes it was not told of (another process's commits).
pub const MIRROR_INTERVAL: Duration = Duration::from_secs(30);
/// The longest wait between attempts while the table cannot be written.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Keeps the table caught up with the registry, until `stop`: at start, after every commit it is
/// signalled, and every `interval`; while the table cannot be written it tries again with
/// exponential backoff (1 s doubling, at most a minute). Then once more before it ends.
pub async fn run_mirror(
    rows: Arc<dyn RowStore>,
    obsrv: Obsrv,
    committed: Arc<Notify>,
    interval: Duration,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let wait = match catch_up(&*rows, &obsrv).await {
            Ok(caught_up) => {
                backoff = Duration::from_secs(1);
                report(&caught_up);
                interval
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), retry_in_ms = backoff.as_millis() as u64, "the Obsrv table is behind");
                crate::metrics::obsrv_mirror_failed();
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        tokio::select! {
            () = committed.notified() => {}
            () = tokio::time::sleep(wait) => {}
            _ = &mut stop => break,
        }
    }
    match catch_up(&*rows, &obsrv).await {
        Ok(caught_up) => report(&caught_up),
        Err(error) => tracing::warn!(error = %error_chain(&error), "the Obsrv table stays behind until the next start"),
    }
}

fn report(caught_up: &CaughtUp) {
    if caught_up.written == 0 {
        return;
    }
    let lag = caught_up
        .oldest_change
        .map(|oldest| (chrono::Utc::now().naive_utc() - oldest).to_std().unwrap_or_default())
        .unwrap_or_default();
    tracing::info!(rows = caught_up.written, lag_ms = lag.as_millis() as u64, "Obsrv table caught up");
    crate::metrics::obsrv_mirrored(caught_up.written, lag);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::conformance::row;

    #[test]
    fn a_row_in_obsrv_s_columns() {
        let now = Timestamp::parse("2026-11-28T13:00:00.250Z").unwrap();
        let row = row("kafka-connector", "1.0.0", "streaming", now);
        let obsrv = ObsrvRow::of(&row).unwrap();
        assert_eq!(obsrv.id, "kafka-connector-1.0.0");
        assert_eq!(obsrv.r#type, "source");
        assert_eq!(obsrv.status, "Live");
        assert_eq!(
            obsrv.source,
            serde_json::json!({"source": "kafka-connector-1.0.0", "main_class": null, "main_program": "x.jar"})
        );
        assert_eq!(obsrv.ui_spec, serde_json::json!({"b": 1, "a": {"z": [1, 2]}}));
        assert_eq!(obsrv.created_date.to_string(), "2026-11-28 13:00:00.250");
        assert_eq!(obsrv.differences(&obsrv), Vec::<&str>::new());
        let mut retired = obsrv.clone();
        retired.status = "Retired".into();
        assert_eq!(obsrv.differences(&retired), ["status"]);
    }
}
