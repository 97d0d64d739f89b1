//! In-memory twins of the ports, for unit tests and for trying the domain logic without AWS.
//! They keep the same contracts as the AWS adapters (conflicts, status ordering, expiry).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ids::{EventId, SubscriberId, TenantId};
use crate::model::{AttemptRecord, DeliveryMessage, DeliveryStatus, EventRecord, Subscriber};
use crate::ports::{
    AttemptLog, BatchSendResult, DeadLetter, DeliveryQueue, EventStore, IdempotencyClaim,
    IdempotencyStore, Page, PageRequest, PublishReceipt, SecretStore, StoreError,
    SubscriberSecrets, SubscriberStore,
};
use crate::secret::SigningSecret;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic in another test thread must not cascade into every later call.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
pub struct MemorySubscriberStore {
    items: Mutex<BTreeMap<(TenantId, SubscriberId), Subscriber>>,
}

#[async_trait]
impl SubscriberStore for MemorySubscriberStore {
    async fn create(&self, subscriber: &Subscriber) -> Result<(), StoreError> {
        let mut items = lock(&self.items);
        let key = (subscriber.tenant.clone(), subscriber.id.clone());
        if items.contains_key(&key) {
            return Err(StoreError::Conflict(format!(
                "subscriber {} already exists",
                subscriber.id
            )));
        }
        items.insert(key, subscriber.clone());
        Ok(())
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<Subscriber>, StoreError> {
        Ok(lock(&self.items)
            .get(&(tenant.clone(), id.clone()))
            .cloned())
    }

    async fn delete(&self, tenant: &TenantId, id: &SubscriberId) -> Result<bool, StoreError> {
        Ok(lock(&self.items)
            .remove(&(tenant.clone(), id.clone()))
            .is_some())
    }

    async fn list(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<Subscriber>, StoreError> {
        let items = lock(&self.items);
        let after = page.cursor.as_deref();
        let mut out: Vec<Subscriber> = items
            .values()
            .filter(|s| &s.tenant == tenant)
            .filter(|s| after.is_none_or(|c| s.id.as_str() > c))
            .filter(|s| page.active.is_none_or(|a| s.active == a))
            .take(page.limit.max(1) + 1)
            .cloned()
            .collect();
        let next_cursor = if out.len() > page.limit.max(1) {
            out.truncate(page.limit.max(1));
            out.last().map(|s| s.id.to_string())
        } else {
            None
        };
        Ok(Page {
            items: out,
            next_cursor,
        })
    }

    async fn active(&self, tenant: &TenantId) -> Result<Vec<Subscriber>, StoreError> {
        Ok(lock(&self.items)
            .values()
            .filter(|s| &s.tenant == tenant && s.active)
            .cloned()
            .collect())
    }
}

/// A queue that records what was sent, visibility changes and dead letters; it can be
/// told to refuse the next N entries to exercise retry paths.
#[derive(Default)]
pub struct MemoryDeliveryQueue {
    pub sent: Mutex<Vec<DeliveryMessage>>,
    pub batches: Mutex<Vec<usize>>,
    pub visibility: Mutex<Vec<(String, Duration)>>,
    pub dead: Mutex<Vec<(String, DeadLetter)>>,
    pub refuse_next_entries: Mutex<usize>,
}

#[async_trait]
impl DeliveryQueue for MemoryDeliveryQueue {
    async fn send_batch(
        &self,
        messages: &[DeliveryMessage],
    ) -> Result<BatchSendResult, StoreError> {
        lock(&self.batches).push(messages.len());
        let mut refuse = lock(&self.refuse_next_entries);
        let mut result = BatchSendResult::default();
        for (i, m) in messages.iter().enumerate() {
            if *refuse > 0 {
                *refuse -= 1;
                result.failed.push(i);
                result.first_error = Some("InternalError: refused by the test queue".into());
            } else {
                lock(&self.sent).push(m.clone());
            }
        }
        Ok(result)
    }

    async fn retry_after(&self, receipt_handle: &str, delay: Duration) -> Result<(), StoreError> {
        lock(&self.visibility).push((receipt_handle.to_string(), delay));
        Ok(())
    }

    async fn dead_letter(&self, body: &str, why: &DeadLetter) -> Result<(), StoreError> {
        lock(&self.dead).push((body.to_string(), why.clone()));
        Ok(())
    }
}

#[derive(Default)]
pub struct MemoryEventStore {
    events: Mutex<HashMap<(TenantId, EventId), EventRecord>>,
}

#[async_trait]
impl EventStore for MemoryEventStore {
    async fn put_event(&self, event: &EventRecord) -> Result<(), StoreError> {
        lock(&self.events).insert((event.tenant.clone(), event.id.clone()), event.clone());
        Ok(())
    }

    async fn get_event(
        &self,
        tenant: &TenantId,
        id: &EventId,
    ) -> Result<Option<EventRecord>, StoreError> {
        Ok(lock(&self.events)
            .get(&(tenant.clone(), id.clone()))
            .cloned())
    }
}

type StatusKey = (TenantId, EventId, SubscriberId);

#[derive(Default)]
pub struct MemoryAttemptLog {
    pub attempts: Mutex<Vec<AttemptRecord>>,
    statuses: Mutex<BTreeMap<StatusKey, DeliveryStatus>>,
}

impl MemoryAttemptLog {
    fn put_status(&self, tenant: &TenantId, event_id: &EventId, status: &DeliveryStatus) {
        let mut statuses = lock(&self.statuses);
        let key = (
            tenant.clone(),
            event_id.clone(),
            status.subscriber_id.clone(),
        );
        if statuses
            .get(&key)
            .is_none_or(|old| old.attempts <= status.attempts)
        {
            statuses.insert(key, status.clone());
        }
    }
}

#[async_trait]
impl AttemptLog for MemoryAttemptLog {
    async fn record(
        &self,
        attempt: &AttemptRecord,
        status: &DeliveryStatus,
    ) -> Result<(), StoreError> {
        lock(&self.attempts).push(attempt.clone());
        self.put_status(&attempt.tenant, &attempt.event_id, status);
        Ok(())
    }

    async fn set_status(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        status: &DeliveryStatus,
    ) -> Result<(), StoreError> {
        self.put_status(tenant, event_id, status);
        Ok(())
    }

    async fn statuses(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
    ) -> Result<Vec<DeliveryStatus>, StoreError> {
        Ok(lock(&self.statuses)
            .iter()
            .filter(|((t, e, _), _)| t == tenant && e == event_id)
            .map(|(_, s)| s.clone())
            .collect())
    }

    async fn attempts(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        Ok(lock(&self.attempts)
            .iter()
            .filter(|a| &a.tenant == tenant && &a.event_id == event_id)
            .cloned()
            .collect())
    }
}

enum IdemState {
    Pending(EventId),
    Complete(PublishReceipt),
}

/// A key's state and when it expires.
type IdemEntry = (IdemState, DateTime<Utc>);

#[derive(Default)]
pub struct MemoryIdempotencyStore {
    keys: Mutex<HashMap<(TenantId, String), IdemEntry>>,
}

fn until(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn claim(
        &self,
        tenant: &TenantId,
        key: &str,
        event_id: &EventId,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        let mut keys = lock(&self.keys);
        let k = (tenant.clone(), key.to_string());
        match keys.get(&k) {
            Some((IdemState::Complete(r), expires)) if *expires >= now => {
                Ok(IdempotencyClaim::Completed(r.clone()))
            }
            Some((IdemState::Pending(id), expires)) if *expires >= now => {
                Ok(IdempotencyClaim::InProgress(id.clone()))
            }
            _ => {
                keys.insert(k, (IdemState::Pending(event_id.clone()), until(now, ttl)));
                Ok(IdempotencyClaim::Claimed)
            }
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
        lock(&self.keys).insert(
            (tenant.clone(), key.to_string()),
            (IdemState::Complete(receipt.clone()), until(now, ttl)),
        );
        Ok(())
    }
}

/// Secrets in memory; `gets` counts reads so tests can prove caching works.
#[derive(Default)]
pub struct MemorySecretStore {
    secrets: Mutex<HashMap<(TenantId, SubscriberId), SigningSecret>>,
    pub gets: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl SecretStore for MemorySecretStore {
    async fn create(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        secret: &SigningSecret,
    ) -> Result<(), StoreError> {
        let mut secrets = lock(&self.secrets);
        let key = (tenant.clone(), id.clone());
        if secrets.contains_key(&key) {
            return Err(StoreError::Conflict(format!(
                "a secret for subscriber {id} already exists"
            )));
        }
        secrets.insert(key, secret.clone());
        Ok(())
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<SubscriberSecrets>, StoreError> {
        self.gets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(lock(&self.secrets)
            .get(&(tenant.clone(), id.clone()))
            .map(|s| SubscriberSecrets {
                signing: vec![s.clone()],
            }))
    }

    async fn delete(&self, tenant: &TenantId, id: &SubscriberId) -> Result<(), StoreError> {
        lock(&self.secrets).remove(&(tenant.clone(), id.clone()));
        Ok(())
    }
}
