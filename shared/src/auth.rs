//! Who may call what. A registered connector is code the data platform will run, so register is
//! for `dataset_manager` and `admin` only; reading and listing for every Obsrv role. The roles come
//! from a verified JWT: verified here (the local server) or by API Gateway's JWT authorizer (the
//! deployed functions, which read the claims the authorizer passes on), from the claim a
//! [`RolesClaim`] names. The system route url-access is for the platform's own pods, not users.

#[cfg(feature = "jwt")]
use std::collections::HashMap;
#[cfg(feature = "jwt")]
use std::sync::Arc;

use serde_json::Value;

#[cfg(feature = "jwt")]
use http::header::AUTHORIZATION;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
#[cfg(feature = "jwt")]
use serde::Deserialize;


use crate::error::RegistryError;

/// Roles that may register connectors (and ask for upload URLs).
pub const WRITER_ROLES: &[&str] = &["dataset_manager", "admin"];
/// Roles that may read and list connectors.
pub const READER_ROLES: &[&str] = &["viewer", "dataset_creator", "dataset_manager", "admin"];

pub const NO_TOKEN: &str = "No token provided";
/// The header Obsrv's own access control reads the token from (no `Bearer` scheme needed).
pub const USER_TOKEN_HEADER: &str = "x-user-token";
pub const INVALID_TOKEN: &str = "Token verification failed or invalid token";
/// Clock skew allowed around a token's `exp` and `nbf`.
pub const TOKEN_LEEWAY_SECONDS: u64 = 30;

/// Admits a caller holding any of `allowed`; refuses the others with the original's 403.
pub fn authorize(allowed: &[&str], roles: &[String]) -> Result<(), RegistryError> {
    if roles.iter().any(|role| allowed.contains(&role.as_str())) {
        Ok(())
    } else {
        Err(RegistryError::Forbidden(format!(
            "Access denied. User does not have permission to perform this action. \
             The following roles have access to this action: {}.",
            allowed.join(", ")
        )))
    }
}

/// Who a request comes from, as access control identified them: a token's `sub`, the IAM caller's
/// ARN, or `anonymous` (access control off, or a token without a subject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub subject: String,
}

impl Caller {
    fn named(subject: Option<&str>) -> Self {
        let subject = subject.filter(|s| !s.trim().is_empty()).unwrap_or(crate::registry::audit::ANONYMOUS);
        Self { subject: subject.to_owned() }
    }
}

/// A caller's roles and subject.
struct Identity {
    roles: Vec<String>,
    caller: Caller,
}

/// How a deployment learns a caller's roles.
#[derive(Clone)]
pub enum Authenticator {
    /// No checks at all: for a registry on loopback or a throwaway stack.
    Open,
    /// Verifies the token itself (`Authorization: Bearer <jwt>`, else `x-user-token`).
    #[cfg(feature = "jwt")]
    Jwt(Arc<JwtVerifier>),
    /// Trusts the claims API Gateway's JWT authorizer passes on in the request context; the roles
    /// are in the claim named.
    GatewayClaims(RolesClaim),
    /// Trusts API Gateway's IAM authorization (a SigV4-signed caller the route's IAM policy let
    /// through): the system route, which has no user.
    GatewayIam,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Authenticator::Open => "open (no access control)",
            #[cfg(feature = "jwt")]
            Authenticator::Jwt(_) => "JWT verified in-process",
            Authenticator::GatewayClaims(_) => "claims from API Gateway's JWT authorizer",
            Authenticator::GatewayIam => "IAM-authorized callers of API Gateway",
        })
    }
}

impl Authenticator {
    /// Lets the request through for a caller holding one of `allowed` (a route's roles, or an
    /// action's), naming its caller, or says why not (401 or 403). Only headers and the request
    /// context are looked at, so it can run before the body is read.
    pub fn admit<B>(&self, allowed: &[&str], request: &http::Request<B>) -> Result<Caller, RegistryError> {
        let identity = match self {
            Authenticator::Open => return Ok(Caller::named(None)),
            #[cfg(feature = "jwt")]
            Authenticator::Jwt(verifier) => verifier.identify(request_token(request.headers())?)?,
            Authenticator::GatewayClaims(claim) => gateway_identity(claim, request)?,
            Authenticator::GatewayIam => return iam_caller(request),
        };
        authorize(allowed, &identity.roles)?;
        Ok(identity.caller)
    }
}

/// The token of `Authorization: Bearer <jwt>`, else of `x-user-token: <jwt>` (as Obsrv's console
/// sends it; a `Bearer ` there is tolerated). `Authorization` wins when both are present.
#[cfg(feature = "jwt")]
fn request_token(headers: &http::HeaderMap) -> Result<&str, RegistryError> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().trim();
    let authorization = header(AUTHORIZATION.as_str());
    if !authorization.is_empty() {
        return match authorization.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
                Ok(token.trim())
            }
            _ => Err(RegistryError::Unauthorized(INVALID_TOKEN.to_owned())),
        };
    }
    let user_token = header(USER_TOKEN_HEADER);
    let user_token = match user_token.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => user_token,
    };
    if user_token.is_empty() { Err(RegistryError::Unauthorized(NO_TOKEN.to_owned())) } else { Ok(user_token) }
}

/// API Gateway's IAM authorization ran (it puts the caller in the context); without it, nobody
/// signed the request.
fn iam_caller<B>(request: &http::Request<B>) -> Result<Caller, RegistryError> {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => match context.authorizer.as_ref().and_then(|a| a.iam.as_ref()) {
            Some(iam) => Ok(Caller::named(iam.user_arn.as_deref().or(iam.caller_id.as_deref()))),
            None => Err(RegistryError::Unauthorized(NO_TOKEN.to_owned())),
        },
        _ => Err(RegistryError::Unauthorized(NO_TOKEN.to_owned())),
    }
}

/// The roles claim as API Gateway passes it on: for an HTTP API (payload 2.0), every claim is a
/// string, an array written as `[a b]` and an object as `map[roles:[a b]]` or as JSON; a REST API's
/// authorizer passes JSON values.
fn gateway_identity<B>(claim: &RolesClaim, request: &http::Request<B>) -> Result<Identity, RegistryError> {
    let authorizer = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.authorizer.as_ref(),
        Some(RequestContext::ApiGatewayV1(context)) => Some(&context.authorizer),
        _ => None,
    };
    let Some(authorizer) = authorizer else {
        return Err(RegistryError::Unauthorized(NO_TOKEN.to_owned()));
    };
    if let Some(jwt) = &authorizer.jwt {
        let claims = jwt.claims.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        return Ok(Identity::of_claims(claim, &Value::Object(claims)));
    }
    // A REST API passes its authorizer's context through as fields: `claims` for JWT/Cognito.
    // This workspace's Lambda authorizer passes its verdict: the roles, or why it refused.
    match (authorizer.fields.get("claims"), authorizer.fields.get(VERDICT_ROLES)) {
        (Some(claims @ Value::Object(_)), _) => Ok(Identity::of_claims(claim, claims)),
        (Some(_), _) => Err(RegistryError::Unauthorized(NO_TOKEN.to_owned())),
        (None, Some(roles)) => Ok(Identity {
            roles: RolesClaim::default().roles_in(&serde_json::json!({ "roles": roles })),
            caller: Caller::named(authorizer.fields.get(VERDICT_SUBJECT).and_then(Value::as_str)),
        }),
        (None, None) => match authorizer.fields.get(VERDICT_REFUSED).and_then(Value::as_str) {
            Some(NO_TOKEN) => Err(RegistryError::Unauthorized(NO_TOKEN.to_owned())),
            Some(_) => Err(RegistryError::Unauthorized(INVALID_TOKEN.to_owned())),
            None => Err(RegistryError::Unauthorized(NO_TOKEN.to_owned())),
        },
    }
}

/// The context keys of the Lambda authorizer's verdict: the token's roles (JSON text), or the
/// message of its refusal.
const VERDICT_ROLES: &str = "roles";
/// The token's `sub`, beside its roles.
const VERDICT_SUBJECT: &str = "subject";

impl Identity {
    /// The roles in the claim named, and the subject in `sub`.
    fn of_claims(claim: &RolesClaim, claims: &Value) -> Self {
        Self { roles: claim.roles_in(claims), caller: Caller::named(claims.get("sub").and_then(Value::as_str)) }
    }
}
const VERDICT_REFUSED: &str = "refused";

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

/// What a verified token must hold besides a valid signature and `exp`: the `iss` and the `aud`
/// when they are configured (the console's own tokens carry neither), and where its roles are.
#[cfg(feature = "jwt")]
#[derive(Debug, Clone, Default)]
pub struct TokenRules {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub roles_claim: RolesClaim,
}

/// Verifies RS256 tokens: signature, expiry and not-before, and issuer and audience when set.
#[cfg(feature = "jwt")]
pub struct JwtVerifier {
    /// Keys by `kid`; the `None` entry is the key for tokens without a `kid` (a single PEM key).
    keys: HashMap<Option<String>, jsonwebtoken::DecodingKey>,
    validation: jsonwebtoken::Validation,
    roles_claim: RolesClaim,
}

#[cfg(feature = "jwt")]
#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[cfg(feature = "jwt")]
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

#[cfg(feature = "jwt")]
impl JwtVerifier {
    /// One RSA public key, PEM-encoded.
    pub fn from_pem(pem: &[u8], rules: &TokenRules) -> anyhow::Result<Self> {
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(pem)?;
        Ok(Self::new(HashMap::from([(None, key)]), rules))
    }

    /// A JSON Web Key Set; its RSA keys are chosen by the token's `kid`.
    pub fn from_jwks(json: &[u8], rules: &TokenRules) -> anyhow::Result<Self> {
        let set: Jwks = serde_json::from_slice(json)?;
        let mut keys = HashMap::new();
        for key in set.keys.into_iter().filter(|k| k.kty == "RSA") {
            let (Some(n), Some(e)) = (key.n, key.e) else { continue };
            keys.insert(key.kid, jsonwebtoken::DecodingKey::from_rsa_components(&n, &e)?);
        }
        anyhow::ensure!(!keys.is_empty(), "the key set holds no RSA key");
        Ok(Self::new(keys, rules))
    }

    fn new(keys: HashMap<Option<String>, jsonwebtoken::DecodingKey>, rules: &TokenRules) -> Self {
        Self { keys, validation: validation(rules), roles_claim: rules.roles_claim.clone() }
    }

    /// The token's roles and subject, if it is valid.
    fn identify(&self, token: &str) -> Result<Identity, RegistryError> {
        let invalid = |why: &dyn std::fmt::Display| {
            tracing::info!(reason = %why, "token refused");
            RegistryError::Unauthorized(INVALID_TOKEN.to_owned())
        };
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(&e))?;
        let key = self
            .keys
            .get(&header.kid)
            .or_else(|| if self.keys.len() == 1 { self.keys.values().next() } else { None })
            .ok_or_else(|| invalid(&"no key for the token's kid"))?;
        let data = jsonwebtoken::decode::<Value>(token, key, &self.validation).map_err(|e| invalid(&e))?;
        Ok(Identity::of_claims(&self.roles_claim, &data.claims))
    }
}

#[cfg(feature = "jwt")]
fn validation(rules: &TokenRules) -> jsonwebtoken::Validation {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    let mut required = vec!["exp"];
    if let Some(issuer) = &rules.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    match &rules.audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        // Otherwise a token's `aud`, whatever it is, would be refused.
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    // A token is refused before its `nbf` as after its `exp`, with the same allowance for clock skew.
    validation.validate_nbf = true;
    validation.leeway = TOKEN_LEEWAY_SECONDS;
    validation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_is_for_writers_and_reading_for_every_role() {
        let roles = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(authorize(WRITER_ROLES, &roles(&["admin"])).is_ok());
        assert!(authorize(WRITER_ROLES, &roles(&["viewer", "dataset_manager"])).is_ok());
        assert!(authorize(READER_ROLES, &roles(&["viewer"])).is_ok());
        assert!(authorize(READER_ROLES, &roles(&["dataset_creator"])).is_ok());
        let refused = authorize(WRITER_ROLES, &roles(&["viewer", "dataset_creator"])).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "Access denied. User does not have permission to perform this action. \
             The following roles have access to this action: dataset_manager, admin."
        );
        assert!(authorize(READER_ROLES, &[]).is_err());
    }

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
