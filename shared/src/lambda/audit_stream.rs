//! The table's stream to EventBridge: the audit events registrations commit into the table's
//! outbox reach the audit-events function through the stream (filtered to them), and each is put
//! to the sink, then removed from the outbox.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_http::LambdaEvent;
use lambda_http::lambda_runtime::{run as run_runtime, service_fn};

use super::Error;

use crate::adapters::aws::audit_event_of;
use crate::registry::{AuditOutbox, AuditSink};

/// Delivers the audit events of a stream batch, in order, each put to `sink` and then removed
/// from `outbox`. The answer is the partial batch response Lambda reads with
/// `ReportBatchItemFailures`: the first record that failed, so that Lambda retries the batch from
/// it; records after it are left for that retry (the order of a shard is kept). A record that is
/// no new audit event is skipped.
pub async fn handle_stream(outbox: &dyn AuditOutbox, sink: &dyn AuditSink, event: &Event) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in &event.records {
        let sequence = record.change.sequence_number.as_deref().unwrap_or_default();
        let Some(audit) = audit_event_of(&record.event_name, &record.change.new_image) else {
            tracing::warn!(sequence, "skipping a stream record that is no new audit event");
            continue;
        };
        let delivered = match audit {
            Ok(audit) => crate::registry::audit::deliver(outbox, sink, &audit).await.map(|_| audit),
            Err(error) => Err(error),
        };
        match delivered {
            Ok(audit) => tracing::info!(event_id = %audit.detail.event_id, "audit event delivered"),
            Err(error) => {
                tracing::error!(sequence, error = %crate::error::error_chain(&error), "an audit event was not delivered");
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
pub async fn run(outbox: Arc<dyn AuditOutbox>, sink: Arc<dyn AuditSink>) -> Result<(), Error> {
    run_runtime(service_fn(move |event: LambdaEvent<Event>| {
        let (outbox, sink) = (outbox.clone(), sink.clone());
        async move { Ok::<_, Error>(handle_stream(&*outbox, &*sink, &event.payload).await) }
    }))
    .await
}
