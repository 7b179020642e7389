//! Creating the table: its key schema and settings from [`TableSchema`] (on-demand billing, the
//! stream, encryption), and the wait until it is active. Apart from the store's reads and writes, since only the local server (at start-up
//! and for `migrate-table`) and the tests create tables; a deployed table comes from the template.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, SseSpecification, SseType,
    StreamSpecification, StreamViewType, TableStatus,
};

use super::layout::other;
use super::{DynamoRowStore, TableSchema, classify};
use crate::error::StoreError;

impl DynamoRowStore {
    /// Creates the table as [`TableSchema`] describes it when it does not exist, and waits until it
    /// is active. A table with other keys (the layout before this one) is refused: it needs
    /// `migrate-table`. Point-in-time recovery is the deployment's to turn on (the template does).
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
        let stream = StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::from(TableSchema::STREAM_VIEW_TYPE))
            .build()
            .map_err(other)?;
        let mut request = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::from(TableSchema::BILLING_MODE))
            .stream_specification(stream)
            .sse_specification(
                SseSpecification::builder().enabled(true).sse_type(SseType::from(TableSchema::SSE_TYPE)).build(),
            );
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
}
