//! The AWS backend: archives in S3, rows in DynamoDB.

#[cfg(feature = "aws-dynamodb")]
mod dynamodb;
#[cfg(feature = "aws-s3")]
mod s3;

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};

#[cfg(feature = "aws-dynamodb")]
pub use dynamodb::{DynamoRowStore, TableSchema};
#[cfg(feature = "aws-s3")]
pub use s3::S3ArchiveStore;

use crate::error::StoreError;

/// How long one attempt of a row-store call may take before it is retried, and how long all
/// attempts together may take: a stalled store becomes a 503, never a hung request.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The one SDK configuration of a process, shared by every client: the standard credential and
/// region chain, `AWS_ENDPOINT_URL` honoured, rustls with ring, explicit timeouts.
pub async fn sdk_config() -> SdkConfig {
    config_loader().load().await
}

/// The settings every SDK configuration of the registry has; `sdk_config` adds nothing to them.
pub fn config_loader() -> aws_config::ConfigLoader {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .tls_context(tls_context())
        .build_https();
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    aws_config::defaults(BehaviorVersion::latest()).http_client(http_client).timeout_config(timeouts)
}

/// The roots AWS endpoints chain to, compiled in. The SDK's default, the system's certificate
/// store, costs some 150 file reads and parses at every cold start (more than the rest of a
/// function's init together). `REGISTRY_TLS_NATIVE_ROOTS=1` adds the system's roots, for an
/// `AWS_ENDPOINT_URL` served over HTTPS by another authority.
const AMAZON_TRUST_SERVICES: &str = include_str!("amazon-trust-services.pem");

fn tls_context() -> TlsContext {
    let native = std::env::var("REGISTRY_TLS_NATIVE_ROOTS").is_ok_and(|v| v == "1" || v == "true");
    let roots = TrustStore::empty().with_native_roots(native).with_pem_certificate(AMAZON_TRUST_SERVICES.as_bytes());
    TlsContext::builder().with_trust_store(roots).build().unwrap_or_else(|e| {
        // Only a certificate that does not parse fails here, and these are compiled in.
        tracing::error!(error = %e, "the TLS roots could not be loaded; using the system's");
        TlsContext::default()
    })
}

/// Sorts an SDK failure into what the registry can act on: worth a retry (503) or not (500).
/// The SDK's own text goes to the log only.
fn classify<E, R>(operation: &'static str, error: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> StoreError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    let transient = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            matches!(
                code,
                "ThrottlingException"
                    | "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "SlowDown"
                    | "TransactionInProgressException"
                    | "InternalError"
            )
        }
        _ => false,
    };
    let error = anyhow::anyhow!("{}", aws_smithy_types::error::display::DisplayErrorContext(&error)).context(operation);
    if transient { StoreError::Unavailable(error) } else { StoreError::Other(error) }
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    /// The compiled-in roots are the five Amazon Trust Services certificates, each valid base64 DER.
    #[test]
    fn the_compiled_in_roots_are_five_certificates() {
        let pem = super::AMAZON_TRUST_SERVICES;
        let bodies: Vec<String> = pem
            .split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|rest| rest.split("-----END CERTIFICATE-----").next().unwrap_or_default().split_whitespace().collect())
            .collect();
        assert_eq!(bodies.len(), 5);
        for body in bodies {
            let der = base64::engine::general_purpose::STANDARD.decode(body).expect("base64");
            assert_eq!(der[0], 0x30, "a DER SEQUENCE");
        }
    }
}
