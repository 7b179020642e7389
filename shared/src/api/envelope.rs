//! The Obsrv v2 response envelope: `id`, `ver`, `ts`, `params`, `responseCode`, `result`, `error`,
//! in that order, with the three error styles of the original.

use chrono::Utc;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use lambda_http::Body;
use serde::Serialize;

use super::errors::failure;
use super::{Response, Route};
use crate::error::{RegistryError, error_chain};

#[derive(Serialize)]
struct Envelope<'a, R: Serialize> {
    id: &'a str,
    ver: &'static str,
    ts: String,
    params: Params<'a>,
    #[serde(rename = "responseCode")]
    response_code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<R>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody<'a>>,
}

#[derive(Serialize)]
struct Params<'a> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    msgid: Option<&'a str>,
    resmsgid: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<&'static str>,
}

#[derive(Serialize)]
struct EmptyObject {}

/// `moment().format()` in a UTC container: seconds precision, `+00:00`. Formatted once a second
/// per thread: a busy server answers many times a second.
fn timestamp() -> String {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let now = Utc::now();
    LAST.with_borrow_mut(|(second, text)| {
        if *second != now.timestamp() {
            *second = now.timestamp();
            *text = now.format("%Y-%m-%dT%H:%M:%S+00:00").to_string();
        }
        text.clone()
    })
}

/// A fresh version 4 UUID. Its bits come from a per-thread generator seeded at random rather than
/// from the system on every call: a message id must be unique, not secret.
fn resmsgid() -> String {
    let mut text = uuid::Uuid::encode_buffer();
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes())
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut text)
        .to_owned()
}

/// Room for the envelope around a result of known size, so that the answer is written once.
const ENVELOPE_BYTES: usize = 256;

fn json_response<R: Serialize>(status: StatusCode, envelope: &Envelope<'_, R>, result_bytes: usize) -> Response {
    let mut body = Vec::with_capacity(result_bytes + ENVELOPE_BYTES);
    // serde_json writes UTF-8 only, so the second check never fails.
    let body = match serde_json::to_writer(&mut body, envelope).map(|()| String::from_utf8(body)) {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "a response was not UTF-8");
            return plain_internal_error();
        }
        Err(e) => {
            tracing::error!(error = %e, "could not encode a response");
            return plain_internal_error();
        }
    };
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, http::HeaderValue::from_static("application/json; charset=utf-8"));
    nosniff(response)
}

/// Answers are what their Content-Type says: browsers must not sniff them into something else.
fn nosniff(mut response: Response) -> Response {
    response.headers_mut().insert(http::header::X_CONTENT_TYPE_OPTIONS, http::HeaderValue::from_static("nosniff"));
    response
}

fn plain_internal_error() -> Response {
    let mut response = Response::new(Body::Text(
        r#"{"id":"api","ver":"v2","params":{"status":"FAILED"},"responseCode":"INTERNAL_SERVER_ERROR","error":{"code":"INTERNAL_SERVER_ERROR","message":"Internal server error"}}"#.to_owned(),
    ));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(CONTENT_TYPE, http::HeaderValue::from_static("application/json; charset=utf-8"));
    nosniff(response)
}

/// A 200 with `result`. `msgid` is echoed only when the request carried one.
pub fn success_response<R: Serialize>(route: Route, msgid: Option<&str>, result: R) -> Response {
    success_response_sized(route, msgid, result, 0)
}

/// `success_response`, for a result of about `result_bytes` of JSON (rendered rows).
pub fn success_response_sized<R: Serialize>(
    route: Route,
    msgid: Option<&str>,
    result: R,
    result_bytes: usize,
) -> Response {
    crate::metrics::answered(route.route_key());
    json_response(
        StatusCode::OK,
        &Envelope {
            id: route.api_id(),
            ver: "v2",
            ts: timestamp(),
            params: Params { status: "SUCCESS", msgid, resmsgid: resmsgid() },
            response_code: "OK",
            result: Some(result),
            error: None,
        },
        result_bytes,
    )
}

/// The answer for a failed request, in the style of its API. Server faults are logged with their
/// whole chain; the client gets only the short message.
pub fn error_response(route: Route, msgid: Option<&str>, error: &RegistryError) -> Response {
    let failure = failure(route, error);
    crate::metrics::refused(route.route_key(), failure.code, failure.status.is_server_error());
    if failure.status.is_server_error() {
        tracing::error!(api = route.api_id(), status = failure.status.as_u16(), error = %error_chain(error), "request failed");
    } else {
        tracing::info!(api = route.api_id(), status = failure.status.as_u16(), code = failure.code, reason = %failure.message, "request refused");
    }
    // The original answers access refusals from its RBAC middleware, in the register style.
    let register_style =
        route.register_error_style() || matches!(error, RegistryError::Unauthorized(_) | RegistryError::Forbidden(_));
    json_response(
        failure.status,
        &Envelope {
            id: route.api_id(),
            ver: "v2",
            ts: timestamp(),
            params: Params { status: "FAILED", msgid, resmsgid: resmsgid() },
            response_code: failure.response_code,
            result: (!register_style).then_some(EmptyObject {}),
            error: Some(ErrorBody {
                code: failure.code,
                message: &failure.message,
                trace: register_style.then_some(""),
            }),
        },
        0,
    )
}

/// The catch-all 404 of the original: `id: "api"`, `result: ""`, an empty `resmsgid`.
pub fn route_not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &Envelope {
            id: "api",
            ver: "v2",
            ts: timestamp(),
            params: Params { status: "FAILED", msgid: None, resmsgid: String::new() },
            response_code: "NOT_FOUND",
            result: Some(""),
            error: Some(ErrorBody { code: "ROUTE_NOT_FOUND", message: "Route not found", trace: None }),
        },
        0,
    )
}
