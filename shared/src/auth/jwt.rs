//! Verifying JWTs in-process (the local server, and the Lambda authorizer of AuthMode=token): the
//! rules a token must meet and the keys it is checked against. Apart, and built only with the `jwt`
//! feature, so that the deployed functions that trust API Gateway do not link a JWT library.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::authenticator::Identity;
use super::gateway::RolesClaim;
use super::{INVALID_TOKEN, TOKEN_LEEWAY_SECONDS};
use crate::error::RegistryError;

/// What a verified token must hold besides a valid signature and `exp`: the `iss` and the `aud`
/// when they are configured (the console's own tokens carry neither), and where its roles are.
#[derive(Debug, Clone, Default)]
pub struct TokenRules {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub roles_claim: RolesClaim,
}

/// Verifies RS256 tokens: signature, expiry and not-before, and issuer and audience when set.
pub struct JwtVerifier {
    /// Keys by `kid`; the `None` entry is the key for tokens without a `kid` (a single PEM key).
    keys: HashMap<Option<String>, jsonwebtoken::DecodingKey>,
    validation: jsonwebtoken::Validation,
    roles_claim: RolesClaim,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

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
    pub(super) fn identify(&self, token: &str) -> Result<Identity, RegistryError> {
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
