//! The delivery queue on SQS: fan-out sends, retry delays by visibility timeout, and moving
//! a message to the dead-letter queue with its reason.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use super::sdk_error;
use skyhook_domain::model::DeliveryMessage;
use skyhook_domain::ports::{BatchSendResult, DeadLetter, DeliveryQueue, StoreError};
use skyhook_domain::retry::visibility_timeout_secs;

/// The longest delay SQS gives a message it is sent.
const MAX_DELAY_SECS: u32 = 900;

pub(crate) const SERVICE: &str = "SQS";

#[derive(Clone)]
pub struct SqsDeliveryQueue {
    client: Client,
    queue_url: String,
    /// Only the delivery function dead-letters; the ingest functions have no DLQ access.
    dlq_url: Option<String>,
}

impl SqsDeliveryQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            dlq_url: None,
        }
    }

    pub fn with_dead_letter_queue(mut self, dlq_url: impl Into<String>) -> Self {
        self.dlq_url = Some(dlq_url.into());
        self
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    pub fn dlq_url(&self) -> Option<&str> {
        self.dlq_url.as_deref()
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, StoreError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| StoreError::unavailable(SERVICE, e))
}

#[async_trait]
impl DeliveryQueue for SqsDeliveryQueue {
    async fn send_batch(
        &self,
        messages: &[DeliveryMessage],
    ) -> Result<BatchSendResult, StoreError> {
        if messages.is_empty() {
            return Ok(BatchSendResult::default());
        }
        let entries = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.to_json())
                    // SQS fair queues: a subscriber with a backlog does not hold up others.
                    .message_group_id(m.subscriber_id.as_str())
                    .build()
                    .map_err(|e| StoreError::unavailable(SERVICE, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        let mut result = BatchSendResult::default();
        for failed in out.failed() {
            if let Ok(i) = failed.id().parse::<usize>() {
                result.failed.push(i);
            }
            if result.first_error.is_none() {
                result.first_error = Some(format!(
                    "{}: {}",
                    failed.code(),
                    failed.message().unwrap_or("no message")
                ));
            }
        }
        // An entry the response mentions in neither list was not confirmed: resend it.
        let confirmed: std::collections::HashSet<&str> =
            out.successful().iter().map(|s| s.id()).collect();
        for i in 0..messages.len() {
            let id = i.to_string();
            if !confirmed.contains(id.as_str()) && !result.failed.contains(&i) {
                result.failed.push(i);
            }
        }
        result.failed.sort_unstable();
        Ok(result)
    }

    async fn retry_after(&self, receipt_handle: &str, delay: Duration) -> Result<(), StoreError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(visibility_timeout_secs(delay))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(())
    }

    async fn send_later(
        &self,
        message: &DeliveryMessage,
        delay: Duration,
    ) -> Result<(), StoreError> {
        // SQS delays a message by up to 15 minutes; a longer wait is met again then.
        let seconds = delay.as_secs_f64().ceil().clamp(0.0, MAX_DELAY_SECS as f64) as i32;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message.to_json())
            .message_group_id(message.subscriber_id.as_str())
            .delay_seconds(seconds)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(())
    }

    async fn dead_letter(&self, body: &str, why: &DeadLetter) -> Result<(), StoreError> {
        let dlq_url = self.dlq_url.as_deref().ok_or_else(|| {
            StoreError::unavailable(SERVICE, "no dead-letter queue is configured")
        })?;
        let mut send = self
            .client
            .send_message()
            .queue_url(dlq_url)
            .message_body(body)
            .message_attributes("skyhook_reason", string_attribute(&why.reason)?)
            .message_attributes(
                "skyhook_attempts",
                string_attribute(&why.attempts.to_string())?,
            );
        for (name, value) in [
            ("skyhook_event_id", &why.event_id),
            ("skyhook_subscriber_id", &why.subscriber_id),
            ("skyhook_tenant", &why.tenant),
        ] {
            if let Some(v) = value {
                send = send.message_attributes(name, string_attribute(v)?);
            }
        }
        send.send().await.map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(())
    }
}
