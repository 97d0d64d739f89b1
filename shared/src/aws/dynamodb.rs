//! DynamoDB adapters. One table holds subscribers, events, delivery status, the attempt
//! log and idempotency keys; see `docs/dynamodb.md` for keys, indexes and access patterns.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use super::sdk_error_text;
use crate::event_type::{EventType, EventTypeFilter};
use crate::ids::{EventId, SubscriberId, TenantId};
use crate::model::{
    AttemptRecord, DeliveryState, DeliveryStatus, EventRecord, Outcome, Subscriber, format_time,
    parse_time,
};
use crate::ports::{
    AttemptLog, EventStore, IdempotencyClaim, IdempotencyStore, Page, PageRequest, PublishReceipt,
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

const EVENT_SK: &str = "#EVENT";
const STATUS_PREFIX: &str = "STATUS#";
const ATTEMPT_PREFIX: &str = "ATTEMPT#";

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
                    Err(StoreError::unavailable(SERVICE, sdk_error_text(&err)))
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
            .map_err(|e| StoreError::unavailable(SERVICE, sdk_error_text(&e)))?;
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
            .map_err(|e| StoreError::unavailable(SERVICE, sdk_error_text(&e)))?;
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
            .expression_attribute_values(":prefix", s("SUB#"))
            .limit(i32::try_from(page.limit.clamp(1, 1000)).unwrap_or(100));
        if let Some(active) = page.active {
            query = query
                .filter_expression("active = :active")
                .expression_attribute_values(":active", AttributeValue::Bool(active));
        }
        if let Some(cursor) = &page.cursor {
            let sk = decode_cursor(cursor, "SUB#")?;
            query = query
                .exclusive_start_key("pk", s(tenant_pk(tenant)))
                .exclusive_start_key("sk", s(sk));
        }
        let out = query
            .send()
            .await
            .map_err(|e| StoreError::unavailable(SERVICE, sdk_error_text(&e)))?;
        let items = out
            .items()
            .iter()
            .map(subscriber_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            next_cursor: out.last_evaluated_key().and_then(encode_cursor),
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
                .map_err(|e| StoreError::unavailable(SERVICE, sdk_error_text(&e)))?;
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
            .map_err(|e| StoreError::unavailable(SERVICE, sdk_error_text(&e)))?;
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
            .map_err(|e| StoreError::unavailable(SERVICE, sdk_error_text(&e)))?;
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

/// Attempts: `pk = E#{tenant}#{event}`, `sk = ATTEMPT#{subscriber}#{attempt:05}`, and in
/// index `gsi1` under `S#{tenant}#{subscriber}` by time. Status: `sk = STATUS#{subscriber}`.
#[derive(Clone)]
pub struct DynamoDbAttemptLog {
    client: Client,
    table: String,
    retention: Duration,
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

    async fn put_status(&self, item: Item, attempts: u32) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR attempts <= :attempts")
            .expression_attribute_values(":attempts", n(attempts))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // A newer attempt already wrote its status: keep it.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(StoreError::unavailable(SERVICE, sdk_error_text(&err))),
        }
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
                .map_err(|e| StoreError::unavailable(SERVICE, sdk_error_text(&e)))?;
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        Ok(items)
    }
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
        let put_status = self.put_status(
            self.status_item(&attempt.tenant, &attempt.event_id, status),
            status.attempts,
        );
        let (a, st) = tokio::join!(put_attempt, put_status);
        a.map_err(|e| StoreError::unavailable(SERVICE, sdk_error_text(&e)))?;
        st
    }

    async fn set_status(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        status: &DeliveryStatus,
    ) -> Result<(), StoreError> {
        self.put_status(self.status_item(tenant, event_id, status), status.attempts)
            .await
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
            Err(err) => return Err(StoreError::unavailable(SERVICE, sdk_error_text(&err))),
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
            .map_err(|e| StoreError::unavailable(SERVICE, sdk_error_text(&e)))?;
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
            Ok(IdempotencyClaim::InProgress(existing))
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
            .map_err(|e| StoreError::unavailable(SERVICE, sdk_error_text(&e)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
