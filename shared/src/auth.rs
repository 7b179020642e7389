//! Who may call what. A registered connector is code the data platform will run, so register is
//! for `dataset_manager` and `admin` only; reading and listing for every Obsrv role. The roles come
//! from a verified JWT: verified here (the local server) or by API Gateway's JWT authorizer (the
//! deployed functions, which read the claims the authorizer passes on).

#[cfg(feature = "jwt")]
use std::collections::HashMap;
#[cfg(feature = "jwt")]
use std::sync::Arc;

#[cfg(feature = "jwt")]
use http::header::AUTHORIZATION;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
#[cfg(feature = "jwt")]
use serde::Deserialize;

use crate::api::Api;
use crate::error::RegistryError;

/// Roles that may register connectors (and ask for upload URLs).
pub const WRITER_ROLES: &[&str] = &["dataset_manager", "admin"];
/// Roles that may read and list connectors.
pub const READER_ROLES: &[&str] = &["viewer", "dataset_creator", "dataset_manager", "admin"];

pub const NO_TOKEN: &str = "No token provided";
pub const INVALID_TOKEN: &str = "Token verification failed or invalid token";
/// Clock skew allowed around a token's `exp` and `nbf`.
pub const TOKEN_LEEWAY_SECONDS: u64 = 30;

/// The roles allowed to call an API.
pub fn allowed_roles(api: Api) -> &'static [&'static str] {
    match api {
        Api::ConnectorRegister => WRITER_ROLES,
        // Read URLs are for readers; the handler also requires WRITER_ROLES for upload URLs.
        Api::ConnectorsRead | Api::ConnectorsList | Api::FilesGenerateUrl => READER_ROLES,
    }
}

/// Admits a caller holding any of the API's roles; refuses the others with the original's 403.
pub fn authorize(api: Api, roles: &[String]) -> Result<(), RegistryError> {
    authorize_roles(allowed_roles(api), roles)
}

fn authorize_roles(allowed: &[&str], roles: &[String]) -> Result<(), RegistryError> {
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

/// How a deployment learns a caller's roles.
#[derive(Clone)]
pub enum Authenticator {
    /// No checks at all: for a registry on loopback or a throwaway stack.
    Open,
    /// Verifies `Authorization: Bearer <jwt>` itself.
    #[cfg(feature = "jwt")]
    Jwt(Arc<JwtVerifier>),
    /// Trusts the claims API Gateway's JWT authorizer passes on in the request context.
    GatewayClaims,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Authenticator::Open => "open (no access control)",
            #[cfg(feature = "jwt")]
            Authenticator::Jwt(_) => "JWT verified in-process",
            Authenticator::GatewayClaims => "claims from API Gateway's JWT authorizer",
        })
    }
}

impl Authenticator {
    /// Lets the request through to the API, or says why not (401 or 403). Only headers and the
    /// request context are looked at, so it can run before the body is read.
    pub fn admit<B>(&self, api: Api, request: &http::Request<B>) -> Result<(), RegistryError> {
        self.admit_roles(allowed_roles(api), request)
    }

    /// Like `admit`, for an action whose roles depend on more than the route.
    pub fn admit_roles<B>(&self, allowed: &[&str], request: &http::Request<B>) -> Result<(), RegistryError> {
        let roles = match self {
            Authenticator::Open => return Ok(()),
            #[cfg(feature = "jwt")]
            Authenticator::Jwt(verifier) => verifier.verify(bearer_token(request)?)?,
            Authenticator::GatewayClaims => gateway_roles(request)?,
        };
        authorize_roles(allowed, &roles)
    }
}

#[cfg(feature = "jwt")]
fn bearer_token<B>(request: &http::Request<B>) -> Result<&str, RegistryError> {
    let header = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default().trim();
    if header.is_empty() {
        return Err(RegistryError::Unauthorized(NO_TOKEN.to_owned()));
    }
    match header.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(RegistryError::Unauthorized(INVALID_TOKEN.to_owned())),
    }
}

/// The `roles` claim as API Gateway passes it on: for an HTTP API, claims are strings and an
/// array arrives as `[a b]`; a REST API's authorizer may pass a JSON array.
fn gateway_roles<B>(request: &http::Request<B>) -> Result<Vec<String>, RegistryError> {
    let authorizer = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.authorizer.as_ref(),
        Some(RequestContext::ApiGatewayV1(context)) => Some(&context.authorizer),
        _ => None,
    };
    let Some(authorizer) = authorizer else {
        return Err(RegistryError::Unauthorized(NO_TOKEN.to_owned()));
    };
    if let Some(jwt) = &authorizer.jwt {
        return Ok(jwt.claims.get("roles").map(|raw| parse_roles_claim(raw)).unwrap_or_default());
    }
    // A REST API passes its authorizer's context through as fields: `claims` for JWT/Cognito.
    match authorizer.fields.get("claims") {
        Some(serde_json::Value::Object(claims)) => Ok(match claims.get("roles") {
            Some(serde_json::Value::Array(items)) => {
                items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
            }
            Some(serde_json::Value::String(raw)) => parse_roles_claim(raw),
            _ => Vec::new(),
        }),
        _ => Err(RegistryError::Unauthorized(NO_TOKEN.to_owned())),
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

/// Verifies RS256 tokens: signature, issuer, audience, expiry and not-before.
#[cfg(feature = "jwt")]
pub struct JwtVerifier {
    /// Keys by `kid`; the `None` entry is the key for tokens without a `kid` (a single PEM key).
    keys: HashMap<Option<String>, jsonwebtoken::DecodingKey>,
    validation: jsonwebtoken::Validation,
}

#[cfg(feature = "jwt")]
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    roles: Vec<String>,
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
    pub fn from_pem(pem: &[u8], issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(pem)?;
        Ok(Self { keys: HashMap::from([(None, key)]), validation: validation(issuer, audience) })
    }

    /// A JSON Web Key Set; its RSA keys are chosen by the token's `kid`.
    pub fn from_jwks(json: &[u8], issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let set: Jwks = serde_json::from_slice(json)?;
        let mut keys = HashMap::new();
        for key in set.keys.into_iter().filter(|k| k.kty == "RSA") {
            let (Some(n), Some(e)) = (key.n, key.e) else { continue };
            keys.insert(key.kid, jsonwebtoken::DecodingKey::from_rsa_components(&n, &e)?);
        }
        anyhow::ensure!(!keys.is_empty(), "the key set holds no RSA key");
        Ok(Self { keys, validation: validation(issuer, audience) })
    }

    /// The token's roles, if it is valid.
    pub fn verify(&self, token: &str) -> Result<Vec<String>, RegistryError> {
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
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| invalid(&e))?;
        Ok(data.claims.roles)
    }
}

#[cfg(feature = "jwt")]
fn validation(issuer: &str, audience: &str) -> jsonwebtoken::Validation {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
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
        assert!(authorize(Api::ConnectorRegister, &roles(&["admin"])).is_ok());
        assert!(authorize(Api::ConnectorRegister, &roles(&["viewer", "dataset_manager"])).is_ok());
        assert!(authorize(Api::ConnectorsList, &roles(&["viewer"])).is_ok());
        assert!(authorize(Api::ConnectorsRead, &roles(&["dataset_creator"])).is_ok());
        let refused = authorize(Api::ConnectorRegister, &roles(&["viewer", "dataset_creator"])).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "Access denied. User does not have permission to perform this action. \
             The following roles have access to this action: dataset_manager, admin."
        );
        assert!(authorize(Api::ConnectorsRead, &[]).is_err());
    }

    #[test]
    fn roles_claims_in_every_shape_api_gateway_passes_them() {
        assert_eq!(parse_roles_claim("[admin dataset_manager]"), ["admin", "dataset_manager"]);
        assert_eq!(parse_roles_claim(r#"["viewer","admin"]"#), ["viewer", "admin"]);
        assert_eq!(parse_roles_claim("viewer"), ["viewer"]);
        assert_eq!(parse_roles_claim("[]"), Vec::<String>::new());
        assert_eq!(parse_roles_claim("admin, viewer"), ["admin", "viewer"]);
    }
}
