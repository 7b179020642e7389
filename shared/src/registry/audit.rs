//! Audit events: one per committed registration, never one for a registration that did not
//! commit, never lost for one that did. The registration's own atomic commit writes the event to
//! an outbox in the row store; a dispatcher delivers outbox records to a sink (EventBridge, a
//! JSON-lines file) and removes each only once it is delivered. Delivery is at least once: a
//! record delivered but not yet removed when a process dies is delivered again, with the same
//! `event_id`, which consumers deduplicate on.
//!
//! What an event says is decided here; the stores only add the facts their commit alone knows
//! (which rows it retired) and keep the record.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{ConnectorRow, RowId, StatusReason, Timestamp, Transition};
use crate::error::{StoreError, error_chain};

/// The `source` of every audit event.
pub const AUDIT_SOURCE: &str = "connector-registry";
/// The `detail-type` of the event of a committed registration.
pub const REGISTERED: &str = "Connector registered";
/// The `detail-type` of the event of a committed status transition.
pub const STATUS_CHANGED: &str = "Connector status changed";
/// A subject longer than this is cut, so that an outbox record stays small beside the rows.
const MAX_SUBJECT_CHARS: usize = 256;

/// Who registered, and through which way in: the caller's subject (the token's `sub`, the IAM
/// caller, or `anonymous` where access control is off) and the route (`POST
/// /v2/connector/register`, `s3:incoming/`, `cli:register-upload`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub subject: String,
    pub route: String,
}

/// The subject of a caller nobody identified (access control off).
pub const ANONYMOUS: &str = "anonymous";

impl Origin {
    pub fn new(subject: impl Into<String>, route: impl Into<String>) -> Self {
        let subject: String = subject.into();
        let subject = match subject.char_indices().nth(MAX_SUBJECT_CHARS) {
            Some((cut, _)) => subject[..cut].to_owned(),
            None => subject,
        };
        Self { subject, route: route.into() }
    }
}

/// The event of a registration about to be committed, short of what only the commit knows.
#[derive(Debug, Clone)]
pub struct AuditDraft {
    event_id: String,
    origin: Origin,
    sha256: String,
    source_url: String,
}

impl AuditDraft {
    /// A fresh event id: every retry of the same commit keeps it.
    pub fn new(origin: Origin, sha256: &str, source_url: &str) -> Self {
        Self {
            event_id: uuid::Uuid::new_v4().to_string(),
            origin,
            sha256: sha256.to_owned(),
            source_url: source_url.to_owned(),
        }
    }

    /// The draft of a status transition's event: the archive is the row's, known at commit.
    pub fn for_transition(origin: Origin) -> Self {
        Self::new(origin, "", "")
    }

    pub fn event_id(&self) -> &str {
        &self.event_id
    }

    /// Who makes the change.
    pub fn subject(&self) -> &str {
        &self.origin.subject
    }

    /// The outbox record of the transition of `row` (as it was) to `to` at `now`, which retired
    /// `retired` (the connector's Live row, or the row itself when it is retired).
    pub fn transition_record(
        &self,
        row: &ConnectorRow,
        to: Transition,
        reason: Option<&StatusReason>,
        retired: &[RowId],
        now: Timestamp,
    ) -> AuditRecord {
        let deleted = to == Transition::Delete;
        let named = AuditRow::of(row);
        let detail = AuditDetail {
            event_id: self.event_id.clone(),
            registered_at: now.to_string(),
            subject: self.origin.subject.clone(),
            route: self.origin.route.clone(),
            sha256: row.archive_sha256.clone(),
            source_url: row.source_url.clone(),
            rows: if deleted { Vec::new() } else { vec![named] },
            retired_ids: retired.iter().map(|id| id.as_str().to_owned()).collect(),
            status: Some(to.as_str().to_owned()),
            reason: reason.map(|r| r.as_str().to_owned()),
            deleted_ids: if deleted { vec![row.id.as_str().to_owned()] } else { Vec::new() },
        };
        AuditRecord { detail_type: STATUS_CHANGED.to_owned(), detail }
    }

    /// The outbox record of the commit that writes `rows` at `now` and retires `retired`.
    pub fn record(&self, rows: &[ConnectorRow], retired: &[RowId], now: Timestamp) -> AuditRecord {
        let detail = AuditDetail {
            event_id: self.event_id.clone(),
            registered_at: now.to_string(),
            subject: self.origin.subject.clone(),
            route: self.origin.route.clone(),
            sha256: self.sha256.clone(),
            source_url: self.source_url.clone(),
            rows: rows.iter().map(AuditRow::of).collect(),
            retired_ids: retired.iter().map(|id| id.as_str().to_owned()).collect(),
            status: None,
            reason: None,
            deleted_ids: Vec::new(),
        };
        AuditRecord { detail_type: REGISTERED.to_owned(), detail }
    }
}

/// One event as the outbox keeps it and the sinks deliver it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub detail_type: String,
    pub detail: AuditDetail,
}

/// The detail of a `Connector registered` or `Connector status changed` event. A status change
/// names the row it changed in `rows` (or `deleted_ids`), with its archive, and adds `status` and
/// `reason`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDetail {
    pub event_id: String,
    /// When the change committed (the name is the first event type's, kept for its consumers).
    pub registered_at: String,
    pub subject: String,
    pub route: String,
    pub sha256: String,
    pub source_url: String,
    pub rows: Vec<AuditRow>,
    pub retired_ids: Vec<String>,
    /// The status a transition asked for: `Live`, `Retire` or `Delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_ids: Vec<String>,
}

impl AuditDetail {
    /// Every row id the change touched: written, retired or deleted.
    pub fn touched_ids(&self) -> impl Iterator<Item = &str> {
        self.rows
            .iter()
            .map(|row| row.id.as_str())
            .chain(self.retired_ids.iter().map(String::as_str))
            .chain(self.deleted_ids.iter().map(String::as_str))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: String,
    pub connector_id: String,
    pub version: String,
}

impl AuditRow {
    fn of(row: &ConnectorRow) -> Self {
        Self {
            id: row.id.as_str().to_owned(),
            connector_id: row.connector_id.as_str().to_owned(),
            version: row.version.as_str().to_owned(),
        }
    }
}

impl AuditRecord {
    /// The key an outbox keeps the record under: oldest first, then by id.
    pub fn outbox_key(&self) -> String {
        format!("{}#{}", self.detail.registered_at, self.detail.event_id)
    }

    pub fn to_json(&self) -> Result<String, StoreError> {
        serde_json::to_string(self).map_err(|e| StoreError::Other(anyhow::Error::new(e).context("encoding an event")))
    }

    pub fn from_json(text: &str) -> Result<Self, StoreError> {
        serde_json::from_str(text).map_err(|e| StoreError::Other(anyhow::Error::new(e).context("decoding an event")))
    }

    /// The event as one line of a JSON-lines file: EventBridge's envelope fields, then the detail.
    pub fn to_line(&self) -> Result<String, StoreError> {
        let line = serde_json::json!({
            "id": self.detail.event_id,
            "source": AUDIT_SOURCE,
            "detail-type": self.detail_type,
            "time": self.detail.registered_at,
            "detail": self.detail,
        });
        Ok(line.to_string())
    }
}

/// Where outbox records wait until they are delivered. The row store that commits registrations
/// keeps them, in the same atomic step as the rows.
#[async_trait]
pub trait AuditOutbox: Send + Sync {
    /// Up to `limit` records waiting, oldest first.
    async fn pending(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;

    /// Removes a delivered record; removing one that is gone is not an error.
    async fn remove(&self, record: &AuditRecord) -> Result<(), StoreError>;
}

/// Where events are delivered.
#[async_trait]
pub trait AuditSink: Send + Sync {
    /// Delivers one event durably; an `Err` means it may not have been, and is delivered again.
    async fn publish(&self, record: &AuditRecord) -> Result<(), StoreError>;
}

/// Delivers `record` and then removes it from the outbox; says whether it was removed. A failed
/// removal is only logged: the record is delivered again later, which the event id makes harmless.
pub async fn deliver(outbox: &dyn AuditOutbox, sink: &dyn AuditSink, record: &AuditRecord) -> Result<bool, StoreError> {
    sink.publish(record).await?;
    match outbox.remove(record).await {
        Ok(()) => Ok(true),
        Err(error) => {
            tracing::warn!(event_id = %record.detail.event_id, error = %error_chain(&error), "could not remove a delivered audit event");
            Ok(false)
        }
    }
}

/// Delivers every record waiting in the outbox, oldest first; stops at the first failure, and
/// after a batch whose records could not all be removed (the next batch would repeat them).
/// Returns how many were delivered.
pub async fn deliver_pending(outbox: &dyn AuditOutbox, sink: &dyn AuditSink) -> Result<usize, StoreError> {
    const BATCH: usize = 100;
    let mut delivered = 0;
    loop {
        let pending = outbox.pending(BATCH).await?;
        let mut removed_all = true;
        for record in &pending {
            removed_all &= deliver(outbox, sink, record).await?;
            delivered += 1;
        }
        if pending.len() < BATCH || !removed_all {
            return Ok(delivered);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::conformance::{at, row};

    #[test]
    fn a_record_names_the_rows_versions_retired_ids_archive_and_origin() {
        let draft = AuditDraft::new(Origin::new("alice", "POST /v2/connector/register"), "ab12", "pkg.tar_1.gz");
        let rows = [row("kafka", "2.0.0", "stream", at(5))];
        let retired = [rows[0].id.clone()];
        let record = draft.record(&rows, &retired, at(5));
        let line: serde_json::Value = serde_json::from_str(&record.to_line().unwrap()).unwrap();
        assert_eq!(line["source"], "connector-registry");
        assert_eq!(line["detail-type"], "Connector registered");
        assert_eq!(line["id"], draft.event_id());
        let detail = &line["detail"];
        assert_eq!(
            detail["rows"],
            serde_json::json!([{"id": "kafka-2.0.0", "connector_id": "kafka", "version": "2.0.0"}])
        );
        assert_eq!(detail["retired_ids"], serde_json::json!(["kafka-2.0.0"]));
        assert_eq!((&detail["sha256"], &detail["source_url"]), (&"ab12".into(), &"pkg.tar_1.gz".into()));
        assert_eq!((&detail["subject"], &detail["route"]), (&"alice".into(), &"POST /v2/connector/register".into()));
        assert_eq!(detail["registered_at"], at(5).to_string());
        assert_eq!(AuditRecord::from_json(&record.to_json().unwrap()).unwrap(), record);
        assert!(record.outbox_key().starts_with(&at(5).to_string()));
    }

    #[test]
    fn long_subjects_are_cut() {
        let origin = Origin::new("é".repeat(300), "r");
        assert_eq!(origin.subject.chars().count(), MAX_SUBJECT_CHARS);
    }
}
