//! `POST /v2/connector/register` as a Lambda function: archives to S3, rows to DynamoDB.

use std::sync::Arc;

use registry_shared::adapters::aws::sdk_config;
use registry_shared::api::{self, RegisterState, Route};
use registry_shared::lambda::{self, Error, Settings};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let settings = Settings::from_env()?;
    let sdk = sdk_config().await;
    let (archives, rows) = (Arc::new(settings.archive_store(&sdk)?), Arc::new(settings.row_store(&sdk)?));
    lambda::connect_at_init(&settings, &[&*archives, &*rows]).await;
    let registrar = settings.registrar(archives, rows);
    let state = Arc::new(RegisterState { registrar, max_body_bytes: settings.max_upload_bytes });
    lambda::run(Route::Register, settings.authenticator(), move |request| {
        let state = state.clone();
        async move { api::register(&state, request).await }
    })
    .await
}
