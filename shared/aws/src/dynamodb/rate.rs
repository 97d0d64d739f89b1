//! Rate-limit budgets: one item per subscriber with a `rate_limit`, in its own ledger
//! partition (`S#{tenant}#{sub}` / `RATE`): the second it counts and how much of that
//! second's budget is taken. Instances take blocks with one conditional update each, so a
//! subscriber sees a few writes a second, not one per delivery.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{Table, keys, s, written};
use skyhook_domain::ids::{SubscriberId, TenantId};
use skyhook_domain::ports::{RateBudget, StoreError};

#[derive(Clone)]
pub struct DynamoDbRateBudget {
    table: Table,
}

impl DynamoDbRateBudget {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

#[async_trait]
impl RateBudget for DynamoDbRateBudget {
    async fn take(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
        second: i64,
        want: u32,
        limit: u32,
    ) -> Result<bool, StoreError> {
        if want == 0 || want > limit {
            return Ok(want == 0);
        }
        let pk = keys::ledger_pk(tenant, subscriber);
        // From this second's budget, if `want` is still left in it; else, if the item still
        // counts an earlier second, start this one; if another instance started it first,
        // this second's budget is the one to take from after all.
        if self.take_more(&pk, second, want, limit).await? {
            return Ok(true);
        }
        if self.start_second(&pk, second, want).await? {
            return Ok(true);
        }
        self.take_more(&pk, second, want, limit).await
    }
}

impl DynamoDbRateBudget {
    /// An update of the subscriber's budget item.
    fn budget_item(&self, pk: &str) -> UpdateItemFluentBuilder {
        self.table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key("pk", s(pk))
            .key("sk", s(keys::RATE_SK))
    }

    async fn take_more(
        &self,
        pk: &str,
        second: i64,
        want: u32,
        limit: u32,
    ) -> Result<bool, StoreError> {
        let out = self
            .budget_item(pk)
            .update_expression("ADD taken :want")
            .condition_expression("#second = :second AND taken <= :most")
            .expression_attribute_names("#second", "second")
            .expression_attribute_values(":want", n(i64::from(want)))
            .expression_attribute_values(":second", n(second))
            .expression_attribute_values(":most", n(i64::from(limit - want)))
            .send()
            .await;
        written(out)
    }

    async fn start_second(&self, pk: &str, second: i64, want: u32) -> Result<bool, StoreError> {
        let out = self
            .budget_item(pk)
            .update_expression("SET #second = :second, taken = :want, expires_at = :expires")
            .condition_expression("attribute_not_exists(#second) OR #second < :second")
            .expression_attribute_names("#second", "second")
            .expression_attribute_values(":want", n(i64::from(want)))
            .expression_attribute_values(":second", n(second))
            // Kept a day after its last use, then TTL removes it.
            .expression_attribute_values(":expires", n(second + 86_400))
            .send()
            .await;
        written(out)
    }
}
