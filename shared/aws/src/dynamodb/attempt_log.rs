//! The delivery ledger, in each subscriber's own partition (`S#{tenant}#{subscriber}`):
//! one delivery item per event (`D#{event}#last`) holding the latest attempt, which is the
//! delivery's status, and one item per attempt it replaced (`D#{event}#{n}#{ms}`). A
//! first-try delivery is one write of one small item, with no index and no transaction.
//! Stats are folded from the table's stream by the stats consumer ([`ledger_change`]).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::cursor::{self, Binding};
use super::events::{events_page, read_event};
use super::keys;
use super::{
    Filter, PartitionQuery, SERVICE, SortRange, Table, expiry, from_item, is_condition_failure, n,
    query_all, s, to_item, written,
};
use crate::sdk_error;
use skyhook_domain::event_type::EventType;
use skyhook_domain::ids::{EventId, SubscriberId, TenantId};
use skyhook_domain::model::{
    AttemptRecord, DeliveryState, DeliveryStats, DeliveryStatus, EventRecord, Outcome, format_time,
    parse_time,
};
use skyhook_domain::ports::{AttemptLog, AttemptQuery, Page, StoreError};
use skyhook_domain::series::{AttemptSample, Bucket, SeriesCounts};
use skyhook_domain::stats_fold::LedgerChange;

#[derive(Clone)]
pub struct DynamoDbAttemptLog {
    table: Table,
    retention: Duration,
    /// Where the stats consumer keeps the totals; `None` in processes that never read them.
    stats: Option<Table>,
}

impl DynamoDbAttemptLog {
    pub fn new(client: Client, table: impl Into<String>, retention: Duration) -> Self {
        Self {
            table: Table::new(client, table),
            retention,
            stats: None,
        }
    }

    /// Reads the totals from this table.
    pub fn with_stats_table(mut self, table: Option<String>) -> Self {
        self.stats = table.map(|t| Table::new(self.table.client.clone(), t));
        self
    }
}

/// A delivery item (the latest attempt, or a status without one) or an earlier attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LedgerItem {
    pk: String,
    sk: String,
    tenant: TenantId,
    event_id: EventId,
    subscriber_id: SubscriberId,
    /// The delivery's state as of this item.
    state: DeliveryState,
    /// Attempts made so far: this attempt's number.
    attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event_type: Option<EventType>,
    /// Present on attempts, absent on a status set without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    finished_at: Option<String>,
    updated_at: String,
    expires_at: i64,
    /// Set on a delivery item when an attempt that lost the race to it (a duplicate, or a
    /// late one) was filed as history, so listings know to look for it.
    #[serde(default, skip_serializing_if = "is_false")]
    has_history: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl LedgerItem {
    fn of_attempt(a: &AttemptRecord, state: DeliveryState, retention: Duration) -> Self {
        LedgerItem {
            pk: keys::ledger_pk(&a.tenant, &a.subscriber_id),
            sk: keys::latest_sk(&a.event_id),
            tenant: a.tenant.clone(),
            event_id: a.event_id.clone(),
            subscriber_id: a.subscriber_id.clone(),
            state,
            attempt: a.attempt,
            event_type: Some(a.event_type.clone()),
            outcome: Some(a.outcome),
            status_code: a.status_code,
            latency_ms: Some(a.latency_ms),
            error: a.error.clone(),
            response_body: a.response_body.clone(),
            url: Some(a.url.clone()),
            started_at: Some(format_time(a.started_at)),
            finished_at: Some(format_time(a.finished_at)),
            updated_at: format_time(a.finished_at),
            expires_at: expiry(a.finished_at, retention),
            has_history: false,
        }
    }

    fn of_status(
        tenant: &TenantId,
        event: &EventId,
        st: &DeliveryStatus,
        retention: Duration,
    ) -> Self {
        let now = Utc::now();
        LedgerItem {
            pk: keys::ledger_pk(tenant, &st.subscriber_id),
            sk: keys::latest_sk(event),
            tenant: tenant.clone(),
            event_id: event.clone(),
            subscriber_id: st.subscriber_id.clone(),
            state: st.status,
            attempt: st.attempts,
            event_type: None,
            outcome: None,
            status_code: st.last_status_code,
            latency_ms: None,
            error: st.last_error.clone(),
            response_body: None,
            url: None,
            started_at: None,
            finished_at: None,
            updated_at: format_time(st.updated_at.unwrap_or(now)),
            expires_at: expiry(now, retention),
            has_history: false,
        }
    }

    fn status(&self) -> DeliveryStatus {
        DeliveryStatus {
            subscriber_id: self.subscriber_id.clone(),
            status: self.state,
            attempts: self.attempt,
            last_status_code: self.status_code,
            last_error: self.error.clone(),
            updated_at: parse_time(&self.updated_at),
        }
    }

    /// The attempt this item records; `None` for a status set without an attempt.
    fn attempt_record(&self) -> Option<AttemptRecord> {
        let started_at = parse_time(self.started_at.as_deref()?)?;
        Some(AttemptRecord {
            event_id: self.event_id.clone(),
            tenant: self.tenant.clone(),
            subscriber_id: self.subscriber_id.clone(),
            event_type: self.event_type.clone()?,
            attempt: self.attempt,
            outcome: self.outcome?,
            status_code: self.status_code,
            latency_ms: self.latency_ms.unwrap_or(0),
            error: self.error.clone(),
            response_body: self.response_body.clone(),
            url: self.url.clone().unwrap_or_default(),
            started_at,
            finished_at: self
                .finished_at
                .as_deref()
                .and_then(parse_time)
                .unwrap_or(started_at),
        })
    }

    /// The same attempt, filed as one a later write replaced.
    fn as_history(&self) -> Option<Self> {
        let started = parse_time(self.started_at.as_deref()?)?;
        self.outcome?;
        let mut h = self.clone();
        h.sk = keys::history_sk(&self.event_id, self.attempt, started);
        h.has_history = false;
        Some(h)
    }
}

/// A write of the delivery item is accepted when there is none yet, or the stored one is
/// not final and not from a later attempt (`<` for attempts: an attempt of the same number
/// that lost the race is filed as history instead).
const ADVANCE: &str =
    "attribute_not_exists(pk) OR (#n < :n AND NOT (#st IN (:delivered, :failed)))";
const ADVANCE_STATUS: &str =
    "attribute_not_exists(pk) OR (#n <= :n AND NOT (#st IN (:delivered, :failed)))";

/// The placeholder values of [`ADVANCE`] and [`ADVANCE_STATUS`] for attempt `attempt`.
fn advance_values(attempt: u32) -> Vec<(&'static str, AttributeValue)> {
    vec![
        (":n", n(attempt)),
        (":delivered", s(DeliveryState::Delivered.as_str())),
        (":failed", s(DeliveryState::Failed.as_str())),
    ]
}

fn row_key(item: &LedgerItem) -> (String, String) {
    (item.subscriber_id.to_string(), item.sk.clone())
}

impl DynamoDbAttemptLog {
    async fn put_history(&self, item: &LedgerItem) -> Result<(), StoreError> {
        self.table.put(item).await
    }

    /// Writes the delivery item under `condition`; the item it replaces, if it recorded an
    /// attempt, is filed as history so no attempt is lost. `Ok(false)` when the condition
    /// did not hold.
    async fn advance(
        &self,
        item: &LedgerItem,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let mut put = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(to_item(item)?))
            .condition_expression(condition)
            .return_values(ReturnValue::AllOld);
        if condition.contains("#st") {
            put = put.expression_attribute_names("#st", "state");
        }
        if condition.contains("#n") {
            put = put.expression_attribute_names("#n", "attempt");
        }
        for (k, v) in values {
            put = put.expression_attribute_values(k, v);
        }
        match put.send().await {
            Ok(out) => {
                if let Some(old) = out.attributes.filter(|a| !a.is_empty()) {
                    let old: LedgerItem = from_item(old)?;
                    if let Some(history) = old.as_history() {
                        self.put_history(&history).await?;
                    }
                }
                Ok(true)
            }
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(sdk_error(SERVICE, &err)),
        }
    }

    /// Notes on the delivery item that an attempt beside it was filed as history.
    async fn mark_history(&self, item: &LedgerItem) -> Result<(), StoreError> {
        let result = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key("pk", s(&item.pk))
            .key("sk", s(&item.sk))
            .update_expression("SET has_history = :yes")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        written(result).map(drop)
    }

    async fn latest(
        &self,
        tenant: &TenantId,
        event: &EventId,
        subscriber: &SubscriberId,
    ) -> Result<Option<LedgerItem>, StoreError> {
        self.table
            .get(
                &keys::ledger_pk(tenant, subscriber),
                &keys::latest_sk(event),
                true,
            )
            .await?
            .map(from_item)
            .transpose()
    }

    /// Every item of one delivery: earlier attempts, then the delivery item.
    async fn delivery_items(
        &self,
        tenant: &TenantId,
        event: &EventId,
        subscriber: &SubscriberId,
    ) -> Result<Vec<LedgerItem>, StoreError> {
        let prefix = keys::delivery_prefix(event);
        let query = self
            .table
            .query()
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(keys::ledger_pk(tenant, subscriber)))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true);
        query_all(query).await?.into_iter().map(from_item).collect()
    }

    /// The attempt rows of one event for these subscribers: the delivery items in one
    /// batch read, and the earlier attempts of those that took more than one.
    async fn event_rows(
        &self,
        tenant: &TenantId,
        event: &EventId,
        subscribers: &[SubscriberId],
    ) -> Result<Vec<LedgerItem>, StoreError> {
        let keys: Vec<(String, String)> = subscribers
            .iter()
            .map(|sub| (keys::ledger_pk(tenant, sub), keys::latest_sk(event)))
            .collect();
        let latest: Vec<LedgerItem> = self
            .table
            .get_many(keys, true)
            .await?
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        let mut rows = Vec::new();
        // Earlier attempts exist when this is not the first, when it is a status without an
        // attempt (a reopen), or when a losing attempt was filed beside it.
        let retried = latest
            .iter()
            .filter(|l| l.attempt > 1 || l.outcome.is_none() || l.has_history)
            .map(|l| {
                let sub = l.subscriber_id.clone();
                async move { self.delivery_items(tenant, event, &sub).await }
            });
        for items in futures::future::join_all(retried).await {
            rows.extend(items?.into_iter().filter(|i| !keys::is_latest_sk(&i.sk)));
        }
        rows.extend(latest);
        rows.retain(|r| r.outcome.is_some());
        Ok(rows)
    }
}

fn matches(item: &LedgerItem, q: &AttemptQuery) -> bool {
    let started = item.started_at.as_deref().and_then(parse_time);
    item.outcome.is_some()
        && q.outcome.is_none_or(|o| item.outcome == Some(o))
        && q.since.is_none_or(|t| started.is_some_and(|s| s >= t))
        && q.until.is_none_or(|t| started.is_some_and(|s| s <= t))
}

fn records(items: Vec<LedgerItem>) -> Vec<AttemptRecord> {
    items
        .iter()
        .filter_map(LedgerItem::attempt_record)
        .collect()
}

/// Where a tenant-wide listing stopped: within event `e` after row (`s`, `k`), or after the
/// whole of event `e`.
#[derive(Serialize, Deserialize)]
struct TenantPosition {
    e: EventId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<String>,
}

/// Where a one-event listing stopped: after row (`s`, `k`).
#[derive(Serialize, Deserialize)]
struct EventPosition {
    s: String,
    k: String,
}

/// A full page of a one-event listing, going on after its last row.
fn event_page(out: Vec<LedgerItem>, binding: &Binding) -> Page<AttemptRecord> {
    let (s, k) = out.last().map(row_key).unwrap_or_default();
    Page {
        items: records(out),
        next_cursor: Some(cursor::encode(binding, &EventPosition { s, k })),
    }
}

/// At most this many events are examined for one page of the tenant-wide log.
const MAX_EVENTS_PER_PAGE: usize = 200;

impl DynamoDbAttemptLog {
    async fn list_event(
        &self,
        tenant: &TenantId,
        event: &EventId,
        q: &AttemptQuery,
        binding: &Binding,
    ) -> Result<Page<AttemptRecord>, StoreError> {
        let after: Option<EventPosition> = q
            .cursor
            .as_deref()
            .map(|c| cursor::decode(binding, c))
            .transpose()?;
        let mut subscribers: Vec<SubscriberId> = match &q.subscriber_id {
            Some(sub) => vec![sub.clone()],
            None => match read_event(&self.table, tenant, event).await? {
                Some(event) => event.subscriber_ids,
                None => Vec::new(),
            },
        };
        subscribers.sort();
        if let Some(pos) = &after {
            subscribers.retain(|s| s.as_str() >= pos.s.as_str());
        }
        let limit = q.limit.max(1);
        let mut out: Vec<LedgerItem> = Vec::new();
        for (i, sub) in subscribers.iter().enumerate() {
            let mut rows: Vec<LedgerItem> = self
                .delivery_items(tenant, event, sub)
                .await?
                .into_iter()
                .filter(|r| matches(r, q))
                .collect();
            rows.sort_by(|a, b| {
                (a.attempt, &a.started_at, &a.sk).cmp(&(b.attempt, &b.started_at, &b.sk))
            });
            if let Some(pos) = &after
                && pos.s == sub.as_str()
            {
                let at = rows.iter().position(|r| r.sk == pos.k);
                rows = match at {
                    Some(at) => rows.split_off(at + 1),
                    None => rows,
                };
            }
            for row in rows {
                if out.len() == limit {
                    return Ok(event_page(out, binding));
                }
                out.push(row);
            }
            if out.len() == limit && i + 1 < subscribers.len() {
                return Ok(event_page(out, binding));
            }
        }
        Ok(Page {
            items: records(out),
            next_cursor: None,
        })
    }

    async fn list_subscriber(
        &self,
        tenant: &TenantId,
        sub: &SubscriberId,
        q: &AttemptQuery,
        binding: &Binding,
    ) -> Result<Page<AttemptRecord>, StoreError> {
        let after = cursor::decode_sort_key(binding, q.cursor.as_deref(), keys::LEDGER_PREFIX)?;
        let hi = q
            .until
            .map(keys::ledger_upper_bound)
            .unwrap_or_else(|| format!("{}~", keys::LEDGER_PREFIX));
        let mut filter = Filter::default().term("attribute_exists(outcome)");
        if let Some(o) = q.outcome {
            filter = filter
                .term("outcome = :outcome")
                .value(":outcome", s(o.as_str()));
        }
        if let Some(t) = q.since {
            filter = filter
                .term("started_at >= :since")
                .value(":since", s(format_time(t)));
        }
        if let Some(t) = q.until {
            filter = filter
                .term("started_at <= :until")
                .value(":until", s(format_time(t)));
        }
        let (items, next) = PartitionQuery::new(
            keys::ledger_pk(tenant, sub),
            SortRange::between(keys::LEDGER_PREFIX, hi),
        )
        .filtered(filter)
        .backward()
        .page(&self.table, q.limit, after)
        .await?;
        let items: Vec<LedgerItem> = items.into_iter().map(from_item).collect::<Result<_, _>>()?;
        Ok(Page {
            items: records(items),
            next_cursor: next.map(|sk| cursor::encode(binding, &sk)),
        })
    }

    async fn list_tenant(
        &self,
        tenant: &TenantId,
        q: &AttemptQuery,
        binding: &Binding,
    ) -> Result<Page<AttemptRecord>, StoreError> {
        let mut position: Option<TenantPosition> = q
            .cursor
            .as_deref()
            .map(|c| cursor::decode(binding, c))
            .transpose()?;
        let limit = q.limit.max(1);
        let mut out: Vec<LedgerItem> = Vec::new();
        let mut examined = 0;
        // Resuming inside an event: that event is read again and its rows after the position
        // taken; the walk of events then goes on after it.
        let mut after_event: Option<String> = position.as_ref().map(|p| p.e.to_string());
        let mut resume_in: Option<TenantPosition> = position.take().filter(|p| p.s.is_some());
        if let Some(pos) = &resume_in
            && let Some(event) = read_event(&self.table, tenant, &pos.e).await?
        {
            let rows = self.sorted_rows(tenant, &event, q).await?;
            let start = rows
                .iter()
                .position(|r| {
                    Some(&r.subscriber_id.to_string()) == pos.s.as_ref()
                        && Some(&r.sk) == pos.k.as_ref()
                })
                .map_or(0, |i| i + 1);
            for row in rows.into_iter().skip(start) {
                if out.len() == limit {
                    return Ok(self.tenant_page(out, binding, &event.id, true));
                }
                out.push(row);
            }
        }
        resume_in.take();
        while examined < MAX_EVENTS_PER_PAGE {
            let (events, next) =
                events_page(&self.table, tenant, q.until, after_event.as_deref(), 25).await?;
            for event in events {
                examined += 1;
                after_event = Some(event.id.to_string());
                let rows = self.sorted_rows(tenant, &event, q).await?;
                for row in rows {
                    if out.len() == limit {
                        return Ok(self.tenant_page(out, binding, &event.id, true));
                    }
                    out.push(row);
                }
                if out.len() == limit {
                    // Full at an event's end: go on after this event.
                    return Ok(self.tenant_page(out, binding, &event.id, false));
                }
            }
            if next.is_none() {
                return Ok(Page {
                    items: records(out),
                    next_cursor: None,
                });
            }
        }
        // Many events without matching rows: hand back what we have and where to go on.
        let next_cursor = after_event.and_then(|e| EventId::parse(&e).ok()).map(|e| {
            cursor::encode(
                binding,
                &TenantPosition {
                    e,
                    s: None,
                    k: None,
                },
            )
        });
        Ok(Page {
            items: records(out),
            next_cursor,
        })
    }

    /// The rows of one event, newest attempt first.
    async fn sorted_rows(
        &self,
        tenant: &TenantId,
        event: &EventRecord,
        q: &AttemptQuery,
    ) -> Result<Vec<LedgerItem>, StoreError> {
        let mut rows: Vec<LedgerItem> = self
            .event_rows(tenant, &event.id, &event.subscriber_ids)
            .await?
            .into_iter()
            .filter(|r| matches(r, q))
            .collect();
        rows.sort_by(|a, b| {
            (&b.started_at, &b.subscriber_id, b.attempt, &b.sk).cmp(&(
                &a.started_at,
                &a.subscriber_id,
                a.attempt,
                &a.sk,
            ))
        });
        Ok(rows)
    }

    fn tenant_page(
        &self,
        out: Vec<LedgerItem>,
        binding: &Binding,
        event: &EventId,
        within: bool,
    ) -> Page<AttemptRecord> {
        let last = out.last().map(row_key);
        let position = match (within, last) {
            (true, Some((s, k))) => TenantPosition {
                e: event.clone(),
                s: Some(s),
                k: Some(k),
            },
            _ => TenantPosition {
                e: event.clone(),
                s: None,
                k: None,
            },
        };
        Page {
            items: records(out),
            next_cursor: Some(cursor::encode(binding, &position)),
        }
    }
}

#[derive(Deserialize)]
struct CounterItem {
    #[serde(default)]
    success: i64,
    #[serde(default)]
    failure: i64,
    #[serde(default)]
    attempts: i64,
}

#[async_trait]
impl AttemptLog for DynamoDbAttemptLog {
    async fn record(
        &self,
        attempt: &AttemptRecord,
        status: &DeliveryStatus,
    ) -> Result<(), StoreError> {
        let item = LedgerItem::of_attempt(attempt, status.status, self.retention);
        let moved = self
            .advance(&item, ADVANCE, advance_values(attempt.attempt))
            .await?;
        if !moved {
            // A newer or final result is stored; this attempt still happened, so it is kept
            // as an earlier one.
            tracing::debug!(event_id = %attempt.event_id, subscriber_id = %attempt.subscriber_id, "a newer or final status is already stored");
            if let Some(history) = item.as_history() {
                self.put_history(&history).await?;
                self.mark_history(&item).await?;
            }
        }
        Ok(())
    }

    async fn set_status(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        status: &DeliveryStatus,
    ) -> Result<(), StoreError> {
        let item = LedgerItem::of_status(tenant, event_id, status, self.retention);
        self.advance(&item, ADVANCE_STATUS, advance_values(status.attempts))
            .await?;
        Ok(())
    }

    async fn status(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        subscriber: &SubscriberId,
    ) -> Result<Option<DeliveryStatus>, StoreError> {
        Ok(self
            .latest(tenant, event_id, subscriber)
            .await?
            .map(|i| i.status()))
    }

    async fn statuses(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        subscribers: &[SubscriberId],
    ) -> Result<Vec<DeliveryStatus>, StoreError> {
        let keys = subscribers
            .iter()
            .map(|sub| (keys::ledger_pk(tenant, sub), keys::latest_sk(event_id)))
            .collect();
        self.table
            .get_many(keys, true)
            .await?
            .into_iter()
            .map(|item| Ok(from_item::<LedgerItem>(item)?.status()))
            .collect()
    }

    async fn attempts(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        subscriber: &SubscriberId,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let mut records = records(self.delivery_items(tenant, event_id, subscriber).await?);
        records.sort_by_key(|r| (r.attempt, r.started_at));
        Ok(records)
    }

    async fn list(
        &self,
        tenant: &TenantId,
        q: &AttemptQuery,
    ) -> Result<Page<AttemptRecord>, StoreError> {
        let binding = Binding::new(
            tenant,
            "deliveries",
            &[
                q.subscriber_id.as_ref().map(|s| s.to_string()),
                q.event_id.as_ref().map(|e| e.to_string()),
                q.outcome.map(|o| o.as_str().to_string()),
                q.since.map(format_time),
                q.until.map(format_time),
            ],
        );
        match (&q.event_id, &q.subscriber_id) {
            (Some(event), _) => self.list_event(tenant, event, q, &binding).await,
            (None, Some(sub)) => self.list_subscriber(tenant, sub, q, &binding).await,
            (None, None) => self.list_tenant(tenant, q, &binding).await,
        }
    }

    async fn stats(
        &self,
        tenant: &TenantId,
        subscriber: Option<&SubscriberId>,
    ) -> Result<DeliveryStats, StoreError> {
        let pk = match subscriber {
            None => keys::tenant_pk(tenant),
            Some(sub) => keys::ledger_pk(tenant, sub),
        };
        let stats = self
            .stats
            .as_ref()
            .ok_or_else(super::stats::no_stats_table)?;
        let Some(item) = stats.get(&pk, keys::STATS_SK, true).await? else {
            return Ok(DeliveryStats::default());
        };
        let c: CounterItem = from_item(item)?;
        Ok(DeliveryStats {
            success: c.success,
            failure: c.failure,
            attempts: c.attempts,
        })
    }

    async fn series(
        &self,
        tenant: &TenantId,
        subscriber: Option<&SubscriberId>,
        bucket: Bucket,
        first: i64,
        last: i64,
    ) -> Result<Vec<(i64, SeriesCounts)>, StoreError> {
        let stats = self
            .stats
            .as_ref()
            .ok_or_else(super::stats::no_stats_table)?;
        // One partition, one key range of at most MAX_POINTS small items: a page or two.
        let query = stats
            .query()
            .key_condition_expression("pk = :pk AND sk BETWEEN :first AND :last")
            .expression_attribute_values(
                ":pk",
                s(keys::series_pk(tenant, subscriber, bucket.as_str())),
            )
            .expression_attribute_values(":first", s(keys::series_sk(first)))
            .expression_attribute_values(":last", s(keys::series_sk(last)));
        let items = super::query_all(query).await?;
        items
            .iter()
            .map(|item| {
                let number = |name: &str| {
                    item.get(name)
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                let start = super::attr(item, "sk")
                    .and_then(|sk| sk.parse::<i64>().ok())
                    .ok_or_else(|| StoreError::Corrupt("series item without a start".into()))?;
                let mut counts = SeriesCounts {
                    success: number("success"),
                    failure: number("failure"),
                    ..SeriesCounts::default()
                };
                for (bin, count) in counts.latency.iter_mut().enumerate() {
                    *count = number(&format!("l{bin}"));
                }
                Ok((start, counts))
            })
            .collect()
    }

    async fn replace_status(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        expected: Option<&DeliveryStatus>,
        new: &DeliveryStatus,
    ) -> Result<bool, StoreError> {
        let item = LedgerItem::of_status(tenant, event_id, new, self.retention);
        match expected {
            None => {
                self.advance(&item, "attribute_not_exists(pk)", vec![])
                    .await
            }
            Some(old) => {
                self.advance(
                    &item,
                    "#st = :old_state AND #n = :old_n",
                    vec![
                        (":old_state", s(old.status.as_str())),
                        (":old_n", n(old.attempts)),
                    ],
                )
                .await
            }
        }
    }
}

/// A ledger change from one stream record of the table (its keys and images, as Lambda
/// hands them over): `None` for every item but a delivery item.
pub fn ledger_change(
    keys_image: &serde_dynamo::Item,
    old: &serde_dynamo::Item,
    new: &serde_dynamo::Item,
) -> Result<Option<LedgerChange>, StoreError> {
    let sk: Option<String> = keys_image.get("sk").and_then(|v| match v {
        serde_dynamo::AttributeValue::S(s) => Some(s.clone()),
        _ => None,
    });
    if !sk.as_deref().is_some_and(keys::is_latest_sk) {
        return Ok(None);
    }
    let image = |i: &serde_dynamo::Item| -> Result<Option<LedgerItem>, StoreError> {
        if i.is_empty() {
            Ok(None)
        } else {
            serde_dynamo::from_item(i.clone())
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("stream image: {e}")))
        }
    };
    let (before, after) = (image(old)?, image(new)?);
    let Some(any) = after.as_ref().or(before.as_ref()) else {
        return Ok(None);
    };
    // A write that recorded an attempt carries its outcome, and another attempt or start than
    // the item had (the same again is SQS handing the same message out twice).
    let attempt = after.as_ref().and_then(|a| {
        let started = a.started_at.as_deref()?;
        if before
            .as_ref()
            .is_some_and(|b| b.attempt == a.attempt && b.started_at.as_deref() == Some(started))
        {
            return None;
        }
        Some(AttemptSample {
            started_at: parse_time(started)?,
            success: a.outcome? == Outcome::Success,
            // Only an answer has a latency: a timeout, a refused connection or a transform
            // that failed (no request) would skew the percentiles.
            latency_ms: a.status_code.and(a.latency_ms),
        })
    });
    Ok(Some(LedgerChange {
        tenant: any.tenant.clone(),
        subscriber: any.subscriber_id.clone(),
        before: before.as_ref().map(|b| (b.state, b.attempt)),
        after: after.as_ref().map(|a| (a.state, a.attempt)),
        attempt,
    }))
}
