//! The routes of the API, each written once: its Obsrv API id, method, path, the route key API
//! Gateway and the metrics name it by, and the roles that may call it. The local server routes by
//! this table; each Lambda function serves the one route it is built for.

use http::Method;

use super::{AppState, Response, list, read, register, route_not_found, status_transition};
use crate::auth::{READER_ROLES, WRITER_ROLES};

/// What a route is, beside its handler.
struct Spec {
    api_id: &'static str,
    method: Method,
    path: &'static str,
    route_key: &'static str,
    roles: &'static [&'static str],
}

macro_rules! routes {
    ($($route:ident => $api_id:literal, $method:ident $path:literal, $roles:expr;)*) => {
        /// A route of the API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Route {
            $($route,)*
        }

        impl Route {
            pub const ALL: &[Route] = &[$(Route::$route),*];

            fn spec(self) -> &'static Spec {
                match self {
                    $(Route::$route => {
                        const SPEC: Spec = Spec {
                            api_id: $api_id,
                            method: Method::$method,
                            path: $path,
                            route_key: concat!(stringify!($method), " ", $path),
                            roles: $roles,
                        };
                        &SPEC
                    })*
                }
            }
        }
    };
}

routes! {
    Register => "api.connector.register", POST "/v2/connector/register", WRITER_ROLES;
    Read => "api.connectors.read", GET "/v2/connectors/read/{connector_id}", READER_ROLES;
    List => "api.connectors.list", POST "/v2/connectors/list", READER_ROLES;
    // Read URLs are for readers; the handler also requires WRITER_ROLES for upload URLs.
    GenerateUrl => "api.files.generate-url", POST "/v2/files/generate-url", READER_ROLES;
    // The system route of the platform's own pods (the original's id). It gives what generate-url's
    // read access gives; a reader's token is enough where the deployment's own guard (IAM,
    // loopback) does not already admit the caller.
    UrlAccess => "api.files.generate.url", POST "/v2/files/url-access", READER_ROLES;
    // Promotion, rollback, retirement and deletion: changes as weighty as a registration.
    StatusTransition => "api.connectors.status-transition", POST "/v2/connectors/status-transition", WRITER_ROLES;
}

impl Route {
    /// The Obsrv API id, the envelope's `id`.
    pub fn api_id(self) -> &'static str {
        self.spec().api_id
    }

    pub fn method(self) -> &'static Method {
        &self.spec().method
    }

    /// The path template, as API Gateway and OpenAPI write it.
    pub fn path(self) -> &'static str {
        self.spec().path
    }

    /// `METHOD path`, as API Gateway writes it: the metrics' `Route` and the audit events' `route`.
    pub fn route_key(self) -> &'static str {
        self.spec().route_key
    }

    /// The roles that may call the route.
    pub fn roles(self) -> &'static [&'static str] {
        self.spec().roles
    }

    /// Register (like the original's RBAC answers) uses `errorResponse`: no `result`, and an
    /// `error.trace`. The others use the `ObsrvError` style: `result: {}`, no trace.
    pub(super) fn register_error_style(self) -> bool {
        self == Route::Register
    }

    /// Whether `path` is this route's: equal to the template, or, for a template ending in a
    /// `{parameter}`, its prefix followed by one non-empty segment.
    fn matches_path(self, path: &str) -> bool {
        match self.path().split_once('{') {
            None => path == self.path(),
            Some((prefix, _)) => path.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty() && !rest.contains('/')),
        }
    }
}

/// The route a method and path lead to, if any. A trailing slash is tolerated, as Express does,
/// and so are repeated slashes: Obsrv's Spark runtime joins its API address and
/// `/v2/files/url-access` with one more slash.
pub fn route_of(method: &Method, path: &str) -> Option<Route> {
    let collapsed;
    let path = if path.contains("//") {
        collapsed = path.split('/').filter(|part| !part.is_empty()).fold(String::new(), |path, part| path + "/" + part);
        collapsed.as_str()
    } else {
        path
    };
    let path = if path.len() > 1 { path.strip_suffix('/').unwrap_or(path) } else { path };
    Route::ALL.iter().copied().find(|route| route.method() == method && route.matches_path(path))
}

/// Serves every route from one process (the local server).
pub async fn handle(state: &AppState, request: lambda_http::Request) -> Response {
    match route_of(request.method(), request.uri().path()) {
        Some(Route::Register) => register(&state.register, request).await,
        Some(Route::Read) => read(&state.catalog, request).await,
        Some(Route::List) => list(&state.catalog, request).await,
        Some(Route::GenerateUrl) => super::generate_url(&state.files, &state.auth, request).await,
        // The caller passed the route's guard before (see `Authenticator::admit`).
        Some(Route::UrlAccess) => super::url_access(&state.files, request).await,
        Some(Route::StatusTransition) => status_transition(&state.register.registrar, request).await,
        None => route_not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_key_is_its_method_and_path() {
        for route in Route::ALL {
            assert_eq!(route.route_key(), format!("{} {}", route.method(), route.path()));
        }
    }

    #[test]
    fn routes_of_the_original() {
        assert_eq!(route_of(&Method::POST, "/v2/connector/register"), Some(Route::Register));
        assert_eq!(route_of(&Method::POST, "/v2/connectors/list"), Some(Route::List));
        assert_eq!(route_of(&Method::POST, "/v2/connectors/list/"), Some(Route::List));
        assert_eq!(route_of(&Method::POST, "/v2/files/url-access"), Some(Route::UrlAccess));
        assert_eq!(route_of(&Method::GET, "/v2/files/url-access"), None);
        assert_eq!(route_of(&Method::GET, "/v2/connectors/read/kafka-connector-1.0.0"), Some(Route::Read));
        assert_eq!(route_of(&Method::GET, "/v2/connectors/list"), None);
        assert_eq!(route_of(&Method::GET, "/v2/connectors/read/"), None);
        assert_eq!(route_of(&Method::GET, "/v2/connectors/read/a/b"), None);
        assert_eq!(route_of(&Method::POST, "/v2/connectors/register"), None);
        assert_eq!(route_of(&Method::GET, "/"), None);
        assert_eq!(route_of(&Method::POST, "//v2/files/url-access"), Some(Route::UrlAccess));
        assert_eq!(route_of(&Method::GET, "/v2//connectors/read//kafka-connector-1.0.0"), Some(Route::Read));
        assert_eq!(route_of(&Method::GET, "//"), None);
    }

    #[test]
    fn the_api_ids_of_the_original_and_the_status_transition_in_obsrv_s_style() {
        let ids: Vec<&str> = Route::ALL.iter().map(|r| r.api_id()).collect();
        assert_eq!(
            ids,
            [
                "api.connector.register",
                "api.connectors.read",
                "api.connectors.list",
                "api.files.generate-url",
                "api.files.generate.url",
                "api.connectors.status-transition"
            ]
        );
    }
}
