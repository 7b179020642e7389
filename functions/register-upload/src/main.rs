//! Registers connector archives put into the bucket under the incoming prefix (S3
//! `ObjectCreated` events), with no API call. Its authority is the bucket policy: whoever may write
//! under the prefix may register.

use std::sync::Arc;

use aws_lambda_events::event::s3::S3Event;
use registry_shared::adapters::aws::{DynamoRowStore, S3ArchiveStore, sdk_config};
use registry_shared::distribution::Limits;
use registry_shared::lambda::{self, Error, env_or, required_env};
use registry_shared::lambda_runtime::{LambdaEvent, run, service_fn};
use registry_shared::registry::Registrar;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let table = required_env("REGISTRY_TABLE")?;
    let bucket = required_env("REGISTRY_BUCKET")?;
    let incoming_prefix = env_or("REGISTRY_INCOMING_PREFIX", "incoming/".to_owned())?;
    let sdk = sdk_config().await;
    let archives = Arc::new(S3ArchiveStore::new(&sdk, bucket.clone(), env_or("REGISTRY_KEY_PREFIX", String::new())?)?);
    let rows = Arc::new(DynamoRowStore::new(&sdk, table));
    let registrar = Arc::new(Registrar::new(archives.clone(), rows, Limits::default()));
    run(service_fn(move |event: LambdaEvent<S3Event>| {
        let (registrar, archives, bucket, prefix) = (registrar.clone(), archives.clone(), bucket.clone(), incoming_prefix.clone());
        async move { lambda::handle_s3_event(&registrar, &*archives, &bucket, &prefix, event.payload).await.map(|_| ()) }
    }))
    .await
}
