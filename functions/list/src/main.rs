//! `POST /v2/connectors/list` as a Lambda function. Needs only DynamoDB.

use registry_shared::api::{self, Api};
use registry_shared::lambda::{self, Error, authenticator_from_env, catalog_from_env};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let catalog = catalog_from_env().await?;
    lambda::run(Api::ConnectorsList, authenticator_from_env()?, move |request| {
        let catalog = catalog.clone();
        async move { api::list_within(&catalog, request, Some(api::LAMBDA_RESPONSE_BYTES)).await }
    })
    .await
}
