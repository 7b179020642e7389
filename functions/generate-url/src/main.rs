//! `POST /v2/files/generate-url` as a Lambda function: presigned S3 URLs. Needs only S3.

use std::sync::Arc;
use std::time::Duration;

use registry_shared::adapters::aws::{S3ArchiveStore, sdk_config};
use registry_shared::api::{self, Api, FilesState, MAX_URL_EXPIRY};
use registry_shared::lambda::{self, Error, authenticator_from_env, env_or, required_env};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let bucket = required_env("REGISTRY_BUCKET")?;
    let key_prefix = env_or("REGISTRY_KEY_PREFIX", String::new())?;
    let expiry = Duration::from_secs(env_or("REGISTRY_URL_EXPIRY_SECONDS", MAX_URL_EXPIRY.as_secs())?);
    let sdk = sdk_config().await;
    let state = Arc::new(FilesState { archives: Arc::new(S3ArchiveStore::new(&sdk, bucket, key_prefix)?), expiry });
    let auth = authenticator_from_env()?;
    lambda::run(Api::FilesGenerateUrl, auth.clone(), move |request| {
        let (state, auth) = (state.clone(), auth.clone());
        async move { api::generate_url(&state, &auth, request).await }
    })
    .await
}
