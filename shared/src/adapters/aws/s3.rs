//! Archives in S3, under `<key prefix>connector-registry/<stored name>`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Tag, Tagging};

use super::{BucketSchema, classify};
use crate::domain::Timestamp;
use crate::error::StoreError;
use crate::registry::{ArchiveKey, ArchiveStore, IncomingStore, StoredObject};

/// Above this size an archive goes up in parts, read from the staged file one part at a time.
const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
const PART_SIZE: u64 = 16 * 1024 * 1024;
/// Keys per `ListObjectsV2` page: S3's most.
const LIST_PAGE: i32 = 1000;
/// `x-amz-copy-source` is `<bucket>/<key>`, URL-encoded except for the separators.
const COPY_SOURCE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');

#[derive(Clone)]
pub struct S3ArchiveStore {
    client: Client,
    bucket: String,
    key_prefix: String,
    staging: PathBuf,
    list_page: i32,
}

impl S3ArchiveStore {
    /// Path-style addressing is used when an endpoint is configured (local stand-ins).
    pub fn new(sdk: &SdkConfig, bucket: impl Into<String>, key_prefix: impl Into<String>) -> std::io::Result<Self> {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(super::CONNECT_TIMEOUT)
            // A part of an archive takes longer than a row.
            .operation_attempt_timeout(Duration::from_secs(60))
            .operation_timeout(Duration::from_secs(180))
            .build();
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .timeout_config(timeouts)
            .build();
        let staging = std::env::temp_dir().join("connector-registry-staging");
        std::fs::create_dir_all(&staging)?;
        Ok(Self {
            client: Client::from_conf(config),
            bucket: bucket.into(),
            key_prefix: key_prefix.into(),
            staging,
            list_page: LIST_PAGE,
        })
    }

    /// Lists in pages of at most `keys` keys (S3's default and most: 1000), so that paging is
    /// tested without a thousand objects.
    pub fn with_list_page(mut self, keys: i32) -> Self {
        self.list_page = keys.clamp(1, LIST_PAGE);
        self
    }

    pub async fn create_bucket_if_missing(&self) -> Result<(), StoreError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {
                match self.client.create_bucket().bucket(&self.bucket).send().await {
                    Ok(_) => self.configure_new_bucket().await,
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you()) => Ok(()),
                    Err(e) => Err(classify("creating the bucket", e)),
                }
            }
            Err(e) => Err(classify("checking the bucket", e)),
        }
    }

    /// Gives a bucket this store created the settings of [`BucketSchema`] (a bucket it finds is
    /// left as it is: its settings are its owner's).
    async fn configure_new_bucket(&self) -> Result<(), StoreError> {
        use aws_sdk_s3::types::{
            AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketVersioningStatus, ExpirationStatus,
            LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, NoncurrentVersionExpiration,
            PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
            ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
        };
        let invalid = |e: aws_sdk_s3::error::BuildError| StoreError::Other(e.into());
        if BucketSchema::VERSIONED {
            let versioning = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
            let put = self.client.put_bucket_versioning().bucket(&self.bucket).versioning_configuration(versioning);
            put.send().await.map_err(|e| classify("versioning the bucket", e))?;
        }
        let by_default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::from(BucketSchema::ENCRYPTION))
            .build()
            .map_err(invalid)?;
        let encryption = ServerSideEncryptionConfiguration::builder()
            .rules(ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(by_default).build())
            .build()
            .map_err(invalid)?;
        let put =
            self.client.put_bucket_encryption().bucket(&self.bucket).server_side_encryption_configuration(encryption);
        put.send().await.map_err(|e| classify("encrypting the bucket", e))?;
        let block = BucketSchema::BLOCK_PUBLIC_ACCESS;
        let public_access = PublicAccessBlockConfiguration::builder()
            .block_public_acls(block)
            .ignore_public_acls(block)
            .block_public_policy(block)
            .restrict_public_buckets(block)
            .build();
        let put =
            self.client.put_public_access_block().bucket(&self.bucket).public_access_block_configuration(public_access);
        put.send().await.map_err(|e| classify("blocking public access to the bucket", e))?;
        let mut lifecycle = BucketLifecycleConfiguration::builder();
        for rule in BucketSchema::lifecycle_rules(&self.key_prefix) {
            let expiration = (rule.expiration_days.is_some() || rule.expired_object_delete_marker).then(|| {
                LifecycleExpiration::builder()
                    .set_days(rule.expiration_days)
                    .set_expired_object_delete_marker(rule.expired_object_delete_marker.then_some(true))
                    .build()
            });
            let built = LifecycleRule::builder()
                .id(rule.id)
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix(rule.prefix.unwrap_or_default()).build())
                .set_expiration(expiration)
                .set_noncurrent_version_expiration(
                    rule.noncurrent_days
                        .map(|days| NoncurrentVersionExpiration::builder().noncurrent_days(days).build()),
                )
                .set_abort_incomplete_multipart_upload(
                    rule.abort_incomplete_upload_days
                        .map(|days| AbortIncompleteMultipartUpload::builder().days_after_initiation(days).build()),
                )
                .build()
                .map_err(invalid)?;
            lifecycle = lifecycle.rules(built);
        }
        let put = self
            .client
            .put_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .lifecycle_configuration(lifecycle.build().map_err(invalid)?);
        put.send().await.map_err(|e| classify("setting the bucket's lifecycle", e))?;
        Ok(())
    }

    async fn exists_object(&self, object_key: &str) -> Result<bool, StoreError> {
        match self.client.head_object().bucket(&self.bucket).key(object_key).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(classify("checking an archive", e)),
        }
    }

    /// Streams an object into an anonymous file in the staging folder (gone when dropped).
    pub async fn download(&self, object_key: &str) -> Result<Option<std::fs::File>, StoreError> {
        Ok(self.download_named(object_key).await?.map(|staged| staged.into_file()))
    }

    /// Streams an object into a named file in the staging folder (removed when dropped).
    async fn download_named(&self, object_key: &str) -> Result<Option<tempfile::NamedTempFile>, StoreError> {
        let object = match self.client.get_object().bucket(&self.bucket).key(object_key).send().await {
            Ok(object) => object,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(classify("reading an archive", e)),
        };
        let io = |e: std::io::Error| StoreError::Other(anyhow::Error::new(e).context("staging a download"));
        let file = tempfile::NamedTempFile::new_in(&self.staging).map_err(io)?;
        let mut writer = tokio::fs::File::from_std(file.as_file().try_clone().map_err(io)?);
        let mut body = object.body;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| StoreError::Unavailable(anyhow::Error::new(e).context("downloading an archive")))?
        {
            tokio::io::AsyncWriteExt::write_all(&mut writer, &chunk).await.map_err(io)?;
        }
        tokio::io::AsyncWriteExt::flush(&mut writer).await.map_err(io)?;
        Ok(Some(file))
    }

    fn object_key(&self, key: &ArchiveKey) -> String {
        format!("{}{}", self.key_prefix, key.as_str())
    }

    async fn put_in_parts(&self, object_key: &str, staged: &Path, size: u64) -> Result<(), StoreError> {
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(object_key)
            .send()
            .await
            .map_err(|e| classify("starting a multipart upload", e))?;
        let upload_id = upload.upload_id().unwrap_or_default().to_owned();
        let result = self.upload_parts(object_key, &upload_id, staged, size).await;
        if result.is_err() {
            let abort = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(object_key)
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(e) = abort {
                tracing::warn!(key = object_key, error = %aws_sdk_s3::error::DisplayErrorContext(e), "could not abort a multipart upload");
            }
        }
        result
    }

    async fn upload_parts(
        &self,
        object_key: &str,
        upload_id: &str,
        staged: &Path,
        size: u64,
    ) -> Result<(), StoreError> {
        let mut parts = Vec::new();
        let mut offset = 0;
        let mut number = 1;
        while offset < size {
            let length = PART_SIZE.min(size - offset);
            let body = ByteStream::read_from()
                .path(staged)
                .offset(offset)
                .length(Length::Exact(length))
                .build()
                .await
                .map_err(|e| StoreError::Other(anyhow::Error::new(e).context("reading the staged archive")))?;
            let part = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(object_key)
                .upload_id(upload_id)
                .part_number(number)
                .body(body)
                .send()
                .await
                .map_err(|e| classify("uploading a part", e))?;
            parts.push(CompletedPart::builder().part_number(number).set_e_tag(part.e_tag).build());
            offset += length;
            number += 1;
        }
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(object_key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .if_none_match("*")
            .send()
            .await;
        completed.map(|_| ()).map_err(|e| taken_or(e, "completing a multipart upload"))
    }
}

/// A failed conditional write means the key is taken.
fn taken_or<E, R>(error: aws_smithy_runtime_api::client::result::SdkError<E, R>, operation: &'static str) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = error.as_service_error().and_then(|e| e.code()).unwrap_or_default();
    if matches!(code, "PreconditionFailed" | "ConditionalRequestConflict") {
        StoreError::AlreadyExists
    } else {
        classify(operation, error)
    }
}

#[async_trait]
impl ArchiveStore for S3ArchiveStore {
    fn staging_dir(&self) -> &Path {
        &self.staging
    }

    async fn put(&self, key: &ArchiveKey, staged: &Path) -> Result<(), StoreError> {
        let object_key = self.object_key(key);
        let size = tokio::fs::metadata(staged).await.map_err(|e| StoreError::Other(e.into()))?.len();
        if size > MULTIPART_THRESHOLD {
            return self.put_in_parts(&object_key, staged, size).await;
        }
        let body = ByteStream::from_path(staged)
            .await
            .map_err(|e| StoreError::Other(anyhow::Error::new(e).context("reading the staged archive")))?;
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&object_key)
            .content_length(size as i64)
            .if_none_match("*")
            .body(body)
            .send()
            .await;
        put.map(|_| ()).map_err(|e| taken_or(e, "storing an archive"))
    }

    async fn copy(&self, from: &ArchiveKey, to: &ArchiveKey) -> Result<(), StoreError> {
        // A server-side copy (one request up to 5 GB, beyond every archive limit). S3 refuses it
        // over an existing key by itself; the look first is for stand-ins that ignore the condition.
        let target = self.object_key(to);
        if self.exists_object(&target).await? {
            return Err(StoreError::AlreadyExists);
        }
        let source = format!("{}/{}", self.bucket, self.object_key(from));
        let source = percent_encoding::utf8_percent_encode(&source, COPY_SOURCE).to_string();
        let copied = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(target)
            .copy_source(source)
            .if_none_match("*")
            .send()
            .await;
        copied.map(|_| ()).map_err(|e| taken_or(e, "copying an archive"))
    }

    async fn delete(&self, key: &ArchiveKey) -> Result<(), StoreError> {
        let deleted = self.client.delete_object().bucket(&self.bucket).key(self.object_key(key)).send().await;
        deleted.map(|_| ()).map_err(|e| classify("deleting an archive", e))
    }

    async fn exists(&self, key: &ArchiveKey) -> Result<bool, StoreError> {
        self.exists_object(&self.object_key(key)).await
    }

    async fn open(&self, key: &ArchiveKey) -> Result<Option<std::fs::File>, StoreError> {
        self.download(&self.object_key(key)).await
    }

    async fn presign_put(&self, key: &ArchiveKey, expiry: Duration) -> Result<String, StoreError> {
        let config = PresigningConfig::expires_in(expiry).map_err(|e| StoreError::Other(e.into()))?;
        let request = self.client.put_object().bucket(&self.bucket).key(self.object_key(key)).presigned(config).await;
        Ok(request.map_err(|e| classify("presigning an upload", e))?.uri().to_owned())
    }

    async fn presign_get(&self, key: &ArchiveKey, expiry: Duration) -> Result<String, StoreError> {
        let config = PresigningConfig::expires_in(expiry).map_err(|e| StoreError::Other(e.into()))?;
        // Served as a download of its type, never as a page a browser would render.
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .response_content_type(key.media_type())
            .response_content_disposition(key.content_disposition())
            .presigned(config)
            .await;
        Ok(request.map_err(|e| classify("presigning a download", e))?.uri().to_owned())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<StoredObject>, StoreError> {
        let mut found = Vec::new();
        let mut continuation = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(format!("{}{prefix}", self.key_prefix))
                .max_keys(self.list_page)
                .set_continuation_token(continuation)
                .send()
                .await
                .map_err(|e| classify("listing archives", e))?;
            for object in page.contents() {
                let Some(key) = object.key().and_then(|key| key.strip_prefix(&self.key_prefix)) else { continue };
                let modified = object.last_modified().and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0));
                // S3 dates every object; one it did not would never count as old enough to remove.
                let Some(modified) = modified else {
                    tracing::warn!(key, "a listed object has no last-modified time; left out");
                    continue;
                };
                let bytes = object.size().and_then(|size| u64::try_from(size).ok()).unwrap_or_default();
                found.push(StoredObject {
                    key: ArchiveKey::listed(key.to_owned()),
                    modified: Timestamp::from(modified),
                    bytes,
                });
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => continuation = Some(next.to_owned()),
                _ => return Ok(found),
            }
        }
    }
}

/// Uploads arrive in this bucket under an incoming prefix; outcomes are recorded as object tags.
#[async_trait]
impl IncomingStore for S3ArchiveStore {
    async fn fetch_incoming(&self, key: &str) -> Result<Option<tempfile::NamedTempFile>, StoreError> {
        self.download_named(key).await
    }

    async fn remove_incoming(&self, key: &str) -> Result<(), StoreError> {
        let deleted = self.client.delete_object().bucket(&self.bucket).key(key).send().await;
        deleted.map(|_| ()).map_err(|e| classify("removing a refused upload", e))
    }

    async fn mark_incoming(&self, key: &str, marks: &[(&str, &str)]) -> Result<(), StoreError> {
        let mut tagging = Tagging::builder();
        for (name, value) in marks {
            tagging = tagging.tag_set(
                Tag::builder().key(*name).value(tag_value(value)).build().map_err(|e| StoreError::Other(e.into()))?,
            );
        }
        let tagging = tagging.build().map_err(|e| StoreError::Other(e.into()))?;
        let put = self.client.put_object_tagging().bucket(&self.bucket).key(key).tagging(tagging).send().await;
        put.map(|_| ()).map_err(|e| classify("tagging an upload", e))
    }
}

/// S3 tag values: at most 256 characters of letters, digits, spaces and `+ - = . _ : / @`.
fn tag_value(text: &str) -> String {
    text.chars().map(|c| if c.is_alphanumeric() || " +-=._:/@".contains(c) { c } else { ' ' }).take(256).collect()
}

/// An Obsrv installation's bucket (and prefix), for `registry-server import-obsrv`.
#[async_trait]
impl crate::registry::obsrv::ObsrvArchives for S3ArchiveStore {
    async fn open(&self, name: &crate::registry::StoredName) -> Result<Option<std::fs::File>, StoreError> {
        ArchiveStore::open(self, &name.key()).await
    }

    async fn copy_in(&self, name: &crate::registry::StoredName, from: &dyn ArchiveStore) -> Result<(), StoreError> {
        let key = name.key();
        if self.exists(&key).await? {
            return Ok(());
        }
        let Some(source) = from.open(&key).await? else {
            return Err(StoreError::Other(anyhow::anyhow!("the registry has no archive {name}")));
        };
        let staged = crate::registry::staged_copy(source, &self.staging).await?;
        self.put(&key, staged.path()).await
    }
}

#[async_trait]
impl super::Connect for S3ArchiveStore {
    fn service(&self) -> &'static str {
        "S3"
    }

    /// A `HeadObject` of the archives' folder itself, `<key prefix>connector-registry/`, which
    /// holds no object: every function with archives may call it there (404, or 403 without
    /// `s3:ListBucket`).
    async fn connect(&self) -> Result<(), StoreError> {
        let once = aws_sdk_s3::config::Builder::default()
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(super::connect_timeouts());
        let outcome = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(format!("{}{}/", self.key_prefix, crate::registry::ARCHIVE_PREFIX))
            .customize()
            .config_override(once)
            .send()
            .await;
        super::answered("opening the connection to S3", outcome)
    }
}
