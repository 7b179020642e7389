//! `GET /v2/connectors/read/{connector_id}`.

use lambda_http::RequestExt;
use percent_encoding::percent_decode_str;

use super::{Response, Route, error_response, route_not_found, success_response_sized};
use crate::registry::{Catalog, ReadMode};

const READ_PATH: &str = "/connectors/read/";

pub async fn handle(catalog: &Catalog, request: lambda_http::Request) -> Response {
    let Some(id) = row_id_of(&request) else {
        return route_not_found();
    };
    let modes = query_values(&request, "mode");
    let mode = ReadMode::from_query(&modes.iter().map(String::as_str).collect::<Vec<_>>());
    match catalog.read_view(&id, mode).await {
        Ok(view) => success_response_sized(Route::Read, None, &*view, view.get().len()),
        Err(error) => error_response(Route::Read, None, &error),
    }
}

/// The row id: API Gateway's `connector_id` path parameter when it gives one, else the segment
/// after `/connectors/read/` (which also skips a REST API's stage prefix).
pub(super) fn row_id_of(request: &lambda_http::Request) -> Option<String> {
    if let Some(id) = request.path_parameters_ref().and_then(|p| p.first("connector_id")) {
        return (!id.is_empty()).then(|| id.to_owned());
    }
    let path = request.uri().path();
    let raw = &path[path.find(READ_PATH)? + READ_PATH.len()..];
    // Repeated slashes, as the router tolerates them.
    let raw = raw.trim_start_matches('/');
    let raw = raw.strip_suffix('/').unwrap_or(raw);
    if raw.is_empty() || raw.contains('/') {
        return None;
    }
    Some(percent_decode_str(raw).decode_utf8_lossy().into_owned())
}

/// Every value of a query parameter, from API Gateway's parsed map or else the URI itself.
fn query_values(request: &lambda_http::Request, name: &str) -> Vec<String> {
    if let Some(values) = request.query_string_parameters_ref().and_then(|q| q.all(name)) {
        return values.into_iter().map(str::to_owned).collect();
    }
    request
        .uri()
        .query()
        .map(|query| form_urlencoded_pairs(query).filter(|(key, _)| key == name).map(|(_, value)| value).collect())
        .unwrap_or_default()
}

fn form_urlencoded_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|pair| !pair.is_empty()).map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
        (decode(key), decode(value))
    })
}
