//! Registering: one `TransactWriteItems` per attempt, built and counted against DynamoDB's limits,
//! its cancellation reasons read to tell a lost race from an attempt that already landed, and the
//! loop that retries lost races. Apart from the reads and lists, which never write.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use super::layout::{self, Item, Partition, item_size, other, s, text};
use super::{DynamoRowStore, MAX_ITEM_BYTES, MAX_TRANSACTION_ACTIONS, MAX_TRANSACTION_BYTES, classify};
use crate::domain::{
    ConnectorRow, ImportAdmission, RowId, Status, StatusReason, Timestamp, Transition, TransitionPlan, Versions,
    admit_import, place, plan_transition,
};
use crate::error::StoreError;
use crate::registry::{AuditDraft, Imported, Transitioned};

/// Every round of a race has a winner, so with N racers the last one wins by round N; the bound is
/// well above any realistic number of simultaneous registrations of one connector.
const COMMIT_ATTEMPTS: u32 = 40;

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
    /// What `RowStore::commit_registration` does: attempts until one lands, backing off between
    /// lost races.
    pub(super) async fn commit_rows(
        &self,
        rows: &[ConnectorRow],
        now: Timestamp,
        audit: &AuditDraft,
        versions: Versions,
    ) -> Result<(), StoreError> {
        for attempt in 0..COMMIT_ATTEMPTS {
            match self.try_commit(rows, now, audit, versions).await {
                Ok(()) | Err(Attempt::AlreadyCommitted) => return Ok(()),
                Err(Attempt::Failed(error)) => return Err(error),
                Err(Attempt::Lost) => back_off(attempt).await,
            }
        }
        Err(StoreError::Conflict(
            "the registration kept losing to concurrent registrations of the same connector; please retry".into(),
        ))
    }

    async fn try_commit(
        &self,
        rows: &[ConnectorRow],
        now: Timestamp,
        audit: &AuditDraft,
        versions: Versions,
    ) -> Result<(), Attempt> {
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
            let placement = place(row, stored.as_ref().map(|(row, _)| row), live.as_ref(), now, versions)
                .map_err(StoreError::from)?;
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

            transaction.move_head(&self.table, row, live_id.as_deref())?;

            // The rule retires only the Live row it was given.
            if let (Some(retired), Some(was_live)) = (placement.retired, &live) {
                transaction.update(
                    &self.table,
                    layout::row_key(retired.id.as_str()),
                    Expression::new("SET #status = :retired, #updated = :now, #reason = :reason")
                        .name("#status", "status")
                        .name("#updated", "updated_date")
                        .name("#reason", layout::STATUS_REASON)
                        .value(":retired", Status::Retired.as_str())
                        .value(":now", &retired.updated_date.to_string())
                        .value(":reason", retired.status_reason.as_deref().unwrap_or_default()),
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
        transaction.touch_catalog(&self.table, &touched)?;
        // The audit event commits with the rows or not at all; a lost attempt leaves none.
        let record = audit.record(rows, &retired_ids, now);
        let audit_action = transaction.actions.len();
        transaction.put(
            &self.table,
            layout::audit_item(&record)?,
            Some(Expression::new("attribute_not_exists(pk)")),
        )?;
        self.outcome(transaction, audit_action, "committing a registration").await
    }

    /// Sends a transaction whose action `audit_action` puts its audit event, and says what became
    /// of it.
    async fn outcome(&self, transaction: Transaction, audit_action: usize, doing: &'static str) -> Result<(), Attempt> {
        let sent = self.send(transaction).await?;
        match sent {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    let codes: Vec<Option<&str>> = cancelled.cancellation_reasons().iter().map(|r| r.code()).collect();
                    match why_cancelled(&codes, audit_action) {
                        Cancelled::AlreadyCommitted => Err(Attempt::AlreadyCommitted),
                        Cancelled::Lost => Err(Attempt::Lost),
                        // The exception itself is no transient code; its reasons say it is.
                        Cancelled::Throttled => match classify(doing, e) {
                            StoreError::Other(error) => Err(Attempt::Failed(StoreError::Unavailable(error))),
                            other => Err(Attempt::Failed(other)),
                        },
                        Cancelled::Refused => Err(Attempt::Failed(classify(doing, e))),
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
                _ => Err(Attempt::Failed(classify(doing, e))),
            },
        }
    }

    /// What `RowStore::commit_transition` does: attempts until one lands, as registrations do.
    pub(super) async fn transition(
        &self,
        id: &str,
        to: Transition,
        reason: Option<&StatusReason>,
        now: Timestamp,
        audit: &AuditDraft,
    ) -> Result<Option<Transitioned>, StoreError> {
        // The outcome of the attempt that landed, known before it was sent.
        let mut planned = None;
        for attempt in 0..COMMIT_ATTEMPTS {
            match self.try_transition(id, to, reason, now, audit, &mut planned).await {
                Ok(done) => return Ok(done),
                Err(Attempt::AlreadyCommitted) => return Ok(planned),
                Err(Attempt::Failed(error)) => return Err(error),
                Err(Attempt::Lost) => back_off(attempt).await,
            }
        }
        Err(StoreError::Conflict(format!(
            "the transition of {id} kept losing to concurrent changes of the same connector; please retry"
        )))
    }

    /// One attempt: the row and the connector's Live row as read, changed as the rule says, on
    /// condition that neither changed since (their `updated_date`) and that the connector's head
    /// still points where it did.
    async fn try_transition(
        &self,
        id: &str,
        to: Transition,
        reason: Option<&StatusReason>,
        now: Timestamp,
        audit: &AuditDraft,
        planned: &mut Option<Transitioned>,
    ) -> Result<Option<Transitioned>, Attempt> {
        let Some((row, item)) = self.get_row(id).await? else { return Ok(None) };
        let live_id = self.live_id(row.connector_id.as_str()).await?;
        let live = match live_id.as_deref().filter(|live| *live != id) {
            Some(live) => self.get_row(live).await?,
            None => None,
        };
        let unchanged_since_read = |item: &Item| {
            let seen = text(item, "updated_date").unwrap_or_default();
            Expression::new("#updated = :seen").name("#updated", "updated_date").value(":seen", seen)
        };
        let plan = plan_transition(&row, live.as_ref().map(|(row, _)| row), to, reason, audit.subject(), now)
            .map_err(StoreError::from)?;
        let mut transaction = Transaction::default();
        let mut touched = vec![Partition::of(&row)];
        let (after, retired) = match plan {
            TransitionPlan::Unchanged => return Ok(Some(Transitioned::unchanged(row, live_id))),
            TransitionPlan::Delete => {
                transaction.delete_if(&self.table, layout::row_key(id), Some(unchanged_since_read(&item)))?;
                transaction.delete(&self.table, layout::list_key(&Partition::of(&row), id))?;
                (None, None)
            }
            TransitionPlan::Write { row: changed, retired } => {
                transaction.put(&self.table, layout::row_item(&changed)?, Some(unchanged_since_read(&item)))?;
                if Partition::of(&changed) != Partition::of(&row) {
                    transaction.delete(&self.table, layout::list_key(&Partition::of(&row), id))?;
                }
                transaction.put(&self.table, layout::list_item(&changed)?, None)?;
                touched.push(Partition::of(&changed));
                if changed.status == Status::Live {
                    transaction.move_head(&self.table, &changed, live_id.as_deref())?;
                } else if live_id.as_deref() == Some(id) {
                    let head_is_this = Expression::new("live_id = :id").value(":id", id);
                    transaction.delete_if(
                        &self.table,
                        layout::head_key(row.connector_id.as_str()),
                        Some(head_is_this),
                    )?;
                }
                if let (Some(retired), Some((was_live, live_item))) = (&retired, &live) {
                    transaction.put(&self.table, layout::row_item(retired)?, Some(unchanged_since_read(live_item)))?;
                    transaction.delete(&self.table, layout::list_key(&Partition::of(was_live), retired.id.as_str()))?;
                    transaction.put(&self.table, layout::list_item(retired)?, None)?;
                    touched.push(Partition::of(retired));
                }
                (Some(*changed), retired.map(|retired| retired.id))
            }
        };
        touched.sort();
        touched.dedup();
        transaction.touch_catalog(&self.table, &touched)?;
        let done = Transitioned::new(row, after, retired, live_id);
        let record = audit.transition_record(&done.before, to, reason, &done.retired_ids(), now);
        let audit_action = transaction.actions.len();
        transaction.put(
            &self.table,
            layout::audit_item(&record)?,
            Some(Expression::new("attribute_not_exists(pk)")),
        )?;
        *planned = Some(done);
        self.outcome(transaction, audit_action, "committing a status transition").await?;
        Ok(planned.clone())
    }
}

/// Waits before the next attempt after a lost race, with jitter so racing writers spread out.
async fn back_off(attempt: u32) {
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 50;
    tokio::time::sleep(Duration::from_millis((10 << attempt.min(4)) + jitter)).await;
}

impl DynamoRowStore {
    /// Sends a transaction counted against DynamoDB's limits, under a fresh client request token,
    /// so that the SDK's own retries of this attempt are idempotent. The outer error: it was
    /// refused before sending.
    async fn send(
        &self,
        transaction: Transaction,
    ) -> Result<
        Result<
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput,
            aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError, aws_smithy_runtime_api::http::Response>,
        >,
        StoreError,
    > {
        transaction.check_limits()?;
        Ok(self
            .client
            .transact_write_items()
            .set_transact_items(Some(transaction.actions))
            .client_request_token(uuid::Uuid::new_v4().to_string())
            .send()
            .await)
    }

    /// Imports a row as it is (`RowStore::import_row`): its item and list entry, the connector's
    /// head when it is Live, and the catalog's tokens of its partition, in one transaction on
    /// condition that nothing changed since the reads; a lost race reads again.
    pub(super) async fn import(&self, row: &ConnectorRow) -> Result<Imported, StoreError> {
        for _ in 0..COMMIT_ATTEMPTS {
            let stored = self.get_row(row.id.as_str()).await?.map(|(row, _)| row);
            let live_id = self.live_id(row.connector_id.as_str()).await?;
            let live = match &live_id {
                Some(id) => self.get_row(id).await?.map(|(row, _)| row),
                None => None,
            };
            match admit_import(row, stored.as_ref(), live.as_ref()) {
                ImportAdmission::Present => return Ok(Imported::Present),
                ImportAdmission::SecondLive { live } => {
                    return Ok(Imported::Refused(format!("{} has the Live version {live} already", row.connector_id)));
                }
                ImportAdmission::Write => {}
            }
            let mut transaction = Transaction::default();
            transaction.put(&self.table, layout::row_item(row)?, Some(Expression::new("attribute_not_exists(pk)")))?;
            transaction.put(&self.table, layout::list_item(row)?, None)?;
            if row.status == Status::Live {
                transaction.move_head(&self.table, row, live_id.as_deref())?;
            }
            transaction.touch_catalog(&self.table, &[Partition::of(row)])?;
            let sent = self.send(transaction).await?;
            match sent {
                Ok(_) => return Ok(Imported::Written),
                Err(e) => match e.as_service_error() {
                    // A registration or another import got there first: read again.
                    Some(TransactWriteItemsError::TransactionCanceledException(_)) => continue,
                    Some(service)
                        if matches!(
                            service.code(),
                            Some("TransactionConflictException") | Some("TransactionInProgressException")
                        ) =>
                    {
                        continue;
                    }
                    _ => return Err(classify("importing a row", e)),
                },
            }
        }
        Err(StoreError::Conflict(format!("importing {} kept losing to concurrent registrations", row.id)))
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

/// The actions of one `TransactWriteItems`, with the bytes DynamoDB counts against its limit.
#[derive(Default)]
struct Transaction {
    actions: Vec<TransactWriteItem>,
    bytes: usize,
}

impl Transaction {
    /// Points the connector's head at `row`, on condition that it still points at `live_id` (as
    /// read), or that there is none: of two racing writers one wins, the other reads again.
    fn move_head(&mut self, table: &str, row: &ConnectorRow, live_id: Option<&str>) -> Result<(), StoreError> {
        let condition = match live_id {
            Some(previous) => Expression::new("live_id = :previous").value(":previous", previous),
            None => Expression::new("attribute_not_exists(pk)"),
        };
        let mut head = layout::head_key(row.connector_id.as_str());
        head.insert("live_id".to_owned(), s(row.id.as_str()));
        self.put(table, head, Some(condition))
    }

    /// Gives `partitions` a fresh token in every copy of the catalog, so that lists read them again.
    fn touch_catalog(&mut self, table: &str, partitions: &[Partition]) -> Result<(), StoreError> {
        let token = layout::new_token();
        for copy in 0..layout::CATALOG_COPIES {
            let mut set = Expression::new("SET ");
            for (i, partition) in partitions.iter().enumerate() {
                let separator = if i == 0 { "" } else { ", " };
                set.expression.push_str(&format!("{separator}#p{i} = :token"));
                set = set.name(&format!("#p{i}"), &partition.catalog_attribute());
            }
            self.update(table, layout::catalog_key(copy), set.value(":token", &token), None)?;
        }
        Ok(())
    }

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
        self.delete_if(table, key, None)
    }

    fn delete_if(&mut self, table: &str, key: Item, condition: Option<Expression>) -> Result<(), StoreError> {
        self.bytes += item_size(&key);
        let (expression, names, values) = Expression::parts(condition);
        let delete = Delete::builder()
            .table_name(table)
            .set_key(Some(key))
            .set_condition_expression(expression)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build()
            .map_err(other)?;
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
