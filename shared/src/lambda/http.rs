//! API Gateway requests (HTTP API v2 or REST v1 events) to a handler.
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

use crate::api::{Response, Route, error_response};
use crate::auth::Authenticator;
use crate::error::RegistryError;

use super::Error;

/// Set by the guard on a request whose body could not be decoded; removed from client requests.
const INVALID_BODY_HEADER: &str = "x-connector-registry-invalid-body";

/// Runs the handler until the Lambda runtime stops the process.
pub async fn run<F, Fut>(route: Route, auth: Authenticator, handler: F) -> Result<(), Error>
where
    F: Fn(lambda_http::Request) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let service = GuardedBody { inner: Adapter::from(handler_service(route, auth, handler)) };
    lambda_http::lambda_runtime::run(service).await
}

/// Feeds one event, as JSON, through the same service `run` gives the runtime, and returns the
/// response as the runtime would send it: for tests and the `events/` fixtures (it panics on an
/// event that is not one, so it is not built into the functions).
#[cfg(feature = "test-support")]
pub async fn invoke<F, Fut>(
    route: Route,
    auth: Authenticator,
    handler: F,
    event: serde_json::Value,
) -> serde_json::Value
where
    F: Fn(lambda_http::Request) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let mut service = GuardedBody { inner: Adapter::from(handler_service(route, auth, handler)) };
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
    route: Route,
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
        let admitted = auth.admit(route.roles(), &request);
        async move {
            match admitted {
                // The caller goes with the request to the handler (register names them in its event).
                Ok(caller) => request.extensions_mut().insert(caller),
                Err(refused) => return Ok(error_response(route, None, &refused)),
            };
            if request.headers().contains_key(INVALID_BODY_HEADER) {
                return Ok(error_response(route, None, &undecodable_body(route)));
            }
            Ok(handler(request).await)
        }
    })
}

fn undecodable_body(route: Route) -> RegistryError {
    let message = "The request body is marked base64 but is not valid base64".to_owned();
    match route {
        Route::List => RegistryError::ListInputInvalid(message),
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
