//! Store adapters: each implements the ports of `crate::registry` for one backend.

#[cfg(feature = "embedded")]
pub mod embedded;
