//! `POST /v2/connectors/list`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{Route, Response, body_bytes, error_response, success_response_sized};
use crate::domain::{Category, Status};
use crate::error::RegistryError;
use crate::registry::{Catalog, ListQuery, ListedRow};
use std::sync::Arc;

pub const MAX_PAGE_SIZE: u64 = 1000;

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

fn encode_cursor(after: &str) -> String {
    URL_SAFE_NO_PAD.encode(after)
}

fn decode_cursor(cursor: &str) -> Option<String> {
    URL_SAFE_NO_PAD.decode(cursor).ok().and_then(|bytes| String::from_utf8(bytes).ok())
}

/// Checks a list request against the original's JSON schema, as Ajv 8 would with default options:
/// keywords in Ajv's order, the first error only, reported as `#<schema path> <message>`. Our
/// additions are the category pattern (instead of an enum) and `request.limit`/`request.cursor`.
pub fn parse_list_request(document: &Value) -> Result<ListQuery, String> {
    let root = Schema::root();
    let top =
        root.object(document, &["id", "ver", "ts", "params", "request"], &["id", "ver", "ts", "params", "request"])?;

    let id = root.property("id");
    let id_value = id.string(&top["id"])?;
    if id_value != Route::List.api_id() {
        return Err(id.fail("enum", "must be equal to one of the allowed values"));
    }
    root.property("ver").string(&top["ver"])?;
    root.property("ts").string(&top["ts"])?;

    let params = root.property("params");
    let params_object = params.object(&top["params"], &["msgid"], &["msgid"])?;
    params.property("msgid").string(&params_object["msgid"])?;

    let request = root.property("request");
    let request_object = request.object(&top["request"], &[], &["filters", "limit", "cursor"])?;
    let mut query = ListQuery::default();

    if let Some(filters_value) = request_object.get("filters") {
        let filters = request.property("filters");
        let filters_object = filters.object(filters_value, &[], &["status", "category"])?;
        if let Some(value) = filters_object.get("status") {
            let status = filters.property("status");
            for item in status.non_empty_array(value)? {
                let items = status.child("items");
                let text = items.string(item)?;
                let parsed: Status =
                    text.parse().map_err(|_| items.fail("enum", "must be equal to one of the allowed values"))?;
                query.statuses.push(parsed);
            }
        }
        if let Some(value) = filters_object.get("category") {
            let category = filters.property("category");
            for item in category.non_empty_array(value)? {
                let items = category.child("items");
                let text = items.string(item)?;
                let parsed = Category::parse(text)
                    .map_err(|_| items.fail("pattern", &format!("must match pattern \"{}\"", Category::PATTERN)))?;
                query.categories.push(parsed);
            }
        }
    }
    if let Some(value) = request_object.get("limit") {
        let limit = request.property("limit");
        let number =
            value.as_f64().filter(|n| n.fract() == 0.0).ok_or_else(|| limit.fail("type", "must be integer"))?;
        if number < 1.0 {
            return Err(limit.fail("minimum", "must be >= 1"));
        }
        if number > MAX_PAGE_SIZE as f64 {
            return Err(limit.fail("maximum", &format!("must be <= {MAX_PAGE_SIZE}")));
        }
        query.limit = Some(number as usize);
    }
    if let Some(value) = request_object.get("cursor") {
        let cursor = request.property("cursor");
        let text = cursor.string(value)?;
        let after = decode_cursor(text)
            .ok_or_else(|| cursor.fail("format", "must be a cursor returned by a previous list response"))?;
        query.after = Some(after);
    }
    Ok(query)
}

/// A position in the schema, for Ajv-style messages: `#properties/request/properties/filters ...`.
pub(super) struct Schema {
    path: String,
}

impl Schema {
    pub(super) fn root() -> Self {
        Self { path: "#".to_owned() }
    }

    pub(super) fn child(&self, segment: &str) -> Self {
        let separator = if self.path == "#" { "" } else { "/" };
        Self { path: format!("{}{separator}{segment}", self.path) }
    }

    pub(super) fn property(&self, name: &str) -> Self {
        self.child("properties").child(name)
    }

    pub(super) fn fail(&self, keyword: &str, message: &str) -> String {
        let separator = if self.path == "#" { "" } else { "/" };
        format!("{}{separator}{keyword} {message}", self.path)
    }

    /// `type: object`, then `required` (in order), then `additionalProperties: false`.
    pub(super) fn object<'v>(
        &self,
        value: &'v Value,
        required: &[&str],
        allowed: &[&str],
    ) -> Result<&'v Map<String, Value>, String> {
        let object = value.as_object().ok_or_else(|| self.fail("type", "must be object"))?;
        if let Some(missing) = required.iter().find(|key| !object.contains_key(**key)) {
            return Err(self.fail("required", &format!("must have required property '{missing}'")));
        }
        if object.keys().any(|key| !allowed.contains(&key.as_str())) {
            return Err(self.fail("additionalProperties", "must NOT have additional properties"));
        }
        Ok(object)
    }

    pub(super) fn string<'v>(&self, value: &'v Value) -> Result<&'v str, String> {
        value.as_str().ok_or_else(|| self.fail("type", "must be string"))
    }

    /// `type: array`, then `minItems: 1`.
    pub(super) fn non_empty_array<'v>(&self, value: &'v Value) -> Result<&'v [Value], String> {
        let items = value.as_array().ok_or_else(|| self.fail("type", "must be array"))?;
        if items.is_empty() {
            return Err(self.fail("minItems", "must NOT have fewer than 1 items"));
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(request: Value) -> Value {
        json!({
            "id": "api.connectors.list", "ver": "v2", "ts": "2024-04-10T16:10:50+05:30",
            "params": {"msgid": "4a7f14c3-d61e-4d4f-be78-181834eeff6d"}, "request": request
        })
    }

    fn error_of(document: Value) -> String {
        parse_list_request(&document).unwrap_err()
    }

    #[test]
    fn the_messages_of_the_original() {
        let f = "#properties/request/properties/filters";
        let cases = vec![
            (json!({}), "#required must have required property 'id'".to_owned()),
            (
                {
                    let mut b = body(json!({}));
                    b.as_object_mut().unwrap().remove("request");
                    b
                },
                "#required must have required property 'request'".to_owned(),
            ),
            (
                body(json!({"filters": {"category": []}})),
                format!("{f}/properties/category/minItems must NOT have fewer than 1 items"),
            ),
            (
                body(json!({"filters": {"status": []}})),
                format!("{f}/properties/status/minItems must NOT have fewer than 1 items"),
            ),
            (
                body(json!({"filters": {"status": ["Foo"]}})),
                format!("{f}/properties/status/items/enum must be equal to one of the allowed values"),
            ),
            (body(json!({"filters": {"status": "Live"}})), format!("{f}/properties/status/type must be array")),
            (
                body(json!({"filters": {"type": ["source"]}})),
                format!("{f}/additionalProperties must NOT have additional properties"),
            ),
            (
                body(json!({"sort": 10})),
                "#properties/request/additionalProperties must NOT have additional properties".to_owned(),
            ),
            (
                {
                    let mut b = body(json!({}));
                    b["params"] = json!({});
                    b
                },
                "#properties/params/required must have required property 'msgid'".to_owned(),
            ),
            (
                {
                    let mut b = body(json!({}));
                    b["params"]["status"] = json!("x");
                    b
                },
                "#properties/params/additionalProperties must NOT have additional properties".to_owned(),
            ),
            (
                {
                    let mut b = body(json!({}));
                    b["id"] = json!("api.connectors.read");
                    b
                },
                "#properties/id/enum must be equal to one of the allowed values".to_owned(),
            ),
            (
                {
                    let mut b = body(json!({}));
                    b["ver"] = json!(2);
                    b
                },
                "#properties/ver/type must be string".to_owned(),
            ),
            (
                {
                    let mut b = body(json!({}));
                    b["extra"] = json!(1);
                    b
                },
                "#additionalProperties must NOT have additional properties".to_owned(),
            ),
            (
                {
                    let mut b = body(json!({}));
                    b.as_object_mut().unwrap().remove("request");
                    b["extra"] = json!(1);
                    b
                },
                "#required must have required property 'request'".to_owned(),
            ),
            (json!([]), "#type must be object".to_owned()),
        ];
        for (document, expected) in cases {
            assert_eq!(error_of(document.clone()), expected, "{document}");
        }
    }

    #[test]
    fn our_additions_speak_the_same_way() {
        let f = "#properties/request/properties/filters";
        assert_eq!(
            error_of(body(json!({"filters": {"category": ["not valid"]}}))),
            format!("{f}/properties/category/items/pattern must match pattern \"^[A-Za-z][A-Za-z0-9_-]{{0,63}}$\"")
        );
        assert_eq!(error_of(body(json!({"limit": 0}))), "#properties/request/properties/limit/minimum must be >= 1");
        assert_eq!(
            error_of(body(json!({"limit": 1001}))),
            "#properties/request/properties/limit/maximum must be <= 1000"
        );
        assert_eq!(error_of(body(json!({"limit": 1.5}))), "#properties/request/properties/limit/type must be integer");
        assert_eq!(error_of(body(json!({"cursor": 5}))), "#properties/request/properties/cursor/type must be string");
        assert!(error_of(body(json!({"cursor": "%%%"}))).starts_with("#properties/request/properties/cursor/format "));
    }

    #[test]
    fn filters_and_paging_become_a_query() {
        let query = parse_list_request(&body(json!({
            "filters": {"status": ["Live", "Retired", "Live"], "category": ["batch", "Database"]},
            "limit": 10, "cursor": encode_cursor("kafka-connector-1.0.0")
        })))
        .unwrap();
        assert_eq!(query.statuses, vec![Status::Live, Status::Retired, Status::Live]);
        assert_eq!(query.categories.iter().map(|c| c.as_str()).collect::<Vec<_>>(), ["batch", "Database"]);
        assert_eq!(query.limit, Some(10));
        assert_eq!(query.after.as_deref(), Some("kafka-connector-1.0.0"));
        assert_eq!(parse_list_request(&body(json!({}))).unwrap(), ListQuery::default());
    }
}
