//! Subscribers: the record in the tenant's partition (`T#{tenant}` / `SUB#{id}`), one route
//! item per (event type filter, active subscriber) so a publish reads only what can match
//! (each route carries the subscriber's content filter, so fan-out reads nothing more), and the
//! tenant's directory version, which every change bumps in the same transaction so that
//! caches in front of subscribers and secrets notice it on their next use.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cursor::{self, Binding};
use super::keys;
use super::{
    Filter, Item, PartitionQuery, SERVICE, SortRange, Table, attr, from_item, n, query_all, s,
    to_item,
};
use skyhook_domain::event_type::{EventType, EventTypeFilter};
use skyhook_domain::ids::{SubscriberId, TenantId};
use skyhook_domain::model::{
    DEFAULT_MAX_CONCURRENCY, DisabledReason, Subscriber, Target, format_time, parse_time,
};
use skyhook_domain::ports::{Page, PageRequest, StoreError, SubscriberStore, TenantVersions};
use skyhook_domain::signing::SignatureScheme;
use skyhook_domain::url::{SubscriberUrl, UrlPolicy};

use skyhook_domain::event_type::MAX_FILTERS;

#[derive(Clone)]
pub struct DynamoDbSubscriberStore {
    table: Table,
}

impl DynamoDbSubscriberStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct SubscriberItem {
    pk: String,
    sk: String,
    kind: String,
    id: SubscriberId,
    tenant: TenantId,
    url: String,
    event_types: Vec<String>,
    active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    signature_scheme: String,
    created_at: String,
    updated_at: String,
    #[serde(default)]
    secret_version: u64,
    #[serde(default = "default_max_concurrency")]
    max_concurrency: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<DisabledReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
}

fn default_max_concurrency() -> u32 {
    DEFAULT_MAX_CONCURRENCY
}

impl SubscriberItem {
    fn of(sub: &Subscriber) -> Self {
        SubscriberItem {
            pk: keys::tenant_pk(&sub.tenant),
            sk: keys::subscriber_sk(&sub.id),
            kind: "subscriber".into(),
            id: sub.id.clone(),
            tenant: sub.tenant.clone(),
            url: sub.url.as_str().to_string(),
            event_types: sub
                .event_types
                .iter()
                .map(|f| f.as_str().to_string())
                .collect(),
            active: sub.active,
            description: sub.description.clone(),
            headers: sub.headers.clone(),
            signature_scheme: sub.signature_scheme.as_str().to_string(),
            created_at: format_time(sub.created_at),
            updated_at: format_time(sub.updated_at),
            secret_version: sub.secret_version,
            max_concurrency: sub.max_concurrency,
            rate_limit: sub.rate_limit,
            disabled_reason: sub.disabled_reason,
            transform: sub.transform.clone(),
            filter: sub.filter.clone(),
        }
    }

    fn into_subscriber(self) -> Result<Subscriber, StoreError> {
        let corrupt = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("subscriber {}: {what}: {e}", self.id))
        };
        Ok(Subscriber {
            url: SubscriberUrl::parse(&self.url, UrlPolicy::LOCAL)
                .map_err(|e| corrupt("url", &e))?,
            event_types: self
                .event_types
                .iter()
                .map(|f| EventTypeFilter::parse(f))
                .collect::<Result<_, _>>()
                .map_err(|e| corrupt("event_types", &e))?,
            signature_scheme: SignatureScheme::parse(&self.signature_scheme)
                .map_err(|e| corrupt("signature_scheme", &e))?,
            created_at: parse_time(&self.created_at)
                .ok_or_else(|| corrupt("created_at", &"not a time"))?,
            updated_at: parse_time(&self.updated_at)
                .ok_or_else(|| corrupt("updated_at", &"not a time"))?,
            id: self.id,
            tenant: self.tenant,
            active: self.active,
            description: self.description,
            headers: self.headers,
            secret_version: self.secret_version,
            max_concurrency: self.max_concurrency,
            rate_limit: self.rate_limit,
            disabled_reason: self.disabled_reason,
            transform: self.transform,
            filter: self.filter,
        })
    }
}

/// The routes a subscriber has while it is in this state: none when inactive.
fn routes_of(sub: &Subscriber) -> Vec<String> {
    if sub.active {
        keys::route_filters_of(&sub.event_types)
    } else {
        Vec::new()
    }
}

/// The route item's copy of the subscriber's content filter.
const ROUTE_CONTENT_FILTER: &str = "content_filter";

fn build_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::unavailable(SERVICE, e)
}

impl DynamoDbSubscriberStore {
    fn put_route(
        &self,
        tenant: &TenantId,
        filter: &str,
        sub: &Subscriber,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder()
            .table_name(&self.table.name)
            .item("pk", s(keys::route_pk(tenant, filter)))
            .item("sk", s(sub.id.as_str()))
            .item("kind", s("route"));
        if let Some(program) = &sub.filter {
            put = put.item(ROUTE_CONTENT_FILTER, s(program));
        }
        let put = put.build().map_err(build_err)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn delete_route(
        &self,
        tenant: &TenantId,
        filter: &str,
        id: &SubscriberId,
    ) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table.name)
            .key("pk", s(keys::route_pk(tenant, filter)))
            .key("sk", s(id.as_str()))
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    fn bump_version(&self, tenant: &TenantId) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table.name)
            .key("pk", s(keys::tenant_pk(tenant)))
            .key("sk", s(keys::VERSION_SK))
            .update_expression("SET kind = :kind ADD version :one")
            .expression_attribute_values(":kind", s("directory"))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The route changes from `old` to `new` (either `None`: no subscriber).
    fn route_changes(
        &self,
        old: Option<&Subscriber>,
        new: Option<&Subscriber>,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let before = old.map(routes_of).unwrap_or_default();
        let after = new.map(routes_of).unwrap_or_default();
        // Routes carry the content filter: a new filter rewrites every route.
        let refilter = old.and_then(|s| s.filter.as_ref()) != new.and_then(|s| s.filter.as_ref());
        let mut items = Vec::new();
        for f in before.iter().filter(|f| !after.contains(f)) {
            items.push(self.delete_route(tenant, f, id)?);
        }
        if let Some(sub) = new {
            for f in after.iter().filter(|f| refilter || !before.contains(f)) {
                items.push(self.put_route(tenant, f, sub)?);
            }
        }
        Ok(items)
    }

    async fn stored(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<Subscriber>, StoreError> {
        self.table
            .get(&keys::tenant_pk(tenant), &keys::subscriber_sk(id), true)
            .await?
            .map(|item| from_item::<SubscriberItem>(item)?.into_subscriber())
            .transpose()
    }
}

fn check_filters(sub: &Subscriber) -> Result<(), StoreError> {
    if sub.event_types.len() > MAX_FILTERS {
        return Err(StoreError::Rejected {
            service: SERVICE,
            detail: format!("a subscriber has at most {MAX_FILTERS} event type filters"),
        });
    }
    Ok(())
}

#[async_trait]
impl SubscriberStore for DynamoDbSubscriberStore {
    async fn create(&self, subscriber: &Subscriber) -> Result<(), StoreError> {
        check_filters(subscriber)?;
        let record = Put::builder()
            .table_name(&self.table.name)
            .set_item(Some(to_item(&SubscriberItem::of(subscriber))?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_err)?;
        let mut items = vec![TransactWriteItem::builder().put(record).build()];
        items.extend(self.route_changes(
            None,
            Some(subscriber),
            &subscriber.tenant,
            &subscriber.id,
        )?);
        items.push(self.bump_version(&subscriber.tenant)?);
        if self.table.transact(items).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict(format!(
                "subscriber {} already exists",
                subscriber.id
            )))
        }
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<Subscriber>, StoreError> {
        self.stored(tenant, id).await
    }

    async fn delete(&self, tenant: &TenantId, id: &SubscriberId) -> Result<bool, StoreError> {
        // The record is read to know its routes; the delete is conditional on it being
        // unchanged, so a concurrent edit cannot leave a route behind.
        for _ in 0..5 {
            let Some(old) = self.stored(tenant, id).await? else {
                return Ok(false);
            };
            let record = Delete::builder()
                .table_name(&self.table.name)
                .key("pk", s(keys::tenant_pk(tenant)))
                .key("sk", s(keys::subscriber_sk(id)))
                .condition_expression("updated_at = :read AND secret_version = :secret")
                .expression_attribute_values(":read", s(format_time(old.updated_at)))
                .expression_attribute_values(":secret", n(old.secret_version))
                .build()
                .map_err(build_err)?;
            let mut items = vec![TransactWriteItem::builder().delete(record).build()];
            items.extend(self.route_changes(Some(&old), None, tenant, id)?);
            items.push(self.bump_version(tenant)?);
            if self.table.transact(items).await? {
                return Ok(true);
            }
        }
        Err(StoreError::Conflict(format!(
            "subscriber {id} kept changing while it was being deleted; try again"
        )))
    }

    async fn list(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<Subscriber>, StoreError> {
        let binding = Binding::new(tenant, "subscribers", &[page.active.map(|a| a.to_string())]);
        let after =
            cursor::decode_sort_key(&binding, page.cursor.as_deref(), keys::SUBSCRIBER_PREFIX)?;
        let mut filter = Filter::default();
        if let Some(active) = page.active {
            filter = filter.term("active = :active").value(
                ":active",
                aws_sdk_dynamodb::types::AttributeValue::Bool(active),
            );
        }
        let (items, next) = PartitionQuery::new(
            keys::tenant_pk(tenant),
            SortRange::prefix(keys::SUBSCRIBER_PREFIX),
        )
        .filtered(filter)
        .page(&self.table, page.limit.clamp(1, 1000), after)
        .await?;
        Ok(Page {
            items: items
                .into_iter()
                .map(|i| from_item::<SubscriberItem>(i)?.into_subscriber())
                .collect::<Result<_, _>>()?,
            next_cursor: next.map(|sk| cursor::encode(&binding, &sk)),
        })
    }

    async fn targets(
        &self,
        tenant: &TenantId,
        event_type: &EventType,
    ) -> Result<Vec<Target>, StoreError> {
        let reads = keys::route_filters_for(event_type)
            .into_iter()
            .map(|filter| {
                let query = self
                    .table
                    .query()
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(keys::route_pk(tenant, &filter)))
                    .projection_expression(format!("sk, {ROUTE_CONTENT_FILTER}"))
                    .consistent_read(true);
                query_all(query)
            });
        let mut targets: Vec<Target> = Vec::new();
        for result in futures::future::join_all(reads).await {
            for item in result? {
                let raw = attr(&item, "sk").unwrap_or_default();
                targets.push(Target {
                    id: SubscriberId::parse(raw)
                        .map_err(|e| StoreError::Corrupt(format!("route: {e}")))?,
                    filter: attr(&item, ROUTE_CONTENT_FILTER).map(str::to_string),
                });
            }
        }
        targets.sort_by(|a, b| a.id.cmp(&b.id));
        targets.dedup_by(|a, b| a.id == b.id);
        Ok(targets)
    }

    async fn replace(
        &self,
        subscriber: &Subscriber,
        expected_updated_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        check_filters(subscriber)?;
        let conflict = || {
            StoreError::Conflict(format!(
                "subscriber {} was changed or deleted meanwhile; read it again and retry",
                subscriber.id
            ))
        };
        let old = self
            .stored(&subscriber.tenant, &subscriber.id)
            .await?
            .filter(|old| old.updated_at == expected_updated_at)
            .ok_or_else(conflict)?;
        let mut new = subscriber.clone();
        // The secret version is the secret's business, not an editor's.
        new.secret_version = old.secret_version;
        let record = Put::builder()
            .table_name(&self.table.name)
            .set_item(Some(to_item(&SubscriberItem::of(&new))?))
            .condition_expression("updated_at = :prev AND secret_version = :secret")
            .expression_attribute_values(":prev", s(format_time(expected_updated_at)))
            .expression_attribute_values(":secret", n(old.secret_version))
            .build()
            .map_err(build_err)?;
        let mut items = vec![TransactWriteItem::builder().put(record).build()];
        items.extend(self.route_changes(Some(&old), Some(&new), &new.tenant, &new.id)?);
        items.push(self.bump_version(&new.tenant)?);
        if self.table.transact(items).await? {
            Ok(())
        } else {
            Err(conflict())
        }
    }

    async fn secret_changed(&self, tenant: &TenantId, id: &SubscriberId) -> Result<(), StoreError> {
        let record = Update::builder()
            .table_name(&self.table.name)
            .key("pk", s(keys::tenant_pk(tenant)))
            .key("sk", s(keys::subscriber_sk(id)))
            .update_expression("ADD secret_version :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(build_err)?;
        let items = vec![
            TransactWriteItem::builder().update(record).build(),
            self.bump_version(tenant)?,
        ];
        if self.table.transact(items).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict(format!(
                "subscriber {id} was deleted meanwhile"
            )))
        }
    }

    async fn versions(&self, tenants: &[TenantId]) -> Result<HashMap<TenantId, u64>, StoreError> {
        Ok(self
            .tenant_versions(tenants)
            .await?
            .into_iter()
            .map(|(t, v)| (t, v.directory))
            .collect())
    }

    async fn tenant_versions(
        &self,
        tenants: &[TenantId],
    ) -> Result<HashMap<TenantId, TenantVersions>, StoreError> {
        let keys: Vec<(String, String)> = tenants
            .iter()
            .map(|t| (keys::tenant_pk(t), keys::VERSION_SK.to_string()))
            .collect();
        let number = |item: &Item, name: &str| -> u64 {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        let found: HashMap<String, TenantVersions> = self
            .table
            .get_many(keys, true)
            .await?
            .iter()
            .filter_map(|item: &Item| {
                let pk = attr(item, "pk")?.to_string();
                Some((
                    pk,
                    TenantVersions {
                        directory: number(item, "version"),
                        health: number(item, "health"),
                    },
                ))
            })
            .collect();
        Ok(tenants
            .iter()
            .map(|t| {
                (
                    t.clone(),
                    found.get(&keys::tenant_pk(t)).copied().unwrap_or_default(),
                )
            })
            .collect())
    }
}
