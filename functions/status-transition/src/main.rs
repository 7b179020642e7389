//! `POST /v2/connectors/status-transition` as a Lambda function: rows in DynamoDB, archives of
//! deleted versions removed from S3. Where the registry feeds an Obsrv installation, it also reads
//! Obsrv's PostgreSQL (in its VPC) so that a version a connector instance uses is never deleted.

use std::sync::Arc;

use registry_shared::adapters::aws::sdk_config;
use registry_shared::api::{self, Route};
use registry_shared::lambda::{self, Error, Settings};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let settings = Settings::from_env()?;
    let sdk = sdk_config().await;
    let (archives, rows) = (Arc::new(settings.archive_store(&sdk)?), Arc::new(settings.row_store(&sdk)?));
    lambda::connect_at_init(&settings, &[&*archives, &*rows]).await;
    let mut registrar = settings.registrar(archives, rows);
    if settings.reads_obsrv_table() {
        registrar = registrar.guarding_obsrv_instances(Arc::new(settings.obsrv_table(&sdk).await?));
    }
    let registrar = Arc::new(registrar);
    lambda::run(Route::StatusTransition, settings.authenticator(), move |request| {
        let registrar = registrar.clone();
        async move { api::status_transition(&registrar, request).await }
    })
    .await
}
