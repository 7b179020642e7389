//! Rows in DynamoDB.
//!
//! One table, partition key `pk`, two kinds of item:
//!
//! | item | `pk` | other attributes |
//! |---|---|---|
//! | a registry row | `row#<id>` | `row_set` (always `rows`), `id`, `connector_id`, `status`, `category`, `row` (the row as JSON) |
//! | a connector's head | `connector#<connector_id>` | `live_id`: the id of its Live row |
//!
//! Three global secondary indexes serve the list paths, all sorted by `id`: `rows_by_id` (every
//! row, hash `row_set`), `rows_by_status` and `rows_by_category`. Reads are `GetItem` on `pk`.
//! A registration is one `TransactWriteItems`: the head moves to the new row on condition that it
//! still points where it pointed when read, so of two racing registrations one wins and the other
//! reads again and retries; a connector never has two Live rows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, Put, ScalarAttributeType, TableStatus, TransactWriteItem,
};

use super::classify;
use crate::domain::{ConnectorRow, Status, Timestamp};
use crate::error::StoreError;
use crate::registry::{ListPage, ListQuery, ListedRow, RowStore};

const ROW_SET: &str = "rows";
/// DynamoDB refuses items over 400 KB; a row is refused a little before that, with a clear message.
const MAX_ROW_BYTES: usize = 380 * 1024;
/// `TransactWriteItems` takes at most 100 actions; a connector needs up to three.
const MAX_CONNECTORS_PER_PACKAGE: usize = 33;
/// Every round of a race has a winner, so with N racers the last one wins by round N; the bound is
/// well above any realistic number of simultaneous registrations of one connector.
const COMMIT_ATTEMPTS: u32 = 40;

/// The table's keys and indexes: the single source of truth for the code that creates the table
/// and for the deployment template (a test compares the two).
pub struct TableSchema;

impl TableSchema {
    pub const PARTITION_KEY: &'static str = "pk";
    /// `(index name, hash key, range key)`; every index projects all attributes.
    pub const INDEXES: [(&'static str, &'static str, &'static str); 3] =
        [("rows_by_id", "row_set", "id"), ("rows_by_status", "status", "id"), ("rows_by_category", "category", "id")];

    /// Every attribute used in a key, all strings.
    pub fn key_attributes() -> Vec<&'static str> {
        let mut names = vec![Self::PARTITION_KEY];
        for (_, hash, range) in Self::INDEXES {
            for name in [hash, range] {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }
}

#[derive(Clone)]
pub struct DynamoRowStore {
    client: Client,
    table: String,
}

enum Attempt {
    /// A condition failed because another registration got there first: read again and retry.
    Lost,
    Failed(StoreError),
}

impl From<StoreError> for Attempt {
    fn from(error: StoreError) -> Self {
        Attempt::Failed(error)
    }
}

impl DynamoRowStore {
    pub fn new(sdk: &SdkConfig, table: impl Into<String>) -> Self {
        Self { client: Client::new(sdk), table: table.into() }
    }

    /// Creates the table with its indexes (on-demand) when it does not exist, and waits until it
    /// is active.
    pub async fn create_table_if_missing(&self) -> Result<(), StoreError> {
        match self.client.describe_table().table_name(&self.table).send().await {
            Ok(_) => return self.wait_until_active().await,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(classify("describing the table", e)),
        }
        let string_key = |name: &str| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()
        };
        let key = |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
        let mut request = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(TableSchema::PARTITION_KEY, KeyType::Hash).map_err(other)?);
        for name in TableSchema::key_attributes() {
            request = request.attribute_definitions(string_key(name).map_err(other)?);
        }
        for (name, hash, range) in TableSchema::INDEXES {
            request = request.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(name)
                    .key_schema(key(hash, KeyType::Hash).map_err(other)?)
                    .key_schema(key(range, KeyType::Range).map_err(other)?)
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
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

    async fn get_item(&self, pk: String) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(TableSchema::PARTITION_KEY, AttributeValue::S(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("reading an item", e))?;
        Ok(output.item)
    }

    async fn get_row(&self, id: &str) -> Result<Option<ConnectorRow>, StoreError> {
        self.get_item(row_pk(id)).await?.map(|item| decode(&item)).transpose()
    }

    async fn live_id(&self, connector_id: &str) -> Result<Option<String>, StoreError> {
        let head = self.get_item(head_pk(connector_id)).await?;
        Ok(head.and_then(|item| item.get("live_id").and_then(|v| v.as_s().ok()).cloned()))
    }

    async fn try_commit(&self, rows: &[ConnectorRow], now: Timestamp) -> Result<(), Attempt> {
        let mut actions = Vec::new();
        for row in rows {
            let live_id = self.live_id(row.connector_id.as_str()).await?;
            let existing = self.get_row(row.id.as_str()).await?;

            let mut new = row.clone();
            let row_condition = match existing {
                Some(existing) if existing.connector_id != row.connector_id => {
                    return Err(Attempt::Failed(StoreError::Conflict(format!(
                        "row id {} already belongs to connector {}",
                        row.id, existing.connector_id
                    ))));
                }
                Some(existing) => {
                    new.created_by = existing.created_by;
                    new.created_date = existing.created_date;
                    new.updated_by = existing.updated_by;
                    new.live_date = existing.live_date.or(new.live_date);
                    Condition::new("connector_id = :cid").value(":cid", row.connector_id.as_str())
                }
                None => Condition::new("attribute_not_exists(pk)"),
            };
            actions.push(put(&self.table, encode(&new)?, row_condition)?);

            let head_condition = match &live_id {
                Some(previous) => Condition::new("live_id = :previous").value(":previous", previous),
                None => Condition::new("attribute_not_exists(pk)"),
            };
            let head = HashMap::from([
                (TableSchema::PARTITION_KEY.to_owned(), AttributeValue::S(head_pk(row.connector_id.as_str()))),
                ("live_id".to_owned(), AttributeValue::S(row.id.as_str().to_owned())),
            ]);
            actions.push(put(&self.table, head, head_condition)?);

            let previous = match live_id.filter(|id| id != row.id.as_str()) {
                Some(previous) => self.get_row(&previous).await?,
                None => None,
            };
            if let Some(mut retired) = previous.filter(|r| r.status == Status::Live) {
                retired.status = Status::Retired;
                retired.updated_date = now;
                let condition = Condition::new("#status = :live").name("#status", "status").value(":live", "Live");
                actions.push(put(&self.table, encode(&retired)?, condition)?);
            }
        }
        match self.client.transact_write_items().set_transact_items(Some(actions)).send().await {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled))
                    if cancelled
                        .cancellation_reasons()
                        .iter()
                        .any(|r| matches!(r.code(), Some("ConditionalCheckFailed") | Some("TransactionConflict"))) =>
                {
                    Err(Attempt::Lost)
                }
                Some(service) if service.code() == Some("TransactionConflictException") => Err(Attempt::Lost),
                _ => Err(Attempt::Failed(classify("committing a registration", e))),
            },
        }
    }
}

#[async_trait]
impl RowStore for DynamoRowStore {
    async fn get(&self, id: &str, status: Status) -> Result<Option<ConnectorRow>, StoreError> {
        Ok(self.get_row(id).await?.filter(|row| row.status == status))
    }

    async fn list(&self, query: &ListQuery) -> Result<ListPage, StoreError> {
        let plan = QueryPlan::for_query(query);
        let wanted = query.limit.map(|limit| limit + 1);
        let mut rows = Vec::new();
        let mut start_key = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(plan.index)
                .key_condition_expression(plan.key_condition.expression.clone())
                .set_exclusive_start_key(start_key)
                .set_expression_attribute_names(Some(plan.names.clone()))
                .set_expression_attribute_values(Some(plan.values.clone()));
            if let Some(filter) = &plan.filter {
                request = request.filter_expression(filter);
            }
            let output = request.send().await.map_err(|e| classify("listing rows", e))?;
            for item in output.items() {
                rows.push(Arc::new(ListedRow::of(&decode(item)?)?));
                if wanted.is_some_and(|w| rows.len() == w) {
                    break;
                }
            }
            start_key = output.last_evaluated_key;
            if start_key.is_none() || wanted.is_some_and(|w| rows.len() == w) {
                break;
            }
        }
        let mut page = ListPage { rows, next_after: None };
        if let Some(limit) = query.limit.filter(|limit| page.rows.len() > *limit) {
            page.rows.truncate(limit);
            page.next_after = page.rows.last().map(|r| r.id.as_str().to_owned());
        }
        Ok(page)
    }

    async fn commit_registration(&self, rows: &[ConnectorRow], now: Timestamp) -> Result<(), StoreError> {
        if rows.len() > MAX_CONNECTORS_PER_PACKAGE {
            return Err(StoreError::TooLarge(format!(
                "a package may declare at most {MAX_CONNECTORS_PER_PACKAGE} connectors on this backend"
            )));
        }
        for attempt in 0..COMMIT_ATTEMPTS {
            match self.try_commit(rows, now).await {
                Ok(()) => return Ok(()),
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

/// Which index a list query reads, and how.
struct QueryPlan {
    index: &'static str,
    key_condition: Condition,
    filter: Option<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl QueryPlan {
    /// One status: its index. Else one category: its index. Else every row. What the index does
    /// not select is filtered; the cursor becomes `id > :after` on the index's sort key.
    fn for_query(query: &ListQuery) -> Self {
        let statuses: Vec<&str> = query.statuses.iter().map(|s| s.as_str()).collect();
        let categories: Vec<&str> = query.categories.iter().map(|c| c.as_str()).collect();
        let (index, hash, hash_value, filter_statuses, filter_categories) = if let [status] = statuses.as_slice() {
            ("rows_by_status", "status", *status, vec![], categories)
        } else if let [category] = categories.as_slice() {
            ("rows_by_category", "category", *category, statuses, vec![])
        } else {
            ("rows_by_id", "row_set", ROW_SET, statuses, categories)
        };
        let mut key_condition = Condition::new("#hash = :hash").name("#hash", hash).value(":hash", hash_value);
        if let Some(after) = &query.after {
            key_condition.expression.push_str(" AND #id > :after");
            key_condition = key_condition.name("#id", "id").value(":after", after);
        }
        let mut clauses = Vec::new();
        for (attribute, values) in [("status", filter_statuses), ("category", filter_categories)] {
            if values.is_empty() {
                continue;
            }
            let placeholders: Vec<String> = (0..values.len()).map(|i| format!(":{attribute}{i}")).collect();
            clauses.push(format!("#{attribute} IN ({})", placeholders.join(", ")));
            key_condition = key_condition.name(&format!("#{attribute}"), attribute);
            for (placeholder, value) in placeholders.iter().zip(values) {
                key_condition = key_condition.value(placeholder, value);
            }
        }
        let names = key_condition.names.clone();
        let values = key_condition.values.clone();
        QueryPlan { index, key_condition, filter: (!clauses.is_empty()).then(|| clauses.join(" AND ")), names, values }
    }
}

/// A condition or key expression with its placeholders.
#[derive(Clone)]
struct Condition {
    expression: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Condition {
    fn new(expression: &str) -> Self {
        Self { expression: expression.to_owned(), names: HashMap::new(), values: HashMap::new() }
    }

    fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names.insert(placeholder.to_owned(), attribute.to_owned());
        self
    }

    fn value(mut self, placeholder: &str, value: &str) -> Self {
        self.values.insert(placeholder.to_owned(), AttributeValue::S(value.to_owned()));
        self
    }
}

fn put(
    table: &str,
    item: HashMap<String, AttributeValue>,
    condition: Condition,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition.expression)
        .set_expression_attribute_names((!condition.names.is_empty()).then_some(condition.names))
        .set_expression_attribute_values((!condition.values.is_empty()).then_some(condition.values))
        .build()
        .map_err(other)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn row_pk(id: &str) -> String {
    format!("row#{id}")
}

fn head_pk(connector_id: &str) -> String {
    format!("connector#{connector_id}")
}

fn encode(row: &ConnectorRow) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let json = serde_json::to_string(row).map_err(other)?;
    if json.len() > MAX_ROW_BYTES {
        return Err(StoreError::TooLarge(format!(
            "the row {} is {} bytes, more than the {MAX_ROW_BYTES} bytes a DynamoDB item can hold; \
             make the icon or ui-config.json smaller",
            row.id,
            json.len()
        )));
    }
    let s = |v: &str| AttributeValue::S(v.to_owned());
    Ok(HashMap::from([
        (TableSchema::PARTITION_KEY.to_owned(), AttributeValue::S(row_pk(row.id.as_str()))),
        ("row_set".to_owned(), s(ROW_SET)),
        ("id".to_owned(), s(row.id.as_str())),
        ("connector_id".to_owned(), s(row.connector_id.as_str())),
        ("status".to_owned(), s(row.status.as_str())),
        ("category".to_owned(), s(row.category.as_str())),
        ("row".to_owned(), AttributeValue::S(json)),
    ]))
}

fn decode(item: &HashMap<String, AttributeValue>) -> Result<ConnectorRow, StoreError> {
    let json =
        item.get("row").and_then(|v| v.as_s().ok()).ok_or_else(|| other(anyhow::anyhow!("an item without a row")))?;
    let mut row: ConnectorRow = serde_json::from_str(json).map_err(other)?;
    // The indexed attribute is what conditions check; keep the row in step with it.
    if let Some(status) = item.get("status").and_then(|v| v.as_s().ok()).and_then(|s| s.parse().ok()) {
        row.status = status;
    }
    Ok(row)
}

fn other(error: impl Into<anyhow::Error>) -> StoreError {
    StoreError::Other(error.into())
}
