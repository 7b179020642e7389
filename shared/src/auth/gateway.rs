//! What API Gateway hands on about a caller: the roles claim (where a token keeps its roles, and
//! the string notation an HTTP API writes claims in), and the verdict this workspace's Lambda
//! authorizer passes in the request context. Apart because it is a format to parse, not policy.

use serde_json::Value;

#[cfg(feature = "jwt")]
use super::INVALID_TOKEN;
#[cfg(feature = "jwt")]
use super::authenticator::request_token;
#[cfg(feature = "jwt")]
use super::jwt::JwtVerifier;
#[cfg(feature = "jwt")]
use crate::error::RegistryError;

/// The context keys of the Lambda authorizer's verdict: the token's roles (JSON text), or the
/// message of its refusal.
pub(super) const VERDICT_ROLES: &str = "roles";
/// The token's `sub`, beside its roles.
pub(super) const VERDICT_SUBJECT: &str = "subject";
pub(super) const VERDICT_REFUSED: &str = "refused";

/// The verdict the Lambda REQUEST authorizer passes on for a request's headers (its `context`):
/// the roles found in the configured claim and the subject of a verified token, or the message
/// of its refusal.
#[cfg(feature = "jwt")]
pub fn verdict(verifier: &JwtVerifier, headers: &http::HeaderMap) -> Value {
    match request_token(headers).and_then(|token| verifier.identify(token)) {
        Ok(identity) => serde_json::json!({
            VERDICT_ROLES: serde_json::to_string(&identity.roles).unwrap_or_default(),
            VERDICT_SUBJECT: identity.caller.subject,
        }),
        Err(RegistryError::Unauthorized(message)) => refusal_verdict(&message),
        Err(_) => refusal_verdict(INVALID_TOKEN),
    }
}

/// The verdict of a refused token.
pub fn refusal_verdict(message: &str) -> Value {
    serde_json::json!({ VERDICT_REFUSED: message })
}

/// Where a token carries its roles: `roles` (Obsrv's and the console's tokens, the default),
/// `realm_access.roles` or `resource_access.<client>.roles` (Keycloak).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolesClaim(Vec<String>);

impl Default for RolesClaim {
    fn default() -> Self {
        Self(vec!["roles".to_owned()])
    }
}

impl std::str::FromStr for RolesClaim {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let path: Vec<&str> = match raw {
            "roles" => vec!["roles"],
            "realm_access.roles" => vec!["realm_access", "roles"],
            // A client id may itself hold dots.
            _ => match raw.strip_prefix("resource_access.").and_then(|rest| rest.strip_suffix(".roles")) {
                Some(client) if !client.is_empty() => vec!["resource_access", client, "roles"],
                _ => {
                    return Err(format!(
                        "the roles claim must be roles, realm_access.roles or resource_access.<client>.roles, not {}",
                        crate::quoting::quote(raw)
                    ));
                }
            },
        };
        Ok(Self(path.into_iter().map(str::to_owned).collect()))
    }
}

impl std::fmt::Display for RolesClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

impl RolesClaim {
    /// The roles in a token's claims; none when the claim is missing or not a list of strings.
    /// A claim passed on as a string (API Gateway's way) is read as the value it writes.
    pub fn roles_in(&self, claims: &Value) -> Vec<String> {
        let mut value = std::borrow::Cow::Borrowed(claims);
        for step in &self.0 {
            let next = match value.as_ref() {
                Value::Object(fields) => fields.get(step).cloned(),
                Value::String(raw) => match loose_value(raw) {
                    Value::Object(mut fields) => fields.remove(step),
                    _ => None,
                },
                _ => None,
            };
            let Some(next) = next else { return Vec::new() };
            value = std::borrow::Cow::Owned(next);
        }
        match value.as_ref() {
            Value::Array(items) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            Value::String(raw) => parse_roles_claim(raw),
            _ => Vec::new(),
        }
    }
}

/// A claim value as API Gateway's HTTP API writes it into a string: JSON, or Go's notation
/// (`[a b]`, `map[k:v]`); anything else is the string itself.
fn loose_value(raw: &str) -> Value {
    if let Ok(value) = serde_json::from_str(raw) {
        return value;
    }
    match loose::value(raw.trim()) {
        Some((value, rest)) if rest.trim().is_empty() => value,
        _ => Value::String(raw.to_owned()),
    }
}

/// Go's `fmt` notation of nested values, loosely: `map[` or `{` objects of `key:value`, `[`
/// arrays, items apart by spaces or commas, strings bare or JSON-quoted. Depth is bounded.
mod loose {
    use serde_json::{Map, Value};

    const MAX_DEPTH: usize = 16;

    pub(super) fn value(s: &str) -> Option<(Value, &str)> {
        nested(s, 0)
    }

    fn nested(s: &str, depth: usize) -> Option<(Value, &str)> {
        if depth > MAX_DEPTH {
            return None;
        }
        if let Some(rest) = s.strip_prefix("map[") {
            return object(rest, ']', depth);
        }
        if let Some(rest) = s.strip_prefix('{') {
            return object(rest, '}', depth);
        }
        if let Some(mut rest) = s.strip_prefix('[') {
            let mut items = Vec::new();
            loop {
                rest = separators(rest);
                if let Some(after) = rest.strip_prefix(']') {
                    return Some((Value::Array(items), after));
                }
                let (item, after) = nested(rest, depth + 1)?;
                items.push(item);
                rest = after;
            }
        }
        scalar(s, false)
    }

    fn object(mut rest: &str, close: char, depth: usize) -> Option<(Value, &str)> {
        let mut fields = Map::new();
        loop {
            rest = separators(rest);
            if let Some(after) = rest.strip_prefix(close) {
                return Some((Value::Object(fields), after));
            }
            let (key, after) = match scalar(rest, true)? {
                (Value::String(key), after) if after.starts_with(':') => (key, after),
                // A bare key runs to the colon.
                _ => {
                    let colon = rest.find(':')?;
                    (rest[..colon].trim().to_owned(), &rest[colon..])
                }
            };
            let (value, after) = nested(after[1..].trim_start(), depth + 1)?;
            fields.insert(key, value);
            rest = after;
        }
    }

    /// A string; a bare key ends at its colon, a bare value may hold colons (`urn:role`).
    fn scalar(s: &str, key: bool) -> Option<(Value, &str)> {
        if s.starts_with('"') {
            // A JSON string: its end is the first unescaped quote.
            let mut escaped = false;
            for (i, c) in s.char_indices().skip(1) {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => return Some((serde_json::from_str(&s[..=i]).ok()?, &s[i + 1..])),
                    _ => escaped = false,
                }
            }
            return None;
        }
        let end =
            s.find(|c: char| c.is_whitespace() || matches!(c, ',' | ']' | '}') || (key && c == ':')).unwrap_or(s.len());
        (end > 0).then(|| (Value::String(s[..end].to_owned()), &s[end..]))
    }

    fn separators(s: &str) -> &str {
        s.trim_start_matches(|c: char| c.is_whitespace() || c == ',')
    }
}

pub(crate) fn parse_roles_claim(raw: &str) -> Vec<String> {
    if let Ok(roles) = serde_json::from_str::<Vec<String>>(raw) {
        return roles;
    }
    raw.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|role| role.trim_matches('"'))
        .filter(|role| !role.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_claims_in_every_shape_api_gateway_passes_them() {
        assert_eq!(parse_roles_claim("[admin dataset_manager]"), ["admin", "dataset_manager"]);
        assert_eq!(parse_roles_claim(r#"["viewer","admin"]"#), ["viewer", "admin"]);
        assert_eq!(parse_roles_claim("viewer"), ["viewer"]);
        assert_eq!(parse_roles_claim("[]"), Vec::<String>::new());
        assert_eq!(parse_roles_claim("admin, viewer"), ["admin", "viewer"]);
    }

    fn claim(raw: &str) -> RolesClaim {
        raw.parse().unwrap()
    }

    #[test]
    fn roles_claims_are_the_three_places_obsrv_and_keycloak_put_roles() {
        assert_eq!(RolesClaim::default(), claim("roles"));
        assert_eq!(claim("resource_access.obsrv.console.roles").to_string(), "resource_access.obsrv.console.roles");
        for bad in ["", "groups", "realm_access", "resource_access..roles", "resource_access.roles"] {
            assert!(bad.parse::<RolesClaim>().is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_are_found_in_a_token_s_json_claims() {
        let token = serde_json::json!({
            "roles": ["viewer"],
            "realm_access": {"roles": ["offline_access", "dataset_manager"]},
            "resource_access": {"account": {"roles": ["manage-account"]}, "obsrv.console": {"roles": ["admin"]}},
        });
        assert_eq!(claim("roles").roles_in(&token), ["viewer"]);
        assert_eq!(claim("realm_access.roles").roles_in(&token), ["offline_access", "dataset_manager"]);
        assert_eq!(claim("resource_access.obsrv.console.roles").roles_in(&token), ["admin"]);
        assert!(claim("resource_access.nobody.roles").roles_in(&token).is_empty());
        assert!(claim("roles").roles_in(&serde_json::json!({"roles": {"admin": true}})).is_empty());
        assert!(claim("roles").roles_in(&serde_json::json!({"roles": [1, null]})).is_empty());
    }

    /// An HTTP API's JWT authorizer hands every claim on as a string: arrays as `[a b]`, objects
    /// in Go's notation or as JSON.
    #[test]
    fn roles_are_found_in_claims_as_an_http_api_passes_them() {
        let passed = |claims: &[(&str, &str)]| {
            Value::Object(claims.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect())
        };
        let go = passed(&[
            ("roles", "[viewer]"),
            ("realm_access", "map[roles:[offline_access dataset_manager uma_authorization]]"),
            ("resource_access", "map[account:map[roles:[manage-account view-profile]] obsrv:map[roles:[admin]]]"),
        ]);
        assert_eq!(claim("roles").roles_in(&go), ["viewer"]);
        assert_eq!(
            claim("realm_access.roles").roles_in(&go),
            ["offline_access", "dataset_manager", "uma_authorization"]
        );
        assert_eq!(claim("resource_access.obsrv.roles").roles_in(&go), ["admin"]);
        assert_eq!(claim("resource_access.account.roles").roles_in(&go), ["manage-account", "view-profile"]);
        let json = passed(&[
            ("realm_access", r#"{"roles":["dataset_manager","urn:obsrv:viewer"]}"#),
            ("resource_access", r#"{"obsrv":{"roles":["admin"]}}"#),
        ]);
        assert_eq!(claim("realm_access.roles").roles_in(&json), ["dataset_manager", "urn:obsrv:viewer"]);
        assert_eq!(claim("resource_access.obsrv.roles").roles_in(&json), ["admin"]);
        let loose = passed(&[("realm_access", "{roles:[dataset_manager, \"urn:obsrv:viewer\"]}")]);
        assert_eq!(claim("realm_access.roles").roles_in(&loose), ["dataset_manager", "urn:obsrv:viewer"]);
        for broken in ["map[roles:[admin", "map[", "{roles}", "[[[[[[[[[[[[[[[[[[[[admin]]]]]]]]]]]]]]]]]]]]"] {
            assert!(claim("realm_access.roles").roles_in(&passed(&[("realm_access", broken)])).is_empty(), "{broken}");
        }
    }
}
