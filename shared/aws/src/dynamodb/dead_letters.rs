//! The dead-letter index: one item per dead-lettered delivery in one of the tenant's
//! dead-letter shards (`DL#{tenant}#{shard}` / `{event}#{subscriber}`, oldest event first),
//! and in the sparse index `gsi1` under `DLS#{tenant}#{subscriber}` by event. The messages
//! themselves wait in the SQS dead-letter queue; these expire with its retention. A message
//! parked for a disabled subscriber is kept in its entry instead (deflated), where enabling
//! the subscriber finds it through `gsi1`.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};

use super::cursor::{self, Binding};
use super::keys;
use super::{
    Item, SERVICE, SortRange, Table, attr, deflate, expiry, from_item, inflate, merged_page, s,
};
use crate::sdk_error;
use skyhook_domain::event_type::EventType;
use skyhook_domain::ids::{EventId, SubscriberId, TenantId};
use skyhook_domain::model::{DeadLetterEntry, format_time, parse_time};
use skyhook_domain::ports::{DeadLetterStore, Page, PageRequest, StoreError};

#[derive(Clone)]
pub struct DynamoDbDeadLetterStore {
    table: Table,
}

impl DynamoDbDeadLetterStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct DeadLetterItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    kind: String,
    tenant: TenantId,
    event_id: EventId,
    subscriber_id: SubscriberId,
    event_type: EventType,
    #[serde(default)]
    reason: String,
    attempts: u32,
    dead_at: String,
    expires_at: i64,
    /// A parked delivery message, deflated.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    message: Option<Vec<u8>>,
}

impl DeadLetterItem {
    fn entry(self) -> Result<DeadLetterEntry, StoreError> {
        let message = self
            .message
            .as_deref()
            .map(|m| inflate(m, "parked message"))
            .transpose()?
            .map(|m| String::from_utf8(m).map_err(|_| StoreError::Corrupt("parked message".into())))
            .transpose()?;
        Ok(DeadLetterEntry {
            message,
            dead_at: parse_time(&self.dead_at)
                .ok_or_else(|| StoreError::Corrupt("dead letter time".into()))?,
            tenant: self.tenant,
            event_id: self.event_id,
            subscriber_id: self.subscriber_id,
            event_type: self.event_type,
            reason: self.reason,
            attempts: self.attempts,
        })
    }
}

impl DynamoDbDeadLetterStore {
    /// A page of the tenant's entries, merged from its shards in event order; `after` is
    /// the last event id returned.
    async fn tenant_page(
        &self,
        tenant: &TenantId,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let partitions: Vec<String> = (0..keys::DEAD_LETTER_SHARDS)
            .map(|k| keys::dead_letter_shard_pk(tenant, k))
            .collect();
        if after.is_some_and(|a| !a.starts_with(EventId::PREFIX)) {
            return Err(StoreError::BadCursor);
        }
        merged_page(
            &self.table,
            &partitions,
            &SortRange::default(),
            true,
            limit,
            after,
        )
        .await
    }

    /// A page of one subscriber's entries, from the by-subscriber index; `after` is the
    /// last event id returned.
    async fn subscriber_page(
        &self,
        tenant: &TenantId,
        sub: &SubscriberId,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let index_pk = keys::dead_letter_by_subscriber_pk(tenant, sub);
        let mut query = self
            .table
            .query()
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(index_pk.clone()))
            .limit(i32::try_from(limit).unwrap_or(1000));
        if let Some(event) = after {
            // The index's start key is the whole key of the item last returned, which the
            // event id and the subscriber give.
            let event = EventId::parse(event).map_err(|_| StoreError::BadCursor)?;
            query = query
                .exclusive_start_key("gsi1pk", s(index_pk))
                .exclusive_start_key("gsi1sk", s(event.as_str()))
                .exclusive_start_key("pk", s(keys::dead_letter_pk(tenant, &event)))
                .exclusive_start_key("sk", s(keys::dead_letter_sk(&event, sub)));
        }
        let out = query.send().await.map_err(|e| sdk_error(SERVICE, &e))?;
        let items = out.items.unwrap_or_default();
        let more = out.last_evaluated_key.is_some_and(|k| !k.is_empty());
        let next = more
            .then(|| {
                items
                    .last()
                    .and_then(|i| attr(i, "gsi1sk"))
                    .map(str::to_string)
            })
            .flatten();
        Ok((items, next))
    }
}

#[async_trait]
impl DeadLetterStore for DynamoDbDeadLetterStore {
    async fn put(&self, e: &DeadLetterEntry) -> Result<(), StoreError> {
        let item = DeadLetterItem {
            pk: keys::dead_letter_pk(&e.tenant, &e.event_id),
            sk: keys::dead_letter_sk(&e.event_id, &e.subscriber_id),
            gsi1pk: keys::dead_letter_by_subscriber_pk(&e.tenant, &e.subscriber_id),
            gsi1sk: e.event_id.to_string(),
            kind: "dead_letter".into(),
            tenant: e.tenant.clone(),
            event_id: e.event_id.clone(),
            subscriber_id: e.subscriber_id.clone(),
            event_type: e.event_type.clone(),
            reason: e.reason.clone(),
            attempts: e.attempts,
            dead_at: format_time(e.dead_at),
            expires_at: expiry(e.dead_at, skyhook_domain::config::DEAD_LETTER_RETENTION),
            message: e
                .message
                .as_deref()
                .map(|m| deflate(m.as_bytes()))
                .transpose()?,
        };
        self.table.put(&item).await
    }

    async fn list(
        &self,
        tenant: &TenantId,
        subscriber: Option<&SubscriberId>,
        page: &PageRequest,
    ) -> Result<Page<DeadLetterEntry>, StoreError> {
        let binding = Binding::new(tenant, "dead_letters", &[subscriber.map(|s| s.to_string())]);
        let after: Option<String> = page
            .cursor
            .as_deref()
            .map(|c| cursor::decode::<String>(&binding, c))
            .transpose()?;
        let limit = page.limit.max(1);
        let (items, next) = match subscriber {
            None => self.tenant_page(tenant, limit, after.as_deref()).await?,
            Some(sub) => {
                self.subscriber_page(tenant, sub, limit, after.as_deref())
                    .await?
            }
        };
        Ok(Page {
            items: items
                .into_iter()
                .map(|i| from_item::<DeadLetterItem>(i)?.entry())
                .collect::<Result<_, _>>()?,
            next_cursor: next.map(|p| cursor::encode(&binding, &p)),
        })
    }

    async fn remove(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        subscriber: &SubscriberId,
    ) -> Result<(), StoreError> {
        self.table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .key("pk", s(keys::dead_letter_pk(tenant, event_id)))
            .key("sk", s(keys::dead_letter_sk(event_id, subscriber)))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(())
    }
}
