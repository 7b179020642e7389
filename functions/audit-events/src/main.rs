//! Delivers audit events: the outbox items registrations commit into the table reach this
//! function through the table's stream (filtered to them), and each is put to EventBridge, then
//! removed from the table. A record that could not be delivered is reported as the batch's first
//! failure, so that Lambda retries from it (and, in the end, hands it to the failure destination).

use std::sync::Arc;

use registry_shared::adapters::aws::{DynamoRowStore, EventBridgeSink, sdk_config};
use registry_shared::lambda::{self, Error, env_or, required_env};
use registry_shared::lambda_runtime::{LambdaEvent, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let table = required_env("REGISTRY_TABLE")?;
    let bus = env_or("REGISTRY_EVENT_BUS", "default".to_owned())?;
    let sdk = sdk_config().await;
    let outbox = Arc::new(DynamoRowStore::new(&sdk, table));
    let sink = Arc::new(EventBridgeSink::new(&sdk, bus));
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let (outbox, sink) = (outbox.clone(), sink.clone());
        async move { Ok::<_, Error>(lambda::handle_audit_stream(&*outbox, &*sink, &event.payload).await) }
    }))
    .await
}
