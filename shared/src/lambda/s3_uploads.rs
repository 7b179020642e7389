//! S3 `ObjectCreated` events: archives put under the incoming prefix of the bucket, registered
//! with no API call. The bucket's policy is the authority: whoever may write there may register.

use std::sync::Arc;

use aws_lambda_events::event::s3::S3Event;
use lambda_http::LambdaEvent;
use lambda_http::lambda_runtime::{run as run_runtime, service_fn};

use super::Error;
use crate::error::RegistryError;
use crate::registry::{IncomingStore, Registrar};

/// The register-upload function's state.
pub struct Uploads {
    pub registrar: Registrar,
    pub incoming: Arc<dyn IncomingStore>,
    pub bucket: String,
    pub incoming_prefix: String,
}

/// Runs the function until the Lambda runtime stops the process.
pub async fn run(uploads: Uploads) -> Result<(), Error> {
    let uploads = Arc::new(uploads);
    run_runtime(service_fn(move |event: LambdaEvent<S3Event>| {
        let uploads = uploads.clone();
        async move {
            let Uploads { registrar, incoming, bucket, incoming_prefix } = &*uploads;
            handle_s3_event(registrar, &**incoming, bucket, incoming_prefix, event.payload).await.map(|_| ())
        }
    }))
    .await
}

/// Registers every object an S3 `ObjectCreated` event names under `incoming_prefix` of `bucket`.
/// An `Err` (a transient fault) makes Lambda retry the event, then hand it to the dead-letter
/// queue; repeats are harmless (see `register_upload`).
pub async fn handle_s3_event(
    registrar: &Registrar,
    incoming: &dyn IncomingStore,
    bucket: &str,
    incoming_prefix: &str,
    event: S3Event,
) -> Result<Vec<crate::registry::UploadOutcome>, UploadEventError> {
    let mut outcomes = Vec::new();
    for record in event.records {
        let (Some(record_bucket), Some(raw_key)) = (record.s3.bucket.name, record.s3.object.key) else { continue };
        // Keys arrive URL-encoded, spaces as `+`.
        let key = percent_encoding::percent_decode_str(&raw_key.replace('+', " ")).decode_utf8_lossy().into_owned();
        if record_bucket != bucket || !key.starts_with(incoming_prefix) {
            tracing::warn!(bucket = record_bucket, key, "ignoring an event outside the incoming prefix");
            continue;
        }
        // The uploader, as S3 names it, is the registration's subject.
        let subject = record.principal_id.principal_id.unwrap_or_else(|| crate::registry::audit::ANONYMOUS.to_owned());
        let origin = crate::registry::Origin::new(subject, crate::metrics::UPLOADS_ROUTE);
        let outcome = crate::registry::register_upload(registrar, incoming, &key, &origin)
            .await
            .map_err(|error| UploadEventError::new(key, &error))?;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Why an S3 event failed, as Lambda records it (`errorType`, seen by retries, failure
/// destinations and metrics): `StoreUnavailable` when a store may answer if asked again,
/// `RegistrationFailed` otherwise.
#[derive(Debug, thiserror::Error)]
#[error("registering {key} failed: {chain}")]
pub struct UploadEventError {
    key: String,
    transient: bool,
    chain: String,
}

impl UploadEventError {
    fn new(key: String, error: &RegistryError) -> Self {
        let transient = matches!(error, RegistryError::Unavailable(_));
        Self { key, transient, chain: crate::error::error_chain(error) }
    }

    pub fn error_type(&self) -> &'static str {
        if self.transient { "StoreUnavailable" } else { "RegistrationFailed" }
    }
}

impl From<UploadEventError> for lambda_http::lambda_runtime::Diagnostic {
    fn from(error: UploadEventError) -> Self {
        Self { error_type: error.error_type().to_owned(), error_message: error.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_upload_events_reach_lambda_with_an_error_type_that_says_whether_to_retry() {
        use lambda_http::lambda_runtime::Diagnostic;
        let unavailable = RegistryError::Unavailable(anyhow::anyhow!("throttled"));
        let diagnostic = Diagnostic::from(UploadEventError::new("incoming/a.tar.gz".into(), &unavailable));
        assert_eq!(diagnostic.error_type, "StoreUnavailable");
        assert_eq!(diagnostic.error_message, "registering incoming/a.tar.gz failed: a store is unavailable: throttled");
        let internal = RegistryError::internal(anyhow::anyhow!("the disk is full"));
        let diagnostic = Diagnostic::from(UploadEventError::new("incoming/a.tar.gz".into(), &internal));
        assert_eq!(diagnostic.error_type, "RegistrationFailed");
    }
}
