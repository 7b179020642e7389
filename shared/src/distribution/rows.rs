//! From a validated distribution to the registry rows it declares (section 4.3 of the spec).

use serde_json::Value;
use serde_json::value::RawValue;

use super::Distribution;
use super::reader::is_url;
use crate::domain::{ConnectorRow, RowId, SourceInfo, Status, Timestamp};

/// Who the rows say created and updated them; the original writes `SYSTEM` too.
pub const SYSTEM_USER: &str = "SYSTEM";

/// One `Live` row per connector the package declares. `source_url` is the archive's stored name.
pub fn build_rows(distribution: &Distribution, source_url: &str, now: Timestamp) -> Vec<ConnectorRow> {
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
            }
        })
        .collect()
}

fn to_raw(value: &Value) -> Box<RawValue> {
    // Serialising a `Value` cannot fail: its keys are strings and its numbers finite.
    RawValue::from_string(value.to_string()).expect("a serde_json::Value is valid JSON")
}
