//! Delivers audit events: the outbox items registrations commit into the table reach this
//! function through the table's stream (filtered to them), and each is put to EventBridge, then
//! removed from the table. A record that could not be delivered is reported as the batch's first
//! failure, so that Lambda retries from it (and, in the end, hands it to the failure destination).

use std::sync::Arc;

use registry_shared::adapters::aws::{EventBridgeSink, sdk_config};
use registry_shared::lambda::{self, Error, Settings, audit_stream};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let settings = Settings::from_env()?;
    let sdk = sdk_config().await;
    let outbox = Arc::new(settings.row_store(&sdk)?);
    let sink = Arc::new(EventBridgeSink::new(&sdk, settings.event_bus.clone()));
    audit_stream::run(outbox, sink).await
}
