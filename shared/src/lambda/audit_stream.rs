//! The table's stream to EventBridge: the audit events registrations commit into the table's
//! outbox reach the audit-events function through the stream (filtered to them), and each is put
//! to the sink, then removed from the outbox.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use lambda_http::LambdaEvent;
use lambda_http::lambda_runtime::{run as run_runtime, service_fn};

use super::Error;
use super::outbox_stream::each_audit_event;
use crate::registry::{AuditOutbox, AuditSink};

/// Delivers the audit events of a stream batch, in order, each put to `sink` and then removed
/// from `outbox`; the answer is the partial batch response (`outbox_stream`).
pub async fn handle_stream(outbox: &dyn AuditOutbox, sink: &dyn AuditSink, event: &Event) -> DynamoDbEventResponse {
    each_audit_event(event, "an audit event was not delivered", |audit| async move {
        crate::registry::audit::deliver(outbox, sink, &audit).await?;
        tracing::info!(event_id = %audit.detail.event_id, "audit event delivered");
        Ok(())
    })
    .await
}

/// Runs the function until the Lambda runtime stops the process.
pub async fn run(outbox: Arc<dyn AuditOutbox>, sink: Arc<dyn AuditSink>) -> Result<(), Error> {
    run_runtime(service_fn(move |event: LambdaEvent<Event>| {
        let (outbox, sink) = (outbox.clone(), sink.clone());
        async move { Ok::<_, Error>(handle_stream(&*outbox, &*sink, &event.payload).await) }
    }))
    .await
}
