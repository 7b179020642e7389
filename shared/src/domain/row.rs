use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{Category, ConnectorId, RowId, Status, Timestamp, Version};

/// The `source` column: which folder of the archive holds the program and how to start it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub source: String,
    pub main_class: Option<String>,
    pub main_program: Option<String>,
}

/// One row of the connector registry (section 4.3 of the behaviour spec), plus the archive's
/// SHA-256. `type` is not stored: the registry only knows `source` connectors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectorRow {
    pub id: RowId,
    pub connector_id: ConnectorId,
    pub name: String,
    pub category: Category,
    pub version: Version,
    pub description: Option<String>,
    pub technology: String,
    pub runtime: String,
    pub licence: String,
    pub owner: String,
    pub iconurl: Option<String>,
    pub status: Status,
    /// Kept as the JSON text it arrived as, so key order survives and reads need no re-encoding.
    pub ui_spec: Box<RawValue>,
    pub source_url: String,
    pub source: SourceInfo,
    pub archive_sha256: String,
    pub created_by: String,
    pub updated_by: String,
    pub created_date: Timestamp,
    pub updated_date: Timestamp,
    pub live_date: Option<Timestamp>,
    /// Why the row last changed status through a status transition (a field the original does
    /// not have); a registration clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
}

/// The connector type the registry serves; the original hard-codes it too.
pub const CONNECTOR_TYPE: &str = "source";

/// The fields of a row in `POST /v2/connectors/list`, in the original's order.
#[derive(Serialize)]
pub struct ListView<'a> {
    id: &'a RowId,
    connector_id: &'a ConnectorId,
    name: &'a str,
    r#type: &'static str,
    category: &'a Category,
    version: &'a Version,
    description: &'a Option<String>,
    technology: &'a str,
    runtime: &'a str,
    licence: &'a str,
    owner: &'a str,
    iconurl: &'a Option<String>,
    status: Status,
    created_by: &'a str,
    updated_by: &'a str,
    created_date: Timestamp,
    updated_date: Timestamp,
    live_date: Option<Timestamp>,
    /// Not in the original; clients ignore fields they do not know.
    #[serde(skip_serializing_if = "Option::is_none")]
    status_reason: &'a Option<String>,
}

/// The fields of a row in `GET /v2/connectors/read/{id}`, in the original's order.
#[derive(Serialize)]
pub struct ReadView<'a> {
    id: &'a RowId,
    connector_id: &'a ConnectorId,
    name: &'a str,
    r#type: &'static str,
    category: &'a Category,
    version: &'a Version,
    description: &'a Option<String>,
    licence: &'a str,
    owner: &'a str,
    iconurl: &'a Option<String>,
    status: Status,
    ui_spec: &'a RawValue,
    created_by: &'a str,
    updated_by: &'a str,
    created_date: Timestamp,
    updated_date: Timestamp,
    live_date: Option<Timestamp>,
    /// Not in the original; clients ignore fields they do not know.
    #[serde(skip_serializing_if = "Option::is_none")]
    status_reason: &'a Option<String>,
}

impl ConnectorRow {
    pub fn list_view(&self) -> ListView<'_> {
        ListView {
            id: &self.id,
            connector_id: &self.connector_id,
            name: &self.name,
            r#type: CONNECTOR_TYPE,
            category: &self.category,
            version: &self.version,
            description: &self.description,
            technology: &self.technology,
            runtime: &self.runtime,
            licence: &self.licence,
            owner: &self.owner,
            iconurl: &self.iconurl,
            status: self.status,
            created_by: &self.created_by,
            updated_by: &self.updated_by,
            created_date: self.created_date,
            updated_date: self.updated_date,
            live_date: self.live_date,
            status_reason: &self.status_reason,
        }
    }

    pub fn read_view(&self) -> ReadView<'_> {
        ReadView {
            id: &self.id,
            connector_id: &self.connector_id,
            name: &self.name,
            r#type: CONNECTOR_TYPE,
            category: &self.category,
            version: &self.version,
            description: &self.description,
            licence: &self.licence,
            owner: &self.owner,
            iconurl: &self.iconurl,
            status: self.status,
            ui_spec: &self.ui_spec,
            created_by: &self.created_by,
            updated_by: &self.updated_by,
            created_date: self.created_date,
            updated_date: self.updated_date,
            live_date: self.live_date,
            status_reason: &self.status_reason,
        }
    }
}

/// Rows compare field by field; `ui_spec` by its JSON text (`RawValue` has no `PartialEq`).
impl PartialEq for ConnectorRow {
    fn eq(&self, other: &Self) -> bool {
        serde_json::to_value(self).ok() == serde_json::to_value(other).ok()
    }
}
