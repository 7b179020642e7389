//! From a validated distribution to the registry rows it declares (section 4.3 of the spec).

use serde_json::Value;
use serde_json::value::RawValue;

use super::reader::is_url;
use super::{Distribution, DistributionError};
use crate::domain::{ConnectorRow, RowId, SourceInfo, Status, Timestamp};

/// Who the rows say created and updated them; the original writes `SYSTEM` too.
pub const SYSTEM_USER: &str = "SYSTEM";

/// What one registration may write, the same on every backend, so that a package valid locally is
/// valid on AWS too. DynamoDB commits a registration in one `TransactWriteItems`, of at most 100
/// actions and 4 MB of items: a connector takes at most 7 actions (its row, its list entry, its
/// head, the entry a re-registered row leaves behind, and the row, list entry and entry move of
/// the version it retires), the table's catalog 8 and the audit event 1, so 12 connectors fit in
/// 93. Their rows and
/// list entries take at most 2 MiB, and the list entries of the versions they retire at most
/// 12 × 128 KiB: some 3.7 MB in all.
pub struct WriteBudget;

impl WriteBudget {
    pub const MAX_CONNECTORS: usize = 12;
    /// A row as stored (JSON), icon and `ui_spec` included; DynamoDB items hold at most 400 KB.
    pub const MAX_ROW_BYTES: usize = 380 * 1024;
    /// A row's list entry (JSON): mostly its icon, as a data URI.
    pub const MAX_LISTED_ROW_BYTES: usize = 128 * 1024;
    /// Every row of the package and its list entry, together.
    pub const MAX_TOTAL_BYTES: usize = 2 * 1024 * 1024;

    /// Refuses rows that break the budget, naming the limit.
    pub fn check(rows: &[ConnectorRow]) -> Result<(), DistributionError> {
        let too_large = DistributionError::RegistrationTooLarge;
        if rows.len() > Self::MAX_CONNECTORS {
            return Err(too_large(format!(
                "the package declares {} connectors; one registration may write at most {}",
                rows.len(),
                Self::MAX_CONNECTORS
            )));
        }
        let mut total = 0;
        for row in rows {
            let stored = json_len(row);
            if stored > Self::MAX_ROW_BYTES {
                return Err(too_large(format!(
                    "the row {} is {stored} bytes, more than the limit of {} bytes a row may take; \
                     make its icon or ui-config.json smaller",
                    row.id,
                    Self::MAX_ROW_BYTES
                )));
            }
            let listed = json_len(&row.list_view());
            if listed > Self::MAX_LISTED_ROW_BYTES {
                return Err(too_large(format!(
                    "the list entry of {} is {listed} bytes, more than the limit of {} bytes; make its icon smaller",
                    row.id,
                    Self::MAX_LISTED_ROW_BYTES
                )));
            }
            total += stored + listed;
        }
        if total > Self::MAX_TOTAL_BYTES {
            return Err(too_large(format!(
                "the package's rows and list entries take {total} bytes, more than the limit of {} bytes \
                 one registration may write",
                Self::MAX_TOTAL_BYTES
            )));
        }
        Ok(())
    }
}

fn json_len(value: &impl serde::Serialize) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |json| json.len())
}

/// One `Live` row per connector the package declares, checked against the [`WriteBudget`].
/// `source_url` is the archive's stored name.
pub fn build_rows(
    distribution: &Distribution,
    source_url: &str,
    now: Timestamp,
) -> Result<Vec<ConnectorRow>, DistributionError> {
    let rows = declared_rows(distribution, source_url, now);
    WriteBudget::check(&rows)?;
    Ok(rows)
}

/// The ids of the rows a package declares, one per connector, without building the rows.
pub fn declared_row_ids(distribution: &Distribution) -> Vec<RowId> {
    let version = &distribution.metadata.version;
    distribution.metadata.connectors.iter().map(|connector| RowId::new(&connector.connector_id, version)).collect()
}

fn declared_rows(distribution: &Distribution, source_url: &str, now: Timestamp) -> Vec<ConnectorRow> {
    let metadata = &distribution.metadata;
    metadata
        .connectors
        .iter()
        .map(|connector| {
            let ui_spec = match &connector.ui_config_key {
                None => distribution.ui_config.clone(),
                Some(key) => {
                    distribution.ui_config.get(key).cloned().unwrap_or_else(|| Value::Object(Default::default()))
                }
            };
            let iconurl = connector.icon.as_deref().and_then(|icon| {
                if is_url(icon) {
                    Some(icon.to_owned())
                } else {
                    distribution.icons.get(icon).map(|found| found.data_uri(icon))
                }
            });
            ConnectorRow {
                id: RowId::new(&connector.connector_id, &metadata.version),
                connector_id: connector.connector_id.clone(),
                name: connector.name.clone(),
                category: metadata.category.clone(),
                version: metadata.version.clone(),
                description: connector.description.clone(),
                technology: metadata.technology.clone(),
                runtime: metadata.runtime.clone(),
                licence: metadata.licence.clone(),
                owner: metadata.owner.clone(),
                iconurl,
                status: Status::Live,
                ui_spec: to_raw(&ui_spec),
                source_url: source_url.to_owned(),
                source: SourceInfo {
                    source: metadata.source_folder(),
                    main_class: connector.main_class.clone(),
                    main_program: connector.main_program.clone(),
                },
                archive_sha256: distribution.sha256.clone(),
                created_by: SYSTEM_USER.to_owned(),
                updated_by: SYSTEM_USER.to_owned(),
                created_date: now,
                updated_date: now,
                live_date: Some(now),
                status_reason: None,
            }
        })
        .collect()
}

fn to_raw(value: &Value) -> Box<RawValue> {
    // Serialising a `Value` cannot fail: its keys are strings and its numbers finite.
    RawValue::from_string(value.to_string()).expect("a serde_json::Value is valid JSON")
}
