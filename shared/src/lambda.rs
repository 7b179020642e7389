//! Running a handler as a Lambda function behind API Gateway (HTTP API v2 or REST v1 events).
//!
//! Two guards sit in front of `lambda_http`: a body flagged base64 that is not valid base64 would
//! make it panic, so such a body is removed and the request answered 400; and REST events carry
//! the stage in the path, which the handlers already tolerate.

use std::convert::Infallible;
use std::future::Future;
use std::task::{Context, Poll};

use http::HeaderValue;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, LambdaEvent, Service, service_fn};

use crate::api::{Api, Response, error_response};
use crate::auth::Authenticator;
use crate::error::RegistryError;

pub use lambda_http::Error;

/// Set by the guard on a request whose body could not be decoded; removed from client requests.
const INVALID_BODY_HEADER: &str = "x-connector-registry-invalid-body";

/// JSON log lines for CloudWatch, one object per line, with the invocation's request id and X-Ray
/// trace id (the runtime's span) on every line, and the metric lines (`crate::metrics`) beside
/// them. `RUST_LOG` sets the filter (default `info`).
pub fn init_tracing() {
    use tracing_subscriber::util::SubscriberInitExt;
    crate::metrics::enable();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    json_logs(filter, std::io::stdout).init();
}

/// The functions' log format, writing to `writer`. Events are flattened into the line, so an
/// event's field must not be named like a key of the line itself (`message`, `level`, `span`):
/// the line would carry the key twice.
fn json_logs<W>(filter: tracing_subscriber::EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .without_time()
        .finish()
}

/// A required environment variable, with an error that names it.
pub fn required_env(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("the environment variable {name} must be set").into())
}

/// Access control of a deployed function: the roles in the claims API Gateway's authorizer
/// passes on, in the claim `REGISTRY_ROLES_CLAIM` names (default `roles`), unless
/// `REGISTRY_AUTH=off` (for throwaway stacks) switches it off.
pub fn authenticator_from_env() -> Result<Authenticator, Error> {
    if access_control_off()? {
        return Ok(Authenticator::Open);
    }
    let claim = match std::env::var("REGISTRY_ROLES_CLAIM") {
        Ok(raw) if !raw.is_empty() => raw.parse().map_err(|e: String| format!("REGISTRY_ROLES_CLAIM: {e}"))?,
        _ => crate::auth::RolesClaim::default(),
    };
    Ok(Authenticator::GatewayClaims(claim))
}

/// Access control of the system route's function: callers API Gateway's IAM authorization let
/// through, unless `REGISTRY_AUTH=off`.
pub fn system_authenticator_from_env() -> Result<Authenticator, Error> {
    Ok(if access_control_off()? { Authenticator::Open } else { Authenticator::GatewayIam })
}

fn access_control_off() -> Result<bool, Error> {
    match std::env::var("REGISTRY_AUTH").as_deref() {
        Err(_) | Ok("gateway") => Ok(false),
        Ok("off") => {
            tracing::warn!("REGISTRY_AUTH=off: every caller may use this function");
            Ok(true)
        }
        Ok(other) => Err(format!("REGISTRY_AUTH must be gateway or off, not {other:?}").into()),
    }
}

/// The authorizer function's verifier: the key of `REGISTRY_JWT_PUBLIC_KEY` (PEM text) or the set
/// of `REGISTRY_JWKS` (JSON text); `REGISTRY_JWT_ISSUER` and `REGISTRY_JWT_AUDIENCE` checked when
/// set; the roles from the claim `REGISTRY_ROLES_CLAIM` names.
#[cfg(feature = "jwt")]
pub fn verifier_from_env() -> Result<crate::auth::JwtVerifier, Error> {
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let rules = crate::auth::TokenRules {
        issuer: set("REGISTRY_JWT_ISSUER"),
        audience: set("REGISTRY_JWT_AUDIENCE"),
        roles_claim: match set("REGISTRY_ROLES_CLAIM") {
            Some(raw) => raw.parse().map_err(|e: String| format!("REGISTRY_ROLES_CLAIM: {e}"))?,
            None => crate::auth::RolesClaim::default(),
        },
    };
    let verifier = match (set("REGISTRY_JWT_PUBLIC_KEY"), set("REGISTRY_JWKS")) {
        (Some(pem), _) => crate::auth::JwtVerifier::from_pem(pem.as_bytes(), &rules)
            .map_err(|e| format!("REGISTRY_JWT_PUBLIC_KEY: {e:#}"))?,
        (None, Some(jwks)) => {
            crate::auth::JwtVerifier::from_jwks(jwks.as_bytes(), &rules).map_err(|e| format!("REGISTRY_JWKS: {e:#}"))?
        }
        (None, None) => return Err("REGISTRY_JWT_PUBLIC_KEY or REGISTRY_JWKS must be set".into()),
    };
    Ok(verifier)
}

/// The authorizer's answer to one REQUEST event (payload 2.0), from its headers.
#[cfg(feature = "jwt")]
pub fn authorizer_event_answer(verifier: &crate::auth::JwtVerifier, event: &serde_json::Value) -> serde_json::Value {
    let mut headers = http::HeaderMap::new();
    for (name, value) in event["headers"].as_object().into_iter().flatten() {
        if let (Ok(name), Some(Ok(value))) =
            (http::HeaderName::try_from(name.as_str()), value.as_str().map(http::HeaderValue::from_str))
        {
            headers.insert(name, value);
        }
    }
    crate::auth::authorizer_answer(verifier, &headers)
}

/// Runs the authorizer until the Lambda runtime stops the process.
#[cfg(feature = "jwt")]
pub async fn run_authorizer(verifier: crate::auth::JwtVerifier) -> Result<(), Error> {
    let verifier = std::sync::Arc::new(verifier);
    lambda_http::lambda_runtime::run(lambda_http::lambda_runtime::service_fn(
        move |event: LambdaEvent<serde_json::Value>| {
            let verifier = verifier.clone();
            async move { Ok::<_, Error>(authorizer_event_answer(&verifier, &event.payload)) }
        },
    ))
    .await
}

/// The generate-url and url-access functions' state: presigned URLs of the S3 bucket
/// `REGISTRY_BUCKET`, valid for `REGISTRY_URL_EXPIRY_SECONDS`.
#[cfg(feature = "aws-s3")]
pub async fn files_state_from_env() -> Result<std::sync::Arc<crate::api::FilesState>, Error> {
    let bucket = required_env("REGISTRY_BUCKET")?;
    let key_prefix = env_or("REGISTRY_KEY_PREFIX", String::new())?;
    let seconds = env_or("REGISTRY_URL_EXPIRY_SECONDS", crate::api::MAX_URL_EXPIRY.as_secs())?;
    let sdk = crate::adapters::aws::sdk_config().await;
    let archives = std::sync::Arc::new(crate::adapters::aws::S3ArchiveStore::new(&sdk, bucket, key_prefix)?);
    Ok(std::sync::Arc::new(crate::api::FilesState { archives, expiry: std::time::Duration::from_secs(seconds) }))
}

/// The read and list functions' state: the catalog over the DynamoDB table `REGISTRY_TABLE`.
#[cfg(feature = "aws-dynamodb")]
pub async fn catalog_from_env() -> Result<std::sync::Arc<crate::registry::Catalog>, Error> {
    let table = required_env("REGISTRY_TABLE")?;
    let sdk = crate::adapters::aws::sdk_config().await;
    let rows = std::sync::Arc::new(crate::adapters::aws::DynamoRowStore::new(&sdk, table));
    Ok(std::sync::Arc::new(crate::registry::Catalog::new(rows)))
}

/// An optional environment variable, parsed, with an error that names it.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T, Error> {
    match std::env::var(name) {
        Ok(raw) => raw.parse().map_err(|_| format!("the environment variable {name} has an invalid value").into()),
        Err(_) => Ok(default),
    }
}

/// Runs the handler until the Lambda runtime stops the process.
pub async fn run<F, Fut>(api: Api, auth: Authenticator, handler: F) -> Result<(), Error>
where
    F: Fn(lambda_http::Request) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let service = GuardedBody { inner: Adapter::from(handler_service(api, auth, handler)) };
    lambda_http::lambda_runtime::run(service).await
}

/// Feeds one event, as JSON, through the same service `run` gives the runtime, and returns the
/// response as the runtime would send it: for tests and the `events/` fixtures (it panics on an
/// event that is not one, so it is not built into the functions).
#[cfg(feature = "test-support")]
pub async fn invoke<F, Fut>(api: Api, auth: Authenticator, handler: F, event: serde_json::Value) -> serde_json::Value
where
    F: Fn(lambda_http::Request) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let mut service = GuardedBody { inner: Adapter::from(handler_service(api, auth, handler)) };
    let request: LambdaRequest = serde_json::from_value(event).expect("an API Gateway event");
    let event = LambdaEvent::new(request, lambda_http::Context::default());
    let Ok(()) = std::future::poll_fn(|cx| service.poll_ready(cx)).await;
    let Ok(response) = service.call(event).await;
    serde_json::to_value(response).expect("a serialisable response")
}

/// The handler as a service of `lambda_http::Request`s: callers without the API's role are
/// refused, and a body the guard removed is a 400. Handlers never fail: every error is a response,
/// so no function error (with a meaningless `errorType`) ever reaches Lambda from them.
fn handler_service<F, Fut>(
    api: Api,
    auth: Authenticator,
    handler: F,
) -> impl Service<
    lambda_http::Request,
    Response = Response,
    Error = Infallible,
    Future = impl Future<Output = Result<Response, Infallible>> + Send + 'static,
> + Clone
where
    F: Fn(lambda_http::Request) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    service_fn(move |mut request: lambda_http::Request| {
        let handler = handler.clone();
        let admitted = auth.admit(api, &request);
        async move {
            match admitted {
                // The caller goes with the request to the handler (register names them in its event).
                Ok(caller) => request.extensions_mut().insert(caller),
                Err(refused) => return Ok(error_response(api, None, &refused)),
            };
            if request.headers().contains_key(INVALID_BODY_HEADER) {
                return Ok(error_response(api, None, &undecodable_body(api)));
            }
            Ok(handler(request).await)
        }
    })
}

fn undecodable_body(api: Api) -> RegistryError {
    let message = "The request body is marked base64 but is not valid base64".to_owned();
    match api {
        Api::ConnectorsList => RegistryError::ListInputInvalid(message),
        _ => RegistryError::UploadInvalid(message),
    }
}

#[derive(Clone)]
struct GuardedBody<S> {
    inner: S,
}

impl<S> Service<LambdaEvent<LambdaRequest>> for GuardedBody<S>
where
    S: Service<LambdaEvent<LambdaRequest>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut event: LambdaEvent<LambdaRequest>) -> Self::Future {
        guard_body(&mut event.payload);
        self.inner.call(event)
    }
}

fn guard_body(request: &mut LambdaRequest) {
    use base64::Engine;
    let (body, is_base64, headers) = match request {
        LambdaRequest::ApiGatewayV2(r) => (&mut r.body, &mut r.is_base64_encoded, &mut r.headers),
        LambdaRequest::ApiGatewayV1(r) => (&mut r.body, &mut r.is_base64_encoded, &mut r.headers),
        #[allow(unreachable_patterns)]
        _ => return,
    };
    headers.remove(INVALID_BODY_HEADER);
    let valid =
        !*is_base64 || body.as_deref().is_none_or(|b| base64::engine::general_purpose::STANDARD.decode(b).is_ok());
    if !valid {
        *body = None;
        *is_base64 = false;
        headers.insert(INVALID_BODY_HEADER, HeaderValue::from_static("1"));
    }
}

/// Registers every object an S3 `ObjectCreated` event names under `incoming_prefix` of `bucket`.
/// An `Err` (a transient fault) makes Lambda retry the event, then hand it to the dead-letter
/// queue; repeats are harmless (see `register_upload`).
#[cfg(feature = "lambda-s3-events")]
pub async fn handle_s3_event(
    registrar: &crate::registry::Registrar,
    incoming: &dyn crate::registry::IncomingStore,
    bucket: &str,
    incoming_prefix: &str,
    event: aws_lambda_events::event::s3::S3Event,
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
#[cfg(feature = "lambda-s3-events")]
#[derive(Debug, thiserror::Error)]
#[error("registering {key} failed: {chain}")]
pub struct UploadEventError {
    key: String,
    transient: bool,
    chain: String,
}

#[cfg(feature = "lambda-s3-events")]
impl UploadEventError {
    fn new(key: String, error: &RegistryError) -> Self {
        let transient = matches!(error, RegistryError::Unavailable(_));
        Self { key, transient, chain: crate::error::error_chain(error) }
    }

    pub fn error_type(&self) -> &'static str {
        if self.transient { "StoreUnavailable" } else { "RegistrationFailed" }
    }
}

#[cfg(feature = "lambda-s3-events")]
impl From<UploadEventError> for lambda_http::lambda_runtime::Diagnostic {
    fn from(error: UploadEventError) -> Self {
        Self { error_type: error.error_type().to_owned(), error_message: error.to_string() }
    }
}

/// Delivers the audit events of a DynamoDB stream batch (the outbox items registrations commit,
/// `INSERT`s under the outbox key), in order, each put to `sink` and then removed from `outbox`.
/// The answer is the partial batch response Lambda reads with `ReportBatchItemFailures`: the
/// first record that failed, so that Lambda retries the batch from it; records after it are left
/// for that retry (the order of a shard is kept). A record that is no audit event is skipped.
#[cfg(feature = "lambda-audit-events")]
pub async fn handle_audit_stream(
    outbox: &dyn crate::registry::AuditOutbox,
    sink: &dyn crate::registry::AuditSink,
    event: &serde_json::Value,
) -> serde_json::Value {
    use crate::adapters::aws::TableSchema;
    use crate::registry::AuditRecord;
    let records = event["Records"].as_array().map(Vec::as_slice).unwrap_or_default();
    for record in records {
        let sequence = record["dynamodb"]["SequenceNumber"].as_str().unwrap_or_default();
        let image = &record["dynamodb"]["NewImage"];
        let is_event =
            record["eventName"] == "INSERT" && image[TableSchema::PARTITION_KEY]["S"] == TableSchema::AUDIT_PARTITION;
        if !is_event {
            tracing::warn!(sequence, "skipping a stream record that is no new audit event");
            continue;
        }
        let delivered = match image[TableSchema::AUDIT_EVENT]["S"].as_str().map(AuditRecord::from_json) {
            Some(Ok(audit)) => crate::registry::audit::deliver(outbox, sink, &audit).await.map(|_| audit),
            Some(Err(error)) => Err(error),
            None => Err(crate::error::StoreError::Other(anyhow::anyhow!("an audit item without its event"))),
        };
        match delivered {
            Ok(audit) => tracing::info!(event_id = %audit.detail.event_id, "audit event delivered"),
            Err(error) => {
                tracing::error!(sequence, error = %crate::error::error_chain(&error), "an audit event was not delivered");
                return serde_json::json!({ "batchItemFailures": [{ "itemIdentifier": sequence }] });
            }
        }
    }
    serde_json::json!({ "batchItemFailures": [] })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Log lines captured in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Every key once per line: strict JSON parsers and CloudWatch keep one of two equal keys.
    #[test]
    fn log_lines_of_refused_and_failed_requests_carry_each_key_once() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = json_logs("info".into(), move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            error_response(
                Api::ConnectorsRead,
                None,
                &RegistryError::ConnectorNotFound("kafka-connector-1.0.0".into()),
            );
            error_response(Api::ConnectorsRead, None, &RegistryError::internal(anyhow::anyhow!("the disk is full")));
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for line in lines {
            let keys = json_keys(line);
            let mut unique = keys.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(keys.len(), unique.len(), "a key twice: {line}");
        }
        let refused: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(refused["message"], "request refused");
        assert_eq!(refused["reason"], "Connector not found: kafka-connector-1.0.0");
    }

    /// The runtime's span of an invocation puts its request id and X-Ray trace id on every line
    /// logged within it.
    #[test]
    fn log_lines_carry_the_request_id_and_the_trace_id() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = json_logs("info".into(), move || writer.clone());
        let mut context = lambda_http::Context::default();
        context.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into();
        context.xray_trace_id =
            Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into());
        tracing::subscriber::with_default(subscriber, || {
            let span = lambda_http::lambda_runtime::layers::trace::request_span(&context);
            let _entered = span.enter();
            error_response(Api::ConnectorsRead, None, &RegistryError::ConnectorNotFound("x-1".into()));
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line["span"]["requestId"], "8476a536-e9f4-11e8-9739-2dfe598c3fcd", "{text}");
        assert_eq!(line["span"]["xrayTraceId"], context.xray_trace_id.unwrap().as_str(), "{text}");
    }

    /// The top-level keys of a JSON object, repeats included (serde_json keeps only the last).
    fn json_keys(line: &str) -> Vec<String> {
        struct Keys(Vec<String>);
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
                while let Some((key, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                    self.0.push(key);
                }
                Ok(self.0)
            }
        }
        use serde::Deserializer;
        serde_json::Deserializer::from_str(line).deserialize_map(Keys(Vec::new())).unwrap()
    }

    #[cfg(feature = "lambda-s3-events")]
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
