//! Collecting archives nothing needs any more: archives under `connector-registry/` that no row
//! references (a registration whose commit had an unknown outcome keeps its archive, and a process
//! that stops between storing an archive and committing its rows leaves it), and uploads under
//! `connector-registry-uploads/` that were never registered. Only what is older than a grace
//! period goes, so that a registration in flight never loses its archive or its upload.
//!
//! Uploads under the incoming prefix of S3 events are not collected here: one that never
//! registered is waiting for a re-drive from the upload dead-letter queue, which needs it; the
//! bucket's expiry of that prefix removes them.

use std::time::Duration;

use super::{ARCHIVE_PREFIX, ArchiveStore, RowStore, StoredObject, UPLOAD_PREFIX};
use crate::domain::Timestamp;
use crate::error::{StoreError, error_chain};

/// How old an unreferenced archive or an upload must be to be removed: a registration takes
/// seconds, an upload URL lasts ten minutes, so a day leaves every registration in flight alone.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 60 * 60);

/// What a collection removed, or in a dry run would remove, and what it kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collection {
    /// Archives no row references, older than the grace period.
    pub archives: Vec<StoredObject>,
    /// Uploads never registered, older than the grace period.
    pub uploads: Vec<StoredObject>,
    /// Archives kept because a row references them.
    pub referenced: usize,
    /// Archives and uploads kept because they are younger than the grace period.
    pub recent: usize,
    /// Nothing was removed.
    pub dry_run: bool,
}

impl Collection {
    /// The size of the archives removed.
    pub fn archive_bytes(&self) -> u64 {
        self.archives.iter().map(|o| o.bytes).sum()
    }

    /// The size of the uploads removed.
    pub fn upload_bytes(&self) -> u64 {
        self.uploads.iter().map(|o| o.bytes).sum()
    }
}

/// Removes the archives no row references and the uploads never registered that were last
/// written `grace` or more before `now`; with `dry_run`, only says what it would remove. Each
/// removal is logged as it happens; a failure stops the collection (what was removed stays
/// removed, what is left is collected the next time).
pub async fn collect(
    archives: &dyn ArchiveStore,
    rows: &dyn RowStore,
    grace: Duration,
    now: Timestamp,
    dry_run: bool,
) -> Result<Collection, StoreError> {
    let cutoff = chrono::TimeDelta::from_std(grace)
        .ok()
        .and_then(|grace| now.as_datetime().checked_sub_signed(grace))
        .map(Timestamp::from);
    let old_enough = |object: &StoredObject| cutoff.is_some_and(|cutoff| object.modified <= cutoff);
    // The archives are listed first and the rows read after. A registration stores its archive
    // before it commits the rows that reference it, so an archive in this listing whose rows
    // commit before the rows are read is seen referenced. One whose rows commit later still
    // belongs to a registration in flight, which the grace period covers: its archive is younger
    // than that. Read the other way round, an archive stored and referenced between the two reads
    // would be taken for an orphan, however young the grace period let it be.
    let stored = archives.list(&format!("{ARCHIVE_PREFIX}/")).await?;
    let uploads = archives.list(&format!("{UPLOAD_PREFIX}/")).await?;
    let referenced = rows.source_urls().await?;
    let mut collection = Collection { dry_run, ..Collection::default() };
    for object in stored {
        let name = object.key.as_str().strip_prefix(ARCHIVE_PREFIX).and_then(|rest| rest.strip_prefix('/'));
        if name.is_some_and(|name| referenced.contains(name)) {
            collection.referenced += 1;
        } else if old_enough(&object) {
            collection.archives.push(object);
        } else {
            collection.recent += 1;
        }
    }
    // An upload that registered was copied under the archives and removed; one still here after
    // the grace period never will be (its upload URL expired long ago).
    for object in uploads {
        if old_enough(&object) {
            collection.uploads.push(object);
        } else {
            collection.recent += 1;
        }
    }
    collection.archives.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    collection.uploads.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    for (object, what) in collection
        .archives
        .iter()
        .map(|o| (o, "an archive no row references"))
        .chain(collection.uploads.iter().map(|o| (o, "an upload never registered")))
    {
        let (key, bytes, modified) = (object.key.as_str(), object.bytes, object.modified.to_string());
        if dry_run {
            tracing::info!(key, bytes, modified, "would remove {what}");
            continue;
        }
        if let Err(error) = archives.delete(&object.key).await {
            tracing::error!(key, error = %error_chain(&error), "could not remove {what}");
            return Err(error);
        }
        tracing::info!(key, bytes, modified, "removed {what}");
    }
    tracing::info!(
        archives = collection.archives.len(),
        archive_bytes = collection.archive_bytes(),
        uploads = collection.uploads.len(),
        referenced = collection.referenced,
        recent = collection.recent,
        dry_run,
        "orphaned archives collected"
    );
    if !dry_run {
        crate::metrics::collected(collection.archives.len(), collection.archive_bytes(), collection.uploads.len());
    }
    Ok(collection)
}

/// A duration as operators write it: a whole number and a unit, `s`, `m`, `h` or `d` (`90s`,
/// `12h`, `1d`); `0` alone is no grace at all.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        "d" => 24 * 60 * 60,
        "" if number == "0" => 0,
        _ => return Err(format!("{text:?} is no duration: a whole number and s, m, h or d, as 12h or 1d")),
    };
    let number: u64 = number.parse().map_err(|_| format!("{text:?} is no duration: it starts with no number"))?;
    number.checked_mul(seconds).map(Duration::from_secs).ok_or_else(|| format!("{text:?} is too long a duration"))
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::adapters::embedded::open_stores;
    use crate::distribution::Limits;
    use crate::registry::{Origin, Registrar, StagedUpload, StoredName};
    use crate::test_support::Package;

    #[test]
    fn durations_are_a_number_and_a_unit() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(15 * 60)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("1d"), Ok(DEFAULT_GRACE));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for wrong in ["", "12", "d", "1.5h", "-1d", "1w", "1 d", "99999999999999999999d"] {
            assert!(parse_duration(wrong).is_err(), "{wrong:?}");
        }
    }

    /// A registration through the registrar, as the API makes it.
    async fn register(registrar: &Registrar, package: &Package) -> StoredName {
        let file = tempfile::NamedTempFile::new_in(registrar.staging_dir()).unwrap();
        std::fs::write(file.path(), package.tar_gz()).unwrap();
        let upload = StagedUpload { file, file_name: "package.tar.gz".into() };
        registrar.register(upload, &Origin::new("tester", "POST /v2/connector/register")).await.unwrap().stored_name
    }

    async fn put(archives: &dyn ArchiveStore, key: &crate::registry::ArchiveKey, bytes: &[u8]) {
        let staged = tempfile::NamedTempFile::new_in(archives.staging_dir()).unwrap();
        std::fs::write(staged.path(), bytes).unwrap();
        archives.put(key, staged.path()).await.unwrap();
    }

    fn keys(objects: &[StoredObject]) -> Vec<&str> {
        objects.iter().map(|o| o.key.as_str()).collect()
    }

    /// The rows of a package of several connectors share one archive; a retired version keeps
    /// its own: none of them is an orphan, whatever the grace.
    #[tokio::test]
    async fn an_archive_any_row_references_stays_and_only_old_orphans_go() {
        let data = tempfile::tempdir().unwrap();
        let (archives, rows) = open_stores(data.path(), "http://127.0.0.1:3000").unwrap();
        let registrar = Registrar::new(archives.clone(), rows.clone(), Limits::default());
        let shared = register(&registrar, &Package::multi_tenant("tenants", "1.0.0", &["a", "b", "c"])).await;
        let retired = register(&registrar, &Package::single_tenant("kafka", "1.0.0")).await;
        let live = register(&registrar, &Package::single_tenant("kafka", "2.0.0")).await;
        let orphan = StoredName::generate("orphan.tar.gz");
        put(&*archives, &orphan.key(), b"an archive no row references").await;
        let upload = StoredName::generate("never.zip");
        put(&*archives, &upload.upload_key(), b"an upload never registered").await;
        let (archives, rows): (Arc<dyn ArchiveStore>, Arc<dyn RowStore>) = (archives, rows);

        let now = Timestamp::now();
        let recent = collect(&*archives, &*rows, DEFAULT_GRACE, now, false).await.unwrap();
        assert_eq!((recent.archives.len(), recent.uploads.len()), (0, 0), "{recent:?}");
        assert_eq!((recent.referenced, recent.recent), (3, 2));

        let dry = collect(&*archives, &*rows, Duration::ZERO, now, true).await.unwrap();
        assert_eq!(keys(&dry.archives), [orphan.key().as_str()]);
        assert_eq!(keys(&dry.uploads), [upload.upload_key().as_str()]);
        assert_eq!((dry.archive_bytes(), dry.upload_bytes()), (28, 26));
        assert!(archives.exists(&orphan.key()).await.unwrap() && archives.exists(&upload.upload_key()).await.unwrap());

        let done = collect(&*archives, &*rows, Duration::ZERO, now, false).await.unwrap();
        assert_eq!(Collection { dry_run: false, ..dry }, done);
        assert!(
            !archives.exists(&orphan.key()).await.unwrap() && !archives.exists(&upload.upload_key()).await.unwrap()
        );
        for kept in [&shared, &retired, &live] {
            assert!(archives.exists(&kept.key()).await.unwrap(), "{kept} is referenced");
        }
        let again = collect(&*archives, &*rows, Duration::ZERO, now, false).await.unwrap();
        assert_eq!((again.archives.len(), again.uploads.len(), again.referenced), (0, 0, 3));
    }

    /// Anything under the archives' prefix that no row names is an orphan, whatever its name.
    #[tokio::test]
    async fn what_is_not_a_stored_name_is_collected_too() {
        let data = tempfile::tempdir().unwrap();
        let (archives, rows) = open_stores(data.path(), "http://127.0.0.1:3000").unwrap();
        let stray = data.path().join("archives/connector-registry/folder/stray file");
        std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
        std::fs::write(&stray, b"stray").unwrap();
        let collection = collect(&*archives, &*rows, Duration::ZERO, Timestamp::now(), false).await.unwrap();
        assert_eq!(keys(&collection.archives), ["connector-registry/folder/stray file"]);
        assert!(!stray.exists());
    }
}
