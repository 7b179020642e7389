//! Collects orphaned archives once a day (an EventBridge schedule): archives under
//! connector-registry/ that no row references and uploads under connector-registry-uploads/ never
//! registered, when older than the grace period (`REGISTRY_GC_GRACE_SECONDS`, a day).

use std::sync::Arc;

use registry_shared::adapters::aws::sdk_config;
use registry_shared::lambda::gc_schedule::{self, Collector};
use registry_shared::lambda::{self, Error, Settings};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let settings = Settings::from_env()?;
    let sdk = sdk_config().await;
    gc_schedule::run(Collector {
        archives: Arc::new(settings.archive_store(&sdk)?),
        rows: Arc::new(settings.row_store(&sdk)?),
        grace: settings.gc_grace,
    })
    .await
}
