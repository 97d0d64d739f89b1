//! Tenants: the registry (`TENANTS` / `TEN#{tenant}`, listed by one query) and each tenant's
//! publish bucket (`T#{tenant}` / `#PUBLISH_RATE`: the bucket's theoretical arrival time in
//! microseconds, see `skyhook_domain::tenants`).
//!
//! Taking from a bucket is one conditional update on the happy path: `SET tat = :new` when
//! the bucket is idle (its time has passed), or `SET tat = tat + :cost` while it runs ahead of
//! now but within the burst. Which one to try first follows what this instance last saw of
//! the bucket, so a busy tenant's take is one write, not a failed one and then another.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cursor::{self, Binding};
use super::{
    PartitionQuery, SERVICE, SortRange, Table, from_item, is_condition_failure, keys, s, written,
};
use crate::sdk_error;
use skyhook_domain::ids::TenantId;
use skyhook_domain::model::{format_time, parse_time};
use skyhook_domain::ports::{Page, PageRequest, PublishBudget, StoreError, TenantStore};
use skyhook_domain::tenants::{Admission, TenantLimits, TenantRecord, gcra};

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

#[derive(Clone)]
pub struct DynamoDbTenantStore {
    table: Table,
}

impl DynamoDbTenantStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct TenantItem {
    pk: String,
    sk: String,
    #[serde(default)]
    kind: String,
    tenant: TenantId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    events_per_second: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    burst: Option<u32>,
    created_at: String,
    updated_at: String,
}

impl TenantItem {
    fn record(self) -> Result<TenantRecord, StoreError> {
        let time = |t: &str| {
            parse_time(t).ok_or_else(|| StoreError::Corrupt(format!("tenant time {t:?}")))
        };
        let limits = match (self.events_per_second, self.burst) {
            (Some(rate), Some(burst)) => Some(
                TenantLimits::new(rate, burst)
                    .map_err(|e| StoreError::Corrupt(format!("tenant limits: {e}")))?,
            ),
            _ => None,
        };
        Ok(TenantRecord {
            created_at: time(&self.created_at)?,
            updated_at: time(&self.updated_at)?,
            id: self.tenant,
            limits,
        })
    }
}

#[async_trait]
impl TenantStore for DynamoDbTenantStore {
    async fn get(&self, tenant: &TenantId) -> Result<Option<TenantRecord>, StoreError> {
        self.table
            .get(keys::TENANTS_PK, &keys::tenant_record_sk(tenant), false)
            .await?
            .map(|i| from_item::<TenantItem>(i)?.record())
            .transpose()
    }

    async fn put(&self, record: &TenantRecord) -> Result<TenantRecord, StoreError> {
        let mut update = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key("pk", s(keys::TENANTS_PK))
            .key("sk", s(keys::tenant_record_sk(&record.id)))
            .expression_attribute_values(":kind", s("tenant"))
            .expression_attribute_values(":tenant", s(record.id.as_str()))
            .expression_attribute_values(":created", s(format_time(record.created_at)))
            .expression_attribute_values(":updated", s(format_time(record.updated_at)))
            .return_values(ReturnValue::AllNew);
        let set = "SET kind = :kind, tenant = :tenant, created_at = if_not_exists(created_at, :created), updated_at = :updated";
        update = match record.limits {
            Some(l) => update
                .update_expression(format!("{set}, events_per_second = :rate, burst = :burst"))
                .expression_attribute_values(":rate", n(i64::from(l.events_per_second)))
                .expression_attribute_values(":burst", n(i64::from(l.burst))),
            None => update.update_expression(format!("{set} REMOVE events_per_second, burst")),
        };
        let out = update.send().await.map_err(|e| sdk_error(SERVICE, &e))?;
        let item = out
            .attributes
            .ok_or_else(|| StoreError::Corrupt("the tenant update returned nothing".into()))?;
        from_item::<TenantItem>(item)?.record()
    }

    async fn ensure(&self, tenant: &TenantId, now: DateTime<Utc>) -> Result<(), StoreError> {
        let item = TenantItem {
            pk: keys::TENANTS_PK.to_string(),
            sk: keys::tenant_record_sk(tenant),
            kind: "tenant".into(),
            tenant: tenant.clone(),
            events_per_second: None,
            burst: None,
            created_at: format_time(now),
            updated_at: format_time(now),
        };
        let out = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(super::to_item(&item)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        written(out).map(drop)
    }

    async fn list(&self, page: PageRequest) -> Result<Page<TenantRecord>, StoreError> {
        let binding = Binding::new(&TenantId::default_tenant(), "tenants", &[]);
        let after =
            cursor::decode_sort_key(&binding, page.cursor.as_deref(), keys::TENANT_RECORD_PREFIX)?;
        let (items, next) = PartitionQuery::new(
            keys::TENANTS_PK.to_string(),
            SortRange::prefix(keys::TENANT_RECORD_PREFIX),
        )
        .page(&self.table, page.limit.clamp(1, 1000), after)
        .await?;
        Ok(Page {
            items: items
                .into_iter()
                .map(|i| from_item::<TenantItem>(i)?.record())
                .collect::<Result<_, _>>()?,
            next_cursor: next.map(|sk| cursor::encode(&binding, &sk)),
        })
    }
}

/// The `kind` of a bucket item.
pub const PUBLISH_RATE_KIND: &str = "publish_rate";

/// Tenants' publish buckets in the table.
pub struct DynamoDbPublishBudget {
    table: Table,
    /// The arrival time this instance last saw of each tenant's bucket.
    seen: Mutex<HashMap<TenantId, i64>>,
}

/// Most tenants whose bucket an instance remembers; beyond it, it starts afresh.
const SEEN_TENANTS: usize = 10_000;

impl DynamoDbPublishBudget {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
            seen: Mutex::default(),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, i64>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remember(&self, tenant: &TenantId, tat: i64) {
        let mut seen = self.seen();
        if seen.len() >= SEEN_TENANTS && !seen.contains_key(tenant) {
            seen.clear();
        }
        seen.insert(tenant.clone(), tat);
    }

    fn bucket(
        &self,
        tenant: &TenantId,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key("pk", s(keys::tenant_pk(tenant)))
            .key("sk", s(keys::PUBLISH_RATE_SK))
            .return_values(ReturnValue::UpdatedNew)
    }

    /// The bucket is idle (or new): it starts again from now.
    async fn start(
        &self,
        tenant: &TenantId,
        now_us: i64,
        cost: i64,
    ) -> Result<Option<i64>, StoreError> {
        let out = self
            .bucket(tenant)
            .update_expression("SET kind = :kind, tat = :new, expires_at = :expires")
            .expression_attribute_values(":kind", s(PUBLISH_RATE_KIND))
            .condition_expression("attribute_not_exists(tat) OR tat <= :now")
            .expression_attribute_values(":new", n(now_us + cost))
            .expression_attribute_values(":now", n(now_us))
            .expression_attribute_values(":expires", n(now_us / 1_000_000 + 86_400))
            .send()
            .await;
        match out {
            Ok(_) => Ok(Some(now_us + cost)),
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(sdk_error(SERVICE, &e)),
        }
    }

    /// The bucket runs ahead of now: it runs further, if the burst still allows (`most`,
    /// the latest its arrival time may be before), or whatever it says (`None`, a charge).
    async fn extend(
        &self,
        tenant: &TenantId,
        now_us: i64,
        cost: i64,
        most: Option<i64>,
    ) -> Result<Option<i64>, StoreError> {
        let mut update = self
            .bucket(tenant)
            .update_expression("SET kind = :kind, tat = tat + :cost, expires_at = :expires")
            .expression_attribute_values(":kind", s(PUBLISH_RATE_KIND))
            .expression_attribute_values(":cost", n(cost))
            .expression_attribute_values(":now", n(now_us))
            .expression_attribute_values(":expires", n(now_us / 1_000_000 + 86_400));
        update = match most {
            Some(most) => update
                .condition_expression("tat > :now AND tat <= :most")
                .expression_attribute_values(":most", n(most)),
            None => update.condition_expression("tat > :now"),
        };
        match update.send().await {
            Ok(out) => Ok(out
                .attributes
                .and_then(|a| a.get("tat").cloned())
                .and_then(|v| v.as_n().ok().and_then(|t| t.parse::<i64>().ok()))
                .or(Some(now_us + cost))),
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(sdk_error(SERVICE, &e)),
        }
    }
}

#[async_trait]
impl PublishBudget for DynamoDbPublishBudget {
    async fn charge(
        &self,
        tenant: &TenantId,
        n: u32,
        limits: TenantLimits,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now_us = now.timestamp_micros();
        let cost = limits.interval_us().saturating_mul(i64::from(n));
        // Running ahead of now: further ahead. Idle (or new): from now. One of the two
        // holds unless the bucket changed between them; then the first again.
        for _ in 0..2 {
            if self.extend(tenant, now_us, cost, None).await?.is_some()
                || self.start(tenant, now_us, cost).await?.is_some()
            {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn take(
        &self,
        tenant: &TenantId,
        n: u32,
        limits: TenantLimits,
        now: DateTime<Utc>,
    ) -> Result<Admission, StoreError> {
        let now_us = now.timestamp_micros();
        let cost = limits.interval_us().saturating_mul(i64::from(n));
        if cost > limits.tolerance_us() {
            // More than the burst at once never fits.
            return Ok(Admission::Limited(std::time::Duration::from_micros(
                (cost - limits.tolerance_us()) as u64,
            )));
        }
        let busy = self.seen().get(tenant).is_some_and(|tat| *tat > now_us);
        let most = Some(now_us + limits.tolerance_us() - cost);
        // Two tries each way at most: a bucket that turned idle or busy in between is
        // met by the other update.
        for _ in 0..2 {
            let taken = if busy {
                match self.extend(tenant, now_us, cost, most).await? {
                    Some(t) => Some(t),
                    None => self.start(tenant, now_us, cost).await?,
                }
            } else {
                match self.start(tenant, now_us, cost).await? {
                    Some(t) => Some(t),
                    None => self.extend(tenant, now_us, cost, most).await?,
                }
            };
            if let Some(tat) = taken {
                self.remember(tenant, tat);
                return Ok(Admission::Admitted);
            }
            // Neither held: the bucket is past the burst. How far, from the item itself.
            let tat = self
                .table
                .get(&keys::tenant_pk(tenant), keys::PUBLISH_RATE_SK, true)
                .await?
                .and_then(|item| item.get("tat").cloned())
                .and_then(|v| v.as_n().ok().and_then(|t| t.parse::<i64>().ok()));
            match gcra(tat, now_us, n, limits) {
                Err(wait) => {
                    if let Some(t) = tat {
                        self.remember(tenant, t);
                    }
                    return Ok(Admission::Limited(wait));
                }
                // It drained in between: try again.
                Ok(_) => continue,
            }
        }
        Ok(Admission::Limited(std::time::Duration::from_micros(
            limits.interval_us().max(1) as u64,
        )))
    }
}
