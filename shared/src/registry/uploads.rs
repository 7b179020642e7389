//! Event-driven registration: an archive put into the store under an incoming prefix (by any S3
//! client) is registered with no API call. Deliveries may repeat and arrive out of order, so a
//! repeat changes nothing; a registered upload is marked on the object itself, where its
//! uploader sees it. A refused one is removed, so that nothing unvalidated stays stored (the
//! reason goes to the log), and is not retried.

use async_trait::async_trait;
use tempfile::NamedTempFile;

use super::service::is_refusal;
use super::{Origin, Registrar, Registration, StagedUpload};
use crate::error::{RegistryError, StoreError, error_chain};

/// Where uploads arrive, and how an outcome is recorded on them.
#[async_trait]
pub trait IncomingStore: Send + Sync {
    /// The uploaded object, staged as a local file; `None` when it is gone.
    async fn fetch_incoming(&self, key: &str) -> Result<Option<NamedTempFile>, StoreError>;

    /// Records the outcome on the object (as tags, for S3).
    async fn mark_incoming(&self, key: &str, marks: &[(&str, &str)]) -> Result<(), StoreError>;

    /// Removes the object; removing a missing one is not an error.
    async fn remove_incoming(&self, key: &str) -> Result<(), StoreError>;
}

/// What became of one uploaded object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOutcome {
    Registered {
        source_url: String,
    },
    /// Registered before from the same archive: nothing changed.
    AlreadyRegistered,
    /// The archive is invalid; `reason` says why. It was removed; not worth a retry.
    Rejected {
        reason: String,
    },
    /// The object was deleted before it could be read.
    Gone,
}

/// Registers the object at `key` for `origin`. An `Err` is a transient fault, worth retrying the
/// event.
pub async fn register_upload(
    registrar: &Registrar,
    incoming: &dyn IncomingStore,
    key: &str,
    origin: &Origin,
) -> Result<UploadOutcome, RegistryError> {
    let outcome = register_incoming(registrar, incoming, key, origin).await;
    match &outcome {
        Ok(UploadOutcome::Registered { .. }) => crate::metrics::upload(&origin.route, "UploadsRegistered"),
        Ok(UploadOutcome::Rejected { .. }) => crate::metrics::upload(&origin.route, "UploadsRejected"),
        Ok(UploadOutcome::AlreadyRegistered | UploadOutcome::Gone) => {}
        Err(_) => crate::metrics::upload(&origin.route, "UploadsFailed"),
    }
    outcome
}

async fn register_incoming(
    registrar: &Registrar,
    incoming: &dyn IncomingStore,
    key: &str,
    origin: &Origin,
) -> Result<UploadOutcome, RegistryError> {
    let Some(file) = incoming.fetch_incoming(key).await? else {
        tracing::info!(key, "the uploaded object is gone");
        return Ok(UploadOutcome::Gone);
    };
    let file_name = key.rsplit('/').next().unwrap_or(key).to_owned();
    let outcome = match registrar.register_once(StagedUpload { file, file_name }, origin).await {
        Ok(Registration::Registered(registered)) => {
            UploadOutcome::Registered { source_url: registered.stored_name.as_str().to_owned() }
        }
        Ok(Registration::Unchanged(_)) => UploadOutcome::AlreadyRegistered,
        Err(error) if is_refusal(&error) => UploadOutcome::Rejected { reason: error.to_string() },
        Err(error) => return Err(error),
    };
    let marks = match &outcome {
        UploadOutcome::Registered { source_url } => {
            vec![("registry-status", "registered"), ("registry-source-url", source_url.as_str())]
        }
        UploadOutcome::AlreadyRegistered => vec![("registry-status", "registered")],
        UploadOutcome::Rejected { .. } | UploadOutcome::Gone => vec![],
    };
    if matches!(outcome, UploadOutcome::Rejected { .. }) {
        if let Err(e) = incoming.remove_incoming(key).await {
            // The bucket's expiry of the incoming prefix removes it later.
            tracing::warn!(key, error = %error_chain(&e), "could not remove a refused upload");
        }
    } else if !marks.is_empty()
        && let Err(e) = incoming.mark_incoming(key, &marks).await
    {
        // The registration stands; only the note on the object is missing.
        tracing::warn!(key, error = %error_chain(&e), "could not mark the uploaded object");
    }
    match &outcome {
        UploadOutcome::Rejected { reason } => tracing::warn!(key, reason, "uploaded archive rejected"),
        other => tracing::info!(key, outcome = ?other, "uploaded archive processed"),
    }
    Ok(outcome)
}
