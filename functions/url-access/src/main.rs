//! `POST /v2/files/url-access` as a Lambda function: presigned S3 read URLs of registered
//! archives for Obsrv's runtime pods. API Gateway admits only IAM-signed callers; needs only S3.

use std::sync::Arc;

use registry_shared::adapters::aws::sdk_config;
use registry_shared::api::{self, Route};
use registry_shared::lambda::{self, Error, Settings};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let settings = Settings::from_env()?;
    let archives = Arc::new(settings.archive_store(&sdk_config().await)?);
    lambda::connect_at_init(&settings, &[&*archives]).await;
    let state = Arc::new(settings.files_state(archives));
    lambda::run(Route::UrlAccess, settings.system_authenticator(), move |request| {
        let state = state.clone();
        async move { api::url_access(&state, request).await }
    })
    .await
}
