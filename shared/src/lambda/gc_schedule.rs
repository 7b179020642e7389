//! The schedule's events (EventBridge, once a day): archives no row references and uploads never
//! registered, older than the grace period, are removed (`registry::gc`). The answer counts
//! what went; a failure fails the invocation, which Lambda retries, and the next day's run
//! collects whatever is left.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use lambda_http::LambdaEvent;
use lambda_http::lambda_runtime::{run as run_runtime, service_fn};

use super::Error;
use crate::domain::Timestamp;
use crate::registry::{ArchiveStore, RowStore, gc};

/// The gc-archives function's state.
pub struct Collector {
    pub archives: Arc<dyn ArchiveStore>,
    pub rows: Arc<dyn RowStore>,
    /// `REGISTRY_GC_GRACE_SECONDS`.
    pub grace: Duration,
}

/// The function's answer: what one collection removed and kept.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Collected {
    pub archives_removed: usize,
    pub archive_bytes_removed: u64,
    pub uploads_removed: usize,
    pub kept_referenced: usize,
    pub kept_recent: usize,
}

/// Collects once, now, for the scheduled event.
pub async fn handle_schedule(collector: &Collector, event: &CloudWatchEvent) -> Result<Collected, Error> {
    tracing::info!(event_id = event.id.as_deref().unwrap_or_default(), scheduled = %event.time, "collecting orphaned archives");
    let Collector { archives, rows, grace } = collector;
    let collection = gc::collect(&**archives, &**rows, *grace, Timestamp::now(), false)
        .await
        .map_err(|e| format!("collecting orphaned archives failed: {}", crate::error::error_chain(&e)))?;
    Ok(Collected {
        archives_removed: collection.archives.len(),
        archive_bytes_removed: collection.archive_bytes(),
        uploads_removed: collection.uploads.len(),
        kept_referenced: collection.referenced,
        kept_recent: collection.recent,
    })
}

/// Runs the function until the Lambda runtime stops the process.
pub async fn run(collector: Collector) -> Result<(), Error> {
    let collector = Arc::new(collector);
    run_runtime(service_fn(move |event: LambdaEvent<CloudWatchEvent>| {
        let collector = collector.clone();
        async move { handle_schedule(&collector, &event.payload).await }
    }))
    .await
}
