//! How a deployment learns a caller's roles: [`Authenticator`], and what each of its ways reads
//! from a request (a token, API Gateway's IAM caller, the claims its authorizer passes on). Apart
//! from the policy, which only weighs the roles found.

#[cfg(feature = "jwt")]
use std::sync::Arc;

#[cfg(feature = "jwt")]
use http::header::AUTHORIZATION;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use serde_json::Value;

#[cfg(feature = "jwt")]
use super::USER_TOKEN_HEADER;
use super::gateway::{RolesClaim, VERDICT_REFUSED, VERDICT_ROLES, VERDICT_SUBJECT};
#[cfg(feature = "jwt")]
use super::jwt::JwtVerifier;
use super::{Caller, INVALID_TOKEN, NO_TOKEN, authorize};
use crate::error::RegistryError;

/// A caller's roles and subject.
pub(super) struct Identity {
    pub(super) roles: Vec<String>,
    pub(super) caller: Caller,
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
pub(super) fn request_token(headers: &http::HeaderMap) -> Result<&str, RegistryError> {
    let invalid = || RegistryError::Unauthorized(INVALID_TOKEN.to_owned());
    // A header that is there is a token given, whatever it holds: one that is empty, is not
    // text, or is there twice is a token that fails verification, never an absent one (so that
    // another header cannot stand in for it).
    let only = |name: &str| -> Result<Option<&str>, RegistryError> {
        let mut values = headers.get_all(name).iter();
        let Some(value) = values.next() else { return Ok(None) };
        if values.next().is_some() {
            return Err(invalid());
        }
        value.to_str().map(|text| Some(text.trim())).map_err(|_| invalid())
    };
    if let Some(authorization) = only(AUTHORIZATION.as_str())? {
        return match authorization.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
                Ok(token.trim())
            }
            _ => Err(invalid()),
        };
    }
    let user_token = only(USER_TOKEN_HEADER)?.unwrap_or_default();
    let user_token = match user_token.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => user_token,
    };
    // As Obsrv's own middleware: an empty x-user-token is no token.
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

impl Identity {
    /// The roles in the claim named, and the subject in `sub`.
    pub(super) fn of_claims(claim: &RolesClaim, claims: &Value) -> Self {
        Self { roles: claim.roles_in(claims), caller: Caller::named(claims.get("sub").and_then(Value::as_str)) }
    }
}
