//! `POST /v2/files/generate-url` as a Lambda function: presigned S3 URLs. Needs only S3.

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
    let auth = settings.authenticator();
    lambda::run(Route::GenerateUrl, auth.clone(), move |request| {
        let (state, auth) = (state.clone(), auth.clone());
        async move { api::generate_url(&state, &auth, request).await }
    })
    .await
}
