//! `POST /v2/connectors/status-transition`: promotion, rollback, retirement and deletion of a
//! version, in Obsrv's envelope (as its datasets' status transitions are).

use serde::Serialize;
use serde_json::{Map, Value};

use super::schema::strict_envelope;
use super::{Response, Route, body_bytes, error_response, success_response};
use crate::auth::Caller;
use crate::domain::{Status, StatusReason, Transition};
use crate::error::RegistryError;
use crate::registry::audit::ANONYMOUS;
use crate::registry::{Origin, Registrar, Transitioned};

/// A transition request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRequest {
    pub id: String,
    pub status: Transition,
    pub reason: Option<StatusReason>,
}

/// The handler. The caller access control admitted is in the request's extensions.
pub async fn handle(registrar: &Registrar, request: lambda_http::Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = body_bytes(body);
    // The original's body parser turns a missing body into `{}`.
    let document = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Object(Map::new()))
    } else {
        serde_json::from_slice::<Value>(&body)
    };
    let document = match document {
        Ok(document) => document,
        Err(e) => {
            let error = RegistryError::TransitionInputInvalid(format!("request body is not valid JSON: {e}"));
            return error_response(Route::StatusTransition, None, &error);
        }
    };
    let msgid = document.pointer("/params/msgid").and_then(Value::as_str).filter(|m| !m.is_empty());
    let request = match parse_transition_request(&document) {
        Ok(request) => request,
        Err(message) => {
            return error_response(Route::StatusTransition, msgid, &RegistryError::TransitionInputInvalid(message));
        }
    };
    let subject = parts.extensions.get::<Caller>().map_or(ANONYMOUS, |caller| caller.subject.as_str());
    let origin = Origin::new(subject, Route::StatusTransition.route_key());
    match registrar.transition(&request.id, request.status, request.reason.as_ref(), &origin).await {
        Ok(transitioned) => success_response(Route::StatusTransition, msgid, answer(&request, &transitioned)),
        Err(error) => error_response(Route::StatusTransition, msgid, &error),
    }
}

/// What the answer says: the row, the status it has now (`Deleted` once gone), what it had,
/// whether anything changed, what was retired, and the connector's Live version after it.
#[derive(Serialize)]
struct Answer<'a> {
    id: &'a str,
    connector_id: &'a str,
    version: &'a str,
    status: &'a str,
    previous_status: Status,
    changed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retired: Option<&'a str>,
    live_version: Option<&'a str>,
    message: String,
}

fn answer<'a>(request: &'a TransitionRequest, done: &'a Transitioned) -> Answer<'a> {
    let before = &done.before;
    let status = done.after.as_ref().map_or("Deleted", |after| after.status.as_str());
    let connector = before.connector_id.as_str();
    let message = match (&done.live, done.changed()) {
        (_, false) => format!("Connector {} is {status} already; nothing changed", before.id),
        (None, true) => format!("Connector {} is {status}; connector {connector} has no Live version now", before.id),
        (Some(live), true) => format!("Connector {} is {status}; the Live version of {connector} is {live}", before.id),
    };
    Answer {
        id: before.id.as_str(),
        connector_id: connector,
        version: before.version.as_str(),
        status,
        previous_status: before.status,
        changed: done.changed(),
        reason: request.reason.as_ref().filter(|_| done.changed()).map(StatusReason::as_str),
        retired: done.retired.as_ref().map(|id| id.as_str()),
        live_version: done.live.as_deref(),
        message,
    }
}

/// Checks a transition request as Ajv would check its JSON schema (Obsrv's dataset
/// status-transition schema, for connectors): the envelope, then `request.id` (a non-empty
/// string), `request.status` (`Live`, `Retire` or `Delete`) and an optional `request.reason`.
pub fn parse_transition_request(document: &Value) -> Result<TransitionRequest, String> {
    let (request, request_value) = strict_envelope(document, Route::StatusTransition.api_id())?;
    let fields = request.object(request_value, &["id", "status"], &["id", "status", "reason"])?;
    let row_id = request.property("id");
    let row_id_text = row_id.string(&fields["id"])?;
    if row_id_text.is_empty() {
        return Err(row_id.fail("minLength", "must NOT have fewer than 1 characters"));
    }
    let status = request.property("status");
    let transition = status
        .string(&fields["status"])?
        .parse::<Transition>()
        .map_err(|_| status.fail("enum", "must be equal to one of the allowed values"))?;
    let reason = match fields.get("reason") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let reason = request.property("reason");
            let text = reason.string(value)?;
            StatusReason::parse(text).map_err(|invalid| reason.fail("format", &invalid.0))?
        }
    };
    Ok(TransitionRequest { id: row_id_text.to_owned(), status: transition, reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(request: Value) -> Value {
        json!({"id": "api.connectors.status-transition", "ver": "v2", "ts": "2026-12-05T00:00:00Z",
               "params": {"msgid": "m1"}, "request": request})
    }

    #[test]
    fn a_valid_request_is_parsed() {
        let parsed =
            parse_transition_request(&envelope(json!({"id": "kafka-1.0.0", "status": "Retire", "reason": " bad "})));
        assert_eq!(
            parsed,
            Ok(TransitionRequest {
                id: "kafka-1.0.0".into(),
                status: Transition::Retire,
                reason: StatusReason::parse("bad").unwrap()
            })
        );
    }

    #[test]
    fn invalid_requests_say_where_as_ajv_does() {
        let cases = [
            (json!({"status": "Live"}), "#properties/request/required must have required property 'id'"),
            (
                json!({"id": "x", "status": "Draft"}),
                "#properties/request/properties/status/enum must be equal to one of the allowed values",
            ),
            (
                json!({"id": "", "status": "Live"}),
                "#properties/request/properties/id/minLength must NOT have fewer than 1 characters",
            ),
            (json!({"id": 1, "status": "Live"}), "#properties/request/properties/id/type must be string"),
            (
                json!({"id": "x", "status": "Live", "extra": 1}),
                "#properties/request/additionalProperties must NOT have additional properties",
            ),
            (
                json!({"id": "x", "status": "Live", "reason": 5}),
                "#properties/request/properties/reason/type must be string",
            ),
        ];
        for (request, message) in cases {
            assert_eq!(parse_transition_request(&envelope(request.clone())), Err(message.to_owned()), "{request}");
        }
        let mut wrong_id = envelope(json!({"id": "x", "status": "Live"}));
        wrong_id["id"] = json!("api.connectors.list");
        assert_eq!(
            parse_transition_request(&wrong_id),
            Err("#properties/id/enum must be equal to one of the allowed values".into())
        );
    }
}
