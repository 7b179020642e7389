//! `POST /v2/connectors/list`.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::list_schema::{encode_cursor, parse_list_request};
use super::{Response, Route, body_bytes, error_response, success_response_sized};
use crate::error::RegistryError;
use crate::registry::{Catalog, ListedRow};
use std::sync::Arc;

/// A synchronous Lambda response carries at most 6 MB (6,291,456 bytes), counted as the runtime
/// sends it: the body as a JSON string (escaped), or in base64 when binary, with the headers. The
/// list function keeps its answers this much below that.
pub const LAMBDA_RESPONSE_BYTES: usize = 6 * 1024 * 1024 - 16 * 1024;

/// `POST /v2/connectors/list` with no bound on the answer (the local server).
pub async fn handle(catalog: &Catalog, request: lambda_http::Request) -> Response {
    handle_within(catalog, request, None).await
}

/// `POST /v2/connectors/list`, answering within `max_answer_bytes` as a Lambda response counts
/// them: an answer over it is sent gzip-compressed when the client accepts gzip, and when that is
/// not enough (or not accepted) as the first rows that fit, with a `cursor` to the rest.
pub async fn handle_within(
    catalog: &Catalog,
    request: lambda_http::Request,
    max_answer_bytes: Option<usize>,
) -> Response {
    let accepts_gzip =
        request.headers().get_all(http::header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|v| {
            v.split(',').any(|coding| coding.split(';').next().is_some_and(|c| c.trim().eq_ignore_ascii_case("gzip")))
        });
    let body = body_bytes(request.into_body());
    // The original's body parser turns a missing body into `{}`.
    let document: Result<Value, _> = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Object(Map::new()))
    } else {
        serde_json::from_slice(&body)
    };
    let document = match document {
        Ok(document) => document,
        Err(e) => {
            let error = RegistryError::ListInputInvalid(format!("request body is not valid JSON: {e}"));
            return error_response(Route::List, None, &error);
        }
    };
    let msgid = document.pointer("/params/msgid").and_then(Value::as_str).filter(|m| !m.is_empty());
    let query = match parse_list_request(&document) {
        Ok(query) => query,
        Err(message) => return error_response(Route::List, msgid, &RegistryError::ListInputInvalid(message)),
    };
    match catalog.list(&query).await {
        Ok(page) => {
            let answer = |rows: &[Arc<ListedRow>], cursor: Option<&str>| {
                let result = ListResult {
                    data: rows.iter().map(|row| &*row.view).collect(),
                    count: rows.len(),
                    cursor: cursor.map(encode_cursor),
                };
                let bytes = rows.iter().map(|row| row.view.get().len() + 1).sum();
                success_response_sized(Route::List, msgid, result, bytes)
            };
            let Some(max) = max_answer_bytes else { return answer(&page.rows, page.next_after.as_deref()) };
            let mut take = page.rows.len();
            loop {
                let cursor = if take < page.rows.len() {
                    Some(page.rows[take - 1].id.as_str())
                } else {
                    page.next_after.as_deref()
                };
                let mut response = answer(&page.rows[..take], cursor);
                let mut size = sent_size(response.body());
                if size > max && accepts_gzip {
                    response = gzipped(response);
                    size = sent_size(response.body());
                }
                if size <= max || take <= 1 {
                    if take < page.rows.len() {
                        tracing::info!(
                            rows = take,
                            of = page.rows.len(),
                            "list answered in part: the whole answer is over a Lambda response's size"
                        );
                    }
                    return response;
                }
                // Shrink in proportion, a little more, so that few rounds are needed.
                let fits = (take as f64 * max as f64 / size as f64 * 0.95) as usize;
                take = fits.clamp(1, take - 1);
            }
        }
        Err(error) => error_response(Route::List, msgid, &error),
    }
}

/// What a body takes in a Lambda response: base64 when binary; as a JSON string otherwise, where
/// every quote and backslash gains a backslash (the answers hold no other characters to escape).
fn sent_size(body: &lambda_http::Body) -> usize {
    match body {
        lambda_http::Body::Text(text) => text.len() + memchr::memchr2_iter(b'"', b'\\', text.as_bytes()).count(),
        lambda_http::Body::Binary(bytes) => bytes.len().div_ceil(3) * 4,
        _ => 0,
    }
}

fn gzipped(response: Response) -> Response {
    use std::io::Write;
    let (mut parts, body) = response.into_parts();
    let lambda_http::Body::Text(text) = body else { return Response::from_parts(parts, body) };
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(text.len() / 4), flate2::Compression::fast());
    match encoder.write_all(text.as_bytes()).and_then(|()| encoder.finish()) {
        Ok(compressed) => {
            parts.headers.insert(http::header::CONTENT_ENCODING, http::HeaderValue::from_static("gzip"));
            parts.headers.append(http::header::VARY, http::HeaderValue::from_static("accept-encoding"));
            Response::from_parts(parts, lambda_http::Body::Binary(compressed))
        }
        // Compressing into memory cannot fail; were it to, the plain answer still stands.
        Err(_) => Response::from_parts(parts, lambda_http::Body::Text(text)),
    }
}

#[derive(Serialize)]
struct ListResult<'a> {
    data: Vec<&'a RawValue>,
    count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}
