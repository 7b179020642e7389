//! Keeps an Obsrv installation's PostgreSQL table `connector_registry` in step: the outbox items
//! registrations commit reach this function through the table's stream, and the current state of
//! the rows each registration wrote and retired is copied into Obsrv's table (and, when Obsrv's own
//! url-access serves archives, each row's archive into Obsrv's bucket first). Only this function
//! links the PostgreSQL client; it runs in the VPC of Obsrv's database.

use std::sync::Arc;

use registry_shared::adapters::aws::sdk_config;
use registry_shared::lambda::{self, Error, Settings, obsrv_stream};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let settings = Settings::from_env()?;
    let sdk = sdk_config().await;
    let rows = Arc::new(settings.row_store(&sdk)?);
    obsrv_stream::run(rows, settings.obsrv(&sdk).await?).await
}
