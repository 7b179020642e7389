//! The one mapping from `RegistryError` to an HTTP status and an Obsrv error code.

use http::StatusCode;

use super::Route;
use crate::distribution::DistributionError;
use crate::error::RegistryError;

/// What a client is told about a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: StatusCode,
    pub response_code: &'static str,
    pub code: &'static str,
    pub message: String,
}

pub fn failure(route: Route, error: &RegistryError) -> Failure {
    use RegistryError as E;
    let (status, code, message) = match error {
        E::ListInputInvalid(message) => (StatusCode::BAD_REQUEST, "CONNECTORS_LIST_INPUT_INVALID", message.clone()),
        E::FilesInputInvalid(message) => (StatusCode::BAD_REQUEST, "FILES_GENERATE_URL_INPUT_INVALID", message.clone()),
        E::FilesNotProvided => (StatusCode::BAD_REQUEST, "FILES_NOT_PROVIDED", error.to_string()),
        E::FilesLimitExceeded(_) => (StatusCode::BAD_REQUEST, "FILES_URL_GENERATION_LIMIT_EXCEED", error.to_string()),
        E::ConnectorNotFound(_) => (StatusCode::NOT_FOUND, "CONNECTOR_NOT_FOUND", error.to_string()),
        E::InvalidDistribution(
            DistributionError::ArchiveTooLarge { .. } | DistributionError::RegistrationTooLarge(_),
        ) => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", error.to_string()),
        E::InvalidDistribution(_) => (StatusCode::BAD_REQUEST, REGISTER_FAILED, error.to_string()),
        E::ArchiveNotFound(_) => {
            (StatusCode::NOT_FOUND, by_route(route, REGISTER_FAILED, "FILE_NOT_FOUND"), error.to_string())
        }
        E::UploadInvalid(message) => (StatusCode::BAD_REQUEST, "FAILED_TO_UPLOAD", message.clone()),
        E::PayloadTooLarge(message) => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", message.clone()),
        E::UnsupportedMediaType(message) => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", message.clone())
        }
        E::VersionExists(message) => (StatusCode::CONFLICT, "CONNECTOR_VERSION_EXISTS", message.clone()),
        E::TransitionInputInvalid(message) => {
            (StatusCode::BAD_REQUEST, "CONNECTOR_STATUS_TRANSITION_INVALID_INPUT", message.clone())
        }
        E::TransitionRefused(message) => (StatusCode::CONFLICT, "CONNECTOR_DELETE_FAILURE", message.clone()),
        E::InUse(message) => (StatusCode::CONFLICT, "CONNECTOR_IN_USE", message.clone()),
        E::Unauthorized(message) => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED ACCESS", message.clone()),
        E::Forbidden(message) => (StatusCode::FORBIDDEN, "FORBIDDEN ACCESS", message.clone()),
        E::Conflict(message) => (StatusCode::CONFLICT, by_route(route, REGISTER_FAILED, "CONFLICT"), message.clone()),
        E::RequestTimeout(message) => (StatusCode::REQUEST_TIMEOUT, "REQUEST_TIMEOUT", message.clone()),
        E::Busy(message) => {
            (StatusCode::SERVICE_UNAVAILABLE, by_route(route, REGISTER_FAILED, "SERVICE_UNAVAILABLE"), message.clone())
        }
        E::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            by_route(route, REGISTER_FAILED, "SERVICE_UNAVAILABLE"),
            "The registry is temporarily unavailable, please retry".to_owned(),
        ),
        E::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            by_route(route, REGISTER_FAILED, "INTERNAL_SERVER_ERROR"),
            by_route(route, "Failed to register connector", "Internal server error").to_owned(),
        ),
    };
    Failure { status, response_code: response_code(status), code, message }
}

/// Register keeps the original's `FAILED_TO_REGISTER_CONNECTOR` for every failure that is not
/// the client's own; the other APIs say what happened.
fn by_route(route: Route, register: &'static str, other: &'static str) -> &'static str {
    if route == Route::Register { register } else { other }
}

const REGISTER_FAILED: &str = "FAILED_TO_REGISTER_CONNECTOR";

fn response_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "BAD_REQUEST",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
        StatusCode::FORBIDDEN => "FORBIDDEN",
        StatusCode::CONFLICT => "CONFLICT",
        StatusCode::REQUEST_TIMEOUT => "REQUEST_TIMEOUT",
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
        StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
        _ => "INTERNAL_SERVER_ERROR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_faults_say_nothing_of_their_cause() {
        let error = RegistryError::internal(anyhow::anyhow!("secret SDK detail"));
        let f = failure(Route::List, &error);
        assert_eq!(
            (f.status, f.code, f.message.as_str()),
            (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", "Internal server error")
        );
        let f = failure(Route::Register, &error);
        assert_eq!((f.code, f.message.as_str()), ("FAILED_TO_REGISTER_CONNECTOR", "Failed to register connector"));
        let f = failure(Route::Read, &RegistryError::Unavailable(anyhow::anyhow!("throttled")));
        assert_eq!((f.status, f.response_code), (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"));
        assert!(!f.message.contains("throttled"));
    }

    #[test]
    fn client_mistakes_are_4xx() {
        let f = failure(Route::Register, &RegistryError::InvalidDistribution(DistributionError::MissingMetadata));
        assert_eq!(
            (f.status, f.response_code, f.code),
            (StatusCode::BAD_REQUEST, "BAD_REQUEST", "FAILED_TO_REGISTER_CONNECTOR")
        );
        assert_eq!(f.message, "unable to locate the metadata file");
        let f = failure(Route::Read, &RegistryError::ConnectorNotFound("x-1".into()));
        assert_eq!(
            (f.status, f.code, f.message.as_str()),
            (StatusCode::NOT_FOUND, "CONNECTOR_NOT_FOUND", "Connector not found: x-1")
        );
        let too_big = DistributionError::ArchiveTooLarge { actual: 2, limit: 1 };
        assert_eq!(failure(Route::Register, &too_big.into()).status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
