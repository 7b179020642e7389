//! The AWS backend: archives in S3, rows in DynamoDB, audit events to EventBridge.

#[cfg(feature = "aws-s3")]
mod bucket;
#[cfg(feature = "aws-dynamodb")]
mod dynamodb;
#[cfg(feature = "aws-eventbridge")]
mod eventbridge;
#[cfg(feature = "aws-s3")]
mod s3;
#[cfg(feature = "aws-secrets")]
pub mod secrets;

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

#[cfg(feature = "aws-s3")]
pub use bucket::{BucketSchema, LifecycleRule};
#[cfg(feature = "aws-dynamodb")]
pub use dynamodb::migrate::Copied;
#[cfg(feature = "aws-dynamodb-stream")]
pub use dynamodb::stream_images::audit_event_of;
#[cfg(feature = "aws-dynamodb")]
pub use dynamodb::{DynamoRowStore, MAX_TRANSACTION_ACTIONS, MAX_TRANSACTION_BYTES, TableSchema};
#[cfg(feature = "aws-eventbridge")]
pub use eventbridge::EventBridgeSink;
#[cfg(feature = "aws-s3")]
pub use s3::S3ArchiveStore;

use crate::error::StoreError;

/// A store whose connection a function can open at init, before its first request needs it
/// (`lambda::connect_at_init`).
#[async_trait::async_trait]
pub trait Connect: Send + Sync {
    /// The service, as the log names it.
    fn service(&self) -> &'static str;

    /// One request that costs next to nothing and changes nothing, made once, without retries,
    /// so that the TCP and TLS connection it opens stays in the client's pool for the next
    /// request. Any answer of the service counts: only a connection that could not be made, or an
    /// answer that never came, is an error.
    async fn connect(&self) -> Result<(), StoreError>;
}

/// The outcome of a `Connect::connect` request: answered, whatever the answer.
fn answered<T, E, R>(
    operation: &'static str,
    outcome: Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
) -> Result<(), StoreError>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match outcome {
        Ok(_) | Err(SdkError::ServiceError(_)) => Ok(()),
        Err(e) => Err(classify(operation, e)),
    }
}

/// The `connect` request: one attempt, which may take as long as connecting may.
fn connect_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(CONNECT_TIMEOUT)
        .operation_timeout(CONNECT_TIMEOUT)
        .build()
}

/// How long one attempt of a row-store call may take before it is retried, and how long all
/// attempts together may take: a stalled store becomes a 503, never a hung request.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The one SDK configuration of a process, shared by every client: `AWS_ENDPOINT_URL` honoured
/// (empty means unset, as the template declares it), rustls with ring, explicit timeouts. Inside
/// Lambda it is built from the variables the service sets (see `lambda_sdk_config`); elsewhere it
/// comes from the SDK's standard chains.
pub async fn sdk_config() -> SdkConfig {
    match lambda_sdk_config(|name| std::env::var(name).ok()) {
        Some(config) => config,
        None => without_empty_endpoints(config_loader().load().await),
    }
}

/// The SDK's chains would give each client an empty `AWS_ENDPOINT_URL` (or
/// `AWS_ENDPOINT_URL_<SERVICE>`) as its endpoint; this drops empty endpoint settings instead.
fn without_empty_endpoints(config: SdkConfig) -> SdkConfig {
    config.clone().into_builder().service_config(NonEmptySettings(config)).build()
}

/// The service settings of the configuration it holds, less those that are empty.
#[derive(Debug)]
struct NonEmptySettings(SdkConfig);

impl aws_types::service_config::LoadServiceConfig for NonEmptySettings {
    fn load_config(&self, key: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
        self.0.service_config()?.load_config(key).filter(|value| !value.trim().is_empty())
    }
}

/// The settings every SDK configuration of the registry has; `sdk_config` adds nothing to them.
pub fn config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(http_client()).timeout_config(timeouts())
}

/// Lambda gives a function its region and credentials as environment variables. Reading those
/// directly, instead of running the SDK's default chains (profile files, the container and
/// instance-metadata providers, a dozen settings each looked up in the environment and then in
/// the profile), takes some 0.7 ms off every cold start, about a third of what a whole
/// hello-world function needs to start. `None` (use the chains) outside Lambda, and where Lambda
/// gives credentials another way (a container credentials endpoint) or a profile is asked for.
fn lambda_sdk_config(env: impl Fn(&str) -> Option<String>) -> Option<SdkConfig> {
    env("AWS_LAMBDA_FUNCTION_NAME")?;
    if env("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some() || env("AWS_PROFILE").is_some() {
        return None;
    }
    let region = env("AWS_REGION")?;
    env("AWS_ACCESS_KEY_ID")?;
    env("AWS_SECRET_ACCESS_KEY")?;
    let credentials = aws_config::environment::EnvironmentVariableCredentialsProvider::new();
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(credentials))
        .retry_config(aws_config::retry::RetryConfig::standard())
        .http_client(http_client())
        .timeout_config(timeouts());
    if let Some(url) = env("AWS_ENDPOINT_URL").filter(|url| !url.trim().is_empty()) {
        config = config.endpoint_url(url);
    }
    Some(config.build())
}

fn http_client() -> SharedHttpClient {
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .tls_context(tls_context(native_roots()))
        .build_https();
    SharedHttpClient::new(WithoutWarmUp(client))
}

/// The hyper client builds a TLS connector when each SDK client is validated, and drops it: a
/// warm-up that loads the system's roots into their cache at init rather than at the first
/// request. With the roots compiled in there is nothing to warm, and the connector (its rustls
/// configuration, the roots parsed from PEM) is some 15% of a function's init work thrown away,
/// once per SDK client. The connector that is used is built once, by the first request: at init
/// where the function opens its store connections there (`lambda::connect_at_init`), which also
/// loads the system's roots when `REGISTRY_TLS_NATIVE_ROOTS=1` adds them.
#[derive(Debug)]
struct WithoutWarmUp(SharedHttpClient);

impl HttpClient for WithoutWarmUp {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The roots AWS endpoints chain to, compiled in. The SDK's default, the system's certificate
/// store, costs some 150 file reads and parses at every cold start (more than the rest of a
/// function's init together). `REGISTRY_TLS_NATIVE_ROOTS=1` adds the system's roots, for an
/// `AWS_ENDPOINT_URL` served over HTTPS by another authority.
const AMAZON_TRUST_SERVICES: &str = include_str!("amazon-trust-services.pem");

fn native_roots() -> bool {
    std::env::var("REGISTRY_TLS_NATIVE_ROOTS").is_ok_and(|v| v == "1" || v == "true")
}

fn tls_context(native: bool) -> TlsContext {
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

    fn environment(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string())
    }

    const LAMBDA: &[(&str, &str)] = &[
        ("AWS_LAMBDA_FUNCTION_NAME", "read"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_SESSION_TOKEN", "token"),
    ];

    #[test]
    fn inside_lambda_the_configuration_comes_from_the_variables_lambda_sets() {
        let config = super::lambda_sdk_config(environment(LAMBDA)).expect("a Lambda configuration");
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert!(config.credentials_provider().is_some());
        assert!(config.http_client().is_some());
        assert_eq!(config.endpoint_url(), None);
        let timeouts = config.timeout_config().expect("timeouts");
        assert_eq!(timeouts.operation_timeout(), Some(super::OPERATION_TIMEOUT));
        assert_eq!(config.retry_config().map(|r| r.max_attempts()), Some(3));
    }

    #[test]
    fn inside_lambda_an_endpoint_url_is_honoured() {
        const WITH_ENDPOINT: &[(&str, &str)] = &[
            ("AWS_LAMBDA_FUNCTION_NAME", "read"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ];
        let config = super::lambda_sdk_config(environment(WITH_ENDPOINT)).expect("a Lambda configuration");
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:5000"));
    }

    #[test]
    fn inside_lambda_an_empty_endpoint_url_means_aws_itself() {
        const EMPTY_ENDPOINT: &[(&str, &str)] = &[
            ("AWS_LAMBDA_FUNCTION_NAME", "read"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_ENDPOINT_URL", ""),
        ];
        let config = super::lambda_sdk_config(environment(EMPTY_ENDPOINT)).expect("a Lambda configuration");
        assert_eq!(config.endpoint_url(), None);
    }

    /// What the standard chains read: an empty endpoint setting, and one of another service.
    #[derive(Debug)]
    struct Settings;

    impl aws_types::service_config::LoadServiceConfig for Settings {
        fn load_config(&self, key: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
            match key.service_id() {
                "DynamoDB" => Some(String::new()),
                _ => Some("http://127.0.0.1:5000".to_owned()),
            }
        }
    }

    #[test]
    fn outside_lambda_empty_endpoint_settings_are_dropped() {
        let key = |service| {
            aws_types::service_config::ServiceConfigKey::builder()
                .service_id(service)
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build()
                .unwrap()
        };
        let loaded = aws_config::SdkConfig::builder().service_config(Settings).build();
        let config = super::without_empty_endpoints(loaded);
        let settings = config.service_config().expect("service settings");
        assert_eq!(settings.load_config(key("DynamoDB")), None);
        assert_eq!(settings.load_config(key("S3")).as_deref(), Some("http://127.0.0.1:5000"));
    }

    #[test]
    fn the_standard_chains_are_used_outside_lambda_or_when_credentials_come_another_way() {
        const OUTSIDE: &[(&str, &str)] =
            &[("AWS_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")];
        const CONTAINER: &[(&str, &str)] = &[
            ("AWS_LAMBDA_FUNCTION_NAME", "read"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9001/credentials"),
        ];
        const PROFILE: &[(&str, &str)] = &[("AWS_LAMBDA_FUNCTION_NAME", "read"), ("AWS_PROFILE", "dev")];
        const NO_KEYS: &[(&str, &str)] = &[("AWS_LAMBDA_FUNCTION_NAME", "read"), ("AWS_REGION", "us-east-1")];
        for pairs in [OUTSIDE, CONTAINER, PROFILE, NO_KEYS] {
            assert!(super::lambda_sdk_config(environment(pairs)).is_none(), "{pairs:?}");
        }
    }

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
