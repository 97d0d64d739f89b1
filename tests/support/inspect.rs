//! What a stack's resources in the emulator hold, read directly: the queues (depth, the
//! waiting messages, the DLQ, the operational events), the table's items and the secrets.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::Value;
use skyhook_aws::dynamodb::keys;
use skyhook_domain::ids::{SubscriberId, TenantId};
use skyhook_domain::keyring;

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

    /// Every item of this stack's table but the audit trail, the subscriber directory's
    /// bookkeeping (routes, version), which record the test's own set-up (tests use it to
    /// prove a refused request wrote nothing), and the sealed secrets, which
    /// [`Stack::secret_count`] counts.
    pub async fn table_items(&self) -> usize {
        let out = self
            .ddb
            .scan()
            .table_name(&self.resources.table)
            .filter_expression(
                "attribute_not_exists(kind) OR NOT (kind IN (:audit, :route, :directory, :rate, :sealed_sub, :sealed_src))",
            )
            // A tenant's publish bucket is bookkeeping too (see `tests/it/bad_input.rs`).
            .expression_attribute_values(
                ":rate",
                aws_sdk_dynamodb::types::AttributeValue::S("publish_rate".into()),
            )
            .expression_attribute_values(
                ":sealed_sub",
                aws_sdk_dynamodb::types::AttributeValue::S("sealed-subscriber-secret".into()),
            )
            .expression_attribute_values(
                ":sealed_src",
                aws_sdk_dynamodb::types::AttributeValue::S("sealed-source-secret".into()),
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

    /// Every secret this stack stores: its sealed items in the table and any secret in
    /// Secrets Manager under its subscribers' and sources' prefixes (the keyring aside).
    pub async fn secret_count(&self) -> usize {
        self.sealed_items().await.len() + self.secrets_manager_count().await
    }

    /// The stack's secrets in Secrets Manager under its subscribers' and sources' prefixes
    /// (where secrets were kept before they were sealed in the table).
    pub async fn secrets_manager_count(&self) -> usize {
        let out = self
            .secrets_client
            .list_secrets()
            .filters(
                aws_sdk_secretsmanager::types::Filter::builder()
                    .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                    .values(&self.secret_prefix)
                    .values(&self.source_secret_prefix)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.secret_list().len()
    }

    /// Every item of `table`, raw, page after page.
    pub async fn scan(&self, table: &str) -> Vec<HashMap<String, AttributeValue>> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .ddb
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scanning the table");
            all.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return all,
            }
        }
    }

    /// Every sealed item in the table (`SEALSUB#nn` and `SEALSRC#nn` partitions), raw.
    pub async fn sealed_items(&self) -> Vec<HashMap<String, AttributeValue>> {
        let mut all = Vec::new();
        for prefix in keys::SEALED_PREFIXES {
            for shard in 0..keys::SEALED_SHARDS {
                let pk = keys::sealed_shard_pk(prefix, shard);
                let out = self
                    .ddb
                    .query()
                    .table_name(&self.resources.table)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", AttributeValue::S(pk))
                    .send()
                    .await
                    .expect("reading the sealed items");
                all.extend(out.items().iter().cloned());
            }
        }
        all
    }

    /// A subscriber's sealed secret document, opened with the stack's keyring: `secret`,
    /// `previous`, `previous_until`, `headers`. Checks on the way that the stored item holds
    /// a sealed value and nothing of the document in plain text.
    pub async fn secret_document(&self, tenant: &str, id: &str) -> Value {
        let tenant = TenantId::parse(tenant).expect("a tenant");
        let id = SubscriberId::parse(id).expect("a subscriber id");
        let (pk, sk) = keys::sealed_subscriber_key(&tenant, &id);
        let item = self
            .ddb
            .get_item()
            .table_name(&self.resources.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk.clone()))
            .consistent_read(true)
            .send()
            .await
            .expect("reading the sealed item")
            .item
            .unwrap_or_else(|| panic!("no sealed item {sk}"));
        let sealed = item["sealed"].as_s().expect("a sealed value");
        assert!(sealed.starts_with("sk1."), "{sealed}");
        let plain = self
            .adapters
            .sealing
            .open(&keyring::subscriber_context(&tenant, &id), sealed)
            .await
            .expect("the sealed item opens");
        let document: Value = serde_json::from_slice(&plain).expect("a JSON document");
        let raw = format!("{item:?}");
        assert!(
            !raw.contains("whsec_"),
            "a signing secret in plain text: {raw}"
        );
        document
    }

    /// Makes subscriber `id` as a stack before sealed secrets left it: no sealed item, and
    /// its secret in Secrets Manager holding `value` (a document or a bare `whsec_…`).
    pub async fn make_legacy_secret(&self, tenant: &str, id: &str, value: &str) {
        let tenant = TenantId::parse(tenant).expect("a tenant");
        let id = SubscriberId::parse(id).expect("a subscriber id");
        let (pk, sk) = keys::sealed_subscriber_key(&tenant, &id);
        self.ddb
            .delete_item()
            .table_name(&self.resources.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk))
            .send()
            .await
            .expect("deleting the sealed item");
        self.secrets_client
            .create_secret()
            .name(format!("{}{tenant}/{id}", self.secret_prefix))
            .secret_string(value)
            .send()
            .await
            .expect("creating the legacy secret");
    }
}
