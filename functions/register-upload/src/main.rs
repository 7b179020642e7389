//! Registers connector archives put into the bucket under the incoming prefix (S3
//! `ObjectCreated` events), with no API call. Its authority is the bucket policy: whoever may write
//! under the prefix may register.

use std::sync::Arc;

use registry_shared::adapters::aws::sdk_config;
use registry_shared::lambda::s3_uploads::{self, Uploads};
use registry_shared::lambda::{self, Error, Settings};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let settings = Settings::from_env()?;
    let sdk = sdk_config().await;
    let archives = Arc::new(settings.archive_store(&sdk)?);
    let rows = Arc::new(settings.row_store(&sdk)?);
    lambda::connect_at_init(&settings, &[&*archives, &*rows]).await;
    let registrar = settings.registrar(archives.clone(), rows);
    s3_uploads::run(Uploads {
        registrar,
        incoming: archives,
        bucket: settings.bucket()?.to_owned(),
        incoming_prefix: settings.incoming_prefix.clone(),
    })
    .await
}
