//! The connector registry's shared crate: the domain, the distribution reader, the registry
//! service and its store ports, the store adapters, and the HTTP handlers that every binary runs.

pub mod adapters;
pub mod api;
pub mod auth;
pub mod distribution;
pub mod domain;
pub mod error;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod metrics;
pub mod quoting;
pub mod registry;

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
