//! `GET /v2/connectors/read/{connector_id}` as a Lambda function. Needs only DynamoDB.

use std::sync::Arc;

use registry_shared::adapters::aws::{DynamoRowStore, sdk_config};
use registry_shared::api::{self, Api};
use registry_shared::lambda::{self, Error, authenticator_from_env, required_env};
use registry_shared::registry::Catalog;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let table = required_env("REGISTRY_TABLE")?;
    let sdk = sdk_config().await;
    let catalog = Arc::new(Catalog::new(Arc::new(DynamoRowStore::new(&sdk, table))));
    lambda::run(Api::ConnectorsRead, authenticator_from_env()?, move |request| {
        let catalog = catalog.clone();
        async move { api::read(&catalog, request).await }
    })
    .await
}
