//! API Gateway's REQUEST authorizer of `AuthMode=token` (payload 2.0, simple responses): the
//! token of each request is verified as the local server verifies it, and the verdict (the roles,
//! or why the token was refused) is passed on to the functions, which apply the role policy.

use std::sync::Arc;

use aws_lambda_events::event::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use lambda_http::LambdaEvent;
use lambda_http::lambda_runtime::{run as run_runtime, service_fn};

use super::Error;
use crate::auth::{INVALID_TOKEN, JwtVerifier, refusal_verdict, verdict};

/// The answer to one authorizer event. A refused token is let through with the refusal as its
/// verdict, so that the function answers it with the Obsrv 401 the original gives (the console
/// takes it for an expired session), not API Gateway's own 403.
pub fn answer(
    verifier: &JwtVerifier,
    event: &ApiGatewayV2CustomAuthorizerV2Request,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse {
    let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    response.is_authorized = true;
    response.context = verdict(verifier, &event.headers);
    response
}

/// `answer` for an event as JSON. An event whose headers cannot be read as HTTP headers is no
/// request API Gateway sends; it is refused like an invalid token rather than failing.
pub fn answer_json(verifier: &JwtVerifier, event: serde_json::Value) -> ApiGatewayV2CustomAuthorizerSimpleResponse {
    match serde_json::from_value::<ApiGatewayV2CustomAuthorizerV2Request>(event) {
        Ok(event) => answer(verifier, &event),
        Err(error) => {
            tracing::warn!(%error, "an authorizer event that is not one");
            let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
            response.is_authorized = true;
            response.context = refusal_verdict(INVALID_TOKEN);
            response
        }
    }
}

/// Runs the authorizer until the Lambda runtime stops the process.
pub async fn run(verifier: JwtVerifier) -> Result<(), Error> {
    let verifier = Arc::new(verifier);
    run_runtime(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let verifier = verifier.clone();
        async move { Ok::<_, Error>(answer_json(&verifier, event.payload)) }
    }))
    .await
}
