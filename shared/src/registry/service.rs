use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;
use tempfile::NamedTempFile;

use super::obsrv::{ObsrvTable, Removal};
use super::{ArchiveKey, ArchiveStore, AuditDraft, ListPage, ListQuery, Origin, RowStore, StoredName, Transitioned};
use crate::distribution::reader::ReadError;
use crate::distribution::{Distribution, Limits, build_rows, declared_row_ids, read_distribution};
use crate::domain::{ConnectorRow, RowId, Status, StatusReason, Timestamp, Transition, VersionExists, Versions};
use crate::error::{RegistryError, StoreError, error_chain};

/// How many fresh stored names are tried before a taken-name collision is reported.
const STORED_NAME_ATTEMPTS: usize = 5;

/// Registration: validates a package, stores its archive and commits its rows.
#[derive(Clone)]
pub struct Registrar {
    archives: Arc<dyn ArchiveStore>,
    rows: Arc<dyn RowStore>,
    limits: Limits,
    /// Whether registrations feed an Obsrv installation's runtimes (`feeding_obsrv`).
    obsrv_runtimes: bool,
    /// Whether a registered version may be registered again with other bytes.
    versions: Versions,
    /// Obsrv's table, whose connector instances keep the versions they use from being deleted.
    obsrv_table: Option<Arc<dyn ObsrvTable>>,
}

/// Reading and listing rows; needs only the row store, so a read-only deployment links no
/// archive store.
#[derive(Clone)]
pub struct Catalog {
    rows: Arc<dyn RowStore>,
}

/// An uploaded archive, staged in the archive store's staging folder.
pub struct StagedUpload {
    pub file: NamedTempFile,
    /// The file name the client gave, used to derive the stored name.
    pub file_name: String,
}

/// What a registration wrote.
#[derive(Debug, Clone)]
pub struct Registered {
    pub row_ids: Vec<RowId>,
    pub stored_name: StoredName,
    pub sha256: String,
    pub archive_bytes: u64,
    /// What Obsrv's runtimes cannot do with the package (`registry::obsrv::runtime_warnings`),
    /// when the registry feeds an Obsrv installation.
    pub warnings: Vec<String>,
}

/// What `register_once` did.
#[derive(Debug, Clone)]
pub enum Registration {
    Registered(Registered),
    /// The archive was registered before; nothing was written.
    Unchanged(Vec<RowId>),
}

/// Which row a read looks for: `mode=edit` reads the Draft, anything else the Live one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    Live,
    Edit,
}

impl ReadMode {
    /// The original lower-cases `mode` and compares it with `edit`; anything else, including an
    /// absent or repeated `mode`, reads the Live row.
    pub fn from_query(values: &[&str]) -> Self {
        match values {
            [only] if only.to_lowercase() == "edit" => ReadMode::Edit,
            _ => ReadMode::Live,
        }
    }

    /// The status of the row the mode reads.
    fn status(self) -> Status {
        match self {
            ReadMode::Live => Status::Live,
            ReadMode::Edit => Status::Draft,
        }
    }
}

impl Registrar {
    pub fn new(archives: Arc<dyn ArchiveStore>, rows: Arc<dyn RowStore>, limits: Limits) -> Self {
        Self { archives, rows, limits, obsrv_runtimes: false, versions: Versions::Immutable, obsrv_table: None }
    }

    /// Whether a registered version may be registered again with other bytes (the operator's
    /// setting; immutable by default).
    pub fn with_versions(mut self, versions: Versions) -> Self {
        self.versions = versions;
        self
    }

    /// Refuses to delete a version that a connector instance in Obsrv's table references, and
    /// removes deleted versions from the table at once.
    pub fn guarding_obsrv_instances(mut self, table: Arc<dyn ObsrvTable>) -> Self {
        self.obsrv_table = Some(table);
        self
    }

    /// The registrar of a registry that feeds an Obsrv installation: registrations say what
    /// Obsrv's runtimes cannot do with a package.
    pub fn feeding_obsrv(mut self) -> Self {
        self.obsrv_runtimes = true;
        self
    }

    /// Where uploads should be staged before `register`.
    pub fn staging_dir(&self) -> &Path {
        self.archives.staging_dir()
    }

    /// Validates the staged archive, stores it and commits its rows. Either the archive and every
    /// row are in place, the connector's older Live versions retired, and the audit event in the
    /// outbox, or nothing changed. `origin` is who registers, and how.
    pub async fn register(&self, upload: StagedUpload, origin: &Origin) -> Result<Registered, RegistryError> {
        let started = Instant::now();
        let StagedUpload { file, file_name } = upload;
        let (file, distribution) = self.read(file.into_parts()).await?;
        let file = NamedTempFile::from_parts(file.0, file.1);
        measured(origin, started, self.commit(&distribution, file.path(), &file_name, origin).await)
    }

    /// Like `register`, but changes nothing when every row the package declares is already
    /// registered from this very archive (same SHA-256): for deliveries that may repeat, such as
    /// S3 events.
    pub async fn register_once(&self, upload: StagedUpload, origin: &Origin) -> Result<Registration, RegistryError> {
        let started = Instant::now();
        let StagedUpload { file, file_name } = upload;
        let (file, distribution) = self.read(file.into_parts()).await?;
        let file = NamedTempFile::from_parts(file.0, file.1);
        let declared = declared_row_ids(&distribution);
        let mut unchanged = true;
        for id in &declared {
            let found = self.rows.get_any(id.as_str()).await?;
            unchanged &= found.is_some_and(|stored| stored.archive_sha256 == distribution.sha256);
        }
        if unchanged {
            return Ok(Registration::Unchanged(declared));
        }
        let registered = self.commit(&distribution, file.path(), &file_name, origin).await;
        measured(origin, started, registered).map(Registration::Registered)
    }

    /// Registers an archive uploaded through a presigned URL, waiting under its upload key. A
    /// valid one is copied under `connector-registry/<stored name>`, which becomes the rows'
    /// `source_url`; the upload is removed whether it was valid or not, so a refused archive stays
    /// readable nowhere. A name registered before (its upload gone) is registered again from
    /// its archive.
    pub async fn register_stored(
        &self,
        stored_name: &StoredName,
        origin: &Origin,
    ) -> Result<Registered, RegistryError> {
        let started = Instant::now();
        measured(origin, started, self.register_stored_now(stored_name, origin).await)
    }

    async fn register_stored_now(
        &self,
        stored_name: &StoredName,
        origin: &Origin,
    ) -> Result<Registered, RegistryError> {
        let (upload_key, key) = (stored_name.upload_key(), stored_name.key());
        let now = Timestamp::now();
        let Some(file) = self.archives.open(&upload_key).await? else {
            let distribution = self
                .read_archive(&key)
                .await?
                .ok_or_else(|| RegistryError::ArchiveNotFound(stored_name.as_str().to_owned()))?;
            let rows = build_rows(&distribution, stored_name.as_str(), now)?;
            return self.commit_rows(&distribution, stored_name.clone(), rows, now, None, origin).await;
        };
        // Read, and held against the write budget, before anything is copied.
        let checked = self.read((file, ())).await.and_then(|(_, distribution)| {
            let rows = build_rows(&distribution, stored_name.as_str(), now)?;
            Ok((distribution, rows))
        });
        let (distribution, rows) = match checked {
            Ok(checked) => checked,
            Err(error) => {
                if is_refusal(&error) {
                    self.discard(&upload_key).await;
                }
                return Err(error);
            }
        };
        if let Err(error) = self.check_versions(&distribution).await {
            if is_refusal(&error) {
                self.discard(&upload_key).await;
            }
            return Err(error);
        }
        let new_archive = match self.archives.copy(&upload_key, &key).await {
            Ok(()) => Some(&key),
            // A retry after a fault past the copy finds this very archive there; a second upload
            // to the URL after the name was registered finds another, which stays as it is.
            Err(StoreError::AlreadyExists) => {
                let stored = self.read_archive(&key).await?;
                if stored.is_none_or(|stored| stored.sha256 != distribution.sha256) {
                    self.discard(&upload_key).await;
                    return Err(RegistryError::Conflict(format!(
                        "an archive named {stored_name} is registered already; ask for a new upload URL"
                    )));
                }
                None
            }
            Err(other) => return Err(other.into()),
        };
        let registered = self.commit_rows(&distribution, stored_name.clone(), rows, now, new_archive, origin).await;
        // After a fault of the machine the upload stays, so that a retry finds it.
        if registered.as_ref().map_or_else(is_refusal, |_| true) {
            self.discard(&upload_key).await;
        }
        registered
    }

    /// The distribution of an archive in the store, if there is one.
    async fn read_archive(&self, key: &ArchiveKey) -> Result<Option<Distribution>, RegistryError> {
        match self.archives.open(key).await? {
            Some(file) => Ok(Some(self.read((file, ())).await?.1)),
            None => Ok(None),
        }
    }

    /// Removes an upload that has served its purpose (registered, or refused). A failure leaves
    /// it behind, unreadable through the registry, until the store's expiry removes it.
    async fn discard(&self, upload_key: &ArchiveKey) {
        if let Err(error) = self.archives.delete(upload_key).await {
            tracing::warn!(key = %upload_key, error = %error_chain(&error), "could not remove an upload");
        }
    }

    /// Reads and validates the distribution in `file` on the blocking pool, handing the file back.
    async fn read<T: Send + 'static>(
        &self,
        (file, rest): (std::fs::File, T),
    ) -> Result<((std::fs::File, T), Distribution), RegistryError> {
        let limits = self.limits;
        let (file, rest, distribution) = tokio::task::spawn_blocking(move || {
            let mut file = file;
            let distribution = read_distribution(&mut file, &limits);
            (file, rest, distribution)
        })
        .await
        .map_err(RegistryError::internal)?;
        let distribution = distribution.map_err(|e| match e {
            ReadError::Invalid(invalid) => RegistryError::InvalidDistribution(invalid),
            ReadError::Io(io) => RegistryError::internal(io),
        })?;
        Ok(((file, rest), distribution))
    }

    async fn commit(
        &self,
        distribution: &Distribution,
        staged: &Path,
        file_name: &str,
        origin: &Origin,
    ) -> Result<Registered, RegistryError> {
        self.check_versions(distribution).await?;
        let now = Timestamp::now();
        let (stored_name, rows) = self.store_archive(distribution, staged, file_name, now).await?;
        let key = stored_name.key();
        self.commit_rows(distribution, stored_name, rows, now, Some(&key), origin).await
    }

    /// Refuses, before anything is stored, a package that would register a version again from
    /// other bytes while versions are immutable, naming every such row. The commit checks again,
    /// atomically, for a registration racing this one.
    async fn check_versions(&self, distribution: &Distribution) -> Result<(), RegistryError> {
        if self.versions == Versions::Overwritable {
            return Ok(());
        }
        let mut exists: Option<VersionExists> = None;
        for id in declared_row_ids(distribution) {
            if let Some(stored) = self.rows.get_any(id.as_str()).await?
                && stored.archive_sha256 != distribution.sha256
            {
                let exists = exists.get_or_insert_with(|| VersionExists {
                    ids: Vec::new(),
                    stored_sha256: stored.archive_sha256.clone(),
                });
                exists.ids.push(id.as_str().to_owned());
            }
        }
        match exists {
            Some(exists) => Err(RegistryError::VersionExists(exists.to_string())),
            None => Ok(()),
        }
    }

    /// Moves a row to another status (`RowStore::commit_transition`): Live (promotion and
    /// rollback), Retire, or Delete. A deleted version's archive goes too when no other row
    /// references it; a version an Obsrv connector instance uses is not deleted.
    pub async fn transition(
        &self,
        id: &str,
        to: Transition,
        reason: Option<&StatusReason>,
        origin: &Origin,
    ) -> Result<Transitioned, RegistryError> {
        if !RowId::could_be(id) {
            return Err(not_found(id));
        }
        if to == Transition::Delete
            && let Some(table) = &self.obsrv_table
        {
            let instances = table.instances_of(id).await?;
            if !instances.is_empty() {
                return Err(RegistryError::InUse(format!(
                    "Failed to delete connector {id} as it is in use by the connector instances {}. Delete those \
                     instances, or retire the version instead",
                    instances.join(", ")
                )));
            }
        }
        let audit = AuditDraft::for_transition(origin.clone());
        let transitioned = self
            .rows
            .commit_transition(id, to, reason, Timestamp::now(), &audit)
            .await?
            .ok_or_else(|| not_found(id))?;
        if transitioned.changed() {
            tracing::info!(
                id,
                status = %to,
                reason = reason.map(StatusReason::as_str),
                retired = transitioned.retired.as_ref().map(RowId::as_str),
                event_id = audit.event_id(),
                route = %origin.route,
                "connector status changed"
            );
            crate::metrics::transitioned(&origin.route, to.as_str());
        }
        if to == Transition::Delete && transitioned.changed() {
            self.after_delete(&transitioned.before).await;
        }
        Ok(transitioned)
    }

    /// After a version is deleted: its row leaves Obsrv's table (the mirror would too), and its
    /// archive leaves the store when no row references it any more. Failures are only logged:
    /// the row is gone, and `gc-archives` and the mirror finish what is left.
    async fn after_delete(&self, row: &ConnectorRow) {
        if let Some(table) = &self.obsrv_table {
            match table.remove(row.id.as_str()).await {
                Ok(Removal::Referenced) => {
                    tracing::warn!(id = %row.id, "a deleted version stays in Obsrv's table: an instance references it");
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(id = %row.id, error = %error_chain(&error), "could not remove a deleted version from Obsrv's table")
                }
            }
        }
        let Some(name) = StoredName::parse(&row.source_url) else { return };
        match self.rows.source_urls().await {
            Ok(referenced) if !referenced.contains(name.as_str()) => {
                if let Err(error) = self.archives.delete(&name.key()).await {
                    tracing::warn!(key = %name.key(), error = %error_chain(&error), "could not remove a deleted version's archive");
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "could not tell whether a deleted version's archive is still used")
            }
        }
    }

    /// What Obsrv's runtimes cannot do with the package, when the registry feeds an installation.
    async fn runtime_warnings(&self, distribution: &Distribution) -> Result<Vec<String>, RegistryError> {
        if !self.obsrv_runtimes {
            return Ok(Vec::new());
        }
        let mut previous = Vec::new();
        for id in declared_row_ids(distribution) {
            if let Some(stored) = self.rows.get_any(id.as_str()).await? {
                previous.push(stored.archive_sha256);
            }
        }
        Ok(super::obsrv::runtime_warnings(distribution, previous.iter().map(String::as_str)))
    }

    /// Commits the rows of a package whose archive is stored under `stored_name`. `new_archive`
    /// is the key of an archive this registration stored, to take back out if the rows are refused.
    async fn commit_rows(
        &self,
        distribution: &Distribution,
        stored_name: StoredName,
        rows: Vec<ConnectorRow>,
        now: Timestamp,
        new_archive: Option<&ArchiveKey>,
        origin: &Origin,
    ) -> Result<Registered, RegistryError> {
        let warnings = self.runtime_warnings(distribution).await?;
        let audit = AuditDraft::new(origin.clone(), &distribution.sha256, stored_name.as_str());
        if let Err(error) = self.rows.commit_registration(&rows, now, &audit, self.versions).await {
            // When the store refused the rows, take the archive back out. When the outcome is
            // unknown (a timeout may hide a commit), keep it: an unreferenced archive is harmless,
            // a row pointing at a deleted one is not.
            if let Some(key) = new_archive
                && !matches!(error, StoreError::Unavailable(_))
                && let Err(cleanup) = self.archives.delete(key).await
            {
                tracing::warn!(key = %key, error = %error_chain(&cleanup), "could not remove the archive of a failed registration");
            }
            return Err(error.into());
        }
        tracing::info!(
            rows = ?ids(&rows),
            source_url = %stored_name,
            sha256 = %distribution.sha256,
            bytes = distribution.archive_bytes,
            event_id = audit.event_id(),
            route = %origin.route,
            "connector registered"
        );
        for warning in &warnings {
            tracing::warn!(rows = ?ids(&rows), warning = %warning, "registered for Obsrv with a warning");
        }
        Ok(Registered {
            row_ids: rows.into_iter().map(|r| r.id).collect(),
            stored_name,
            sha256: distribution.sha256.clone(),
            archive_bytes: distribution.archive_bytes,
            warnings,
        })
    }

    /// Stores the archive under a fresh name and builds the rows that name it; rows over the
    /// write budget are refused before anything is stored.
    async fn store_archive(
        &self,
        distribution: &Distribution,
        staged: &Path,
        file_name: &str,
        now: Timestamp,
    ) -> Result<(StoredName, Vec<ConnectorRow>), RegistryError> {
        for _ in 0..STORED_NAME_ATTEMPTS {
            let name = StoredName::generate(file_name);
            let rows = build_rows(distribution, name.as_str(), now)?;
            match self.archives.put(&name.key(), staged).await {
                Ok(()) => return Ok((name, rows)),
                Err(StoreError::AlreadyExists) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(RegistryError::internal(anyhow::anyhow!("no free stored name after {STORED_NAME_ATTEMPTS} attempts")))
    }
}

impl Catalog {
    /// The row store it reads.
    pub fn rows(&self) -> &Arc<dyn RowStore> {
        &self.rows
    }

    pub fn new(rows: Arc<dyn RowStore>) -> Self {
        Self { rows }
    }

    pub async fn read(&self, id: &str, mode: ReadMode) -> Result<ConnectorRow, RegistryError> {
        if !RowId::could_be(id) {
            return Err(not_found(id));
        }
        self.rows.get(id, mode.status()).await?.ok_or_else(|| not_found(id))
    }

    /// What read answers with: the row's read view, as JSON.
    pub async fn read_view(&self, id: &str, mode: ReadMode) -> Result<Arc<RawValue>, RegistryError> {
        if !RowId::could_be(id) {
            return Err(not_found(id));
        }
        self.rows.read_view(id, mode.status()).await?.ok_or_else(|| not_found(id))
    }

    pub async fn list(&self, query: &ListQuery) -> Result<ListPage, RegistryError> {
        Ok(self.rows.list(query).await?)
    }
}

fn not_found(id: &str) -> RegistryError {
    RegistryError::ConnectorNotFound(id.to_owned())
}

/// A registration's outcome, counted in the metrics when it committed.
fn measured(
    origin: &Origin,
    started: Instant,
    registered: Result<Registered, RegistryError>,
) -> Result<Registered, RegistryError> {
    if let Ok(registered) = &registered {
        crate::metrics::registered(&origin.route, started.elapsed(), registered.archive_bytes);
    }
    registered
}

/// Whether a registration failed for good (the package's fault), not for a fault of the machine.
pub(crate) fn is_refusal(error: &RegistryError) -> bool {
    matches!(
        error,
        RegistryError::InvalidDistribution(_)
            | RegistryError::Conflict(_)
            | RegistryError::VersionExists(_)
            | RegistryError::PayloadTooLarge(_)
    )
}

fn ids(rows: &[ConnectorRow]) -> Vec<&str> {
    rows.iter().map(|r| r.id.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::ReadMode;

    #[test]
    fn only_a_single_edit_mode_reads_the_draft() {
        assert_eq!(ReadMode::from_query(&["edit"]), ReadMode::Edit);
        assert_eq!(ReadMode::from_query(&["EDIT"]), ReadMode::Edit);
        assert_eq!(ReadMode::from_query(&[]), ReadMode::Live);
        assert_eq!(ReadMode::from_query(&[""]), ReadMode::Live);
        assert_eq!(ReadMode::from_query(&["foo"]), ReadMode::Live);
        assert_eq!(ReadMode::from_query(&["edit", "edit"]), ReadMode::Live);
    }
}
