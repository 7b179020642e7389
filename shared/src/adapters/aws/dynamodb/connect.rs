//! The connection to DynamoDB, opened before the first request needs it.

use async_trait::async_trait;
use aws_sdk_dynamodb::config::Builder;

use super::DynamoRowStore;
use super::layout::key;
use crate::adapters::aws::{Connect, answered, connect_timeouts};
use crate::error::StoreError;

/// The key `connect` reads, which no item has (`docs/dynamodb-design.md`): the read changes
/// nothing, finds nothing, and costs the least a read can (half a read unit).
const NO_ITEM: &str = "connect";

#[async_trait]
impl Connect for DynamoRowStore {
    fn service(&self) -> &'static str {
        "DynamoDB"
    }

    /// An eventually consistent `GetItem` of a key no item has: every function with rows may
    /// call `GetItem` on the table.
    async fn connect(&self) -> Result<(), StoreError> {
        let once = Builder::default()
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(connect_timeouts());
        let outcome = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(NO_ITEM.to_owned(), NO_ITEM)))
            .customize()
            .config_override(once)
            .send()
            .await;
        answered("opening the connection to DynamoDB", outcome)
    }
}
