use crate::quoting::quote;

/// Why a distribution was refused. Every variant is the author's to fix, so each message says
/// precisely what is wrong; where the original command service had a message for the case, ours
/// starts with it. Paths are quoted with `text::quote`, never with `Debug`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DistributionError {
    #[error("Failed to Extract the File: {0}")]
    Unreadable(String),
    #[error("archive is {actual} bytes, more than the limit of {limit} bytes")]
    ArchiveTooLarge { actual: u64, limit: u64 },
    #[error("archive expands to more than the limit of {limit} bytes")]
    UncompressedTooLarge { limit: u64 },
    #[error("archive holds more than the limit of {limit} entries")]
    TooManyEntries { limit: u64 },
    #[error("archive has a {what} larger than the limit of {limit} bytes")]
    HeaderTooLarge { what: &'static str, limit: u64 },
    #[error("archive's zip central directory is larger than the limit of {limit} bytes")]
    ZipDirectoryTooLarge { limit: u64 },
    #[error("archive entry {} is unsafe: {why}", quote(.path))]
    UnsafeEntry { path: String, why: &'static str },
    /// Extractors disagree on which of two entries at one path wins, so neither is taken.
    #[error("archive holds more than one entry at {}", quote(.path))]
    DuplicateEntry { path: String },
    #[error(
        "archive holds an entry at {} and one at a path that differs from it only in case, Unicode normalization form or trailing dots and spaces (one file on macOS, Windows and case-folding Linux file systems)",
        quote(.path)
    )]
    CaseDuplicateEntry { path: String },
    #[error("{file} at {} is {why}; it must be a regular file", quote(.path))]
    NotARegularFile { file: &'static str, path: String, why: &'static str },
    #[error("{file} at {} is larger than the limit of {limit} bytes", quote(.path))]
    FileTooLarge { file: &'static str, path: String, limit: u64 },
    #[error("the icons together are larger than the limit of {limit} bytes")]
    IconsTooLarge { limit: u64 },
    #[error("unable to locate the metadata file")]
    MissingMetadata,
    #[error("metadata.json is not valid JSON: {0}")]
    MetadataNotJson(String),
    #[error("metadata.json: {0}")]
    InvalidMetadata(String),
    #[error("connector source folder not found; expecting {0} folder inside the archive")]
    MissingSourceFolder(String),
    #[error("Unable to locate the ui configuration File")]
    MissingUiConfig,
    /// More than one registration may write (`WriteBudget`).
    #[error("{0}")]
    RegistrationTooLarge(String),
    #[error("ui-config.json is not valid JSON: {0}")]
    UiConfigNotJson(String),
}
