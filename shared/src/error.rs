//! The one error type of the registry. `api::errors` maps it, in one place, to an HTTP status
//! and an Obsrv error code; clients get the short message, logs get the whole chain.

use crate::distribution::DistributionError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A list request that breaks its schema; the message is the Ajv-style `#<path> <message>`.
    #[error("{0}")]
    ListInputInvalid(String),
    /// A generate-url request that breaks its schema.
    #[error("{0}")]
    FilesInputInvalid(String),
    #[error("No files were given: request.files must name at least one file")]
    FilesNotProvided,
    #[error("At most {0} files may be asked for in one request")]
    FilesLimitExceeded(usize),
    #[error("Connector not found: {}", crate::quoting::shown(.0))]
    ConnectorNotFound(String),
    #[error(transparent)]
    InvalidDistribution(#[from] DistributionError),
    /// Register by reference named an archive that was never uploaded.
    #[error("No archive named {0} has been uploaded")]
    ArchiveNotFound(String),
    /// No file part, several, or a multipart body that cannot be parsed.
    #[error("{0}")]
    UploadInvalid(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The registration collides with what is stored (a row id owned by another connector, or a
    /// race that kept losing).
    #[error("{0}")]
    Conflict(String),
    /// A version registered before from other bytes (versions are immutable).
    #[error("{0}")]
    VersionExists(String),
    /// A status-transition request that breaks its schema.
    #[error("{0}")]
    TransitionInputInvalid(String),
    /// A transition the rule refuses (deleting the Live version).
    #[error("{0}")]
    TransitionRefused(String),
    /// A version an Obsrv connector instance uses cannot be deleted.
    #[error("{0}")]
    InUse(String),
    /// No valid token (401 `UNAUTHORIZED ACCESS`).
    #[error("{0}")]
    Unauthorized(String),
    /// A valid token without a role that may call the API (403 `FORBIDDEN ACCESS`).
    #[error("{0}")]
    Forbidden(String),
    /// The client sent its request too slowly (408).
    #[error("{0}")]
    RequestTimeout(String),
    /// The server is at its limit of concurrent work of this kind; a retry later succeeds (503).
    #[error("{0}")]
    Busy(String),
    /// A store that may answer if asked again (throttled, timed out, briefly down).
    #[error("a store is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl RegistryError {
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }
}

/// What a store adapter can report. Adapters translate their SDK's errors into these, so that no
/// SDK text travels further than the adapter's own log line.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("{0}")]
    Conflict(String),
    /// A version registered before from other bytes.
    #[error("{0}")]
    VersionExists(String),
    #[error(transparent)]
    TransitionRefused(#[from] crate::domain::TransitionRefused),
    /// The key is taken (archives are never overwritten).
    #[error("already exists")]
    AlreadyExists,
    #[error("{0}")]
    TooLarge(String),
    #[error("store failure")]
    Other(#[source] anyhow::Error),
}

impl From<StoreError> for RegistryError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(e) => RegistryError::Unavailable(e),
            StoreError::Conflict(message) => RegistryError::Conflict(message),
            StoreError::VersionExists(message) => RegistryError::VersionExists(message),
            StoreError::TransitionRefused(refused) => RegistryError::TransitionRefused(refused.to_string()),
            StoreError::TooLarge(message) => RegistryError::PayloadTooLarge(message),
            StoreError::AlreadyExists => {
                RegistryError::Internal(anyhow::anyhow!("unexpected AlreadyExists from a store"))
            }
            StoreError::Other(e) => RegistryError::Internal(e),
        }
    }
}

/// The full chain of an error, for a log line.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<crate::domain::PlacementRefused> for StoreError {
    fn from(refused: crate::domain::PlacementRefused) -> Self {
        match refused {
            crate::domain::PlacementRefused::IdTaken(taken) => StoreError::Conflict(taken.to_string()),
            crate::domain::PlacementRefused::VersionExists(exists) => StoreError::VersionExists(exists.to_string()),
        }
    }
}
