//! The table's stream to Obsrv's PostgreSQL table: each new outbox item names the rows its
//! registration wrote and retired, and their current state is copied into the table (the
//! registry's store is the truth; the table keeps the newer of two states of a row).

use std::collections::BTreeSet;
use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_http::LambdaEvent;
use lambda_http::lambda_runtime::{run as run_runtime, service_fn};

use super::Error;
use crate::adapters::aws::audit_event_of;
use crate::error::error_chain;
use crate::registry::RowStore;
use crate::registry::obsrv::{Obsrv, mirror_rows};

/// Mirrors the rows of a stream batch's registrations, in order. The answer is the partial batch
/// response: the first record that failed, so that Lambda retries from it (and in the end hands
/// it to the failure destination). A record that is no new audit event is skipped.
pub async fn handle_stream(rows: &dyn RowStore, obsrv: &Obsrv, event: &Event) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in &event.records {
        let sequence = record.change.sequence_number.as_deref().unwrap_or_default();
        let Some(audit) = audit_event_of(&record.event_name, &record.change.new_image) else {
            tracing::warn!(sequence, "skipping a stream record that is no new audit event");
            continue;
        };
        let mirrored = match audit {
            Ok(audit) => {
                let ids: BTreeSet<String> = audit
                    .detail
                    .rows
                    .iter()
                    .map(|row| row.id.clone())
                    .chain(audit.detail.retired_ids.iter().cloned())
                    .collect();
                let lag = chrono::Utc::now().naive_utc()
                    - crate::domain::Timestamp::parse(&audit.detail.registered_at)
                        .map(|t| t.as_datetime().naive_utc())
                        .unwrap_or_else(|_| chrono::Utc::now().naive_utc());
                mirror_rows(rows, obsrv, &ids).await.map(|written| (written, lag.to_std().unwrap_or_default()))
            }
            Err(error) => Err(error),
        };
        match mirrored {
            Ok((written, lag)) => {
                tracing::info!(sequence, rows = written, lag_ms = lag.as_millis() as u64, "Obsrv table caught up");
                crate::metrics::obsrv_mirrored(written, lag);
            }
            Err(error) => {
                tracing::error!(sequence, error = %error_chain(&error), "the Obsrv table is behind");
                crate::metrics::obsrv_mirror_failed();
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(sequence.to_owned());
                response.batch_item_failures.push(failure);
                return response;
            }
        }
    }
    response
}

/// Runs the function until the Lambda runtime stops the process.
pub async fn run(rows: Arc<dyn RowStore>, obsrv: Obsrv) -> Result<(), Error> {
    run_runtime(service_fn(move |event: LambdaEvent<Event>| {
        let (rows, obsrv) = (rows.clone(), obsrv.clone());
        async move { Ok::<_, Error>(handle_stream(&*rows, &obsrv, &event.payload).await) }
    }))
    .await
}
