//! The one-shot copy of a table of the first layout (partition key `pk` only, lists through three
//! global secondary indexes) into a table of this one (`registry-server migrate-table`).
//!
//! The first layout's items: `row#<id>` with the row as JSON in `row` and its status in `status`;
//! `connector#<connector_id>` with `live_id`. Both are read with a consistent `Scan`, then written
//! as this layout's row items, list entries, heads and catalog copies with `BatchWriteItem`. The
//! catalog goes last, so a copy that stopped half-way can run again; a target that has a catalog
//! already (one in use, or copied before) is refused.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

use super::layout::{self, Item, Partition, s, text};
use super::{DynamoRowStore, classify, other};
use crate::domain::ConnectorRow;
use crate::error::StoreError;

/// `BatchWriteItem` takes at most 25 requests.
const BATCH: usize = 25;

/// What a copy wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Copied {
    pub rows: usize,
    pub heads: usize,
}

impl DynamoRowStore {
    /// Copies every row and head of the first-layout table `from` into this store's table, which
    /// must exist and have no catalog yet.
    pub async fn copy_from_first_layout(&self, from: &str) -> Result<Copied, StoreError> {
        if self.get_item(layout::catalog_key(0)).await?.is_some() {
            return Err(other(anyhow::anyhow!(
                "table {} is in use already (it has a catalog); copy into a new, empty table",
                self.table
            )));
        }
        let mut rows: Vec<ConnectorRow> = Vec::new();
        let mut heads: HashMap<String, String> = HashMap::new();
        let mut start_key = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(from)
                .consistent_read(true)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| classify("reading the table to copy", e))?;
            for item in page.items() {
                let pk = text(item, "pk").unwrap_or_default();
                if pk.starts_with("row#") {
                    rows.push(first_layout_row(item)?);
                } else if let Some(connector) = pk.strip_prefix("connector#")
                    && let Some(live) = text(item, "live_id")
                {
                    heads.insert(connector.to_owned(), live.to_owned());
                }
            }
            start_key = page.last_evaluated_key;
            if start_key.is_none() {
                break;
            }
        }
        let mut items: Vec<Item> = Vec::new();
        let mut partitions = BTreeSet::new();
        for row in &rows {
            items.push(layout::row_item(row)?);
            items.push(layout::list_item(row)?);
            partitions.insert(Partition::of(row));
        }
        for (connector, live) in &heads {
            let mut head = layout::head_key(connector);
            head.insert("live_id".to_owned(), s(live.as_str()));
            items.push(head);
        }
        self.write_all(items).await?;
        let token = layout::new_token();
        let catalogs = (0..layout::CATALOG_COPIES)
            .map(|copy| {
                let mut item = layout::catalog_key(copy);
                item.extend(partitions.iter().map(|p| (p.catalog_attribute(), s(token.as_str()))));
                item
            })
            .collect();
        self.write_all(catalogs).await?;
        Ok(Copied { rows: rows.len(), heads: heads.len() })
    }

    /// Puts every item, 25 at a time, sending again what DynamoDB left unprocessed.
    async fn write_all(&self, items: Vec<Item>) -> Result<(), StoreError> {
        for chunk in items.chunks(BATCH) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder().set_item(Some(item.clone())).build().map_err(other)?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<_, StoreError>>()?;
            for attempt in 0u32.. {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| classify("writing the copy", e))?;
                requests = output.unprocessed_items.and_then(|mut left| left.remove(&self.table)).unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if attempt == 20 {
                    return Err(StoreError::Unavailable(anyhow::anyhow!("DynamoDB kept items unprocessed")));
                }
                tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
            }
        }
        Ok(())
    }
}

fn first_layout_row(item: &Item) -> Result<ConnectorRow, StoreError> {
    let json = text(item, "row").ok_or_else(|| other(anyhow::anyhow!("a first-layout row item without its row")))?;
    let mut row: ConnectorRow = serde_json::from_str(json).map_err(other)?;
    // The first layout, too, kept the indexed status over the one inside the JSON.
    if let Some(status) = text(item, "status").and_then(|s| s.parse().ok()) {
        row.status = status;
    }
    Ok(row)
}
