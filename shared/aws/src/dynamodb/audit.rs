//! The audit trail: `AU#{tenant}` / `{at}#{random}`, newest last; kept for the audit
//! retention (a year by default), longer than the delivery log.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};

use super::cursor::{self, Binding};
use super::keys;
use super::{PartitionQuery, SortRange, Table, expiry, from_item};
use skyhook_domain::ids::TenantId;
use skyhook_domain::model::{AuditRecord, format_time, parse_time};
use skyhook_domain::ports::{AuditLog, Page, PageRequest, StoreError};

#[derive(Clone)]
pub struct DynamoDbAuditLog {
    table: Table,
    retention: Duration,
}

impl DynamoDbAuditLog {
    pub fn new(client: Client, table: impl Into<String>, retention: Duration) -> Self {
        Self {
            table: Table::new(client, table),
            retention,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct AuditItem {
    pk: String,
    sk: String,
    kind: String,
    tenant: TenantId,
    at: String,
    actor: String,
    action: String,
    resource: String,
    /// The JSON summary, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    expires_at: i64,
}

#[async_trait]
impl AuditLog for DynamoDbAuditLog {
    async fn record(&self, r: &AuditRecord) -> Result<(), StoreError> {
        let item = AuditItem {
            pk: keys::audit_pk(&r.tenant),
            // The random suffix keeps two changes in the same millisecond apart.
            sk: format!("{}#{:016x}", format_time(r.at), rand::random::<u64>()),
            kind: "audit".into(),
            tenant: r.tenant.clone(),
            at: format_time(r.at),
            actor: r.actor.clone(),
            action: r.action.clone(),
            resource: r.resource.clone(),
            detail: r.detail.as_ref().map(|d| d.to_string()),
            expires_at: expiry(r.at, self.retention),
        };
        self.table.put(&item).await
    }

    async fn list(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<AuditRecord>, StoreError> {
        let binding = Binding::new(tenant, "audit", &[]);
        let after = cursor::decode_sort_key(&binding, page.cursor.as_deref(), "")?;
        let (items, next) = PartitionQuery::new(keys::audit_pk(tenant), SortRange::default())
            .backward()
            .page(&self.table, page.limit.clamp(1, 1000), after)
            .await?;
        let records = items
            .into_iter()
            .map(|i| {
                let item: AuditItem = from_item(i)?;
                Ok(AuditRecord {
                    at: parse_time(&item.at)
                        .ok_or_else(|| StoreError::Corrupt("audit time".into()))?,
                    tenant: item.tenant,
                    actor: item.actor,
                    action: item.action,
                    resource: item.resource,
                    detail: item.detail.and_then(|d| serde_json::from_str(&d).ok()),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Page {
            items: records,
            next_cursor: next.map(|sk| cursor::encode(&binding, &sk)),
        })
    }
}
