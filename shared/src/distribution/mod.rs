//! Reading a connector distribution: an archive (`.tar.gz`, `.tgz`, `.tar` or `.zip`) holding a
//! `<id>-<version>/` folder with `metadata.json`, `ui-config.json`, icons and the program.
//!
//! The archive is read as a stream, never extracted: only `metadata.json`, `ui-config.json` and
//! the icons are held in memory, each under a hard size limit, and the archive's SHA-256 is
//! computed in the same pass.

mod error;
mod limits;
mod metadata;
pub mod reader;
mod rows;

pub use error::DistributionError;
pub use limits::Limits;
pub use metadata::{ConnectorSpec, Metadata};
pub use reader::{ArchiveFormat, Distribution, Icon, read_distribution};
pub use rows::{WriteBudget, build_rows, declared_row_ids};

#[cfg(test)]
mod tests;
