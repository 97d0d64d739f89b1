//! API keys, two items per key written together: `K#{sha256 hex}` / `#KEY` finds a key by
//! its digest at authentication; `T#{tenant}` / `KEY#{key id}` lists a tenant's keys and
//! finds the digest item to delete. Neither holds the key itself.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::cursor::{self, Binding};
use super::keys;
use super::{
    PartitionQuery, SERVICE, SortRange, Table, from_item, is_condition_failure, s, to_item,
};
use crate::sdk_error;
use skyhook_domain::ids::{ApiKeyId, TenantId};
use skyhook_domain::model::{ApiKey, Role, format_time, parse_time};
use skyhook_domain::ports::{ApiKeyStore, Page, PageRequest, StoreError};

#[derive(Clone)]
pub struct DynamoDbApiKeyStore {
    table: Table,
}

impl DynamoDbApiKeyStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct ApiKeyItem {
    pk: String,
    sk: String,
    kind: String,
    id: ApiKeyId,
    tenant: TenantId,
    role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    created_at: String,
    #[serde(default)]
    created_by: String,
    digest: String,
}

impl ApiKeyItem {
    fn new(key: &ApiKey, digest_hex: &str, pk: String, sk: String) -> Self {
        ApiKeyItem {
            pk,
            sk,
            kind: "api_key".into(),
            id: key.id.clone(),
            tenant: key.tenant.clone(),
            role: key.role,
            description: key.description.clone(),
            created_at: format_time(key.created_at),
            created_by: key.created_by.clone(),
            digest: digest_hex.to_string(),
        }
    }

    fn key(self) -> Result<ApiKey, StoreError> {
        Ok(ApiKey {
            created_at: parse_time(&self.created_at)
                .ok_or_else(|| StoreError::Corrupt("API key creation time".into()))?,
            id: self.id,
            tenant: self.tenant,
            role: self.role,
            description: self.description,
            created_by: self.created_by,
        })
    }
}

fn build_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::unavailable(SERVICE, e)
}

#[async_trait]
impl ApiKeyStore for DynamoDbApiKeyStore {
    async fn create(&self, key: &ApiKey, digest: &[u8; 32]) -> Result<(), StoreError> {
        let digest_hex = hex::encode(digest);
        let items = [
            ApiKeyItem::new(
                key,
                &digest_hex,
                keys::api_key_digest_pk(&digest_hex),
                keys::API_KEY_DIGEST_SK.into(),
            ),
            ApiKeyItem::new(
                key,
                &digest_hex,
                keys::tenant_pk(&key.tenant),
                format!("{}{}", keys::API_KEY_PREFIX, key.id),
            ),
        ]
        .iter()
        .map(|item| {
            Put::builder()
                .table_name(&self.table.name)
                .set_item(Some(to_item(item)?))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(build_err)
        })
        .collect::<Result<Vec<_>, _>>()?;
        match self
            .table
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failure(&err) => {
                Err(StoreError::Conflict("that API key already exists".into()))
            }
            Err(err) => Err(sdk_error(SERVICE, &err)),
        }
    }

    async fn find(&self, digest: &[u8; 32]) -> Result<Option<(ApiKey, [u8; 32])>, StoreError> {
        // Consistent: a deleted key must stop working at once, not after replication.
        let Some(item) = self
            .table
            .get(
                &keys::api_key_digest_pk(&hex::encode(digest)),
                keys::API_KEY_DIGEST_SK,
                true,
            )
            .await?
        else {
            return Ok(None);
        };
        let item: ApiKeyItem = from_item(item)?;
        let stored: [u8; 32] = hex::decode(&item.digest)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| StoreError::Corrupt("API key digest is malformed".into()))?;
        Ok(Some((item.key()?, stored)))
    }

    async fn list(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<ApiKey>, StoreError> {
        let binding = Binding::new(tenant, "api_keys", &[]);
        let after =
            cursor::decode_sort_key(&binding, page.cursor.as_deref(), keys::API_KEY_PREFIX)?;
        let (items, next) = PartitionQuery::new(
            keys::tenant_pk(tenant),
            SortRange::prefix(keys::API_KEY_PREFIX),
        )
        .page(&self.table, page.limit.clamp(1, 1000), after)
        .await?;
        Ok(Page {
            items: items
                .into_iter()
                .map(|i| from_item::<ApiKeyItem>(i)?.key())
                .collect::<Result<_, _>>()?,
            next_cursor: next.map(|sk| cursor::encode(&binding, &sk)),
        })
    }

    async fn delete(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<bool, StoreError> {
        let sk = format!("{}{id}", keys::API_KEY_PREFIX);
        let Some(item) = self.table.get(&keys::tenant_pk(tenant), &sk, true).await? else {
            return Ok(false);
        };
        let item: ApiKeyItem = from_item(item)?;
        let deletes = [
            (keys::tenant_pk(tenant), sk),
            (
                keys::api_key_digest_pk(&item.digest),
                keys::API_KEY_DIGEST_SK.to_string(),
            ),
        ]
        .into_iter()
        .map(|(pk, sk)| {
            Delete::builder()
                .table_name(&self.table.name)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .build()
                .map(|d| TransactWriteItem::builder().delete(d).build())
                .map_err(build_err)
        })
        .collect::<Result<Vec<_>, _>>()?;
        self.table
            .client
            .transact_write_items()
            .set_transact_items(Some(deletes))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(true)
    }
}
