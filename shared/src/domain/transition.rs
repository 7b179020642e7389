//! Status transitions: what `POST /v2/connectors/status-transition` does to a row and to its
//! connector's Live row. Like the registration rule, each store adapter reads what the rule needs
//! and writes what it answers inside its own transaction; the rule is written once, here.

use std::fmt;
use std::str::FromStr;

use super::{ConnectorRow, InvalidValue, Status, Timestamp};
use crate::quoting::quote;

/// The state a transition asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    /// Make the version Live and retire the connector's Live version: promotion and rollback.
    Live,
    /// Retire the version; the connector may be left without a Live version.
    Retire,
    /// Remove a version that is not Live.
    Delete,
}

impl Transition {
    pub const ALL: [Transition; 3] = [Transition::Live, Transition::Retire, Transition::Delete];

    /// The name a request gives it (Obsrv's dataset transitions use the same words).
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Live => "Live",
            Transition::Retire => "Retire",
            Transition::Delete => "Delete",
        }
    }
}

impl FromStr for Transition {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Transition::ALL
            .into_iter()
            .find(|transition| transition.as_str() == s)
            .ok_or_else(|| InvalidValue(format!("{} is not a status to transition to", quote(s))))
    }
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a version changed status, as its owner wrote it: kept with the row and in the audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReason(String);

impl StatusReason {
    /// Longer reasons are refused rather than cut: a reason is read by people, whole.
    pub const MAX_CHARS: usize = 1024;

    /// A reason of at most `MAX_CHARS` characters with no control characters but newlines and
    /// tabs; blank is no reason.
    pub fn parse(raw: &str) -> Result<Option<Self>, InvalidValue> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(InvalidValue(format!("a reason has at most {} characters", Self::MAX_CHARS)));
        }
        if trimmed.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err(InvalidValue("a reason holds no control characters".into()));
        }
        Ok(Some(Self(trimmed.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a transition writes.
#[derive(Debug, Clone, PartialEq)]
pub enum TransitionPlan {
    /// The row has that state already: nothing is written (an idempotent repeat).
    Unchanged,
    /// The row in its new state, and the connector's Live row of another version, now retired.
    Write { row: Box<ConnectorRow>, retired: Option<Box<ConnectorRow>> },
    /// The row goes.
    Delete,
}

/// A transition the rule refuses; nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionRefused {
    #[error(
        "Failed to delete connector {id} as it is Live. Make another version Live, or retire it, before deleting it"
    )]
    DeleteLive { id: String },
}

/// Plans `to` for `row`, beside `live` (the connector's Live row, if any), at `now`, by `by`.
/// The reason replaces the row's reason whenever its status changes.
pub fn plan_transition(
    row: &ConnectorRow,
    live: Option<&ConnectorRow>,
    to: Transition,
    reason: Option<&StatusReason>,
    by: &str,
    now: Timestamp,
) -> Result<TransitionPlan, TransitionRefused> {
    let target = match to {
        Transition::Delete if row.status == Status::Live => {
            return Err(TransitionRefused::DeleteLive { id: row.id.as_str().to_owned() });
        }
        Transition::Delete => return Ok(TransitionPlan::Delete),
        Transition::Live => Status::Live,
        Transition::Retire => Status::Retired,
    };
    if row.status == target {
        return Ok(TransitionPlan::Unchanged);
    }
    let mut changed = row.clone();
    changed.status = target;
    changed.status_reason = reason.map(|r| r.as_str().to_owned());
    changed.updated_by = by.to_owned();
    // Dates only move forward (see `Timestamp::after`), and Live is dated when it last began.
    changed.updated_date = now.after(row.updated_date);
    if target == Status::Live {
        changed.live_date = Some(changed.updated_date);
    }
    let retired =
        live.filter(|live| target == Status::Live && live.id != row.id && live.status == Status::Live).map(|live| {
            let mut retired = live.clone();
            retired.status = Status::Retired;
            retired.status_reason = Some(format!("{} was made Live", row.id));
            retired.updated_by = by.to_owned();
            retired.updated_date = now.after(live.updated_date);
            Box::new(retired)
        });
    Ok(TransitionPlan::Write { row: Box::new(changed), retired })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::conformance::{at, row};

    fn version(v: &str, status: Status) -> ConnectorRow {
        let mut row = row("kafka", v, "streaming", at(1));
        row.status = status;
        row
    }

    fn reason(text: &str) -> StatusReason {
        StatusReason::parse(text).unwrap().unwrap()
    }

    #[test]
    fn promotion_retires_the_live_version_and_keeps_the_reason() {
        let old = version("1.0.0", Status::Retired);
        let live = version("2.0.0", Status::Live);
        let plan =
            plan_transition(&old, Some(&live), Transition::Live, Some(&reason("rollback")), "ops", at(9)).unwrap();
        let TransitionPlan::Write { row, retired: Some(retired) } = plan else { panic!("{plan:?}") };
        assert_eq!(
            (row.status, row.status_reason.as_deref(), row.live_date),
            (Status::Live, Some("rollback"), Some(at(9)))
        );
        assert_eq!((row.updated_by.as_str(), row.updated_date), ("ops", at(9)));
        assert_eq!((retired.id, retired.status, retired.updated_date), (live.id, Status::Retired, at(9)));
    }

    #[test]
    fn retiring_the_live_version_leaves_the_connector_without_one() {
        let live = version("2.0.0", Status::Live);
        let plan = plan_transition(&live, Some(&live), Transition::Retire, None, "ops", at(9)).unwrap();
        let TransitionPlan::Write { row, retired: None } = plan else { panic!("{plan:?}") };
        assert_eq!((row.status, row.status_reason), (Status::Retired, None));
    }

    #[test]
    fn a_repeat_changes_nothing_and_a_live_version_is_not_deleted() {
        let live = version("2.0.0", Status::Live);
        assert_eq!(
            plan_transition(&live, Some(&live), Transition::Live, None, "ops", at(9)),
            Ok(TransitionPlan::Unchanged)
        );
        let retired = version("1.0.0", Status::Retired);
        assert_eq!(
            plan_transition(&retired, None, Transition::Retire, None, "ops", at(9)),
            Ok(TransitionPlan::Unchanged)
        );
        assert_eq!(
            plan_transition(&retired, Some(&live), Transition::Delete, None, "ops", at(9)),
            Ok(TransitionPlan::Delete)
        );
        assert!(matches!(
            plan_transition(&live, Some(&live), Transition::Delete, None, "ops", at(9)),
            Err(TransitionRefused::DeleteLive { .. })
        ));
    }

    #[test]
    fn dates_only_move_forward() {
        let mut old = version("1.0.0", Status::Retired);
        old.updated_date = at(20);
        let plan = plan_transition(&old, None, Transition::Live, None, "ops", at(9)).unwrap();
        let TransitionPlan::Write { row, .. } = plan else { panic!() };
        assert!(row.updated_date > at(20));
    }

    #[test]
    fn reasons_and_statuses_are_parsed() {
        assert_eq!("Live".parse::<Transition>(), Ok(Transition::Live));
        assert!("Retired".parse::<Transition>().is_err());
        assert_eq!(StatusReason::parse("  "), Ok(None));
        assert_eq!(reason(" bad build \n").as_str(), "bad build");
        assert!(StatusReason::parse("a\u{0}b").is_err());
        assert!(StatusReason::parse(&"x".repeat(StatusReason::MAX_CHARS + 1)).is_err());
    }
}
