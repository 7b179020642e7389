//! The HTTP API of the registry: handlers written once, as functions of a `lambda_http::Request`,
//! so that each Lambda function and the local server run the very same code.

mod envelope;
mod errors;
mod generate_url;
mod list;
mod list_schema;
mod part_headers;
mod read;
mod register;
mod route;
mod schema;
mod status_transition;

pub use envelope::{error_response, route_not_found, success_response, success_response_sized};
pub use errors::{Failure, failure};
pub use generate_url::{
    FilesState, MAX_FILES_PER_REQUEST, MAX_URL_EXPIRY, handle as generate_url, handle_url_access as url_access,
};
pub use list::{LAMBDA_RESPONSE_BYTES, handle as list, handle_within as list_within};
pub use read::handle as read;
pub use register::{SlowBody, body_error, handle as register, handle_stream as register_stream, is_slow_body};
pub use route::{Route, handle, route_of};
pub use status_transition::{TransitionRequest, handle as status_transition, parse_transition_request};

use lambda_http::Body;

use crate::registry::{Catalog, Registrar};

/// What the register handler needs, built once per process.
#[derive(Clone)]
pub struct RegisterState {
    pub registrar: Registrar,
    /// The largest request body accepted (413 beyond it).
    pub max_body_bytes: u64,
}

/// Every route's state, for the binaries that serve them all.
#[derive(Clone)]
pub struct AppState {
    pub register: RegisterState,
    pub catalog: Catalog,
    pub files: FilesState,
    pub auth: crate::auth::Authenticator,
}

pub type Response = lambda_http::Response<Body>;

/// The bytes of a request body, however it arrived.
fn body_bytes(body: Body) -> bytes::Bytes {
    match body {
        Body::Empty => bytes::Bytes::new(),
        Body::Text(text) => bytes::Bytes::from(text),
        Body::Binary(binary) => bytes::Bytes::from(binary),
        // `Body` is non-exhaustive in spirit; anything else carries no bytes we understand.
        #[allow(unreachable_patterns)]
        _ => bytes::Bytes::new(),
    }
}
