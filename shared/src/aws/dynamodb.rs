//! DynamoDB adapters. One table holds subscribers, events, delivery status, the attempt
//! log, stats counters, the dead-letter index, API keys, the audit trail and idempotency
//! keys; see `docs/dynamodb.md` for keys, indexes and access patterns.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use super::sdk_error;
use crate::event_type::{EventType, EventTypeFilter};
use crate::ids::{ApiKeyId, EventId, SubscriberId, TenantId};
use crate::model::{
    ApiKey, AttemptRecord, AuditRecord, DeadLetterEntry, DeliveryState, DeliveryStats,
    DeliveryStatus, EventRecord, Outcome, Role, Subscriber, format_time, parse_time,
};
use crate::ports::{
    ApiKeyStore, AttemptLog, AttemptQuery, AuditLog, DeadLetterStore, EventStore,
    IDEMPOTENCY_LEASE, IdempotencyClaim, IdempotencyStore, Page, PageRequest, PublishReceipt,
    StoreError, SubscriberStore,
};
use crate::signing::SignatureScheme;
use crate::url::SubscriberUrl;

const SERVICE: &str = "DynamoDB";
/// DynamoDB items are capped at 400 KB; event payloads above this are not copied into
/// the event record (they still travel in the SQS messages).
const MAX_STORED_DATA_BYTES: usize = 300 * 1024;

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a Item, key: &str) -> Result<&'a str, StoreError> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {key} is missing or not a string")))
}

fn opt_s(item: &Item, key: &str) -> Option<String> {
    item.get(key).and_then(|v| v.as_s().ok()).cloned()
}

fn get_n<T: std::str::FromStr>(item: &Item, key: &str) -> Result<T, StoreError> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {key} is missing or not a number")))
}

fn opt_n<T: std::str::FromStr>(item: &Item, key: &str) -> Option<T> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn get_time(item: &Item, key: &str) -> Result<DateTime<Utc>, StoreError> {
    parse_time(get_s(item, key)?)
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {key} is not an RFC 3339 time")))
}

fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {err}"))
}

fn expiry(now: DateTime<Utc>, ttl: Duration) -> AttributeValue {
    n(now.timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2))
}

fn tenant_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}")
}

fn subscriber_sk(id: &SubscriberId) -> String {
    format!("SUB#{id}")
}

fn event_pk(tenant: &TenantId, id: &EventId) -> String {
    format!("E#{tenant}#{id}")
}

fn subscriber_log_pk(tenant: &TenantId, id: &SubscriberId) -> String {
    format!("S#{tenant}#{id}")
}

fn tenant_log_pk(tenant: &TenantId) -> String {
    format!("A#{tenant}")
}

const EVENT_SK: &str = "#EVENT";
const STATUS_PREFIX: &str = "STATUS#";
const ATTEMPT_PREFIX: &str = "ATTEMPT#";
const STATS_PREFIX: &str = "STATS#";
/// Stats counters are spread over this many items per scope, so that a busy tenant's
/// deliveries do not all write the same item (one item takes about 1,000 writes a second).
const STATS_SHARDS: u32 = 8;

fn stats_scope(subscriber: Option<&SubscriberId>) -> String {
    match subscriber {
        None => format!("{STATS_PREFIX}T#"),
        Some(id) => format!("{STATS_PREFIX}S#{id}#"),
    }
}

/// A transaction refused only because one of its conditions did not hold.
fn is_transaction_condition_failure(
    err: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> bool {
    match err.as_service_error() {
        Some(
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                e,
            ),
        ) => {
            let reasons = e.cancellation_reasons();
            reasons
                .iter()
                .any(|r| r.code() == Some("ConditionalCheckFailed"))
                && reasons
                    .iter()
                    .all(|r| matches!(r.code(), None | Some("None") | Some("ConditionalCheckFailed")))
        }
        _ => false,
    }
}

/// A transaction cancelled because another write to one of its items was in flight (two
/// deliveries finishing at once on the same counter shard): worth trying again at once.
fn is_transaction_conflict(
    err: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> bool {
    match err.as_service_error() {
        Some(
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                e,
            ),
        ) => e
            .cancellation_reasons()
            .iter()
            .any(|r| r.code() == Some("TransactionConflict")),
        Some(e) => e.is_transaction_in_progress_exception(),
        None => false,
    }
}

/// How often a status transaction is tried when it conflicts with another write.
const TRANSACTION_TRIES: u32 = 5;

fn build_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::unavailable(SERVICE, e)
}

/// How a pagination cursor must look: exactly these key attributes, some with a fixed value
/// or prefix drawn from the caller's tenant, so that a cursor cannot reach another tenant.
struct CursorShape {
    names: &'static [&'static str],
    exact: Vec<(&'static str, String)>,
    prefixed: Vec<(&'static str, String)>,
}

/// A cursor is the key of the last item returned, as base64url JSON.
fn encode_key_cursor(item: &Item, names: &[&str]) -> Option<String> {
    let mut map = serde_json::Map::new();
    for name in names {
        map.insert(
            (*name).to_string(),
            serde_json::Value::String(item.get(*name)?.as_s().ok()?.clone()),
        );
    }
    Some(URL_SAFE_NO_PAD.encode(serde_json::Value::Object(map).to_string()))
}

fn decode_key_cursor(cursor: &str, shape: &CursorShape) -> Result<Item, StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::BadCursor)?;
    let map: BTreeMap<String, String> =
        serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
    if map.len() != shape.names.len() || !shape.names.iter().all(|n| map.contains_key(*n)) {
        return Err(StoreError::BadCursor);
    }
    let exact_ok = shape
        .exact
        .iter()
        .all(|(n, v)| map.get(*n).is_some_and(|x| x == v));
    let prefix_ok = shape
        .prefixed
        .iter()
        .all(|(n, p)| map.get(*n).is_some_and(|x| x.starts_with(p.as_str())));
    if !(exact_ok && prefix_ok) {
        return Err(StoreError::BadCursor);
    }
    Ok(map.into_iter().map(|(k, v)| (k, s(v))).collect())
}

/// Runs `query` until `limit` items are in hand or the range ends. A filter expression can
/// leave a DynamoDB page short or empty; this keeps reading (a bounded number of pages) so
/// callers get full pages, and the cursor is the key of the last item actually returned.
async fn query_page(
    query: QueryFluentBuilder,
    limit: usize,
    cursor: Option<&str>,
    shape: &CursorShape,
    filtered: bool,
) -> Result<(Vec<Item>, Option<String>), StoreError> {
    const MAX_READS: usize = 10;
    let limit = limit.max(1);
    let mut start = cursor.map(|c| decode_key_cursor(c, shape)).transpose()?;
    let mut items: Vec<Item> = Vec::new();
    let per_read = if filtered {
        (limit * 4).min(1000)
    } else {
        limit
    };
    for _ in 0..MAX_READS {
        let out = query
            .clone()
            .limit(i32::try_from(per_read).unwrap_or(1000))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        let page = out.items();
        let more = out.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
        let room = limit - items.len();
        if page.len() > room {
            items.extend(page[..room].iter().cloned());
            let next = items.last().and_then(|i| encode_key_cursor(i, shape.names));
            return Ok((items, next));
        }
        items.extend(page.iter().cloned());
        match more {
            None => return Ok((items, None)),
            Some(key) if items.len() >= limit => {
                let next = items
                    .last()
                    .and_then(|i| encode_key_cursor(i, shape.names))
                    .or_else(|| encode_key_cursor(&key, shape.names));
                return Ok((items, next));
            }
            Some(key) => start = Some(key),
        }
    }
    // Many filtered-out items in a row: hand back what we have and where to go on from.
    let next = start
        .as_ref()
        .and_then(|k| encode_key_cursor(k, shape.names));
    Ok((items, next))
}

/// Subscribers: `pk = T#{tenant}`, `sk = SUB#{id}`.
#[derive(Clone)]
pub struct DynamoDbSubscriberStore {
    client: Client,
    table: String,
}

impl DynamoDbSubscriberStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn subscriber_to_item(sub: &Subscriber) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), s(tenant_pk(&sub.tenant)));
    item.insert("sk".into(), s(subscriber_sk(&sub.id)));
    item.insert("kind".into(), s("subscriber"));
    item.insert("id".into(), s(sub.id.as_str()));
    item.insert("tenant".into(), s(sub.tenant.as_str()));
    item.insert("url".into(), s(sub.url.as_str()));
    item.insert(
        "event_types".into(),
        AttributeValue::L(sub.event_types.iter().map(|f| s(f.as_str())).collect()),
    );
    item.insert("active".into(), AttributeValue::Bool(sub.active));
    if let Some(d) = &sub.description {
        item.insert("description".into(), s(d));
    }
    item.insert(
        "headers".into(),
        AttributeValue::M(sub.headers.iter().map(|(k, v)| (k.clone(), s(v))).collect()),
    );
    item.insert("signature_scheme".into(), s(sub.signature_scheme.as_str()));
    item.insert("created_at".into(), s(format_time(sub.created_at)));
    item.insert("updated_at".into(), s(format_time(sub.updated_at)));
    item
}

fn subscriber_from_item(item: &Item) -> Result<Subscriber, StoreError> {
    let event_types = item
        .get("event_types")
        .and_then(|v| v.as_l().ok())
        .ok_or_else(|| StoreError::Corrupt("attribute event_types is missing".into()))?
        .iter()
        .map(|v| {
            v.as_s()
                .map_err(|_| StoreError::Corrupt("event_types holds a non-string".into()))
                .and_then(|f| EventTypeFilter::parse(f).map_err(|e| corrupt("event_types", e)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let headers = item
        .get("headers")
        .and_then(|v| v.as_m().ok())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.clone(), v.clone())))
                .collect::<BTreeMap<_, _>>()
        })
        .unwrap_or_default();
    Ok(Subscriber {
        id: SubscriberId::parse(get_s(item, "id")?).map_err(|e| corrupt("id", e))?,
        tenant: TenantId::parse(get_s(item, "tenant")?).map_err(|e| corrupt("tenant", e))?,
        url: SubscriberUrl::parse(get_s(item, "url")?, crate::url::UrlPolicy::LOCAL)
            .map_err(|e| corrupt("url", e))?,
        event_types,
        active: item
            .get("active")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        description: opt_s(item, "description"),
        headers,
        signature_scheme: opt_s(item, "signature_scheme")
            .map(|v| SignatureScheme::parse(&v).map_err(|e| corrupt("signature_scheme", e)))
            .transpose()?
            .unwrap_or_default(),
        created_at: get_time(item, "created_at")?,
        updated_at: get_time(item, "updated_at")?,
    })
}

fn encode_cursor(key: &Item) -> Option<String> {
    let sk = key.get("sk")?.as_s().ok()?;
    Some(URL_SAFE_NO_PAD.encode(sk.as_bytes()))
}

/// A cursor is the sort key of the last item seen; the partition always comes from the
/// caller's tenant, so a cursor cannot reach into another tenant's data.
fn decode_cursor(cursor: &str, prefix: &str) -> Result<String, StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::BadCursor)?;
    let sk = String::from_utf8(bytes).map_err(|_| StoreError::BadCursor)?;
    if sk.starts_with(prefix) {
        Ok(sk)
    } else {
        Err(StoreError::BadCursor)
    }
}

#[async_trait]
impl SubscriberStore for DynamoDbSubscriberStore {
    async fn create(&self, subscriber: &Subscriber) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(subscriber_to_item(subscriber)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => {
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception())
                {
                    Err(StoreError::Conflict(format!(
                        "subscriber {} already exists",
                        subscriber.id
                    )))
                } else {
                    Err(sdk_error(SERVICE, &err))
                }
            }
        }
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<Subscriber>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(tenant_pk(tenant)))
            .key("sk", s(subscriber_sk(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        out.item().map(subscriber_from_item).transpose()
    }

    async fn delete(&self, tenant: &TenantId, id: &SubscriberId) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(tenant_pk(tenant)))
            .key("sk", s(subscriber_sk(id)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(out.attributes().is_some_and(|a| !a.is_empty()))
    }

    async fn list(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<Subscriber>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(tenant_pk(tenant)))
            .expression_attribute_values(":prefix", s("SUB#"));
        if let Some(active) = page.active {
            query = query
                .filter_expression("active = :active")
                .expression_attribute_values(":active", AttributeValue::Bool(active));
        }
        let shape = CursorShape {
            names: &["pk", "sk"],
            exact: vec![("pk", tenant_pk(tenant))],
            prefixed: vec![("sk", "SUB#".to_string())],
        };
        // With the `active` filter a DynamoDB page can come back short; query_page reads on
        // so the caller still gets full pages.
        let (items, next_cursor) = query_page(
            query,
            page.limit.clamp(1, 1000),
            page.cursor.as_deref(),
            &shape,
            page.active.is_some(),
        )
        .await?;
        Ok(Page {
            items: items
                .iter()
                .map(subscriber_from_item)
                .collect::<Result<Vec<_>, _>>()?,
            next_cursor,
        })
    }

    async fn active(&self, tenant: &TenantId) -> Result<Vec<Subscriber>, StoreError> {
        let mut all = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .filter_expression("active = :active")
                .expression_attribute_values(":pk", s(tenant_pk(tenant)))
                .expression_attribute_values(":prefix", s("SUB#"))
                .expression_attribute_values(":active", AttributeValue::Bool(true))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(SERVICE, &e))?;
            for item in out.items() {
                all.push(subscriber_from_item(item)?);
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        Ok(all)
    }

    async fn replace(
        &self,
        subscriber: &Subscriber,
        expected_updated_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(subscriber_to_item(subscriber)))
            .condition_expression("attribute_exists(pk) AND updated_at = :prev")
            .expression_attribute_values(":prev", s(format_time(expected_updated_at)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict(format!(
                    "subscriber {} was changed or deleted meanwhile; read it again and retry",
                    subscriber.id
                )))
            }
            Err(err) => Err(sdk_error(SERVICE, &err)),
        }
    }
}

/// Events: `pk = E#{tenant}#{event}`, `sk = #EVENT`; their delivery statuses and
/// attempts share the partition so `GET /v1/events/{id}` is one query.
#[derive(Clone)]
pub struct DynamoDbEventStore {
    client: Client,
    table: String,
    retention: Duration,
}

impl DynamoDbEventStore {
    pub fn new(client: Client, table: impl Into<String>, retention: Duration) -> Self {
        Self {
            client,
            table: table.into(),
            retention,
        }
    }
}

#[async_trait]
impl EventStore for DynamoDbEventStore {
    async fn put_event(&self, event: &EventRecord) -> Result<(), StoreError> {
        let mut item = Item::new();
        item.insert("pk".into(), s(event_pk(&event.tenant, &event.id)));
        item.insert("sk".into(), s(EVENT_SK));
        item.insert("kind".into(), s("event"));
        item.insert("id".into(), s(event.id.as_str()));
        item.insert("tenant".into(), s(event.tenant.as_str()));
        item.insert("type".into(), s(event.event_type.as_str()));
        item.insert("timestamp".into(), s(format_time(event.timestamp)));
        if let Some(data) = &event.data
            && data.get().len() <= MAX_STORED_DATA_BYTES
        {
            item.insert("data".into(), s(data.get()));
        }
        item.insert("correlation_id".into(), s(&event.correlation_id));
        item.insert(
            "subscriber_ids".into(),
            AttributeValue::L(
                event
                    .subscriber_ids
                    .iter()
                    .map(|id| s(id.as_str()))
                    .collect(),
            ),
        );
        item.insert("expires_at".into(), expiry(Utc::now(), self.retention));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(())
    }

    async fn get_event(
        &self,
        tenant: &TenantId,
        id: &EventId,
    ) -> Result<Option<EventRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(event_pk(tenant, id)))
            .key("sk", s(EVENT_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let data = opt_s(item, "data")
            .map(|d| RawValue::from_string(d).map_err(|e| corrupt("data", e)))
            .transpose()?;
        let subscriber_ids = item
            .get("subscriber_ids")
            .and_then(|v| v.as_l().ok())
            .map(|l| {
                l.iter()
                    .filter_map(|v| v.as_s().ok())
                    .map(|v| SubscriberId::parse(v).map_err(|e| corrupt("subscriber_ids", e)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        Ok(Some(EventRecord {
            id: EventId::parse(get_s(item, "id")?).map_err(|e| corrupt("id", e))?,
            tenant: TenantId::parse(get_s(item, "tenant")?).map_err(|e| corrupt("tenant", e))?,
            event_type: EventType::parse(get_s(item, "type")?).map_err(|e| corrupt("type", e))?,
            timestamp: get_time(item, "timestamp")?,
            data,
            correlation_id: opt_s(item, "correlation_id").unwrap_or_default(),
            subscriber_ids,
        }))
    }
}

/// Attempts: `pk = E#{tenant}#{event}`, `sk = ATTEMPT#{subscriber}#{attempt:05}`, in index
/// `gsi1` under `S#{tenant}#{subscriber}` and in index `gsi2` under `A#{tenant}`, both by
/// time. Status: `sk = STATUS#{subscriber}`. Stats counters: `pk = T#{tenant}`,
/// `sk = STATS#T#{shard}` (tenant) and `STATS#S#{subscriber}#{shard}` (one subscriber).
#[derive(Clone)]
pub struct DynamoDbAttemptLog {
    client: Client,
    table: String,
    retention: Duration,
}

/// A status write is accepted when there is no status yet, or the stored one is not final
/// and not from a later attempt: a late duplicate never undoes a newer result, and a final
/// status changes only through [`AttemptLog::replace_status`].
const STATUS_CONDITION: &str =
    "attribute_not_exists(pk) OR (attempts <= :attempts AND NOT (#st IN (:delivered, :failed)))";

/// The condition a status write is made under, with its placeholder values.
struct StatusCondition {
    expression: &'static str,
    values: Vec<(&'static str, AttributeValue)>,
    /// Whether the expression names the `status` attribute (a reserved word) as `#st`.
    uses_status_name: bool,
}

impl DynamoDbAttemptLog {
    pub fn new(client: Client, table: impl Into<String>, retention: Duration) -> Self {
        Self {
            client,
            table: table.into(),
            retention,
        }
    }

    fn status_item(&self, tenant: &TenantId, event_id: &EventId, st: &DeliveryStatus) -> Item {
        let now = Utc::now();
        let mut item = Item::new();
        item.insert("pk".into(), s(event_pk(tenant, event_id)));
        item.insert(
            "sk".into(),
            s(format!("{STATUS_PREFIX}{}", st.subscriber_id)),
        );
        item.insert("kind".into(), s("status"));
        item.insert("subscriber_id".into(), s(st.subscriber_id.as_str()));
        item.insert("status".into(), s(st.status.as_str()));
        item.insert("attempts".into(), n(st.attempts));
        if let Some(code) = st.last_status_code {
            item.insert("last_status_code".into(), n(code));
        }
        if let Some(err) = &st.last_error {
            item.insert("last_error".into(), s(err));
        }
        item.insert(
            "updated_at".into(),
            s(format_time(st.updated_at.unwrap_or(now))),
        );
        item.insert("expires_at".into(), expiry(now, self.retention));
        item
    }

    /// The counter updates for a change of the totals: the tenant's and the subscriber's,
    /// each on a random shard.
    fn counter_updates(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
        change: DeliveryStats,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let shard = rand::random::<u32>() % STATS_SHARDS;
        [None, Some(subscriber)]
            .into_iter()
            .map(|scope| {
                let update = Update::builder()
                    .table_name(&self.table)
                    .key("pk", s(tenant_pk(tenant)))
                    .key("sk", s(format!("{}{shard}", stats_scope(scope))))
                    .update_expression(
                        "SET kind = :kind ADD success :success, failure :failure, attempts :attempts",
                    )
                    .expression_attribute_values(":kind", s("stats"))
                    .expression_attribute_values(":success", n(change.success))
                    .expression_attribute_values(":failure", n(change.failure))
                    .expression_attribute_values(":attempts", n(change.attempts))
                    .build()
                    .map_err(build_err)?;
                Ok(TransactWriteItem::builder().update(update).build())
            })
            .collect()
    }

    /// Writes a status under `condition`; when the totals change (a delivery finished, or a
    /// finished one was reopened) the counters move in the same transaction, so they count
    /// each finished delivery exactly once however often SQS delivers its message.
    /// `Ok(false)` when the condition did not hold.
    async fn write_status(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        status: &DeliveryStatus,
        condition: StatusCondition,
        change: DeliveryStats,
    ) -> Result<bool, StoreError> {
        let StatusCondition {
            expression: condition,
            values,
            uses_status_name,
        } = condition;
        let item = self.status_item(tenant, event_id, status);
        if change.is_zero() {
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(condition);
            if uses_status_name {
                put = put.expression_attribute_names("#st", "status");
            }
            for (k, v) in values {
                put = put.expression_attribute_values(k, v);
            }
            return match put.send().await {
                Ok(_) => Ok(true),
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    Ok(false)
                }
                Err(err) => Err(sdk_error(SERVICE, &err)),
            };
        }
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition);
        if uses_status_name {
            put = put.expression_attribute_names("#st", "status");
        }
        for (k, v) in values {
            put = put.expression_attribute_values(k, v);
        }
        let put = TransactWriteItem::builder()
            .put(put.build().map_err(build_err)?)
            .build();
        let mut tries = 0;
        loop {
            tries += 1;
            // A fresh random shard each try, which is what usually clears a conflict.
            let mut items = vec![put.clone()];
            items.extend(self.counter_updates(tenant, &status.subscriber_id, change)?);
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
            {
                Ok(_) => return Ok(true),
                Err(err) if is_transaction_condition_failure(&err) => return Ok(false),
                Err(err) if tries < TRANSACTION_TRIES && is_transaction_conflict(&err) => {
                    let pause = 10 * u64::from(tries) + rand::random::<u64>() % 20;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(err) => return Err(sdk_error(SERVICE, &err)),
            }
        }
    }

    async fn put_status(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        status: &DeliveryStatus,
    ) -> Result<(), StoreError> {
        // Under STATUS_CONDITION the stored status is never final, so it contributed nothing
        // to the totals and the change is all of the new one.
        let written = self
            .write_status(
                tenant,
                event_id,
                status,
                StatusCondition {
                    expression: STATUS_CONDITION,
                    values: vec![
                        (":attempts", n(status.attempts)),
                        (":delivered", s(DeliveryState::Delivered.as_str())),
                        (":failed", s(DeliveryState::Failed.as_str())),
                    ],
                    uses_status_name: true,
                },
                DeliveryStats::of_status(status),
            )
            .await?;
        if !written {
            tracing::debug!(event_id = %event_id, subscriber_id = %status.subscriber_id, "a newer or final status is already stored");
        }
        Ok(())
    }
}

fn attempt_to_item(a: &AttemptRecord, expires_at: AttributeValue) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), s(event_pk(&a.tenant, &a.event_id)));
    item.insert(
        "sk".into(),
        s(format!(
            "{ATTEMPT_PREFIX}{}#{:05}",
            a.subscriber_id, a.attempt
        )),
    );
    item.insert(
        "gsi1pk".into(),
        s(subscriber_log_pk(&a.tenant, &a.subscriber_id)),
    );
    item.insert(
        "gsi1sk".into(),
        s(format!(
            "{}#{}#{:05}",
            format_time(a.started_at),
            a.event_id,
            a.attempt
        )),
    );
    item.insert("gsi2pk".into(), s(tenant_log_pk(&a.tenant)));
    item.insert(
        "gsi2sk".into(),
        s(format!(
            "{}#{}#{}#{:05}",
            format_time(a.started_at),
            a.event_id,
            a.subscriber_id,
            a.attempt
        )),
    );
    item.insert("kind".into(), s("attempt"));
    item.insert("event_id".into(), s(a.event_id.as_str()));
    item.insert("tenant".into(), s(a.tenant.as_str()));
    item.insert("subscriber_id".into(), s(a.subscriber_id.as_str()));
    item.insert("event_type".into(), s(a.event_type.as_str()));
    item.insert("attempt".into(), n(a.attempt));
    item.insert("outcome".into(), s(a.outcome.as_str()));
    if let Some(code) = a.status_code {
        item.insert("status_code".into(), n(code));
    }
    item.insert("latency_ms".into(), n(a.latency_ms));
    if let Some(e) = &a.error {
        item.insert("error".into(), s(e));
    }
    if let Some(b) = &a.response_body {
        item.insert("response_body".into(), s(b));
    }
    item.insert("url".into(), s(&a.url));
    item.insert("started_at".into(), s(format_time(a.started_at)));
    item.insert("finished_at".into(), s(format_time(a.finished_at)));
    item.insert("expires_at".into(), expires_at);
    item
}

fn attempt_from_item(item: &Item) -> Result<AttemptRecord, StoreError> {
    Ok(AttemptRecord {
        event_id: EventId::parse(get_s(item, "event_id")?).map_err(|e| corrupt("event_id", e))?,
        tenant: TenantId::parse(get_s(item, "tenant")?).map_err(|e| corrupt("tenant", e))?,
        subscriber_id: SubscriberId::parse(get_s(item, "subscriber_id")?)
            .map_err(|e| corrupt("subscriber_id", e))?,
        event_type: EventType::parse(get_s(item, "event_type")?)
            .map_err(|e| corrupt("event_type", e))?,
        attempt: get_n(item, "attempt")?,
        outcome: Outcome::parse(get_s(item, "outcome")?)
            .ok_or_else(|| StoreError::Corrupt("unknown outcome".into()))?,
        status_code: opt_n(item, "status_code"),
        latency_ms: get_n(item, "latency_ms")?,
        error: opt_s(item, "error"),
        response_body: opt_s(item, "response_body"),
        url: opt_s(item, "url").unwrap_or_default(),
        started_at: get_time(item, "started_at")?,
        finished_at: get_time(item, "finished_at")?,
    })
}

fn status_from_item(item: &Item) -> Result<DeliveryStatus, StoreError> {
    Ok(DeliveryStatus {
        subscriber_id: SubscriberId::parse(get_s(item, "subscriber_id")?)
            .map_err(|e| corrupt("subscriber_id", e))?,
        status: DeliveryState::parse(get_s(item, "status")?)
            .ok_or_else(|| StoreError::Corrupt("unknown delivery status".into()))?,
        attempts: get_n(item, "attempts")?,
        last_status_code: opt_n(item, "last_status_code"),
        last_error: opt_s(item, "last_error"),
        updated_at: Some(get_time(item, "updated_at")?),
    })
}

impl DynamoDbAttemptLog {
    async fn query_prefix(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        prefix: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(event_pk(tenant, event_id)))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(SERVICE, &e))?;
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        Ok(items)
    }
}

fn stats_from_items(items: &[Item]) -> DeliveryStats {
    items
        .iter()
        .fold(DeliveryStats::default(), |acc, item| DeliveryStats {
            success: acc.success + opt_n::<i64>(item, "success").unwrap_or(0),
            failure: acc.failure + opt_n::<i64>(item, "failure").unwrap_or(0),
            attempts: acc.attempts + opt_n::<i64>(item, "attempts").unwrap_or(0),
        })
}

/// Upper bound of a time range on a `{time}#…` sort key: `~` sorts after `#` and every digit.
fn time_key_upper(t: DateTime<Utc>) -> String {
    format!("{}~", format_time(t))
}

#[async_trait]
impl AttemptLog for DynamoDbAttemptLog {
    async fn record(
        &self,
        attempt: &AttemptRecord,
        status: &DeliveryStatus,
    ) -> Result<(), StoreError> {
        let put_attempt = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attempt_to_item(
                attempt,
                expiry(attempt.finished_at, self.retention),
            )))
            .send();
        let put_status = self.put_status(&attempt.tenant, &attempt.event_id, status);
        let (a, st) = tokio::join!(put_attempt, put_status);
        a.map_err(|e| sdk_error(SERVICE, &e))?;
        st
    }

    async fn set_status(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        status: &DeliveryStatus,
    ) -> Result<(), StoreError> {
        self.put_status(tenant, event_id, status).await
    }

    async fn statuses(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
    ) -> Result<Vec<DeliveryStatus>, StoreError> {
        self.query_prefix(tenant, event_id, STATUS_PREFIX)
            .await?
            .iter()
            .map(status_from_item)
            .collect()
    }

    async fn attempts(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        self.query_prefix(tenant, event_id, ATTEMPT_PREFIX)
            .await?
            .iter()
            .map(attempt_from_item)
            .collect()
    }

    async fn list(
        &self,
        tenant: &TenantId,
        q: &AttemptQuery,
    ) -> Result<Page<AttemptRecord>, StoreError> {
        let mut query = self.client.query().table_name(&self.table);
        let mut filters: Vec<&str> = Vec::new();
        let shape;
        if let Some(event_id) = &q.event_id {
            // One event: its own partition, by subscriber and attempt number.
            let prefix = match &q.subscriber_id {
                Some(sub) => format!("{ATTEMPT_PREFIX}{sub}#"),
                None => ATTEMPT_PREFIX.to_string(),
            };
            query = query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(event_pk(tenant, event_id)))
                .expression_attribute_values(":prefix", s(&prefix))
                .consistent_read(true);
            if let Some(since) = q.since {
                filters.push("started_at >= :since");
                query = query.expression_attribute_values(":since", s(format_time(since)));
            }
            if let Some(until) = q.until {
                filters.push("started_at <= :until");
                query = query.expression_attribute_values(":until", s(format_time(until)));
            }
            shape = CursorShape {
                names: &["pk", "sk"],
                exact: vec![("pk", event_pk(tenant, event_id))],
                prefixed: vec![("sk", prefix)],
            };
        } else {
            // One subscriber (gsi1) or the whole tenant (gsi2), newest first, the time range
            // in the key condition.
            let (index, pk_name, sk_name, partition) = match &q.subscriber_id {
                Some(sub) => ("gsi1", "gsi1pk", "gsi1sk", subscriber_log_pk(tenant, sub)),
                None => ("gsi2", "gsi2pk", "gsi2sk", tenant_log_pk(tenant)),
            };
            let range = match (q.since, q.until) {
                (Some(a), Some(b)) => {
                    query = query
                        .expression_attribute_values(":lo", s(format_time(a)))
                        .expression_attribute_values(":hi", s(time_key_upper(b)));
                    format!(" AND {sk_name} BETWEEN :lo AND :hi")
                }
                (Some(a), None) => {
                    query = query.expression_attribute_values(":lo", s(format_time(a)));
                    format!(" AND {sk_name} >= :lo")
                }
                (None, Some(b)) => {
                    query = query.expression_attribute_values(":hi", s(time_key_upper(b)));
                    format!(" AND {sk_name} <= :hi")
                }
                (None, None) => String::new(),
            };
            query = query
                .index_name(index)
                .key_condition_expression(format!("{pk_name} = :pk{range}"))
                .expression_attribute_values(":pk", s(&partition))
                .scan_index_forward(false);
            shape = CursorShape {
                names: if index == "gsi1" {
                    &["pk", "sk", "gsi1pk", "gsi1sk"]
                } else {
                    &["pk", "sk", "gsi2pk", "gsi2sk"]
                },
                exact: vec![(pk_name, partition)],
                prefixed: vec![
                    ("pk", format!("E#{tenant}#")),
                    ("sk", ATTEMPT_PREFIX.into()),
                ],
            };
        }
        if let Some(outcome) = q.outcome {
            filters.push("outcome = :outcome");
            query = query.expression_attribute_values(":outcome", s(outcome.as_str()));
        }
        let filtered = !filters.is_empty();
        if filtered {
            query = query.filter_expression(filters.join(" AND "));
        }
        let (items, next_cursor) =
            query_page(query, q.limit, q.cursor.as_deref(), &shape, filtered).await?;
        Ok(Page {
            items: items
                .iter()
                .map(attempt_from_item)
                .collect::<Result<_, _>>()?,
            next_cursor,
        })
    }

    async fn stats(
        &self,
        tenant: &TenantId,
        subscriber: Option<&SubscriberId>,
    ) -> Result<DeliveryStats, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(tenant_pk(tenant)))
            .expression_attribute_values(":prefix", s(stats_scope(subscriber)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(stats_from_items(out.items()))
    }

    async fn replace_status(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        expected: Option<&DeliveryStatus>,
        new: &DeliveryStatus,
    ) -> Result<bool, StoreError> {
        let before = expected.map(DeliveryStats::of_status).unwrap_or_default();
        let change = DeliveryStats::of_status(new).minus(before);
        match expected {
            None => {
                self.write_status(
                    tenant,
                    event_id,
                    new,
                    StatusCondition {
                        expression: "attribute_not_exists(pk)",
                        values: vec![],
                        uses_status_name: false,
                    },
                    change,
                )
                .await
            }
            Some(old) => {
                self.write_status(
                    tenant,
                    event_id,
                    new,
                    StatusCondition {
                        expression: "#st = :old_status AND attempts = :old_attempts",
                        values: vec![
                            (":old_status", s(old.status.as_str())),
                            (":old_attempts", n(old.attempts)),
                        ],
                        uses_status_name: true,
                    },
                    change,
                )
                .await
            }
        }
    }
}

/// Idempotency keys: `pk = I#{tenant}#{key}`, `sk = #IDEM`, expiring by TTL. Expiry is
/// also checked on read, since TTL deletion can lag by days.
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
        format!("I#{tenant}#{key}")
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
            .item("sk", s("#IDEM"))
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
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
            Err(err) => return Err(sdk_error(SERVICE, &err)),
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s("#IDEM"))
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
            Ok(IdempotencyClaim::Completed(PublishReceipt {
                id: existing,
                event_type: EventType::parse(get_s(item, "type")?)
                    .map_err(|e| corrupt("type", e))?,
                subscribers: get_n(item, "subscribers")?,
            }))
        } else {
            // Take over an unfinished publish whose lease ran out; the condition makes sure
            // only one of several callers does.
            let taken = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s("#IDEM"))
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
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    Ok(IdempotencyClaim::Busy(existing))
                }
                Err(err) => Err(sdk_error(SERVICE, &err)),
            }
        }
    }

    async fn abandon(&self, tenant: &TenantId, key: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(Self::pk(tenant, key)))
            .key("sk", s("#IDEM"))
            .update_expression("SET lease_until = :zero")
            .condition_expression("#state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Completed meanwhile, or gone: nothing to give up.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(sdk_error(SERVICE, &err)),
        }
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
            .item("sk", s("#IDEM"))
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

/// The dead-letter index: `pk = D#{tenant}`, `sk = {event}#{subscriber}` (event ids sort by
/// time), and in `gsi1` under `D#{tenant}#{subscriber}` by event. Expires with the DLQ's
/// message retention, after which SQS no longer has the message either.
#[derive(Clone)]
pub struct DynamoDbDeadLetterStore {
    client: Client,
    table: String,
}

impl DynamoDbDeadLetterStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn dead_pk(tenant: &TenantId) -> String {
    format!("D#{tenant}")
}

fn dead_sk(event_id: &EventId, subscriber: &SubscriberId) -> String {
    format!("{event_id}#{subscriber}")
}

fn dead_by_subscriber_pk(tenant: &TenantId, subscriber: &SubscriberId) -> String {
    format!("D#{tenant}#{subscriber}")
}

fn dead_from_item(item: &Item) -> Result<DeadLetterEntry, StoreError> {
    Ok(DeadLetterEntry {
        tenant: TenantId::parse(get_s(item, "tenant")?).map_err(|e| corrupt("tenant", e))?,
        event_id: EventId::parse(get_s(item, "event_id")?).map_err(|e| corrupt("event_id", e))?,
        subscriber_id: SubscriberId::parse(get_s(item, "subscriber_id")?)
            .map_err(|e| corrupt("subscriber_id", e))?,
        event_type: EventType::parse(get_s(item, "event_type")?)
            .map_err(|e| corrupt("event_type", e))?,
        reason: opt_s(item, "reason").unwrap_or_default(),
        attempts: get_n(item, "attempts")?,
        dead_at: get_time(item, "dead_at")?,
    })
}

#[async_trait]
impl DeadLetterStore for DynamoDbDeadLetterStore {
    async fn put(&self, e: &DeadLetterEntry) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(dead_pk(&e.tenant)))
            .item("sk", s(dead_sk(&e.event_id, &e.subscriber_id)))
            .item(
                "gsi1pk",
                s(dead_by_subscriber_pk(&e.tenant, &e.subscriber_id)),
            )
            .item("gsi1sk", s(e.event_id.as_str()))
            .item("kind", s("dead_letter"))
            .item("tenant", s(e.tenant.as_str()))
            .item("event_id", s(e.event_id.as_str()))
            .item("subscriber_id", s(e.subscriber_id.as_str()))
            .item("event_type", s(e.event_type.as_str()))
            .item("reason", s(&e.reason))
            .item("attempts", n(e.attempts))
            .item("dead_at", s(format_time(e.dead_at)))
            .item(
                "expires_at",
                expiry(e.dead_at, crate::config::DEAD_LETTER_RETENTION),
            )
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(())
    }

    async fn list(
        &self,
        tenant: &TenantId,
        subscriber: Option<&SubscriberId>,
        page: &PageRequest,
    ) -> Result<Page<DeadLetterEntry>, StoreError> {
        let (query, shape) = match subscriber {
            None => (
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(dead_pk(tenant)))
                    .consistent_read(true),
                CursorShape {
                    names: &["pk", "sk"],
                    exact: vec![("pk", dead_pk(tenant))],
                    prefixed: vec![],
                },
            ),
            Some(sub) => (
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name("gsi1")
                    .key_condition_expression("gsi1pk = :pk")
                    .expression_attribute_values(":pk", s(dead_by_subscriber_pk(tenant, sub))),
                CursorShape {
                    names: &["pk", "sk", "gsi1pk", "gsi1sk"],
                    exact: vec![
                        ("pk", dead_pk(tenant)),
                        ("gsi1pk", dead_by_subscriber_pk(tenant, sub)),
                    ],
                    prefixed: vec![],
                },
            ),
        };
        let (items, next_cursor) =
            query_page(query, page.limit, page.cursor.as_deref(), &shape, false).await?;
        Ok(Page {
            items: items.iter().map(dead_from_item).collect::<Result<_, _>>()?,
            next_cursor,
        })
    }

    async fn remove(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        subscriber: &SubscriberId,
    ) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(dead_pk(tenant)))
            .key("sk", s(dead_sk(event_id, subscriber)))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(())
    }
}

/// API keys, two items per key written together: `pk = K#{sha256 hex}`, `sk = #KEY` finds a
/// key by its digest at authentication; `pk = T#{tenant}`, `sk = KEY#{key_id}` lists a
/// tenant's keys and finds the digest item to delete. Neither holds the key itself.
#[derive(Clone)]
pub struct DynamoDbApiKeyStore {
    client: Client,
    table: String,
}

impl DynamoDbApiKeyStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

const KEY_PREFIX: &str = "KEY#";
const KEY_DIGEST_SK: &str = "#KEY";

fn key_digest_pk(digest_hex: &str) -> String {
    format!("K#{digest_hex}")
}

fn api_key_item(key: &ApiKey, digest_hex: &str) -> Item {
    let mut item = Item::new();
    item.insert("kind".into(), s("api_key"));
    item.insert("id".into(), s(key.id.as_str()));
    item.insert("tenant".into(), s(key.tenant.as_str()));
    item.insert("role".into(), s(key.role.as_str()));
    if let Some(d) = &key.description {
        item.insert("description".into(), s(d));
    }
    item.insert("created_at".into(), s(format_time(key.created_at)));
    item.insert("created_by".into(), s(&key.created_by));
    item.insert("digest".into(), s(digest_hex));
    item
}

fn api_key_from_item(item: &Item) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: ApiKeyId::parse(get_s(item, "id")?).map_err(|e| corrupt("id", e))?,
        tenant: TenantId::parse(get_s(item, "tenant")?).map_err(|e| corrupt("tenant", e))?,
        role: Role::parse(get_s(item, "role")?)
            .ok_or_else(|| StoreError::Corrupt("unknown role".into()))?,
        description: opt_s(item, "description"),
        created_at: get_time(item, "created_at")?,
        created_by: opt_s(item, "created_by").unwrap_or_default(),
    })
}

#[async_trait]
impl ApiKeyStore for DynamoDbApiKeyStore {
    async fn create(&self, key: &ApiKey, digest: &[u8; 32]) -> Result<(), StoreError> {
        let digest_hex = hex::encode(digest);
        let mut by_digest = api_key_item(key, &digest_hex);
        by_digest.insert("pk".into(), s(key_digest_pk(&digest_hex)));
        by_digest.insert("sk".into(), s(KEY_DIGEST_SK));
        let mut by_tenant = api_key_item(key, &digest_hex);
        by_tenant.insert("pk".into(), s(tenant_pk(&key.tenant)));
        by_tenant.insert("sk".into(), s(format!("{KEY_PREFIX}{}", key.id)));
        let puts = [by_digest, by_tenant]
            .into_iter()
            .map(|item| {
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map(|p| TransactWriteItem::builder().put(p).build())
                    .map_err(build_err)
            })
            .collect::<Result<Vec<_>, _>>()?;
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(puts))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if is_transaction_condition_failure(&err) => {
                Err(StoreError::Conflict("that API key already exists".into()))
            }
            Err(err) => Err(sdk_error(SERVICE, &err)),
        }
    }

    async fn find(&self, digest: &[u8; 32]) -> Result<Option<(ApiKey, [u8; 32])>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(key_digest_pk(&hex::encode(digest))))
            .key("sk", s(KEY_DIGEST_SK))
            // A deleted key must stop working at once, not after replication catches up.
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let stored: [u8; 32] = hex::decode(get_s(item, "digest")?)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| StoreError::Corrupt("API key digest is malformed".into()))?;
        Ok(Some((api_key_from_item(item)?, stored)))
    }

    async fn list(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<ApiKey>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(tenant_pk(tenant)))
            .expression_attribute_values(":prefix", s(KEY_PREFIX))
            .consistent_read(true)
            .limit(i32::try_from(page.limit.clamp(1, 1000)).unwrap_or(100));
        if let Some(cursor) = &page.cursor {
            query = query
                .exclusive_start_key("pk", s(tenant_pk(tenant)))
                .exclusive_start_key("sk", s(decode_cursor(cursor, KEY_PREFIX)?));
        }
        let out = query.send().await.map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(Page {
            items: out
                .items()
                .iter()
                .map(api_key_from_item)
                .collect::<Result<_, _>>()?,
            next_cursor: out.last_evaluated_key().and_then(encode_cursor),
        })
    }

    async fn delete(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<bool, StoreError> {
        let sk = format!("{KEY_PREFIX}{id}");
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(tenant_pk(tenant)))
            .key("sk", s(&sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        let Some(item) = out.item() else {
            return Ok(false);
        };
        let digest_hex = get_s(item, "digest")?.to_string();
        let deletes = [
            (tenant_pk(tenant), sk),
            (key_digest_pk(&digest_hex), KEY_DIGEST_SK.to_string()),
        ]
        .into_iter()
        .map(|(pk, sk)| {
            Delete::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .build()
                .map(|d| TransactWriteItem::builder().delete(d).build())
                .map_err(build_err)
        })
        .collect::<Result<Vec<_>, _>>()?;
        self.client
            .transact_write_items()
            .set_transact_items(Some(deletes))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(true)
    }
}

/// The audit trail: `pk = AU#{tenant}`, `sk = {at}#{random}`, newest last; kept for the
/// audit retention (a year by default), longer than the delivery log.
#[derive(Clone)]
pub struct DynamoDbAuditLog {
    client: Client,
    table: String,
    retention: Duration,
}

impl DynamoDbAuditLog {
    pub fn new(client: Client, table: impl Into<String>, retention: Duration) -> Self {
        Self {
            client,
            table: table.into(),
            retention,
        }
    }
}

fn audit_pk(tenant: &TenantId) -> String {
    format!("AU#{tenant}")
}

#[async_trait]
impl AuditLog for DynamoDbAuditLog {
    async fn record(&self, r: &AuditRecord) -> Result<(), StoreError> {
        // The random suffix keeps two changes in the same millisecond apart.
        let sk = format!("{}#{:016x}", format_time(r.at), rand::random::<u64>());
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(audit_pk(&r.tenant)))
            .item("sk", s(sk))
            .item("kind", s("audit"))
            .item("tenant", s(r.tenant.as_str()))
            .item("at", s(format_time(r.at)))
            .item("actor", s(&r.actor))
            .item("action", s(&r.action))
            .item("resource", s(&r.resource))
            .item("expires_at", expiry(r.at, self.retention));
        if let Some(detail) = &r.detail {
            put = put.item("detail", s(detail.to_string()));
        }
        put.send().await.map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(())
    }

    async fn list(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<AuditRecord>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(audit_pk(tenant)))
            .scan_index_forward(false)
            .consistent_read(true);
        let shape = CursorShape {
            names: &["pk", "sk"],
            exact: vec![("pk", audit_pk(tenant))],
            prefixed: vec![],
        };
        let (items, next_cursor) =
            query_page(query, page.limit, page.cursor.as_deref(), &shape, false).await?;
        let records = items
            .iter()
            .map(|item| {
                Ok(AuditRecord {
                    tenant: TenantId::parse(get_s(item, "tenant")?)
                        .map_err(|e| corrupt("tenant", e))?,
                    at: get_time(item, "at")?,
                    actor: get_s(item, "actor")?.to_string(),
                    action: get_s(item, "action")?.to_string(),
                    resource: get_s(item, "resource")?.to_string(),
                    detail: opt_s(item, "detail").and_then(|d| serde_json::from_str(&d).ok()),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Page {
            items: records,
            next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_cursors_must_stay_in_the_callers_partition() {
        let shape = CursorShape {
            names: &["pk", "sk", "gsi2pk", "gsi2sk"],
            exact: vec![("gsi2pk", "A#acme".into())],
            prefixed: vec![("pk", "E#acme#".into())],
        };
        let mut item = Item::new();
        for (k, v) in [
            ("pk", "E#acme#evt_1"),
            ("sk", "ATTEMPT#sub_1#00001"),
            ("gsi2pk", "A#acme"),
            ("gsi2sk", "2026-01-01T00:00:00.000Z#evt_1#sub_1#00001"),
        ] {
            item.insert(k.into(), s(v));
        }
        let cursor = encode_key_cursor(&item, shape.names).unwrap();
        assert_eq!(decode_key_cursor(&cursor, &shape).unwrap(), item);
        item.insert("gsi2pk".into(), s("A#other"));
        let foreign = encode_key_cursor(&item, shape.names).unwrap();
        assert!(matches!(
            decode_key_cursor(&foreign, &shape),
            Err(StoreError::BadCursor)
        ));
        item.insert("gsi2pk".into(), s("A#acme"));
        item.insert("pk".into(), s("E#acme2#evt_1"));
        let sneaky = encode_key_cursor(&item, shape.names).unwrap();
        assert!(matches!(
            decode_key_cursor(&sneaky, &shape),
            Err(StoreError::BadCursor)
        ));
        let short = encode_key_cursor(&item, &["pk", "sk"]).unwrap();
        assert!(decode_key_cursor(&short, &shape).is_err());
        assert!(decode_key_cursor("%%%", &shape).is_err());
    }

    #[test]
    fn time_range_upper_bound_includes_the_whole_millisecond() {
        let t = parse_time("2026-01-01T00:00:00.005Z").unwrap();
        let upper = time_key_upper(t);
        assert!("2026-01-01T00:00:00.005Z#evt_1#sub_1#00001" <= upper.as_str());
        assert!("2026-01-01T00:00:00.006Z#evt_0" > upper.as_str());
    }

    #[test]
    fn cursor_round_trips_and_rejects_foreign_prefixes() {
        let mut key = Item::new();
        key.insert("pk".into(), s("T#default"));
        key.insert("sk".into(), s("SUB#sub_abc"));
        let cursor = encode_cursor(&key).unwrap();
        assert_eq!(decode_cursor(&cursor, "SUB#").unwrap(), "SUB#sub_abc");
        assert!(matches!(
            decode_cursor(&cursor, "ATTEMPT#"),
            Err(StoreError::BadCursor)
        ));
        assert!(matches!(
            decode_cursor("!!!", "SUB#"),
            Err(StoreError::BadCursor)
        ));
    }
}
