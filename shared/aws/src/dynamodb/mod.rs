//! DynamoDB adapters, one file per port, over one table; `docs/dynamodb.md` has the table
//! design, the access patterns and the per-partition arithmetic behind them.

mod api_keys;
mod attempt_log;
mod audit;
mod cursor;
mod dead_letters;
mod events;
mod health;
mod idempotency;
pub mod keys;
mod rate;
pub(crate) mod sealed;
mod sources;
mod stats;
mod subscribers;
mod tenants;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use api_keys::DynamoDbApiKeyStore;
pub use attempt_log::{DynamoDbAttemptLog, ledger_change};
pub use audit::DynamoDbAuditLog;
pub use dead_letters::DynamoDbDeadLetterStore;
pub use events::DynamoDbEventStore;
pub use health::DynamoDbHealthStore;
pub use idempotency::DynamoDbIdempotencyStore;
pub use rate::DynamoDbRateBudget;
pub use sealed::{DynamoDbSealedSecrets, DynamoDbSealedSourceSecrets};
pub use sources::{DynamoDbReplayGuard, DynamoDbSourceStore};
pub use stats::DynamoDbStatsCounters;
pub use subscribers::DynamoDbSubscriberStore;
pub use tenants::{DynamoDbPublishBudget, DynamoDbTenantStore};

use crate::sdk_error;
use skyhook_domain::ports::StoreError;

pub(crate) const SERVICE: &str = "DynamoDB";

pub(crate) type Item = HashMap<String, AttributeValue>;

/// A client and the name of Skyhook's table: what every adapter here holds.
#[derive(Clone)]
pub(crate) struct Table {
    pub client: Client,
    pub name: String,
}

impl Table {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    /// Writes `items` in one transaction: `Ok(false)` when one of its conditions did not hold.
    pub async fn transact(
        &self,
        items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        written(
            self.client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await,
        )
    }

    /// One item by key. `consistent` reads see every write that finished before them.
    pub async fn get(
        &self,
        pk: &str,
        sk: &str,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(out.item)
    }

    /// Many items by key, 100 to a request, with the keys DynamoDB leaves unprocessed asked
    /// for again. Absent items are simply not in the answer.
    pub async fn get_many(
        &self,
        keys: Vec<(String, String)>,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending: Vec<Item> = chunk
                .iter()
                .map(|(pk, sk)| Item::from([("pk".into(), s(pk)), ("sk".into(), s(sk))]))
                .collect();
            for round in 0..8u32 {
                if pending.is_empty() {
                    break;
                }
                pause_before(round).await;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(consistent)
                    .build()
                    .map_err(|e| StoreError::unavailable(SERVICE, e))?;
                let answer = self
                    .client
                    .batch_get_item()
                    .request_items(&self.name, request)
                    .send()
                    .await
                    .map_err(|e| sdk_error(SERVICE, &e))?;
                if let Some(mut found) = answer.responses
                    && let Some(items) = found.remove(&self.name)
                {
                    out.extend(items);
                }
                if let Some(mut left) = answer.unprocessed_keys
                    && let Some(left) = left.remove(&self.name)
                {
                    pending = left.keys;
                }
            }
            if !pending.is_empty() {
                return Err(StoreError::unavailable(
                    SERVICE,
                    "BatchGetItem left keys unprocessed after several tries",
                ));
            }
        }
        Ok(out)
    }

    /// Writes a whole item, unconditionally.
    pub async fn put<T: Serialize>(&self, item: &T) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(to_item(item)?))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(())
    }

    pub fn query(&self) -> QueryFluentBuilder {
        self.client.query().table_name(&self.name)
    }
}

/// The pause before round `round` of asking again for what a batch call left unprocessed.
pub(crate) async fn pause_before(round: u32) {
    skyhook_domain::retry::Backoff::DYNAMODB_BATCH
        .pause_before(round)
        .await;
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt(format!("item mapping: {e}")))
}

pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(format!("stored item: {e}")))
}

/// A string attribute of a raw item (keys, mostly).
pub(crate) fn attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// A conditional write's answer: `true` when it was written, `false` when its condition did
/// not hold; any other failure is an error.
pub(crate) fn written<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failure(&e) => Ok(false),
        Err(e) => Err(sdk_error(SERVICE, &e)),
    }
}

/// Whether a write was refused because its condition did not hold (single writes) or one
/// of its conditions did not hold and nothing else went wrong (transactions).
pub(crate) fn is_condition_failure<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    match err.as_service_error() {
        Some(e) => match e.code() {
            Some("ConditionalCheckFailedException") => true,
            Some("TransactionCanceledException") => {
                let message = e.message().unwrap_or_default();
                message.contains("ConditionalCheckFailed")
                    && !message.contains("TransactionConflict")
            }
            _ => false,
        },
        None => false,
    }
}

/// The epoch second at which an item written at `now` expires.
pub(crate) fn expiry(now: DateTime<Utc>, ttl: Duration) -> i64 {
    now.timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2)
}

/// Reads every page of a query (the SDK's paginator).
pub(crate) async fn query_all(query: QueryFluentBuilder) -> Result<Vec<Item>, StoreError> {
    let mut items = query.into_paginator().items().send();
    let mut out = Vec::new();
    while let Some(item) = items.next().await {
        out.push(item.map_err(|e| sdk_error(SERVICE, &e))?);
    }
    Ok(out)
}

/// Bounds on the sort key of a query, both inclusive.
#[derive(Debug, Clone, Default)]
pub(crate) struct SortRange {
    pub lo: Option<String>,
    pub hi: Option<String>,
}

impl SortRange {
    pub fn between(lo: impl Into<String>, hi: impl Into<String>) -> Self {
        Self {
            lo: Some(lo.into()),
            hi: Some(hi.into()),
        }
    }

    /// Everything starting with `prefix` (`~` sorts after every character keys use).
    pub fn prefix(prefix: &str) -> Self {
        Self::between(prefix, format!("{prefix}~"))
    }

    /// Whether `sk` lies within the range: DynamoDB refuses a start key outside a query's
    /// key condition, so a cursor holding one is a bad cursor, not a failed read.
    pub fn contains(&self, sk: &str) -> bool {
        self.lo.as_deref().is_none_or(|lo| sk >= lo) && self.hi.as_deref().is_none_or(|hi| sk <= hi)
    }

    fn apply(&self, query: QueryFluentBuilder, pk: &str) -> QueryFluentBuilder {
        let query = query.expression_attribute_values(":pk", s(pk));
        match (&self.lo, &self.hi) {
            (Some(lo), Some(hi)) => query
                .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                .expression_attribute_values(":lo", s(lo))
                .expression_attribute_values(":hi", s(hi)),
            (Some(lo), None) => query
                .key_condition_expression("pk = :pk AND sk >= :lo")
                .expression_attribute_values(":lo", s(lo)),
            (None, Some(hi)) => query
                .key_condition_expression("pk = :pk AND sk <= :hi")
                .expression_attribute_values(":hi", s(hi)),
            (None, None) => query.key_condition_expression("pk = :pk"),
        }
    }
}

/// A filter expression with its placeholder values and names.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    terms: Vec<String>,
    values: Vec<(String, AttributeValue)>,
    names: Vec<(String, String)>,
}

impl Filter {
    pub fn term(mut self, expression: &str) -> Self {
        self.terms.push(expression.to_string());
        self
    }

    pub fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.push((placeholder.to_string(), value));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    fn apply(&self, mut query: QueryFluentBuilder) -> QueryFluentBuilder {
        if self.terms.is_empty() {
            return query;
        }
        query = query.filter_expression(self.terms.join(" AND "));
        for (k, v) in &self.values {
            query = query.expression_attribute_values(k, v.clone());
        }
        for (k, v) in &self.names {
            query = query.expression_attribute_names(k, v);
        }
        query
    }
}

/// DynamoDB's limit on a sort key.
const MAX_SORT_KEY_BYTES: usize = 1024;

/// A query over one partition of the base table: the sort key range, a filter, the order
/// and the read consistency.
#[derive(Debug, Clone)]
pub(crate) struct PartitionQuery {
    pk: String,
    range: SortRange,
    filter: Filter,
    forward: bool,
    consistent: bool,
}

impl PartitionQuery {
    /// Ascending, consistent, unfiltered.
    pub fn new(pk: impl Into<String>, range: SortRange) -> Self {
        Self {
            pk: pk.into(),
            range,
            filter: Filter::default(),
            forward: true,
            consistent: true,
        }
    }

    pub fn filtered(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// Newest (highest sort key) first.
    pub fn backward(mut self) -> Self {
        self.forward = false;
        self
    }

    /// One DynamoDB read of up to `per_read` items after the sort key `start`.
    async fn read(
        &self,
        table: &Table,
        per_read: usize,
        start: Option<String>,
        from_cursor: bool,
    ) -> Result<aws_sdk_dynamodb::operation::query::QueryOutput, StoreError> {
        let mut query = self.range.apply(table.query(), &self.pk);
        query = self
            .filter
            .apply(query)
            .scan_index_forward(self.forward)
            .consistent_read(self.consistent)
            .limit(i32::try_from(per_read).unwrap_or(1000));
        if let Some(sk) = start {
            query = query
                .exclusive_start_key("pk", s(&self.pk))
                .exclusive_start_key("sk", s(sk));
        }
        query.send().await.map_err(|e| {
            // Whatever else DynamoDB finds wrong with a start key a cursor gave.
            if from_cursor
                && aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&e)
                    == Some("ValidationException")
            {
                StoreError::BadCursor
            } else {
                sdk_error(SERVICE, &e)
            }
        })
    }

    /// One page in sort key order (or reverse), starting after the sort key `after`. A
    /// filter can leave DynamoDB pages short or empty; this reads on (a bounded number of
    /// pages) so callers get full pages. Returns the items and, when there may be more, the
    /// sort key to go on after.
    pub async fn page(
        &self,
        table: &Table,
        limit: usize,
        after: Option<String>,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        const MAX_READS: usize = 10;
        let limit = limit.max(1);
        // A cursor's position is checked before it reaches DynamoDB as a start key: empty,
        // longer than a key may be, or outside the range, it could only fail the read.
        if let Some(sk) = &after
            && (sk.is_empty() || sk.len() > MAX_SORT_KEY_BYTES || !self.range.contains(sk))
        {
            return Err(StoreError::BadCursor);
        }
        let from_cursor = after.is_some();
        let per_read = if self.filter.is_empty() {
            limit
        } else {
            (limit * 4).min(1000)
        };
        let mut start = after;
        let mut items: Vec<Item> = Vec::new();
        for _ in 0..MAX_READS {
            let out = self
                .read(table, per_read, start.take(), from_cursor)
                .await?;
            let more = out
                .last_evaluated_key
                .as_ref()
                .and_then(|k| attr(k, "sk"))
                .map(str::to_string);
            let page = out.items.unwrap_or_default();
            let room = limit - items.len();
            if page.len() > room {
                items.extend(page.into_iter().take(room));
                let next = items.last().and_then(|i| attr(i, "sk")).map(str::to_string);
                return Ok((items, next));
            }
            items.extend(page);
            match more {
                None => return Ok((items, None)),
                Some(key) if items.len() >= limit => {
                    let next = items
                        .last()
                        .and_then(|i| attr(i, "sk"))
                        .map(str::to_string)
                        .or(Some(key));
                    return Ok((items, next));
                }
                Some(key) => start = Some(key),
            }
        }
        // Many filtered-out items in a row: hand back what we have and where to go on from.
        Ok((items, start))
    }
}

/// One page merged from several partitions that share a sort key space (the shards of a
/// tenant's events or dead letters), in sort key order or reverse, after `after`. Every
/// partition is read for up to `limit` items; sort keys are unique across them.
pub(crate) async fn merged_page(
    table: &Table,
    partitions: &[String],
    range: &SortRange,
    forward: bool,
    limit: usize,
    after: Option<&str>,
) -> Result<(Vec<Item>, Option<String>), StoreError> {
    let limit = limit.max(1);
    // A start key need not name an existing item, so every shard goes on after `after`.
    let reads = partitions.iter().map(|pk| {
        let mut query = PartitionQuery::new(pk.as_str(), range.clone());
        if !forward {
            query = query.backward();
        }
        let after = after.map(str::to_string);
        async move { query.page(table, limit, after).await }
    });
    let mut more = false;
    let mut all: Vec<Item> = Vec::new();
    for result in futures::future::join_all(reads).await {
        let (items, next) = result?;
        more |= next.is_some();
        all.extend(items);
    }
    all.sort_by(|a, b| {
        let (a, b) = (attr(a, "sk").unwrap_or(""), attr(b, "sk").unwrap_or(""));
        if forward { a.cmp(b) } else { b.cmp(a) }
    });
    if all.len() > limit {
        all.truncate(limit);
        more = true;
    }
    let next = if more {
        all.last().and_then(|i| attr(i, "sk")).map(str::to_string)
    } else {
        None
    };
    Ok((all, next))
}

/// Deflates bytes kept in an item (event payloads, parked messages): JSON shrinks to a
/// third or less, and DynamoDB bills writes per started KB.
pub(crate) fn deflate(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    use std::io::Write;
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(bytes)
        .and_then(|_| z.finish())
        .map_err(|e| StoreError::Corrupt(format!("deflating: {e}")))
}

/// The bytes [`deflate`] packed. A payload is at most 1 MiB; the bound keeps a corrupt item
/// from inflating without end.
pub(crate) fn inflate(bytes: &[u8], what: &str) -> Result<Vec<u8>, StoreError> {
    const MAX_UNPACKED: u64 = 4 * 1024 * 1024;
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(bytes)
        .take(MAX_UNPACKED)
        .read_to_end(&mut out)
        .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sort_range_holds_its_bounds_and_nothing_outside_them() {
        let r = SortRange::prefix("SUB#");
        assert!(r.contains("SUB#"));
        assert!(r.contains("SUB#sub_01"));
        assert!(r.contains("SUB#~"));
        assert!(!r.contains("SUB#~~"), "past the upper bound");
        assert!(!r.contains("SUA#x"));
        assert!(!r.contains(""));
        assert!(SortRange::default().contains("anything"));
        let upper = SortRange {
            lo: None,
            hi: Some("b".into()),
        };
        assert!(upper.contains("a") && !upper.contains("c"));
    }
}
