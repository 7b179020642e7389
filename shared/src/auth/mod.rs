//! Who may call what. A registered connector is code the data platform will run, so register is
//! for `dataset_manager` and `admin` only; reading and listing for every Obsrv role. The roles come
//! from a verified JWT: verified here (the local server) or by API Gateway's JWT authorizer (the
//! deployed functions, which read the claims the authorizer passes on), from the claim a
//! [`RolesClaim`] names. The system route url-access is for the platform's own pods, not users.
//!
//! This module is the policy: which roles may do what, and who the caller is. How a deployment
//! learns a caller's roles is in `authenticator`; the notation API Gateway passes claims in, and
//! the verdict of the Lambda authorizer, in `gateway`; verifying tokens in-process in `jwt`.

mod authenticator;
mod gateway;
#[cfg(feature = "jwt")]
mod jwt;

pub use self::authenticator::Authenticator;
#[cfg(feature = "jwt")]
pub use self::gateway::verdict;
pub use self::gateway::{RolesClaim, refusal_verdict};
#[cfg(feature = "jwt")]
pub use self::jwt::{JwtVerifier, TokenRules};
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
}
