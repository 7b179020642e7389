//! The registration rule: what committing a package's row does to the rows already stored. Each
//! store adapter reads what the rule needs (the row of the same id, the connector's Live row) and
//! writes what it answers, inside its own transaction; the rule itself is written once, here.

use super::{ConnectorRow, Status, Timestamp};

/// What committing one new row writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// The row to store: the new row, keeping from a stored row of the same id what its first
    /// registration set (who created it and when, when it first went Live).
    pub row: ConnectorRow,
    /// The connector's Live row of another version, now retired.
    pub retired: Option<ConnectorRow>,
}

/// Whether a registered version may be registered again with other bytes. Obsrv's runtimes never
/// fetch a version folder they already have, so new bytes under an old version would not reach
/// them: versions are immutable unless the operator asks for the original's overwriting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Versions {
    #[default]
    Immutable,
    Overwritable,
}

/// Why a package's row cannot be placed; the package is refused, nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementRefused {
    #[error(transparent)]
    IdTaken(#[from] IdTaken),
    #[error(transparent)]
    VersionExists(#[from] VersionExists),
}

/// A version registered before from other bytes, under `Versions::Immutable`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{} registered already from another archive (sha256 {stored_sha256}); a version's content never \
     changes: register it as a new version, or delete the stored one first (status-transition \
     Delete) if it is not Live",
    ids.join(", ")
)]
pub struct VersionExists {
    pub ids: Vec<String>,
    pub stored_sha256: String,
}

/// A row id that another connector owns already (`a-b` version `1` and `a` version `b-1` are both
/// `a-b-1`): the package is refused, nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row id {id} already belongs to connector {owner}")]
pub struct IdTaken {
    pub id: String,
    pub owner: String,
}

/// Places `new` beside `stored` (the row of the same id, if any) and `live` (the connector's Live
/// row, if any), at `now`.
pub fn place(
    new: &ConnectorRow,
    stored: Option<&ConnectorRow>,
    live: Option<&ConnectorRow>,
    now: Timestamp,
    versions: Versions,
) -> Result<Placement, PlacementRefused> {
    let mut row = new.clone();
    if let Some(stored) = stored {
        if stored.connector_id != new.connector_id {
            let owner = stored.connector_id.as_str().to_owned();
            return Err(IdTaken { id: new.id.as_str().to_owned(), owner }.into());
        }
        if versions == Versions::Immutable && stored.archive_sha256 != new.archive_sha256 {
            let stored_sha256 = stored.archive_sha256.clone();
            return Err(VersionExists { ids: vec![new.id.as_str().to_owned()], stored_sha256 }.into());
        }
        // A re-registration of the same version replaces its content, not its history.
        row.created_by = stored.created_by.clone();
        row.created_date = stored.created_date;
        row.updated_by = stored.updated_by.clone();
        row.live_date = stored.live_date.or(row.live_date);
        row.updated_date = row.updated_date.after(stored.updated_date);
    }
    let retired = live.filter(|live| live.id != new.id && live.status == Status::Live).map(|live| {
        let mut retired = live.clone();
        retired.status = Status::Retired;
        retired.status_reason = Some(format!("{} was registered", new.id));
        // A copy of the row (Obsrv's table) keeps the newest state it is given: a row's changes
        // must come in the order of their dates.
        retired.updated_date = now.after(live.updated_date);
        retired
    });
    Ok(Placement { row, retired })
}

/// What importing a row from another registry (an Obsrv installation's table) may do beside
/// `stored` (the row of the same id) and `live` (the connector's Live row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportAdmission {
    /// Write it as it is.
    Write,
    /// The registry has this row already: its own state wins, the import changes nothing.
    Present,
    /// It would be a second Live version of its connector.
    SecondLive { live: String },
}

pub fn admit_import(row: &ConnectorRow, stored: Option<&ConnectorRow>, live: Option<&ConnectorRow>) -> ImportAdmission {
    if stored.is_some() {
        return ImportAdmission::Present;
    }
    match live {
        Some(live) if row.status == Status::Live && live.id != row.id && live.status == Status::Live => {
            ImportAdmission::SecondLive { live: live.id.as_str().to_owned() }
        }
        _ => ImportAdmission::Write,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::conformance::row;

    fn sample_row(connector: &str, version: &str) -> ConnectorRow {
        row(connector, version, "streaming", at("2024-01-01T00:00:00.000Z"))
    }

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    #[test]
    fn a_first_version_retires_nothing() {
        let new = sample_row("kafka-connector", "1.0.0");
        let placement = place(&new, None, None, at("2026-01-01T00:00:00.000Z"), Versions::Immutable).unwrap();
        assert_eq!(placement, Placement { row: new, retired: None });
    }

    #[test]
    fn a_new_version_retires_the_live_one() {
        let old = sample_row("kafka-connector", "1.0.0");
        let new = sample_row("kafka-connector", "2.0.0");
        let now = at("2026-01-02T00:00:00.000Z");
        let placement = place(&new, None, Some(&old), now, Versions::Immutable).unwrap();
        let retired = placement.retired.unwrap();
        assert_eq!((retired.id, retired.status, retired.updated_date), (old.id, Status::Retired, now));
        assert_eq!(placement.row, new);
    }

    #[test]
    fn a_re_registration_keeps_its_history_and_retires_nothing() {
        let mut stored = sample_row("kafka-connector", "1.0.0");
        stored.created_by = "first".into();
        stored.created_date = at("2025-01-01T00:00:00.000Z");
        stored.live_date = Some(at("2025-01-01T00:00:00.000Z"));
        let new = sample_row("kafka-connector", "1.0.0");
        let placement =
            place(&new, Some(&stored), Some(&stored), at("2026-01-01T00:00:00.000Z"), Versions::Immutable).unwrap();
        assert_eq!(placement.retired, None);
        assert_eq!(placement.row.created_by, "first");
        assert_eq!(placement.row.created_date, stored.created_date);
        assert_eq!(placement.row.live_date, stored.live_date);
    }

    /// A registration that read its clock before another one, and committed after it, still
    /// dates its changes after the other's: a row's `updated_date` never goes back.
    #[test]
    fn dates_only_move_forward() {
        let mut live = sample_row("kafka-connector", "1.0.1");
        live.updated_date = at("2026-01-01T00:00:00.500Z");
        let new = sample_row("kafka-connector", "1.0.0");
        let earlier = at("2026-01-01T00:00:00.400Z");
        let retired = place(&new, None, Some(&live), earlier, Versions::Immutable).unwrap().retired.unwrap();
        assert_eq!(retired.updated_date, at("2026-01-01T00:00:00.501Z"));
        let mut stored = new.clone();
        stored.updated_date = at("2026-01-01T00:00:00.700Z");
        let mut again = new.clone();
        again.updated_date = earlier;
        assert_eq!(
            place(&again, Some(&stored), None, earlier, Versions::Immutable).unwrap().row.updated_date,
            at("2026-01-01T00:00:00.701Z")
        );
    }

    #[test]
    fn a_retired_row_is_not_retired_again() {
        let mut old = sample_row("kafka-connector", "1.0.0");
        old.status = Status::Retired;
        let new = sample_row("kafka-connector", "2.0.0");
        assert_eq!(
            place(&new, None, Some(&old), at("2026-01-01T00:00:00.000Z"), Versions::Immutable).unwrap().retired,
            None
        );
    }

    #[test]
    fn an_import_keeps_what_the_registry_has_and_one_live_version() {
        let live = sample_row("kafka-connector", "1.0.0");
        let other = sample_row("kafka-connector", "2.0.0");
        assert_eq!(admit_import(&other, None, None), ImportAdmission::Write);
        assert_eq!(admit_import(&other, Some(&other), None), ImportAdmission::Present);
        assert_eq!(
            admit_import(&other, None, Some(&live)),
            ImportAdmission::SecondLive { live: "kafka-connector-1.0.0".into() }
        );
        let mut retired = other.clone();
        retired.status = Status::Retired;
        assert_eq!(admit_import(&retired, None, Some(&live)), ImportAdmission::Write);
    }

    #[test]
    fn a_row_id_of_another_connector_is_refused() {
        let stored = sample_row("a-b", "1");
        let new = sample_row("a", "b-1");
        assert_eq!(stored.id, new.id);
        let refused =
            place(&new, Some(&stored), None, at("2026-01-01T00:00:00.000Z"), Versions::Immutable).unwrap_err();
        assert_eq!(refused.to_string(), "row id a-b-1 already belongs to connector a-b");
    }

    #[test]
    fn a_version_s_content_never_changes_unless_the_operator_allows_it() {
        let stored = sample_row("kafka-connector", "1.0.0");
        let mut other_bytes = stored.clone();
        other_bytes.archive_sha256 = "ffff".into();
        let now = at("2026-01-01T00:00:00.000Z");
        let refused = place(&other_bytes, Some(&stored), None, now, Versions::Immutable).unwrap_err();
        let PlacementRefused::VersionExists(exists) = refused else { panic!("{refused:?}") };
        assert_eq!(
            (exists.ids, exists.stored_sha256),
            (vec!["kafka-connector-1.0.0".to_owned()], stored.archive_sha256.clone())
        );
        assert!(place(&stored, Some(&stored), None, now, Versions::Immutable).is_ok(), "the same bytes again");
        let overwritten = place(&other_bytes, Some(&stored), None, now, Versions::Overwritable).unwrap();
        assert_eq!(overwritten.row.archive_sha256, "ffff");
    }
}
