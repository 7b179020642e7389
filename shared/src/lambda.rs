//! Running a handler as a Lambda function behind API Gateway (HTTP API v2 or REST v1 events).
//!
//! Two guards sit in front of `lambda_http`: a body flagged base64 that is not valid base64 would
//! make it panic, so such a body is removed and the request answered 400; and REST events carry
//! the stage in the path, which the handlers already tolerate.

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

/// JSON log lines for CloudWatch, one object per line, with the invocation's request id (the
/// runtime's span) on every line. `RUST_LOG` sets the filter (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .without_time()
        .init();
}

/// A required environment variable, with an error that names it.
pub fn required_env(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("the environment variable {name} must be set").into())
}

/// Access control of a deployed function: the roles in the claims of API Gateway's JWT
/// authorizer, unless `REGISTRY_AUTH=off` (for throwaway stacks) switches it off.
pub fn authenticator_from_env() -> Result<Authenticator, Error> {
    match std::env::var("REGISTRY_AUTH").as_deref() {
        Err(_) | Ok("gateway") => Ok(Authenticator::GatewayClaims),
        Ok("off") => {
            tracing::warn!("REGISTRY_AUTH=off: every caller may use this function");
            Ok(Authenticator::Open)
        }
        Ok(other) => Err(format!("REGISTRY_AUTH must be gateway or off, not {other:?}").into()),
    }
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
    std::future::poll_fn(|cx| service.poll_ready(cx)).await.expect("ready");
    let response = service.call(event).await.expect("handlers answer every request");
    serde_json::to_value(response).expect("a serialisable response")
}

/// The handler as a service of `lambda_http::Request`s: callers without the API's role are
/// refused, and a body the guard removed is a 400. Handlers never fail: every error is a response.
fn handler_service<F, Fut>(
    api: Api,
    auth: Authenticator,
    handler: F,
) -> impl Service<
    lambda_http::Request,
    Response = Response,
    Error = Error,
    Future = impl Future<Output = Result<Response, Error>> + Send + 'static,
> + Clone
where
    F: Fn(lambda_http::Request) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    service_fn(move |request: lambda_http::Request| {
        let handler = handler.clone();
        let admitted = auth.admit(api, &request);
        async move {
            if let Err(refused) = admitted {
                return Ok(error_response(api, None, &refused));
            }
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
) -> Result<Vec<crate::registry::UploadOutcome>, Error> {
    let mut outcomes = Vec::new();
    for record in event.records {
        let (Some(record_bucket), Some(raw_key)) = (record.s3.bucket.name, record.s3.object.key) else { continue };
        // Keys arrive URL-encoded, spaces as `+`.
        let key = percent_encoding::percent_decode_str(&raw_key.replace('+', " ")).decode_utf8_lossy().into_owned();
        if record_bucket != bucket || !key.starts_with(incoming_prefix) {
            tracing::warn!(bucket = record_bucket, key, "ignoring an event outside the incoming prefix");
            continue;
        }
        let outcome = crate::registry::register_upload(registrar, incoming, &key)
            .await
            .map_err(|e| -> Error { format!("registering {key} failed: {}", crate::error::error_chain(&e)).into() })?;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}
