//! Rows in DynamoDB, in one table keyed by `pk` and `sk`, with no secondary index: every read is
//! a consistent read of the base table, so a list made after a registration answered always shows
//! it, on any instance. The items are in `layout`; in short:
//!
//! - **read** is one consistent `GetItem` of the row item;
//! - **list** reads one of the catalog's copies (one small consistent `GetItem`), which names
//!   every list partition (status × category × shard of connectors) with a token that changes whenever the partition
//!   does. Partitions kept in memory at their current token answer from memory; the others are
//!   read with consistent `Query`s of just the partitions the filters select, holding list entries
//!   (no `ui_spec`), so a list reads about what it answers. A page (`limit`) merges the partitions
//!   in id order, reading each only as far as the page needs;
//! - **register** is one `TransactWriteItems`: the rows and their list entries, the connector's
//!   head moved to the new row on condition that it still points where it pointed when read (of
//!   two racing registrations one wins, the other reads again and retries), the retired row's
//!   status and date, its list entry moved, and every catalog copy's tokens for the partitions
//!   touched, and the registration's audit event in the outbox (`pk = audit`), which the table's
//!   stream hands to the audit-events function. Its actions and bytes are counted first, against
//!   DynamoDB's limits. The event's key is unique to the registration, so an attempt cancelled
//!   only because that event already exists means an earlier attempt landed unanswered (a
//!   timeout the SDK retried): the registration is then committed, once.
//!
//! The code follows the same lines: the store and its reads of single items here, listing in
//! `list` (with the partitions kept in memory in `list_cache`), registering in `commit`, and
//! creating the table in `table`.

mod commit;
mod connect;
mod layout;
mod list;
mod list_cache;
pub mod migrate;
#[cfg(feature = "aws-dynamodb-stream")]
pub mod stream_images;
mod table;

use std::sync::Arc;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;

use self::layout::{Item, other, s, text};
use self::list_cache::CachedLists;
use super::classify;
use crate::domain::{ConnectorRow, Status, StatusReason, Timestamp, Transition, Versions};
use crate::error::StoreError;
use crate::registry::{AuditDraft, AuditOutbox, AuditRecord, ListPage, ListQuery, RowStore};

/// `TransactWriteItems` takes at most 100 actions and 4 MB of items in all.
pub const MAX_TRANSACTION_ACTIONS: usize = 100;
pub const MAX_TRANSACTION_BYTES: usize = 4_000_000;
/// An item holds at most 400 KB.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The table's keys and settings: the single source of truth for the code that creates the table
/// and for the deployment template (a test compares the two, and the store conformance suite runs
/// on a table made from the template's own definition). There is no secondary index.
pub struct TableSchema;

impl TableSchema {
    pub const PARTITION_KEY: &'static str = layout::PK;
    pub const SORT_KEY: &'static str = layout::SK;
    /// The partition key of the audit outbox's items, which the stream consumer is given.
    pub const AUDIT_PARTITION: &'static str = layout::AUDIT_PK;
    /// The attribute of an outbox item holding its event.
    pub const AUDIT_EVENT: &'static str = layout::AUDIT_EVENT;

    /// Every attribute used in a key, all strings.
    pub fn key_attributes() -> Vec<&'static str> {
        vec![Self::PARTITION_KEY, Self::SORT_KEY]
    }

    /// On-demand capacity.
    pub const BILLING_MODE: &'static str = "PAY_PER_REQUEST";
    /// The stream's view: the audit-events and obsrv-mirror functions read the outbox items' new
    /// images.
    pub const STREAM_VIEW_TYPE: &'static str = "NEW_IMAGE";
    /// Encrypted with a KMS key (the AWS managed one, unless the template is given another).
    pub const SSE_TYPE: &'static str = "KMS";
    /// No item expires by itself: outbox items are removed once delivered, rows never.
    pub const TIME_TO_LIVE_ATTRIBUTE: Option<&'static str> = None;
}

#[derive(Clone)]
pub struct DynamoRowStore {
    client: Client,
    table: String,
    cached: Arc<CachedLists>,
}

impl DynamoRowStore {
    pub fn new(sdk: &SdkConfig, table: impl Into<String>) -> Self {
        Self::with_client(Client::new(sdk), table)
    }

    /// On a client configured beyond the process's `SdkConfig` (its own interceptors, retries).
    pub fn with_client(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), cached: Arc::default() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get_item(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("reading an item", e))?;
        Ok(output.item)
    }

    async fn get_row(&self, id: &str) -> Result<Option<(ConnectorRow, Item)>, StoreError> {
        match self.get_item(layout::row_key(id)).await? {
            Some(item) => Ok(Some((layout::decode_row(&item)?, item))),
            None => Ok(None),
        }
    }

    async fn live_id(&self, connector_id: &str) -> Result<Option<String>, StoreError> {
        let head = self.get_item(layout::head_key(connector_id)).await?;
        Ok(head.and_then(|item| text(&item, "live_id").map(str::to_owned)))
    }
}

#[async_trait]
impl RowStore for DynamoRowStore {
    async fn get(&self, id: &str, status: Status) -> Result<Option<ConnectorRow>, StoreError> {
        Ok(self.get_row(id).await?.map(|(row, _)| row).filter(|row| row.status == status))
    }

    async fn list(&self, query: &ListQuery) -> Result<ListPage, StoreError> {
        self.list_rows(query).await
    }

    async fn commit_registration(
        &self,
        rows: &[ConnectorRow],
        now: Timestamp,
        audit: &AuditDraft,
        versions: Versions,
    ) -> Result<(), StoreError> {
        self.commit_rows(rows, now, audit, versions).await
    }

    async fn commit_transition(
        &self,
        id: &str,
        to: Transition,
        reason: Option<&StatusReason>,
        now: Timestamp,
        audit: &AuditDraft,
    ) -> Result<Option<crate::registry::Transitioned>, StoreError> {
        self.transition(id, to, reason, now, audit).await
    }

    async fn import_row(&self, row: &ConnectorRow) -> Result<crate::registry::Imported, StoreError> {
        self.import(row).await
    }
}

#[async_trait]
impl AuditOutbox for DynamoRowStore {
    async fn pending(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", layout::PK)
            .expression_attribute_values(":pk", s(layout::AUDIT_PK))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| classify("reading the audit outbox", e))?;
        output.items().iter().map(layout::decode_audit).collect()
    }

    async fn remove(&self, record: &AuditRecord) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(layout::audit_key(record)))
            .send()
            .await
            .map_err(|e| classify("removing a delivered audit event", e))?;
        Ok(())
    }
}
