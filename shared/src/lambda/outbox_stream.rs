//! The table's stream as its consumers of the audit outbox read it: each new outbox item's event
//! in order, and the partial batch response Lambda reads with `ReportBatchItemFailures`.

use std::future::Future;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

use crate::adapters::aws::audit_event_of;
use crate::error::{StoreError, error_chain};
use crate::registry::AuditRecord;

/// Hands each new audit event of a stream batch to `handle`, in order. The first record that
/// fails is the batch's failure, so that Lambda retries the batch from it (and in the end hands
/// it to the failure destination); records after it are left for that retry (the order of a
/// shard is kept). A record that is no new audit event is skipped.
pub(super) async fn each_audit_event<F, Fut>(event: &Event, what: &str, mut handle: F) -> DynamoDbEventResponse
where
    F: FnMut(AuditRecord) -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    let mut response = DynamoDbEventResponse::default();
    for record in &event.records {
        let sequence = record.change.sequence_number.as_deref().unwrap_or_default();
        let Some(audit) = audit_event_of(&record.event_name, &record.change.new_image) else {
            tracing::warn!(sequence, "skipping a stream record that is no new audit event");
            continue;
        };
        let handled = match audit {
            Ok(audit) => handle(audit).await,
            Err(error) => Err(error),
        };
        if let Err(error) = handled {
            tracing::error!(sequence, error = %error_chain(&error), "{what}");
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence.to_owned());
            response.batch_item_failures.push(failure);
            return response;
        }
    }
    response
}
