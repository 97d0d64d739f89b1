//! Stats counters, in their own small table (`T#{tenant}` / `#STATS` and
//! `S#{tenant}#{subscriber}` / `#STATS`, and the time series `TS#{tenant}#{subscriber or
//! *}#{width}` / `{bucket start}`), moved only by the stats consumer, which folds a batch of
//! the ledger's stream into one change per counter and per bucket. A batch's changes go in one
//! transaction per 99 counters, each with a marker item of its own (`BATCH#{token}` /
//! `#APPLIED`) written only if absent: a retried batch is applied once, however late the
//! retry comes (a client request token would dedupe for ten minutes only, and not at all on
//! moto). Apart from the ledger, their writes never feed its stream.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use sha2::{Digest, Sha256};

use super::keys;
use super::{SERVICE, Table, n, s};
use crate::sdk_error;
use skyhook_domain::ports::{StatsChange, StatsCounters, StoreError};
use skyhook_domain::series::SeriesChange;

/// DynamoDB's limit of items in one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;

/// How long a batch's marker is kept: longer than the stream keeps the records a retried
/// batch is made of (24 hours).
const MARKER_RETENTION_SECS: i64 = 2 * 24 * 3600;

#[derive(Clone)]
pub struct DynamoDbStatsCounters {
    table: Option<Table>,
}

impl DynamoDbStatsCounters {
    /// `None`: this process was not given the stats table, and must not be asked to count.
    pub fn new(client: Client, table: Option<String>) -> Self {
        Self {
            table: table.map(|t| Table::new(client, t)),
        }
    }
}

/// The error of a process asked for stats without the stats table configured.
pub(crate) fn no_stats_table() -> StoreError {
    StoreError::Rejected {
        service: SERVICE,
        detail: "the stats table is not configured (SKYHOOK_STATS_TABLE)".into(),
    }
}

/// The marker key (36 characters) of part `part` of batch `batch`.
fn token(batch: &str, part: usize) -> String {
    let digest = Sha256::digest(format!("{batch}#{part}"));
    hex::encode(&digest[..18])
}

/// The marker of one transaction of a batch: written only where none is, so the
/// transaction that writes it a second time is cancelled whole.
fn marker_update(table: &str, token: &str) -> Result<Update, StoreError> {
    let expires = chrono::Utc::now()
        .timestamp()
        .saturating_add(MARKER_RETENTION_SECS);
    Update::builder()
        .table_name(table)
        .key("pk", s(format!("BATCH#{token}")))
        .key("sk", s("#APPLIED"))
        .update_expression("SET kind = :kind, expires_at = :expires")
        .condition_expression("attribute_not_exists(pk)")
        .expression_attribute_values(":kind", s("batch"))
        .expression_attribute_values(":expires", n(expires))
        .build()
        .map_err(|e| StoreError::unavailable(SERVICE, e))
}

/// Whether a transaction was cancelled because its marker (its last item) is there: the
/// part was applied before.
fn applied_before(err: &aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError>) -> bool {
    let Some(TransactWriteItemsError::TransactionCanceledException(e)) = err.as_service_error()
    else {
        return false;
    };
    e.cancellation_reasons()
        .last()
        .and_then(|r| r.code())
        .is_some_and(|c| c == "ConditionalCheckFailed")
}

/// The update of one counter item.
fn totals_update(table: &str, c: &StatsChange) -> Result<Update, StoreError> {
    let pk = match &c.subscriber {
        None => keys::tenant_pk(&c.tenant),
        Some(sub) => keys::ledger_pk(&c.tenant, sub),
    };
    Update::builder()
        .table_name(table)
        .key("pk", s(pk))
        .key("sk", s(keys::STATS_SK))
        .update_expression(
            "SET kind = :kind ADD success :success, failure :failure, attempts :attempts",
        )
        .expression_attribute_values(":kind", s("stats"))
        .expression_attribute_values(":success", n(c.delta.success))
        .expression_attribute_values(":failure", n(c.delta.failure))
        .expression_attribute_values(":attempts", n(c.delta.attempts))
        .build()
        .map_err(|e| StoreError::unavailable(SERVICE, e))
}

/// The update of one series bucket: its counts, and the latency bins (`l0`…) it moves.
fn series_update(table: &str, c: &SeriesChange) -> Result<Update, StoreError> {
    let mut adds = vec![
        "success :success".to_string(),
        "failure :failure".to_string(),
    ];
    let mut update = Update::builder()
        .table_name(table)
        .key(
            "pk",
            s(keys::series_pk(
                &c.tenant,
                c.subscriber.as_ref(),
                c.bucket.as_str(),
            )),
        )
        .key("sk", s(keys::series_sk(c.start)))
        .expression_attribute_values(":kind", s("series"))
        .expression_attribute_values(
            ":expires",
            n(c.start
                .saturating_add(i64::try_from(c.bucket.retention().as_secs()).unwrap_or(i64::MAX))),
        )
        .expression_attribute_values(":success", n(c.delta.success))
        .expression_attribute_values(":failure", n(c.delta.failure));
    for (bin, count) in c.delta.latency.iter().enumerate() {
        if *count > 0 {
            adds.push(format!("l{bin} :l{bin}"));
            update = update.expression_attribute_values(format!(":l{bin}"), n(count));
        }
    }
    update
        .update_expression(format!(
            "SET kind = :kind, expires_at = :expires ADD {}",
            adds.join(", ")
        ))
        .build()
        .map_err(|e| StoreError::unavailable(SERVICE, e))
}

#[async_trait]
impl StatsCounters for DynamoDbStatsCounters {
    async fn apply(
        &self,
        batch: &str,
        changes: &[StatsChange],
        series: &[SeriesChange],
    ) -> Result<(), StoreError> {
        let table = self.table.as_ref().ok_or_else(no_stats_table)?;
        let updates = changes
            .iter()
            .map(|c| totals_update(&table.name, c))
            .chain(series.iter().map(|c| series_update(&table.name, c)))
            .collect::<Result<Vec<_>, _>>()?;
        for (part, chunk) in updates.chunks(MAX_TRANSACTION_ITEMS - 1).enumerate() {
            let token = token(batch, part);
            let items = chunk
                .iter()
                .cloned()
                .chain(std::iter::once(marker_update(&table.name, &token)?))
                .map(|u| TransactWriteItem::builder().update(u).build())
                .collect();
            let sent = table
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                // No client request token: a retry rebuilds the marker (its expiry moves on),
                // which DynamoDB would refuse as a different request under the same token.
                .send()
                .await;
            match sent {
                Ok(_) => {}
                Err(e) if applied_before(&e) => {
                    tracing::debug!(batch, part, "a stats batch applied before; skipped");
                }
                Err(e) => return Err(sdk_error(SERVICE, &e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_fit_dynamodb_and_name_their_part() {
        let t = token("shard-1:0001-0100", 0);
        assert_eq!(t.len(), 36);
        assert_eq!(t, token("shard-1:0001-0100", 0));
        assert_ne!(t, token("shard-1:0001-0100", 1));
        assert_ne!(t, token("shard-1:0001-0101", 0));
    }
}
