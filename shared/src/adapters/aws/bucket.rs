//! The archive bucket's settings: what `S3ArchiveStore::create_bucket_if_missing` gives a bucket it
//! creates, and what `template.yaml` declares for the deployed one (a test compares the two, and
//! the store conformance suite runs on a bucket made from the template's own definition).

use crate::registry::UPLOAD_PREFIX;

/// The bucket's settings, as data.
pub struct BucketSchema;

/// One lifecycle rule, in the terms of S3's API and of the template's `LifecycleConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleRule {
    pub id: &'static str,
    /// The objects it applies to; `None`: every object.
    pub prefix: Option<String>,
    /// Current versions expire (a delete marker hides them) this many days after they were written.
    pub expiration_days: Option<i32>,
    /// Versions that were deleted or replaced are removed this many days after.
    pub noncurrent_days: Option<i32>,
    pub abort_incomplete_upload_days: Option<i32>,
    /// A delete marker with no version left behind it is removed.
    pub expired_object_delete_marker: bool,
}

impl BucketSchema {
    /// Versioned: a deleted or replaced archive stays recoverable for a while (the registry's
    /// roles may delete objects, never a version).
    pub const VERSIONED: bool = true;
    /// Server-side encryption by default: SSE-S3 (the template takes a KMS key instead when one
    /// is given).
    pub const ENCRYPTION: &'static str = "AES256";
    /// Every public access block setting on.
    pub const BLOCK_PUBLIC_ACCESS: bool = true;
    /// How long a deleted or replaced version is kept (the template's default of
    /// `ArchiveNoncurrentVersionDays`).
    pub const NONCURRENT_VERSION_DAYS: i32 = 30;
    /// Where S3 clients put archives for the register-upload function (its default
    /// `REGISTRY_INCOMING_PREFIX`, which the template sets). Not under the key prefix: it is
    /// the uploaders' place.
    pub const INCOMING_PREFIX: &'static str = "incoming/";

    /// The lifecycle rules, for archives stored under `key_prefix`.
    pub fn lifecycle_rules(key_prefix: &str) -> Vec<LifecycleRule> {
        let rule = |id| LifecycleRule {
            id,
            prefix: None,
            expiration_days: None,
            noncurrent_days: None,
            abort_incomplete_upload_days: None,
            expired_object_delete_marker: false,
        };
        vec![
            LifecycleRule { abort_incomplete_upload_days: Some(1), ..rule("AbortIncompleteUploads") },
            // Uploads, not archives: once registered they are copied under the archive prefix, so
            // what expires or is removed here goes for good a day later.
            LifecycleRule {
                prefix: Some(Self::INCOMING_PREFIX.to_owned()),
                expiration_days: Some(30),
                noncurrent_days: Some(1),
                ..rule("ExpireIncoming")
            },
            LifecycleRule {
                prefix: Some(format!("{key_prefix}{UPLOAD_PREFIX}/")),
                expiration_days: Some(1),
                noncurrent_days: Some(1),
                ..rule("ExpireUploads")
            },
            LifecycleRule {
                noncurrent_days: Some(Self::NONCURRENT_VERSION_DAYS),
                expired_object_delete_marker: true,
                ..rule("ExpireNoncurrentVersions")
            },
        ]
    }
}
