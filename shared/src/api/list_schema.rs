//! The list request's schema: the original's JSON schema, checked as Ajv 8 checks it, and this
//! registry's additions (paging with `limit` and an opaque `cursor`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::Route;
use super::schema::strict_envelope;
use crate::domain::{Category, Status};
use crate::registry::ListQuery;

/// The largest page a list request may ask for.
pub const MAX_PAGE_SIZE: u64 = 1000;

pub(super) fn encode_cursor(after: &str) -> String {
    URL_SAFE_NO_PAD.encode(after)
}

fn decode_cursor(cursor: &str) -> Option<String> {
    URL_SAFE_NO_PAD.decode(cursor).ok().and_then(|bytes| String::from_utf8(bytes).ok())
}

/// Checks a list request against the original's JSON schema, as Ajv 8 would with default options:
/// keywords in Ajv's order, the first error only, reported as `#<schema path> <message>`. Our
/// additions are the category pattern (instead of an enum) and `request.limit`/`request.cursor`.
pub fn parse_list_request(document: &Value) -> Result<ListQuery, String> {
    let (request, request_value) = strict_envelope(document, Route::List.api_id())?;
    let request_object = request.object(request_value, &[], &["filters", "limit", "cursor"])?;
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
