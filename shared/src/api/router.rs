//! One table of routes, for the binaries that serve them all (the local server and
//! `cargo lambda watch`). Each Lambda function calls its own handler directly.

use http::Method;

use super::{AppState, Response, list, read, register, route_not_found};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Register,
    Read,
    List,
    GenerateUrl,
    UrlAccess,
}

impl Route {
    pub const ALL: [Route; 5] = [Route::Register, Route::Read, Route::List, Route::GenerateUrl, Route::UrlAccess];

    /// The method and path template, as API Gateway and OpenAPI write them.
    pub fn template(self) -> (&'static str, &'static str) {
        match self {
            Route::Register => ("POST", "/v2/connector/register"),
            Route::Read => ("GET", "/v2/connectors/read/{connector_id}"),
            Route::List => ("POST", "/v2/connectors/list"),
            Route::GenerateUrl => ("POST", "/v2/files/generate-url"),
            Route::UrlAccess => ("POST", "/v2/files/url-access"),
        }
    }

    pub fn api(self) -> super::Api {
        match self {
            Route::Register => super::Api::ConnectorRegister,
            Route::Read => super::Api::ConnectorsRead,
            Route::List => super::Api::ConnectorsList,
            Route::GenerateUrl => super::Api::FilesGenerateUrl,
            Route::UrlAccess => super::Api::FilesUrlAccess,
        }
    }
}

/// The route a method and path lead to, if any. A trailing slash is tolerated, as Express does.
pub fn route_of(method: &Method, path: &str) -> Option<Route> {
    let path = if path.len() > 1 { path.strip_suffix('/').unwrap_or(path) } else { path };
    match (method, path) {
        (&Method::POST, "/v2/connector/register") => Some(Route::Register),
        (&Method::POST, "/v2/connectors/list") => Some(Route::List),
        (&Method::POST, "/v2/files/generate-url") => Some(Route::GenerateUrl),
        (&Method::POST, "/v2/files/url-access") => Some(Route::UrlAccess),
        (&Method::GET, p) => {
            let id = p.strip_prefix("/v2/connectors/read/")?;
            (!id.is_empty() && !id.contains('/')).then_some(Route::Read)
        }
        _ => None,
    }
}

pub async fn handle(state: &AppState, request: lambda_http::Request) -> Response {
    match route_of(request.method(), request.uri().path()) {
        Some(Route::Register) => register(&state.register, request).await,
        Some(Route::Read) => read(&state.catalog, request).await,
        Some(Route::List) => list(&state.catalog, request).await,
        Some(Route::GenerateUrl) => super::generate_url(&state.files, &state.auth, request).await,
        // The caller passed the route's guard before (see `Authenticator::admit`).
        Some(Route::UrlAccess) => super::url_access(&state.files, request).await,
        None => route_not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_names_its_route_as_the_template_does() {
        for route in Route::ALL {
            let (method, path) = route.template();
            assert_eq!(route.api().route_key(), format!("{method} {path}"));
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
    }
}
