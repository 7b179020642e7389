//! The table's stream to Obsrv's PostgreSQL table: each new outbox item names the rows its
//! registration or status transition wrote, retired and deleted, and their current state is copied into the table (the
//! registry's store is the truth; the table keeps the newer of two states of a row).

use std::collections::BTreeSet;
use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use lambda_http::LambdaEvent;
use lambda_http::lambda_runtime::{run as run_runtime, service_fn};

use super::Error;
use super::outbox_stream::each_audit_event;
use crate::registry::RowStore;
use crate::registry::obsrv::{Obsrv, mirror_rows};

/// Mirrors the rows of a stream batch's registrations, in order; the answer is the partial batch
/// response (`outbox_stream`).
pub async fn handle_stream(rows: &dyn RowStore, obsrv: &Obsrv, event: &Event) -> DynamoDbEventResponse {
    each_audit_event(event, "the Obsrv table is behind", |audit| async move {
        let ids: BTreeSet<String> = audit.detail.touched_ids().map(str::to_owned).collect();
        let mirrored = mirror_rows(rows, obsrv, &ids).await;
        if mirrored.is_err() {
            crate::metrics::obsrv_mirror_failed();
        }
        let written = mirrored?;
        let registered = crate::domain::Timestamp::parse(&audit.detail.registered_at).ok();
        let lag = registered.and_then(|at| (chrono::Utc::now() - at.as_datetime()).to_std().ok()).unwrap_or_default();
        tracing::info!(rows = written, lag_ms = lag.as_millis() as u64, "Obsrv table caught up");
        crate::metrics::obsrv_mirrored(written, lag);
        Ok(())
    })
    .await
}

/// Runs the function until the Lambda runtime stops the process.
pub async fn run(rows: Arc<dyn RowStore>, obsrv: Obsrv) -> Result<(), Error> {
    run_runtime(service_fn(move |event: LambdaEvent<Event>| {
        let (rows, obsrv) = (rows.clone(), obsrv.clone());
        async move { Ok::<_, Error>(handle_stream(&*rows, &obsrv, &event.payload).await) }
    }))
    .await
}
