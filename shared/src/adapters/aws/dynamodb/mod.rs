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

mod layout;
mod lists;
pub mod migrate;
#[cfg(feature = "aws-dynamodb-stream")]
pub mod stream_images;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, KeySchemaElement, KeyType, Put, ScalarAttributeType,
    TableStatus, TransactWriteItem, Update,
};
use futures_util::future::try_join_all;
use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::value::RawValue;

use self::layout::{Item, Partition, item_size, other, s, text};
use self::lists::{CachedLists, CachedPartition};
use super::classify;
use crate::domain::{ConnectorRow, RowId, Status, Timestamp, place};
use crate::error::StoreError;
use crate::registry::{AuditDraft, AuditOutbox, AuditRecord, ListPage, ListQuery, ListedRow, RowStore};

/// `TransactWriteItems` takes at most 100 actions and 4 MB of items in all.
pub const MAX_TRANSACTION_ACTIONS: usize = 100;
pub const MAX_TRANSACTION_BYTES: usize = 4_000_000;
/// An item holds at most 400 KB.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// Every round of a race has a winner, so with N racers the last one wins by round N; the bound is
/// well above any realistic number of simultaneous registrations of one connector.
const COMMIT_ATTEMPTS: u32 = 40;
/// Partitions a list reads at once: enough to hide the round trips, few enough for a function's
/// share of a core and its connections.
const PARALLEL_QUERIES: usize = 8;
/// The fewest entries a page asks a partition for at a time: fewer round trips for small pages.
const MIN_PAGE_BATCH: usize = 4;

/// The table's keys: the single source of truth for the code that creates the table and for the
/// deployment template (a test compares the two). There is no secondary index.
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
}

#[derive(Clone)]
pub struct DynamoRowStore {
    client: Client,
    table: String,
    cached: Arc<CachedLists>,
}

enum Attempt {
    /// A condition failed because another registration got there first: read again and retry.
    Lost,
    /// An earlier attempt of this same registration committed, though its answer never came.
    AlreadyCommitted,
    Failed(StoreError),
}

impl From<StoreError> for Attempt {
    fn from(error: StoreError) -> Self {
        Attempt::Failed(error)
    }
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

    /// Creates the table (on-demand) when it does not exist, and waits until it is active. A table
    /// with other keys (the layout before this one) is refused: it needs `migrate-table`.
    pub async fn create_table_if_missing(&self) -> Result<(), StoreError> {
        match self.client.describe_table().table_name(&self.table).send().await {
            Ok(described) => {
                let keys: Vec<(String, String)> = described
                    .table()
                    .map(|t| t.key_schema())
                    .unwrap_or_default()
                    .iter()
                    .map(|k| (k.attribute_name().to_owned(), k.key_type().as_str().to_owned()))
                    .collect();
                let expected = [
                    (TableSchema::PARTITION_KEY.to_owned(), "HASH".to_owned()),
                    (TableSchema::SORT_KEY.to_owned(), "RANGE".to_owned()),
                ];
                if keys != expected {
                    return Err(other(anyhow::anyhow!(
                        "table {} has the keys {keys:?}, not (pk, sk): it has an earlier layout; \
                         copy it into a new table with `registry-server migrate-table`",
                        self.table
                    )));
                }
                return self.wait_until_active().await;
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(classify("describing the table", e)),
        }
        let mut request = self.client.create_table().table_name(&self.table).billing_mode(BillingMode::PayPerRequest);
        for (name, kind) in [(TableSchema::PARTITION_KEY, KeyType::Hash), (TableSchema::SORT_KEY, KeyType::Range)] {
            request = request
                .key_schema(KeySchemaElement::builder().attribute_name(name).key_type(kind).build().map_err(other)?)
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(name)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .map_err(other)?,
                );
        }
        match request.send().await {
            Ok(_) => {}
            // Another process created it meanwhile.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => {}
            Err(e) => return Err(classify("creating the table", e)),
        }
        self.wait_until_active().await
    }

    async fn wait_until_active(&self) -> Result<(), StoreError> {
        for _ in 0..300 {
            let table = self.client.describe_table().table_name(&self.table).send().await;
            let table = table.map_err(|e| classify("describing the table", e))?;
            if table.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(StoreError::Unavailable(anyhow::anyhow!("table {} did not become active", self.table)))
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

    /// Every list partition with its current token, from one of the catalog's copies.
    async fn catalog(&self) -> Result<BTreeMap<Partition, String>, StoreError> {
        let copy = usize::from(uuid::Uuid::new_v4().as_bytes()[0]) % layout::CATALOG_COPIES;
        let item = self.get_item(layout::catalog_key(copy)).await?.unwrap_or_default();
        Ok(item
            .iter()
            .filter_map(|(name, value)| {
                let partition = Partition::parse(name.strip_prefix(layout::PARTITION_ATTRIBUTE)?)?;
                Some((partition, value.as_s().ok()?.clone()))
            })
            .collect())
    }

    /// Up to `limit` entries of a partition after `after` (all of them, for `None`), and whether
    /// the partition may hold more.
    async fn query_partition(
        &self,
        partition: &Partition,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<(Vec<Arc<ListedRow>>, bool), StoreError> {
        let mut rows = Vec::new();
        let mut start_key: Option<Item> = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_names("#pk", layout::PK)
                .expression_attribute_values(":pk", s(partition.pk()))
                .set_exclusive_start_key(start_key.take());
            request = match after {
                Some(after) => request
                    .key_condition_expression("#pk = :pk AND #sk > :after")
                    .expression_attribute_names("#sk", layout::SK)
                    .expression_attribute_values(":after", s(after)),
                None => request.key_condition_expression("#pk = :pk"),
            };
            if let Some(limit) = limit {
                request = request.limit(i32::try_from(limit - rows.len()).unwrap_or(i32::MAX));
            }
            let output = request.send().await.map_err(|e| classify("listing rows", e))?;
            for item in output.items() {
                rows.push(Arc::new(listed_row(partition, item)?));
            }
            start_key = output.last_evaluated_key;
            let full = limit.is_some_and(|limit| rows.len() >= limit);
            if start_key.is_none() || full {
                return Ok((rows, start_key.is_some()));
            }
        }
    }

    /// A partition whole: from memory when kept at `token`, else read and kept.
    async fn whole_partition(&self, partition: &Partition, token: &str) -> Result<Arc<CachedPartition>, StoreError> {
        if let Some(kept) = self.cached.get(partition, token) {
            return Ok(kept);
        }
        let (rows, _) = self.query_partition(partition, None, None).await?;
        let kept = Arc::new(CachedPartition::new(token.to_owned(), rows));
        self.cached.keep(partition.clone(), kept.clone());
        Ok(kept)
    }

    /// `limit` rows after `after`, merged in id order from `partitions`, reading each only as far
    /// as the page needs: about `limit` entries in all, never `limit` from each.
    async fn page(
        &self,
        partitions: &[(Partition, String)],
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        struct Source<'p> {
            partition: &'p Partition,
            buffered: VecDeque<Arc<ListedRow>>,
            /// Where the next read of the partition starts, while it may hold more.
            more_after: Option<Option<String>>,
        }
        let wanted = limit + 1;
        let mut sources: Vec<Source> = partitions
            .iter()
            .map(|(partition, token)| match self.cached.get(partition, token) {
                Some(kept) => Source {
                    partition,
                    buffered: kept.after(after).iter().take(wanted).cloned().collect(),
                    more_after: None,
                },
                None => Source { partition, buffered: VecDeque::new(), more_after: Some(after.map(str::to_owned)) },
            })
            .collect();
        let mut rows: Vec<Arc<ListedRow>> = Vec::new();
        loop {
            let open = sources.iter().filter(|s| s.more_after.is_some()).count();
            let batch = (wanted - rows.len()).div_ceil(open.max(1)).clamp(MIN_PAGE_BATCH.min(wanted), wanted);
            let refills = sources.iter_mut().filter(|s| s.buffered.is_empty() && s.more_after.is_some()).map(
                |source| async move {
                    let start = source.more_after.clone().flatten();
                    let (read, more) = self.query_partition(source.partition, start.as_deref(), Some(batch)).await?;
                    let last = read.last().map(|row| row.id.as_str().to_owned());
                    source.buffered.extend(read);
                    source.more_after = if more { Some(last.or(start)) } else { None };
                    Ok::<_, StoreError>(())
                },
            );
            try_join_all(refills).await?;
            // Take the smallest id while every partition that may hold more has some buffered.
            while rows.len() < wanted && !sources.iter().any(|s| s.buffered.is_empty() && s.more_after.is_some()) {
                let next = sources
                    .iter_mut()
                    .filter(|s| !s.buffered.is_empty())
                    .min_by(|a, b| a.buffered[0].id.as_str().cmp(b.buffered[0].id.as_str()));
                match next.and_then(|source| source.buffered.pop_front()) {
                    Some(row) => rows.push(row),
                    None => break,
                }
            }
            let exhausted = sources.iter().all(|s| s.buffered.is_empty() && s.more_after.is_none());
            if rows.len() == wanted || exhausted {
                break;
            }
        }
        let mut page = ListPage { rows, next_after: None };
        if page.rows.len() > limit {
            page.rows.truncate(limit);
            page.next_after = page.rows.last().map(|r| r.id.as_str().to_owned());
        }
        Ok(page)
    }

    async fn try_commit(&self, rows: &[ConnectorRow], now: Timestamp, audit: &AuditDraft) -> Result<(), Attempt> {
        let mut transaction = Transaction::default();
        let mut touched: Vec<Partition> = Vec::new();
        let mut retired_ids: Vec<RowId> = Vec::new();
        for row in rows {
            let live_id = self.live_id(row.connector_id.as_str()).await?;
            let stored = self.get_row(row.id.as_str()).await?;
            let live = match live_id.as_deref().filter(|id| *id != row.id.as_str()) {
                Some(previous) => self.get_row(previous).await?.map(|(row, _)| row),
                None => None,
            };
            let placement = place(row, stored.as_ref().map(|(row, _)| row), live.as_ref(), now).map_err(StoreError::from)?;
            let new = placement.row;
            let row_condition = match &stored {
                Some((existing, item)) => {
                    let old_entry = Partition::of(existing);
                    if old_entry != Partition::of(&new) {
                        transaction.delete(&self.table, layout::list_key(&old_entry, row.id.as_str()))?;
                        touched.push(old_entry);
                    }
                    // Unchanged since it was read (no racing registration of the same id).
                    let seen = text(item, "updated_date").unwrap_or_default();
                    Expression::new("#updated = :seen").name("#updated", "updated_date").value(":seen", seen)
                }
                None => Expression::new("attribute_not_exists(pk)"),
            };
            transaction.put(&self.table, layout::row_item(&new)?, Some(row_condition))?;
            transaction.put(&self.table, layout::list_item(&new)?, None)?;
            touched.push(Partition::of(&new));

            let head_condition = match &live_id {
                Some(previous) => Expression::new("live_id = :previous").value(":previous", previous),
                None => Expression::new("attribute_not_exists(pk)"),
            };
            let mut head = layout::head_key(row.connector_id.as_str());
            head.insert("live_id".to_owned(), s(row.id.as_str()));
            transaction.put(&self.table, head, Some(head_condition))?;

            // The rule retires only the Live row it was given.
            if let (Some(retired), Some(was_live)) = (placement.retired, &live) {
                transaction.update(
                    &self.table,
                    layout::row_key(retired.id.as_str()),
                    Expression::new("SET #status = :retired, #updated = :now")
                        .name("#status", "status")
                        .name("#updated", "updated_date")
                        .value(":retired", Status::Retired.as_str())
                        .value(":now", &now.to_string()),
                    Some(Expression::new("#status = :live").name("#status", "status").value(":live", "Live")),
                )?;
                // Its list entry moves from the Live partition to the Retired one.
                transaction.delete(&self.table, layout::list_key(&Partition::of(was_live), retired.id.as_str()))?;
                transaction.put(&self.table, layout::list_item(&retired)?, None)?;
                touched.push(Partition::of(&retired));
                retired_ids.push(retired.id);
            }
        }
        touched.sort();
        touched.dedup();
        let token = layout::new_token();
        for copy in 0..layout::CATALOG_COPIES {
            let mut set = Expression::new("SET ");
            for (i, partition) in touched.iter().enumerate() {
                let separator = if i == 0 { "" } else { ", " };
                set.expression.push_str(&format!("{separator}#p{i} = :token"));
                set = set.name(&format!("#p{i}"), &partition.catalog_attribute());
            }
            transaction.update(&self.table, layout::catalog_key(copy), set.value(":token", &token), None)?;
        }
        // The audit event commits with the rows or not at all; a lost attempt leaves none.
        let record = audit.record(rows, &retired_ids, now);
        let audit_action = transaction.actions.len();
        transaction.put(
            &self.table,
            layout::audit_item(&record)?,
            Some(Expression::new("attribute_not_exists(pk)")),
        )?;
        transaction.check_limits()?;
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(transaction.actions))
            // The SDK's own retries of this attempt are then idempotent.
            .client_request_token(uuid::Uuid::new_v4().to_string())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    let codes: Vec<Option<&str>> = cancelled.cancellation_reasons().iter().map(|r| r.code()).collect();
                    match why_cancelled(&codes, audit_action) {
                        Cancelled::AlreadyCommitted => Err(Attempt::AlreadyCommitted),
                        Cancelled::Lost => Err(Attempt::Lost),
                        // The exception itself is no transient code; its reasons say it is.
                        Cancelled::Throttled => match classify("committing a registration", e) {
                            StoreError::Other(error) => Err(Attempt::Failed(StoreError::Unavailable(error))),
                            other => Err(Attempt::Failed(other)),
                        },
                        Cancelled::Refused => Err(Attempt::Failed(classify("committing a registration", e))),
                    }
                }
                // Another transaction on these items, or this one's token still in flight (its
                // outcome unknown): read again and retry; the next attempt's audit condition
                // tells whether the one in flight landed.
                Some(service)
                    if matches!(
                        service.code(),
                        Some("TransactionConflictException") | Some("TransactionInProgressException")
                    ) =>
                {
                    Err(Attempt::Lost)
                }
                _ => Err(Attempt::Failed(classify("committing a registration", e))),
            },
        }
    }
}

/// What the cancellation reasons of a registration's transaction (one code per action, in order)
/// say of the attempt.
#[derive(Debug, PartialEq, Eq)]
enum Cancelled {
    /// The registration's own audit event is already in the outbox, and only its commit writes
    /// it: an earlier attempt landed though its answer was lost (a timed-out attempt the SDK sent
    /// again, or one the commit loop retried).
    AlreadyCommitted,
    /// Another registration changed what this one read, or was in flight on the same items.
    Lost,
    /// Capacity, not the request: the caller may try again later (a 503).
    Throttled,
    /// Anything else (a validation error, an item collection over its limit).
    Refused,
}

fn why_cancelled(codes: &[Option<&str>], audit_action: usize) -> Cancelled {
    let any = |wanted: &[&str]| codes.iter().flatten().any(|code| wanted.contains(code));
    if codes.get(audit_action).copied().flatten() == Some("ConditionalCheckFailed") {
        Cancelled::AlreadyCommitted
    } else if any(&["ConditionalCheckFailed", "TransactionConflict"]) {
        Cancelled::Lost
    } else if any(&["ThrottlingError", "ProvisionedThroughputExceeded"]) {
        Cancelled::Throttled
    } else {
        Cancelled::Refused
    }
}

#[async_trait]
impl RowStore for DynamoRowStore {
    async fn get(&self, id: &str, status: Status) -> Result<Option<ConnectorRow>, StoreError> {
        Ok(self.get_row(id).await?.map(|(row, _)| row).filter(|row| row.status == status))
    }

    async fn list(&self, query: &ListQuery) -> Result<ListPage, StoreError> {
        let tokens = self.catalog().await?;
        self.cached.retain_current(&tokens);
        let partitions: Vec<(Partition, String)> = tokens
            .into_iter()
            .filter(|(p, _)| query.statuses.is_empty() || query.statuses.contains(&p.status))
            .filter(|(p, _)| query.categories.is_empty() || query.categories.contains(&p.category))
            .collect();
        let after = query.after.as_deref();
        if let Some(limit) = query.limit {
            if let Some(page) = self.cached.page(query, &partitions) {
                return Ok(page);
            }
            let page = self.page(&partitions, after, limit).await?;
            self.cached.keep_page(query, &partitions, &page);
            return Ok(page);
        }
        let reads: Vec<_> = partitions.iter().map(|(p, token)| self.whole_partition(p, token)).collect();
        let wholes: Vec<Arc<CachedPartition>> = stream::iter(reads).buffered(PARALLEL_QUERIES).try_collect().await?;
        let mut rows: Vec<Arc<ListedRow>> = wholes.iter().flat_map(|kept| kept.after(after).iter().cloned()).collect();
        rows.sort_unstable_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        Ok(ListPage { rows, next_after: None })
    }

    async fn commit_registration(
        &self,
        rows: &[ConnectorRow],
        now: Timestamp,
        audit: &AuditDraft,
    ) -> Result<(), StoreError> {
        for attempt in 0..COMMIT_ATTEMPTS {
            match self.try_commit(rows, now, audit).await {
                Ok(()) | Err(Attempt::AlreadyCommitted) => return Ok(()),
                Err(Attempt::Failed(error)) => return Err(error),
                Err(Attempt::Lost) => {
                    // Back off with jitter so racing registrations spread out.
                    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 50;
                    tokio::time::sleep(Duration::from_millis((10 << attempt.min(4)) + jitter)).await;
                }
            }
        }
        Err(StoreError::Conflict(
            "the registration kept losing to concurrent registrations of the same connector; please retry".into(),
        ))
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

/// A list entry as list answers with it; its status and category are its partition's.
fn listed_row(partition: &Partition, item: &Item) -> Result<ListedRow, StoreError> {
    let id = text(item, layout::SK).ok_or_else(|| other(anyhow::anyhow!("a list entry without an id")))?;
    let view = text(item, "view").ok_or_else(|| other(anyhow::anyhow!("the list entry {id} has no view")))?;
    Ok(ListedRow {
        id: stored_row_id(id)?,
        status: partition.status,
        category: partition.category.clone(),
        view: RawValue::from_string(view.to_owned()).map_err(other)?,
    })
}

/// A row id as stored: it was checked when its row was registered.
fn stored_row_id(id: &str) -> Result<RowId, StoreError> {
    use serde::Deserialize;
    RowId::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(id)).map_err(other)
}

/// The actions of one `TransactWriteItems`, with the bytes DynamoDB counts against its limit.
#[derive(Default)]
struct Transaction {
    actions: Vec<TransactWriteItem>,
    bytes: usize,
}

impl Transaction {
    fn put(&mut self, table: &str, item: Item, condition: Option<Expression>) -> Result<(), StoreError> {
        let size = item_size(&item);
        if size > MAX_ITEM_BYTES {
            return Err(StoreError::TooLarge(format!(
                "the item {} would be {size} bytes, more than the {MAX_ITEM_BYTES} bytes a DynamoDB item holds; \
                 make the icon or ui-config.json smaller",
                text(&item, layout::PK).unwrap_or_default()
            )));
        }
        self.bytes += size;
        let (expression, names, values) = Expression::parts(condition);
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .set_condition_expression(expression)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build()
            .map_err(other)?;
        self.actions.push(TransactWriteItem::builder().put(put).build());
        Ok(())
    }

    /// `set` is the update expression with its placeholders; `condition`'s are merged into it.
    fn update(
        &mut self,
        table: &str,
        key: Item,
        set: Expression,
        condition: Option<Expression>,
    ) -> Result<(), StoreError> {
        self.bytes += item_size(&key) + set.values.values().map(|v| v.as_s().map_or(0, String::len)).sum::<usize>();
        self.bytes += set.names.values().map(String::len).sum::<usize>();
        let mut merged = set.clone();
        if let Some(condition) = &condition {
            merged.names.extend(condition.names.clone());
            merged.values.extend(condition.values.clone());
        }
        let update = Update::builder()
            .table_name(table)
            .set_key(Some(key))
            .update_expression(set.expression)
            .set_condition_expression(condition.map(|c| c.expression))
            .set_expression_attribute_names((!merged.names.is_empty()).then_some(merged.names))
            .set_expression_attribute_values((!merged.values.is_empty()).then_some(merged.values))
            .build()
            .map_err(other)?;
        self.actions.push(TransactWriteItem::builder().update(update).build());
        Ok(())
    }

    fn delete(&mut self, table: &str, key: Item) -> Result<(), StoreError> {
        self.bytes += item_size(&key);
        let delete = Delete::builder().table_name(table).set_key(Some(key)).build().map_err(other)?;
        self.actions.push(TransactWriteItem::builder().delete(delete).build());
        Ok(())
    }

    /// The package's write budget keeps registrations inside these limits; this is the last word
    /// before DynamoDB would refuse the transaction.
    fn check_limits(&self) -> Result<(), StoreError> {
        if self.actions.len() > MAX_TRANSACTION_ACTIONS || self.bytes > MAX_TRANSACTION_BYTES {
            return Err(StoreError::TooLarge(format!(
                "the registration would write {} items of {} bytes in one transaction; DynamoDB takes at most \
                 {MAX_TRANSACTION_ACTIONS} items and {MAX_TRANSACTION_BYTES} bytes",
                self.actions.len(),
                self.bytes
            )));
        }
        Ok(())
    }
}

/// An expression with its placeholders.
#[derive(Clone)]
struct Expression {
    expression: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

type ExpressionParts = (Option<String>, Option<HashMap<String, String>>, Option<HashMap<String, AttributeValue>>);

impl Expression {
    fn new(expression: &str) -> Self {
        Self { expression: expression.to_owned(), names: HashMap::new(), values: HashMap::new() }
    }

    fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names.insert(placeholder.to_owned(), attribute.to_owned());
        self
    }

    fn value(mut self, placeholder: &str, value: &str) -> Self {
        self.values.insert(placeholder.to_owned(), s(value));
        self
    }

    fn parts(condition: Option<Expression>) -> ExpressionParts {
        match condition {
            None => (None, None, None),
            Some(c) => (
                Some(c.expression),
                (!c.names.is_empty()).then_some(c.names),
                (!c.values.is_empty()).then_some(c.values),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Cancelled, why_cancelled};

    #[test]
    fn cancellation_reasons_say_what_became_of_the_attempt() {
        let none = Some("None");
        let failed = Some("ConditionalCheckFailed");
        // The audit put is the last action; its condition alone failing means this one landed.
        assert_eq!(why_cancelled(&[none, none, failed], 2), Cancelled::AlreadyCommitted);
        assert_eq!(why_cancelled(&[failed, none, failed], 2), Cancelled::AlreadyCommitted);
        assert_eq!(why_cancelled(&[failed, none, none], 2), Cancelled::Lost);
        assert_eq!(why_cancelled(&[none, Some("TransactionConflict"), none], 2), Cancelled::Lost);
        assert_eq!(why_cancelled(&[none, Some("ThrottlingError"), none], 2), Cancelled::Throttled);
        assert_eq!(why_cancelled(&[Some("ProvisionedThroughputExceeded"), None, none], 2), Cancelled::Throttled);
        assert_eq!(why_cancelled(&[Some("ValidationError"), none, none], 2), Cancelled::Refused);
        assert_eq!(why_cancelled(&[], 2), Cancelled::Refused);
    }
}
