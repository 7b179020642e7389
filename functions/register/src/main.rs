//! `POST /v2/connector/register` as a Lambda function: archives to S3, rows to DynamoDB.

use std::sync::Arc;

use registry_shared::adapters::aws::{DynamoRowStore, S3ArchiveStore, sdk_config};
use registry_shared::api::{self, Api, RegisterState};
use registry_shared::distribution::Limits;
use registry_shared::lambda::{self, Error, authenticator_from_env, env_or, required_env};
use registry_shared::registry::Registrar;

/// API Gateway passes at most 6 MB of payload to a function; larger archives go through S3.
const DEFAULT_MAX_UPLOAD_BYTES: u64 = 6 * 1024 * 1024;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let table = required_env("REGISTRY_TABLE")?;
    let bucket = required_env("REGISTRY_BUCKET")?;
    let key_prefix = env_or("REGISTRY_KEY_PREFIX", String::new())?;
    let limits = Limits {
        max_archive_bytes: env_or("REGISTRY_MAX_ARCHIVE_BYTES", Limits::default().max_archive_bytes)?,
        max_uncompressed_bytes: env_or("REGISTRY_MAX_UNCOMPRESSED_BYTES", Limits::default().max_uncompressed_bytes)?,
        max_entries: env_or("REGISTRY_MAX_ENTRIES", Limits::default().max_entries)?,
        ..Limits::default()
    };
    let sdk = sdk_config().await;
    let rows = Arc::new(DynamoRowStore::new(&sdk, table));
    let archives = Arc::new(S3ArchiveStore::new(&sdk, bucket, key_prefix)?);
    let state = Arc::new(RegisterState {
        registrar: Registrar::new(archives, rows, limits),
        max_body_bytes: env_or("REGISTRY_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES)?,
    });
    lambda::run(Api::ConnectorRegister, authenticator_from_env()?, move |request| {
        let state = state.clone();
        async move { api::register(&state, request).await }
    })
    .await
}
