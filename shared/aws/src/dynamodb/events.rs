//! Events: one item per accepted event in one of the tenant's event shards
//! (`E#{tenant}#{shard}` / `{event id}`), holding the payload (for recovery and
//! `GET /v1/events/{id}`) and the subscribers it was fanned out to. Event ids are ULIDs,
//! so each shard is in time order and the tenant-wide log merges the shards newest first.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::keys;
use super::{
    Item, SERVICE, SortRange, Table, deflate, expiry, from_item, inflate, merged_page,
    pause_before, query_all, s, to_item,
};
use crate::sdk_error;
use skyhook_domain::event_type::EventType;
use skyhook_domain::ids::{EventId, SubscriberId, TenantId};
use skyhook_domain::model::{EventRecord, format_time, parse_time};
use skyhook_domain::ports::{EventStore, StoreError};

/// DynamoDB items are capped at 400 KB; event payloads above this are not copied into the
/// event item (they still travel in the SQS messages).
const MAX_STORED_DATA_BYTES: usize = 300 * 1024;
/// Subscriber ids kept in the event item itself; the rest go to chunk items of this size.
const IDS_PER_ITEM: usize = 1000;

#[derive(Clone)]
pub struct DynamoDbEventStore {
    table: Table,
    retention: Duration,
}

impl DynamoDbEventStore {
    pub fn new(client: Client, table: impl Into<String>, retention: Duration) -> Self {
        Self {
            table: Table::new(client, table),
            retention,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct EventItem {
    pk: String,
    sk: String,
    kind: String,
    id: EventId,
    tenant: TenantId,
    #[serde(rename = "type")]
    event_type: EventType,
    timestamp: String,
    /// Left out when it is the event id (the default), to keep the item small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    correlation_id: Option<String>,
    /// The payload and the first subscriber ids, deflated ([`Packed`]): an event of 1 KiB
    /// fanned out to ten stays within one write unit.
    #[serde(with = "serde_bytes")]
    packed: Vec<u8>,
    #[serde(default, skip_serializing_if = "is_zero")]
    chunks: u32,
    expires_at: i64,
}

/// What an event item keeps deflated.
#[derive(Serialize, Deserialize)]
struct Packed {
    /// `None` when the payload was too large to keep beside the log.
    d: Option<Box<RawValue>>,
    s: Vec<SubscriberId>,
}

fn pack(data: Option<&RawValue>, subscribers: &[SubscriberId]) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(&Packed {
        d: data.map(RawValue::to_owned),
        s: subscribers.to_vec(),
    })
    .map_err(|e| StoreError::Corrupt(format!("event: {e}")))?;
    deflate(&json)
}

fn unpack(bytes: &[u8]) -> Result<Packed, StoreError> {
    let json = inflate(bytes, "event payload")?;
    serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Serialize, Deserialize)]
struct ChunkItem {
    pk: String,
    sk: String,
    subscriber_ids: Vec<SubscriberId>,
    expires_at: i64,
}

impl EventItem {
    /// The event with every subscriber id, those kept in chunk items read in.
    async fn record(self, table: &Table) -> Result<EventRecord, StoreError> {
        let packed = unpack(&self.packed)?;
        let mut subscriber_ids = packed.s;
        if self.chunks > 0 {
            let query = table
                .query()
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(keys::event_chunk_pk(&self.tenant, &self.id)))
                .consistent_read(true);
            for item in query_all(query).await? {
                subscriber_ids.extend(from_item::<ChunkItem>(item)?.subscriber_ids);
            }
        }
        Ok(EventRecord {
            correlation_id: self.correlation_id.unwrap_or_else(|| self.id.to_string()),
            timestamp: parse_time(&self.timestamp)
                .ok_or_else(|| StoreError::Corrupt("event timestamp".into()))?,
            id: self.id,
            tenant: self.tenant,
            event_type: self.event_type,
            data: packed.d,
            subscriber_ids,
        })
    }
}

pub(crate) async fn read_event(
    table: &Table,
    tenant: &TenantId,
    id: &EventId,
) -> Result<Option<EventRecord>, StoreError> {
    match table
        .get(&keys::event_pk(tenant, id), id.as_str(), true)
        .await?
    {
        Some(item) => Ok(Some(from_item::<EventItem>(item)?.record(table).await?)),
        None => Ok(None),
    }
}

/// One page of the tenant's events, newest first, accepted at or before `until`, after the
/// event id `after`.
pub(crate) async fn events_page(
    table: &Table,
    tenant: &TenantId,
    until: Option<DateTime<Utc>>,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<EventRecord>, Option<String>), StoreError> {
    let partitions: Vec<String> = (0..keys::EVENT_SHARDS)
        .map(|k| keys::event_shard_pk(tenant, k))
        .collect();
    let hi = until
        .map(keys::event_id_upper_bound)
        .unwrap_or_else(|| format!("{}~", EventId::PREFIX));
    let range = SortRange::between(EventId::PREFIX, hi);
    let (items, next) = merged_page(table, &partitions, &range, false, limit, after).await?;
    let mut events = Vec::with_capacity(items.len());
    for item in items {
        events.push(from_item::<EventItem>(item)?.record(table).await?);
    }
    Ok((events, next))
}

#[async_trait]
impl EventStore for DynamoDbEventStore {
    async fn put_event(&self, event: &EventRecord) -> Result<(), StoreError> {
        let expires_at = expiry(Utc::now(), self.retention);
        let mut chunks = event.subscriber_ids.chunks(IDS_PER_ITEM);
        let first = chunks.next().unwrap_or_default().to_vec();
        let rest: Vec<&[SubscriberId]> = chunks.collect();
        // The chunks go first: an event item that exists is always complete.
        let chunk_items = rest
            .iter()
            .enumerate()
            .map(|(i, ids)| {
                to_item(&ChunkItem {
                    pk: keys::event_chunk_pk(&event.tenant, &event.id),
                    sk: format!("{i:04}"),
                    subscriber_ids: ids.to_vec(),
                    expires_at,
                })
            })
            .collect::<Result<Vec<Item>, _>>()?;
        for batch in chunk_items.chunks(25) {
            let mut requests: Vec<WriteRequest> = batch
                .iter()
                .map(|item| {
                    PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map(|p| WriteRequest::builder().put_request(p).build())
                        .map_err(|e| StoreError::unavailable(SERVICE, e))
                })
                .collect::<Result<_, _>>()?;
            for round in 0..8u32 {
                if requests.is_empty() {
                    break;
                }
                pause_before(round).await;
                let out = self
                    .table
                    .client
                    .batch_write_item()
                    .request_items(&self.table.name, std::mem::take(&mut requests))
                    .send()
                    .await
                    .map_err(|e| sdk_error(SERVICE, &e))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table.name))
                    .unwrap_or_default();
            }
            if !requests.is_empty() {
                return Err(StoreError::unavailable(
                    SERVICE,
                    "BatchWriteItem left items unprocessed",
                ));
            }
        }
        let data = event
            .data
            .as_deref()
            .filter(|d| d.get().len() <= MAX_STORED_DATA_BYTES);
        let item = EventItem {
            pk: keys::event_pk(&event.tenant, &event.id),
            sk: event.id.to_string(),
            kind: "event".into(),
            id: event.id.clone(),
            tenant: event.tenant.clone(),
            event_type: event.event_type.clone(),
            timestamp: format_time(event.timestamp),
            correlation_id: Some(event.correlation_id.clone()).filter(|c| c != event.id.as_str()),
            packed: pack(data, &first)?,
            chunks: u32::try_from(rest.len()).unwrap_or(u32::MAX),
            expires_at,
        };
        self.table.put(&item).await
    }

    async fn get_event(
        &self,
        tenant: &TenantId,
        id: &EventId,
    ) -> Result<Option<EventRecord>, StoreError> {
        read_event(&self.table, tenant, id).await
    }
}
