//! Inbound sources, two items per source written together: `SRC#{id}` / `#SOURCE`, which an
//! inbound request reads by the id in its URL, and `T#{tenant}` / `SRC#{id}`, which lists a
//! tenant's sources. Both hold the whole record, so neither read needs the other.
//!
//! And the replay guard: `RP#{source}#{digest}` / `#REPLAY`, one conditional write per
//! inbound message, expiring by TTL (and checked on write, since TTL deletion can lag).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cursor::{self, Binding};
use super::keys;
use super::{PartitionQuery, SERVICE, SortRange, Table, from_item, n, s, to_item, written};
use crate::sdk_error;
use skyhook_domain::ids::{SourceId, TenantId};
use skyhook_domain::inbound::{EventTypeRule, HmacSettings, Scheme, Source};
use skyhook_domain::model::{format_time, parse_time};
use skyhook_domain::ports::{Page, PageRequest, ReplayGuard, SourceStore, StoreError};

#[derive(Clone)]
pub struct DynamoDbSourceStore {
    table: Table,
}

impl DynamoDbSourceStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct SourceItem {
    pk: String,
    sk: String,
    kind: String,
    id: SourceId,
    tenant: TenantId,
    name: String,
    scheme: Scheme,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hmac: Option<HmacSettings>,
    event_type: EventTypeRule,
    created_at: String,
    updated_at: String,
    #[serde(default)]
    secret_version: u64,
}

impl SourceItem {
    fn at(source: &Source, pk: String, sk: String) -> Self {
        SourceItem {
            pk,
            sk,
            kind: "source".into(),
            id: source.id.clone(),
            tenant: source.tenant.clone(),
            name: source.name.clone(),
            scheme: source.scheme,
            hmac: source.hmac.clone(),
            event_type: source.event_type.clone(),
            created_at: format_time(source.created_at),
            updated_at: format_time(source.updated_at),
            secret_version: source.secret_version,
        }
    }

    /// Both items of a source.
    fn both(source: &Source) -> [Self; 2] {
        [
            Self::at(source, keys::source_pk(&source.id), keys::SOURCE_SK.into()),
            Self::at(
                source,
                keys::tenant_pk(&source.tenant),
                format!("{}{}", keys::SOURCE_PREFIX, source.id),
            ),
        ]
    }

    fn into_source(self) -> Result<Source, StoreError> {
        let time = |t: &str, what: &str| {
            parse_time(t).ok_or_else(|| StoreError::Corrupt(format!("source {}: {what}", self.id)))
        };
        Ok(Source {
            created_at: time(&self.created_at, "created_at")?,
            updated_at: time(&self.updated_at, "updated_at")?,
            id: self.id,
            tenant: self.tenant,
            name: self.name,
            scheme: self.scheme,
            hmac: self.hmac,
            event_type: self.event_type,
            secret_version: self.secret_version,
        })
    }
}

fn build_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::unavailable(SERVICE, e)
}

impl DynamoDbSourceStore {
    /// The puts of both items, each on `condition`.
    fn puts(
        &self,
        source: &Source,
        condition: Condition,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        SourceItem::both(source)
            .iter()
            .map(|item| {
                let put = Put::builder()
                    .table_name(&self.table.name)
                    .set_item(Some(to_item(item)?));
                let put = match &condition {
                    Condition::New => put.condition_expression("attribute_not_exists(pk)"),
                    Condition::UpdatedAt(at) => put
                        .condition_expression("updated_at = :prev")
                        .expression_attribute_values(":prev", s(format_time(*at))),
                };
                put.build()
                    .map(|p| TransactWriteItem::builder().put(p).build())
                    .map_err(build_err)
            })
            .collect()
    }
}

enum Condition {
    New,
    UpdatedAt(DateTime<Utc>),
}

#[async_trait]
impl SourceStore for DynamoDbSourceStore {
    async fn create(&self, source: &Source) -> Result<(), StoreError> {
        let items = self.puts(source, Condition::New)?;
        if self.table.transact(items).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict(format!(
                "source {} already exists",
                source.id
            )))
        }
    }

    async fn get(&self, id: &SourceId) -> Result<Option<Source>, StoreError> {
        self.table
            .get(&keys::source_pk(id), keys::SOURCE_SK, true)
            .await?
            .map(|item| from_item::<SourceItem>(item)?.into_source())
            .transpose()
    }

    async fn list(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<Source>, StoreError> {
        let binding = Binding::new(tenant, "sources", &[]);
        let after = cursor::decode_sort_key(&binding, page.cursor.as_deref(), keys::SOURCE_PREFIX)?;
        let (items, next) = PartitionQuery::new(
            keys::tenant_pk(tenant),
            SortRange::prefix(keys::SOURCE_PREFIX),
        )
        .page(&self.table, page.limit.clamp(1, 1000), after)
        .await?;
        Ok(Page {
            items: items
                .into_iter()
                .map(|i| from_item::<SourceItem>(i)?.into_source())
                .collect::<Result<_, _>>()?,
            next_cursor: next.map(|sk| cursor::encode(&binding, &sk)),
        })
    }

    async fn replace(
        &self,
        source: &Source,
        expected_updated_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let items = self.puts(source, Condition::UpdatedAt(expected_updated_at))?;
        if self.table.transact(items).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict(format!(
                "source {} was changed or deleted meanwhile; read it again and retry",
                source.id
            )))
        }
    }

    async fn delete(&self, tenant: &TenantId, id: &SourceId) -> Result<bool, StoreError> {
        let Some(old) = self.get(id).await?.filter(|s| &s.tenant == tenant) else {
            return Ok(false);
        };
        let deletes = SourceItem::both(&old)
            .into_iter()
            .map(|item| {
                Delete::builder()
                    .table_name(&self.table.name)
                    .key("pk", s(item.pk))
                    .key("sk", s(item.sk))
                    .condition_expression("attribute_exists(pk)")
                    .build()
                    .map(|d| TransactWriteItem::builder().delete(d).build())
                    .map_err(build_err)
            })
            .collect::<Result<Vec<_>, _>>()?;
        // A concurrent delete got there first: it is deleted all the same.
        self.table.transact(deletes).await
    }
}

#[derive(Clone)]
pub struct DynamoDbReplayGuard {
    table: Table,
}

impl DynamoDbReplayGuard {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }
}

#[async_trait]
impl ReplayGuard for DynamoDbReplayGuard {
    async fn claim(
        &self,
        source: &SourceId,
        key: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .item("pk", s(keys::replay_pk(source, key)))
            .item("sk", s(keys::REPLAY_SK))
            .item("kind", s("replay"))
            .item("expires_at", n(until.timestamp()))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        written(result)
    }

    async fn release(&self, source: &SourceId, key: &str) -> Result<(), StoreError> {
        self.table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .key("pk", s(keys::replay_pk(source, key)))
            .key("sk", s(keys::REPLAY_SK))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(())
    }
}
