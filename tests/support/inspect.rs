//! What a stack's resources in the emulator hold, read directly: the queues (depth, the
//! waiting messages, the DLQ, the operational events), the table's items and the secrets.

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::Value;

use crate::Stack;

impl Stack {
    /// The operational events the stack put on its bus so far (with `ops_bus`), each as
    /// EventBridge delivers it: `source`, `detail-type`, `detail`.
    pub async fn ops_events(&self) -> Vec<Value> {
        let Some(url) = &self.ops_queue_url else {
            panic!("the stack was built without ops_bus");
        };
        let mut all = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("reading the operational events");
            let batch: Vec<Value> = out
                .messages()
                .iter()
                .filter_map(|m| serde_json::from_str(m.body()?).ok())
                .collect();
            for m in out.messages() {
                if let Some(h) = m.receipt_handle() {
                    let _ = self
                        .sqs
                        .delete_message()
                        .queue_url(url)
                        .receipt_handle(h)
                        .send()
                        .await;
                }
            }
            if batch.is_empty() {
                return all;
            }
            all.extend(batch);
        }
    }

    /// Visible plus in-flight messages of a queue.
    pub async fn queue_depth(&self, url: &str) -> usize {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let attrs = out.attributes().cloned().unwrap_or_default();
        [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .map(|k| {
            attrs
                .get(k)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0)
        })
        .sum()
    }

    /// Takes every message waiting in the delivery queue out of it; returns their bodies.
    pub async fn take_queued(&self) -> Vec<String> {
        let mut taken = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.resources.queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .send()
                .await
                .expect("receiving from the delivery queue");
            if out.messages().is_empty() {
                return taken;
            }
            for m in out.messages() {
                self.sqs
                    .delete_message()
                    .queue_url(&self.resources.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("deleting from the delivery queue");
                taken.push(m.body().unwrap_or_default().to_string());
            }
        }
    }

    /// Moves every message waiting in the delivery queue to the dead-letter queue without
    /// attributes, as the queue's redrive policy does when receives run out; returns the
    /// bodies moved.
    pub async fn move_queued_to_dlq(&self) -> Vec<String> {
        let moved = self.take_queued().await;
        for body in &moved {
            self.sqs
                .send_message()
                .queue_url(&self.resources.dlq_url)
                .message_body(body)
                .send()
                .await
                .expect("sending to the DLQ");
        }
        moved
    }

    /// Receives (and leaves) up to 10 messages of the DLQ.
    pub async fn dlq_messages(&self) -> Vec<aws_sdk_sqs::types::Message> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.resources.dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        out.messages().to_vec()
    }

    /// Every item of this stack's table but the audit trail and the subscriber directory's
    /// bookkeeping (routes, version), which record the test's own set-up (tests use it to
    /// prove a refused request wrote nothing).
    pub async fn table_items(&self) -> usize {
        let out = self
            .ddb
            .scan()
            .table_name(&self.resources.table)
            .filter_expression(
                "attribute_not_exists(kind) OR NOT (kind IN (:audit, :route, :directory, :rate))",
            )
            // A tenant's publish bucket is bookkeeping too (see `tests/it/bad_input.rs`).
            .expression_attribute_values(
                ":rate",
                aws_sdk_dynamodb::types::AttributeValue::S("publish_rate".into()),
            )
            .expression_attribute_values(
                ":audit",
                aws_sdk_dynamodb::types::AttributeValue::S("audit".into()),
            )
            .expression_attribute_values(
                ":route",
                aws_sdk_dynamodb::types::AttributeValue::S("route".into()),
            )
            .expression_attribute_values(
                ":directory",
                aws_sdk_dynamodb::types::AttributeValue::S("directory".into()),
            )
            .send()
            .await
            .unwrap();
        out.items().len()
    }

    pub async fn secret_count(&self) -> usize {
        let out = self
            .secrets_client
            .list_secrets()
            .filters(
                aws_sdk_secretsmanager::types::Filter::builder()
                    .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                    .values(&self.secret_prefix)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.secret_list().len()
    }
}
