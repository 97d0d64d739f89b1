//! Idempotency keys: `I#{tenant}#{key}` / `#IDEM`, one partition per key, expiring by TTL
//! (and checked on read, since TTL deletion can lag by days).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use super::keys;
use super::{SERVICE, attr, expiry as expiry_secs, is_condition_failure, n, s, written};
use crate::sdk_error;
use skyhook_domain::event_type::EventType;
use skyhook_domain::ids::{EventId, TenantId};
use skyhook_domain::ports::{
    IDEMPOTENCY_LEASE, IdempotencyClaim, IdempotencyStore, PublishReceipt, StoreError,
};

fn expiry(now: DateTime<Utc>, ttl: Duration) -> aws_sdk_dynamodb::types::AttributeValue {
    n(expiry_secs(now, ttl))
}

type Item = super::Item;

fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("idempotency record {what}: {err}"))
}

fn get_s<'a>(item: &'a Item, key: &str) -> Result<&'a str, StoreError> {
    attr(item, key).ok_or_else(|| corrupt(key, "missing or not a string"))
}

fn get_n<T: std::str::FromStr>(item: &Item, key: &str) -> Result<T, StoreError> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt(key, "missing or not a number"))
}

#[derive(Clone)]
pub struct DynamoDbIdempotencyStore {
    client: Client,
    table: String,
}

impl DynamoDbIdempotencyStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn pk(tenant: &TenantId, key: &str) -> String {
        keys::idempotency_pk(tenant, key)
    }
}

impl DynamoDbIdempotencyStore {
    /// A key someone else holds: the receipt of its finished publish, or the publish to
    /// resume when its lease ran out (one caller wins that), or busy.
    async fn held(&self, pk: &str, now: DateTime<Utc>) -> Result<IdempotencyClaim, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(keys::IDEMPOTENCY_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        let item = out
            .item()
            .ok_or_else(|| StoreError::Conflict("idempotency key changed hands".into()))?;
        let existing =
            EventId::parse(get_s(item, "event_id")?).map_err(|e| corrupt("event_id", e))?;
        if get_s(item, "state")? == "complete" {
            return Ok(IdempotencyClaim::Completed(PublishReceipt {
                id: existing,
                event_type: EventType::parse(get_s(item, "type")?)
                    .map_err(|e| corrupt("type", e))?,
                subscribers: get_n(item, "subscribers")?,
            }));
        }
        // Take over an unfinished publish whose lease ran out; the condition makes sure only
        // one of several callers does.
        let taken = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(keys::IDEMPOTENCY_SK))
            .update_expression("SET lease_until = :lease")
            .condition_expression(
                "#state = :pending AND (attribute_not_exists(lease_until) OR lease_until <= :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":lease", expiry(now, IDEMPOTENCY_LEASE))
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        match taken {
            Ok(_) => Ok(IdempotencyClaim::Resume(existing)),
            Err(err) if is_condition_failure(&err) => Ok(IdempotencyClaim::Busy(existing)),
            Err(err) => Err(sdk_error(SERVICE, &err)),
        }
    }
}

#[async_trait]
impl IdempotencyStore for DynamoDbIdempotencyStore {
    async fn claim(
        &self,
        tenant: &TenantId,
        key: &str,
        event_id: &EventId,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        let pk = Self::pk(tenant, key);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&pk))
            .item("sk", s(keys::IDEMPOTENCY_SK))
            .item("kind", s("idempotency"))
            .item("event_id", s(event_id.as_str()))
            .item("state", s("pending"))
            .item("lease_until", expiry(now, IDEMPOTENCY_LEASE))
            .item("expires_at", expiry(now, ttl))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        match result {
            Ok(_) => return Ok(IdempotencyClaim::Claimed),
            Err(err) if is_condition_failure(&err) => {}
            Err(err) => return Err(sdk_error(SERVICE, &err)),
        }
        self.held(&pk, now).await
    }

    async fn abandon(&self, tenant: &TenantId, key: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(Self::pk(tenant, key)))
            .key("sk", s(keys::IDEMPOTENCY_SK))
            .update_expression("SET lease_until = :zero")
            .condition_expression("#state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        // Completed meanwhile, or gone: nothing to give up.
        written(result).map(drop)
    }

    async fn release(
        &self,
        tenant: &TenantId,
        key: &str,
        event_id: &EventId,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(Self::pk(tenant, key)))
            .key("sk", s(keys::IDEMPOTENCY_SK))
            .condition_expression("#state = :pending AND event_id = :ours")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":ours", s(event_id.as_str()))
            .send()
            .await;
        // Completed or taken over meanwhile, or gone: not ours to remove.
        written(result).map(drop)
    }

    async fn complete(
        &self,
        tenant: &TenantId,
        key: &str,
        receipt: &PublishReceipt,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(Self::pk(tenant, key)))
            .item("sk", s(keys::IDEMPOTENCY_SK))
            .item("kind", s("idempotency"))
            .item("event_id", s(receipt.id.as_str()))
            .item("state", s("complete"))
            .item("type", s(receipt.event_type.as_str()))
            .item("subscribers", n(receipt.subscribers))
            .item("expires_at", expiry(now, ttl))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(())
    }
}
