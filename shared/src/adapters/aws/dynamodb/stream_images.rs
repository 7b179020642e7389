//! The table's stream, as the audit-events function receives it: which records are new outbox
//! items, and the events they hold. The item layout stays in this adapter.

use serde_dynamo::{AttributeValue, Item};

use super::layout;
use crate::error::StoreError;
use crate::registry::AuditRecord;

/// The audit event of a stream record's new image, when the record is a new outbox item
/// (`INSERT` under the outbox key); `None` for any other record.
pub fn audit_event_of(event_name: &str, new_image: &Item) -> Option<Result<AuditRecord, StoreError>> {
    let text = |name: &str| match new_image.get(name) {
        Some(AttributeValue::S(text)) => Some(text.as_str()),
        _ => None,
    };
    if event_name != "INSERT" || text(layout::PK) != Some(layout::AUDIT_PK) {
        return None;
    }
    Some(match text(layout::AUDIT_EVENT) {
        Some(event) => AuditRecord::from_json(event),
        None => Err(StoreError::Other(anyhow::anyhow!("an audit item without its event"))),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn image(pairs: &[(&str, &str)]) -> Item {
        let map: HashMap<String, AttributeValue> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), AttributeValue::S((*v).to_owned()))).collect();
        Item::from(map)
    }

    #[test]
    fn only_new_outbox_items_hold_events() {
        let row = image(&[(layout::PK, "row#a-1"), (layout::SK, "row")]);
        assert!(audit_event_of("INSERT", &row).is_none());
        let outbox = image(&[(layout::PK, layout::AUDIT_PK), (layout::SK, "x")]);
        assert!(audit_event_of("REMOVE", &outbox).is_none());
        assert!(matches!(audit_event_of("INSERT", &outbox), Some(Err(_))), "an outbox item without its event");
        let broken = image(&[(layout::PK, layout::AUDIT_PK), (layout::AUDIT_EVENT, "{")]);
        assert!(matches!(audit_event_of("INSERT", &broken), Some(Err(_))));
    }
}
