//! `POST /v2/connectors/list` as a Lambda function. Needs only DynamoDB.

use std::sync::Arc;

use registry_shared::adapters::aws::sdk_config;
use registry_shared::api::{self, Route};
use registry_shared::lambda::{self, Error, Settings};
use registry_shared::registry::Catalog;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let settings = Settings::from_env()?;
    let rows = Arc::new(settings.row_store(&sdk_config().await)?);
    lambda::connect_at_init(&settings, &[&*rows]).await;
    let catalog = Arc::new(Catalog::new(rows));
    lambda::run(Route::List, settings.authenticator(), move |request| {
        let catalog = catalog.clone();
        async move { api::list_within(&catalog, request, Some(api::LAMBDA_RESPONSE_BYTES)).await }
    })
    .await
}
