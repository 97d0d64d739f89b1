//! Operational events on the stack's EventBridge bus: source `skyhook`, the kind as
//! `detail-type`. Without a bus they are only logged (every one is logged either way).

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::sdk_error;
use skyhook_domain::model::{OPS_EVENT_SOURCE, OpsEvent};
use skyhook_domain::ports::{OpsEvents, StoreError};

const SERVICE: &str = "EventBridge";

#[derive(Clone)]
pub struct EventBridgeOpsEvents {
    client: Client,
    bus: Option<String>,
}

impl EventBridgeOpsEvents {
    /// `bus`: a name or ARN; `None` logs the events only.
    pub fn new(client: Client, bus: Option<String>) -> Self {
        Self { client, bus }
    }
}

#[async_trait]
impl OpsEvents for EventBridgeOpsEvents {
    async fn emit(&self, event: &OpsEvent) -> Result<(), StoreError> {
        tracing::info!(
            ops_event = event.kind.as_str(),
            tenant = %event.tenant,
            subscriber_id = %event.subscriber_id,
            reason = %event.reason,
            event_id = event.event_id.as_ref().map(|e| e.as_str()),
            "operational event"
        );
        let Some(bus) = &self.bus else {
            return Ok(());
        };
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(bus)
            .source(OPS_EVENT_SOURCE)
            .detail_type(event.kind.as_str())
            .detail(event.detail().to_string())
            .time(aws_sdk_eventbridge::primitives::DateTime::from_millis(
                event.at.timestamp_millis(),
            ))
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        if out.failed_entry_count() > 0 {
            let why = out
                .entries()
                .iter()
                .filter_map(|e| e.error_message())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(StoreError::unavailable(SERVICE, why));
        }
        Ok(())
    }
}
