//! Store adapters: each implements the ports of `crate::registry` for one backend. Every adapter
//! passes the same conformance suite (`crate::test_support::conformance`).

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod obsrv_folder;
#[cfg(feature = "obsrv-postgres")]
pub mod postgres;
