//! The registry's vocabulary: validated newtypes and the registry row.
//!
//! Every value that crosses a trust boundary is parsed into one of these types once; code past
//! that point can rely on the invariant the type names.

mod category;
mod ids;
mod registration;
mod row;
mod status;
mod timestamp;
mod transition;

pub use category::Category;
pub use ids::{ConnectorId, RowId, Version};
pub use registration::{
    IdTaken, ImportAdmission, Placement, PlacementRefused, VersionExists, Versions, admit_import, place,
};
pub use row::{CONNECTOR_TYPE, ConnectorRow, ListView, ReadView, SourceInfo};
pub use status::Status;
pub use timestamp::Timestamp;
pub use transition::{StatusReason, Transition, TransitionPlan, TransitionRefused, plan_transition};

/// Why a raw value was refused by a newtype constructor. The message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);
