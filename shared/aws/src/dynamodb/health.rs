//! Subscriber health: one item per failing subscriber in its own ledger partition
//! (`S#{tenant}#{sub}` / `HEALTH`), deleted by the first success. Changes that other
//! instances must see (a streak's first failure, the breaker opening or closing) also raise
//! the tenant's health version on `T#{tenant}` / `#VERSION`, which every delivery batch reads
//! anyway; so a healthy subscriber costs no read and no write.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

use super::{Item, SERVICE, Table, attr, is_condition_failure, keys, s, written};
use crate::sdk_error;
use skyhook_domain::breaker::{BreakerState, Health};
use skyhook_domain::ids::{SubscriberId, TenantId};
use skyhook_domain::model::{format_time, parse_time};
use skyhook_domain::ports::{HealthStore, StoreError};

#[derive(Clone)]
pub struct DynamoDbHealthStore {
    table: Table,
}

impl DynamoDbHealthStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    /// An update of the subscriber's health item.
    fn update(&self, tenant: &TenantId, subscriber: &SubscriberId) -> UpdateItemFluentBuilder {
        self.table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key("pk", s(keys::ledger_pk(tenant, subscriber)))
            .key("sk", s(keys::HEALTH_SK))
    }

    /// Raises the tenant's health version. A failure is logged, not returned: the change it
    /// announces is stored, and instances also learn it from their own writes.
    async fn bump(&self, tenant: &TenantId) {
        let out = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key("pk", s(keys::tenant_pk(tenant)))
            .key("sk", s(keys::VERSION_SK))
            .update_expression("ADD health :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await;
        if let Err(e) = out {
            tracing::warn!(error = %sdk_error(SERVICE, &e), tenant = %tenant, "could not raise the health version");
        }
    }
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn number(item: &Item, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn time(item: &Item, name: &str) -> Option<DateTime<Utc>> {
    attr(item, name).and_then(parse_time)
}

fn health_of(item: &Item) -> Health {
    Health {
        state: attr(item, "state")
            .and_then(BreakerState::parse)
            .unwrap_or(BreakerState::Closed),
        consecutive_failures: u32::try_from(number(item, "failures")).unwrap_or(u32::MAX),
        opened_at: time(item, "opened_at"),
        last_error: attr(item, "last_error").map(str::to_string),
        failing_since: time(item, "failing_since"),
        retry_at: time(item, "retry_at"),
        cooldown: Duration::from_secs(u64::try_from(number(item, "cooldown_s")).unwrap_or(0)),
    }
}

/// Error texts are kept short: the attempt log has the whole story.
fn short(error: &str) -> String {
    let mut end = error.len().min(500);
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    error[..end].to_string()
}

#[async_trait]
impl HealthStore for DynamoDbHealthStore {
    async fn get(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
    ) -> Result<Option<Health>, StoreError> {
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .key("pk", s(keys::ledger_pk(tenant, subscriber)))
            .key("sk", s(keys::HEALTH_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(out.item.as_ref().map(health_of))
    }

    async fn get_many(
        &self,
        tenant: &TenantId,
        subscribers: &[SubscriberId],
    ) -> Result<HashMap<SubscriberId, Health>, StoreError> {
        let wanted: HashMap<String, &SubscriberId> = subscribers
            .iter()
            .map(|id| (keys::ledger_pk(tenant, id), id))
            .collect();
        let keys = wanted
            .keys()
            .map(|pk| (pk.clone(), keys::HEALTH_SK.to_string()))
            .collect();
        Ok(self
            .table
            .get_many(keys, false)
            .await?
            .iter()
            .filter_map(|item| {
                let id = wanted.get(attr(item, "pk")?)?;
                Some(((*id).clone(), health_of(item)))
            })
            .collect())
    }

    async fn failed(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<Health, StoreError> {
        let out = self
            .update(tenant, subscriber)
            .update_expression(
                "ADD failures :one SET last_error = :error, failing_since = \
                 if_not_exists(failing_since, :now), #state = if_not_exists(#state, :closed)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":error", s(short(error)))
            .expression_attribute_values(":now", s(format_time(now)))
            .expression_attribute_values(":closed", s(BreakerState::Closed.as_str()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        let health = out
            .attributes
            .as_ref()
            .map(health_of)
            .unwrap_or_else(Health::healthy);
        if health.consecutive_failures == 1 {
            self.bump(tenant).await;
        }
        Ok(health)
    }

    async fn open(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
        now: DateTime<Utc>,
        cooldown: Duration,
    ) -> Result<bool, StoreError> {
        let until = now + chrono::Duration::from_std(cooldown).unwrap_or(chrono::Duration::MAX);
        let out = self
            .update(tenant, subscriber)
            .update_expression(
                "SET #state = :open, opened_at = if_not_exists(opened_at, :now), \
                 retry_at = :until, cooldown_s = :cooldown",
            )
            .condition_expression("attribute_exists(pk) AND #state <> :open")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":open", s(BreakerState::Open.as_str()))
            .expression_attribute_values(":now", s(format_time(now)))
            .expression_attribute_values(":until", s(format_time(until)))
            .expression_attribute_values(
                ":cooldown",
                n(i64::try_from(cooldown.as_secs()).unwrap_or(i64::MAX)),
            )
            .send()
            .await;
        match out {
            Ok(_) => {
                self.bump(tenant).await;
                Ok(true)
            }
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(sdk_error(SERVICE, &e)),
        }
    }

    async fn claim_probe(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let out = self
            .update(tenant, subscriber)
            .update_expression("SET #state = :half, retry_at = :until")
            // RFC 3339 times in one format compare as strings.
            .condition_expression("#state IN (:open, :half) AND retry_at <= :now")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":open", s(BreakerState::Open.as_str()))
            .expression_attribute_values(":half", s(BreakerState::HalfOpen.as_str()))
            .expression_attribute_values(":now", s(format_time(now)))
            .expression_attribute_values(":until", s(format_time(until)))
            .send()
            .await;
        written(out)
    }

    async fn reset(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
    ) -> Result<Option<Health>, StoreError> {
        let out = self
            .table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .key("pk", s(keys::ledger_pk(tenant, subscriber)))
            .key("sk", s(keys::HEALTH_SK))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        let old = out.attributes.as_ref().map(health_of);
        if old
            .as_ref()
            .is_some_and(|h| h.state != BreakerState::Closed)
        {
            self.bump(tenant).await;
        }
        Ok(old)
    }
}
