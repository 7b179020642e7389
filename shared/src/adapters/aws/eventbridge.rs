//! Audit events to EventBridge: one `PutEvents` entry per event, on the bus configured.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::classify;
use crate::error::StoreError;
use crate::registry::audit::AUDIT_SOURCE;
use crate::registry::{AuditRecord, AuditSink};

pub struct EventBridgeSink {
    client: Client,
    bus: String,
}

impl EventBridgeSink {
    /// Events go to the bus named (or given by ARN); `default` is the account's default bus.
    pub fn new(sdk: &SdkConfig, bus: impl Into<String>) -> Self {
        Self { client: Client::new(sdk), bus: bus.into() }
    }
}

#[async_trait]
impl AuditSink for EventBridgeSink {
    async fn publish(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let detail = serde_json::to_string(&record.detail).map_err(|e| StoreError::Other(e.into()))?;
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(AUDIT_SOURCE)
            .detail_type(&record.detail_type)
            .detail(detail)
            .build();
        let output =
            self.client.put_events().entries(entry).send().await.map_err(|e| classify("putting an audit event", e))?;
        // PutEvents answers 200 with the entries it could not take; those are worth a retry.
        match output.entries().first() {
            Some(entry) if entry.error_code().is_some() => Err(StoreError::Unavailable(anyhow::anyhow!(
                "EventBridge did not take the audit event {}: {} {}",
                record.detail.event_id,
                entry.error_code().unwrap_or_default(),
                entry.error_message().unwrap_or_default()
            ))),
            _ if output.failed_entry_count() > 0 => Err(StoreError::Unavailable(anyhow::anyhow!(
                "EventBridge did not take the audit event {}",
                record.detail.event_id
            ))),
            _ => Ok(()),
        }
    }
}
