//! The SQS dead-letter queue, read for redrive.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;

use crate::sdk_error;
use crate::sqs::SERVICE;
use skyhook_domain::ports::{DeadLetterQueue, DeadMessage, StoreError};
use skyhook_domain::retry::visibility_timeout_secs;

/// Reads the dead-letter queue for redrive: messages are received with a visibility timeout
/// that holds them while a redrive decides, then deleted or released.
#[derive(Clone)]
pub struct SqsDeadLetterQueue {
    client: Client,
    dlq_url: String,
}

impl SqsDeadLetterQueue {
    pub fn new(client: Client, dlq_url: impl Into<String>) -> Self {
        Self {
            client,
            dlq_url: dlq_url.into(),
        }
    }
}

#[async_trait]
impl DeadLetterQueue for SqsDeadLetterQueue {
    async fn receive(&self, max: usize, hold: Duration) -> Result<Vec<DeadMessage>, StoreError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.dlq_url)
            .max_number_of_messages(i32::try_from(max.clamp(1, 10)).unwrap_or(10))
            .visibility_timeout(visibility_timeout_secs(hold).max(1))
            // A short long-poll asks every SQS server, so an empty answer means empty.
            .wait_time_seconds(1)
            .message_attribute_names("skyhook_attempts")
            .message_attribute_names("skyhook_reason")
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp,
            )
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                let attempts = m
                    .message_attributes()
                    .and_then(|a| a.get("skyhook_attempts"))
                    .and_then(|v| v.string_value())
                    .and_then(|v| v.parse().ok())
                    .or_else(|| {
                        m.attributes()
                            .and_then(|a| {
                                a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                            })
                            .and_then(|v| v.parse::<u32>().ok())
                            // This receive counts too; what came before it were the attempts.
                            .map(|n| n.saturating_sub(1))
                    });
                let reason = m
                    .message_attributes()
                    .and_then(|a| a.get("skyhook_reason"))
                    .and_then(|v| v.string_value())
                    .map(str::to_string);
                // Sent to this queue at: by the delivery function, or moved here by the
                // redrive policy (which keeps the first send's time; near enough).
                let dead_at = m
                    .attributes()
                    .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp))
                    .and_then(|v| v.parse::<i64>().ok())
                    .and_then(chrono::DateTime::from_timestamp_millis);
                Some(DeadMessage {
                    id: m.message_id()?.to_string(),
                    handle: m.receipt_handle()?.to_string(),
                    body: m.body().unwrap_or_default().to_string(),
                    attempts,
                    reason,
                    dead_at,
                })
            })
            .collect())
    }

    async fn delete(&self, handle: &str) -> Result<(), StoreError> {
        self.client
            .delete_message()
            .queue_url(&self.dlq_url)
            .receipt_handle(handle)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(())
    }

    async fn release(&self, handle: &str) -> Result<(), StoreError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.dlq_url)
            .receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(())
    }

    async fn held(&self) -> Result<u64, StoreError> {
        let name = aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible;
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.dlq_url)
            .attribute_names(name.clone())
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(out
            .attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }
}
