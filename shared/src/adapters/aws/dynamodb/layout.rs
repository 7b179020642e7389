//! The items of the table: their keys, their attributes, and what DynamoDB counts as their size.
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | a row | `row#<id>` | `row` | `row` (the row as JSON), `connector_id`, `status`, `category`, `updated_date` |
//! | a list entry | `list#<status>#<category>#<shard>` | `<id>` | `view` (the row's list view as JSON) |
//! | a connector's head | `connector#<connector_id>` | `head` | `live_id`: the id of its Live row |
//! | a catalog copy | `catalog#<n>` | `catalog` | `p:<status>#<category>#<shard>`: a token per list partition |
//! | an audit event | `audit` | `<registered at>#<event id>` | `event` (the outbox record as JSON), until delivered |
//!
//! `status` and `updated_date` of a row item win over the copies inside its JSON, so that retiring
//! a row writes those two attributes instead of the whole item.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::{Category, ConnectorRow, Status, Timestamp};
use crate::error::StoreError;
use crate::registry::AuditRecord;

pub type Item = HashMap<String, AttributeValue>;

pub const PK: &str = "pk";
pub const SK: &str = "sk";

/// Copies of the catalog item: every list reads one of them at random, every registration writes
/// them all, so no single key carries every list.
pub const CATALOG_COPIES: usize = 8;
/// The prefix of a catalog attribute naming a list partition.
pub const PARTITION_ATTRIBUTE: &str = "p:";
/// The list entries of one status and category are spread over this many partitions by connector,
/// so that a registration changes (and every instance reads again) an eighth of them, and no key
/// holds a whole status.
pub const SHARDS: u8 = 8;

/// One item collection of list entries: the rows of one status, category and shard, by id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    pub status: Status,
    pub category: Category,
    pub shard: u8,
}

impl Partition {
    pub fn of(row: &ConnectorRow) -> Self {
        Self { status: row.status, category: row.category.clone(), shard: shard_of(row.connector_id.as_str()) }
    }

    /// `<status>#<category>#<shard>`: categories never hold `#` (their pattern), so this parses back.
    pub fn name(&self) -> String {
        format!("{}#{}#{}", self.status.as_str(), self.category.as_str(), self.shard)
    }

    pub fn parse(name: &str) -> Option<Self> {
        let mut parts = name.split('#');
        let partition = Self {
            status: parts.next()?.parse().ok()?,
            category: Category::parse(parts.next()?).ok()?,
            shard: parts.next()?.parse().ok().filter(|shard| *shard < SHARDS)?,
        };
        parts.next().is_none().then_some(partition)
    }

    pub fn pk(&self) -> String {
        format!("list#{}", self.name())
    }

    pub fn catalog_attribute(&self) -> String {
        format!("{PARTITION_ATTRIBUTE}{}", self.name())
    }
}

/// A connector's shard: FNV-1a of its id, the same in every process and every build.
fn shard_of(connector_id: &str) -> u8 {
    let hash =
        connector_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (hash % u64::from(SHARDS)) as u8
}

/// A partition's token after a change: 48 random bits keep the catalog small (two copies of a
/// token collide once in 10^14 changes).
pub fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

pub fn key(pk: String, sk: &str) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

pub fn row_key(id: &str) -> Item {
    key(format!("row#{id}"), "row")
}

pub fn head_key(connector_id: &str) -> Item {
    key(format!("connector#{connector_id}"), "head")
}

pub fn catalog_key(copy: usize) -> Item {
    key(format!("catalog#{copy}"), "catalog")
}

/// The partition key of the audit outbox: the table's stream hands the audit-events function the
/// items with it, and nothing else.
pub const AUDIT_PK: &str = "audit";
pub const AUDIT_EVENT: &str = "event";

pub fn audit_key(record: &AuditRecord) -> Item {
    key(AUDIT_PK.to_owned(), &record.outbox_key())
}

pub fn audit_item(record: &AuditRecord) -> Result<Item, StoreError> {
    let mut item = audit_key(record);
    item.insert(AUDIT_EVENT.to_owned(), s(record.to_json()?));
    Ok(item)
}

pub fn decode_audit(item: &Item) -> Result<AuditRecord, StoreError> {
    AuditRecord::from_json(
        text(item, AUDIT_EVENT).ok_or_else(|| other(anyhow::anyhow!("an audit item without its event")))?,
    )
}

pub fn list_key(partition: &Partition, id: &str) -> Item {
    key(partition.pk(), id)
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// The attribute of a row item that holds its `status_reason`, when it has one.
pub const STATUS_REASON: &str = "status_reason";

pub fn row_item(row: &ConnectorRow) -> Result<Item, StoreError> {
    let json = serde_json::to_string(row).map_err(other)?;
    let mut item = row_key(row.id.as_str());
    item.extend([
        ("row".to_owned(), s(json)),
        ("connector_id".to_owned(), s(row.connector_id.as_str())),
        ("status".to_owned(), s(row.status.as_str())),
        ("category".to_owned(), s(row.category.as_str())),
        ("updated_date".to_owned(), s(row.updated_date.to_string())),
    ]);
    // Like status and updated_date, an attribute a registration's retirement can set alone.
    if let Some(reason) = &row.status_reason {
        item.insert(STATUS_REASON.to_owned(), s(reason));
    }
    Ok(item)
}

pub fn decode_row(item: &Item) -> Result<ConnectorRow, StoreError> {
    let json = text(item, "row").ok_or_else(|| other(anyhow::anyhow!("a row item without its row")))?;
    let mut row: ConnectorRow = serde_json::from_str(json).map_err(other)?;
    if let Some(status) = text(item, "status").and_then(|s| s.parse().ok()) {
        row.status = status;
    }
    if let Some(updated) = text(item, "updated_date").and_then(|s| Timestamp::parse(s).ok()) {
        row.updated_date = updated;
    }
    if let Some(reason) = text(item, STATUS_REASON) {
        row.status_reason = Some(reason.to_owned());
    }
    Ok(row)
}

pub fn list_item(row: &ConnectorRow) -> Result<Item, StoreError> {
    let view = serde_json::to_string(&row.list_view()).map_err(other)?;
    let mut item = list_key(&Partition::of(row), row.id.as_str());
    item.insert("view".to_owned(), s(view));
    Ok(item)
}

pub fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

/// An item's size as DynamoDB counts it against its limits and for capacity units: the UTF-8
/// length of every attribute name plus the size of its value.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) => text.len(),
        // Numbers are stored as up to 21 bytes: about one byte per two digits, plus one.
        AttributeValue::N(number) => number.len().div_ceil(2) + 1,
        AttributeValue::B(blob) => blob.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(items) => items.iter().map(String::len).sum(),
        AttributeValue::Ns(items) => items.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::Bs(items) => items.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        _ => 0,
    }
}

pub fn other(error: impl Into<anyhow::Error>) -> StoreError {
    StoreError::Other(error.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::conformance::{at, row};

    #[test]
    fn partitions_name_and_parse_back_and_shards_are_stable() {
        let partition = Partition::of(&row("kafka", "1.0.0", "stream", at(0)));
        assert_eq!(Partition::parse(&partition.name()), Some(partition.clone()));
        // Fixed by the hash: a change would move every list entry of a deployed table.
        assert_eq!(partition.name(), format!("Live#stream#{}", shard_of("kafka")));
        // FNV-1a of "" and "a" are 0xcbf29ce484222325 and 0xaf63dc4c8601ec8c (the published values).
        assert_eq!([shard_of(""), shard_of("a"), shard_of("kafka-connector")], [5, 4, 7]);
        for bad in ["Live#stream", "Live#stream#8", "Live#stream#1#x", "Gone#stream#1", "Live#no space#1"] {
            assert_eq!(Partition::parse(bad), None, "{bad}");
        }
    }
}
