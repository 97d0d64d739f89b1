//! In-memory twins of the ports, for unit tests and for trying the domain logic without AWS.
//! They keep the same contracts as the AWS adapters (conflicts, status ordering, expiry).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ids::{ApiKeyId, EventId, SubscriberId, TenantId};
use crate::model::{
    ApiKey, AttemptRecord, AuditRecord, DeadLetterEntry, DeliveryMessage, DeliveryStats,
    DeliveryStatus, EventRecord, Subscriber,
};
use crate::ports::{
    ApiKeyStore, AttemptLog, AttemptQuery, AuditLog, BatchSendResult, DeadLetter, DeadLetterQueue,
    DeadLetterStore, DeadMessage, DeliveryQueue, EventStore, IDEMPOTENCY_LEASE, IdempotencyClaim,
    IdempotencyStore, Page, PageRequest, PublishReceipt, SecretStore, StoreError,
    SubscriberSecrets, SubscriberStore, status_may_replace,
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

    async fn replace(
        &self,
        subscriber: &Subscriber,
        expected_updated_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut items = lock(&self.items);
        let key = (subscriber.tenant.clone(), subscriber.id.clone());
        match items.get(&key) {
            Some(old) if old.updated_at == expected_updated_at => {
                items.insert(key, subscriber.clone());
                Ok(())
            }
            _ => Err(StoreError::Conflict(format!(
                "subscriber {} changed meanwhile",
                subscriber.id
            ))),
        }
    }
}

/// One page of `items` (already in page order) after the item whose key is `cursor`.
fn page_after<T: Clone>(
    items: &[T],
    key: impl Fn(&T) -> String,
    page: &PageRequest,
) -> Result<Page<T>, StoreError> {
    let start = match &page.cursor {
        None => 0,
        Some(c) => items
            .iter()
            .position(|i| &key(i) == c)
            .map(|p| p + 1)
            .ok_or(StoreError::BadCursor)?,
    };
    let limit = page.limit.max(1);
    let rest = &items[start.min(items.len())..];
    let taken: Vec<T> = rest.iter().take(limit).cloned().collect();
    let next_cursor = (rest.len() > limit).then(|| key(&taken[taken.len() - 1]));
    Ok(Page {
        items: taken,
        next_cursor,
    })
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
    totals: Mutex<HashMap<(TenantId, Option<SubscriberId>), DeliveryStats>>,
}

fn add_stats(a: DeliveryStats, b: DeliveryStats) -> DeliveryStats {
    DeliveryStats {
        success: a.success + b.success,
        failure: a.failure + b.failure,
        attempts: a.attempts + b.attempts,
    }
}

impl MemoryAttemptLog {
    fn add_totals(&self, tenant: &TenantId, sub: &SubscriberId, change: DeliveryStats) {
        if change.is_zero() {
            return;
        }
        let mut totals = lock(&self.totals);
        for key in [(tenant.clone(), None), (tenant.clone(), Some(sub.clone()))] {
            let entry = totals.entry(key).or_default();
            *entry = add_stats(*entry, change);
        }
    }

    fn put_status(&self, tenant: &TenantId, event_id: &EventId, status: &DeliveryStatus) {
        let mut statuses = lock(&self.statuses);
        let key = (
            tenant.clone(),
            event_id.clone(),
            status.subscriber_id.clone(),
        );
        let old = statuses.get(&key).cloned();
        if status_may_replace(old.as_ref(), status) {
            statuses.insert(key, status.clone());
            drop(statuses);
            let before = old
                .as_ref()
                .map(DeliveryStats::of_status)
                .unwrap_or_default();
            self.add_totals(
                tenant,
                &status.subscriber_id,
                DeliveryStats::of_status(status).minus(before),
            );
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

    async fn list(
        &self,
        tenant: &TenantId,
        q: &AttemptQuery,
    ) -> Result<Page<AttemptRecord>, StoreError> {
        let mut items: Vec<AttemptRecord> = lock(&self.attempts)
            .iter()
            .filter(|a| &a.tenant == tenant)
            .filter(|a| {
                q.subscriber_id
                    .as_ref()
                    .is_none_or(|s| s == &a.subscriber_id)
            })
            .filter(|a| q.event_id.as_ref().is_none_or(|e| e == &a.event_id))
            .filter(|a| q.outcome.is_none_or(|o| o == a.outcome))
            .filter(|a| q.since.is_none_or(|t| a.started_at >= t))
            .filter(|a| q.until.is_none_or(|t| a.started_at <= t))
            .cloned()
            .collect();
        if q.event_id.is_some() {
            items.sort_by(|a, b| (&a.subscriber_id, a.attempt).cmp(&(&b.subscriber_id, b.attempt)));
        } else {
            items.sort_by_key(|a| std::cmp::Reverse(a.started_at));
        }
        page_after(
            &items,
            |a| format!("{}#{}#{}", a.event_id, a.subscriber_id, a.attempt),
            &PageRequest {
                limit: q.limit,
                cursor: q.cursor.clone(),
                active: None,
            },
        )
    }

    async fn stats(
        &self,
        tenant: &TenantId,
        subscriber: Option<&SubscriberId>,
    ) -> Result<DeliveryStats, StoreError> {
        Ok(lock(&self.totals)
            .get(&(tenant.clone(), subscriber.cloned()))
            .copied()
            .unwrap_or_default())
    }

    async fn replace_status(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        expected: Option<&DeliveryStatus>,
        new: &DeliveryStatus,
    ) -> Result<bool, StoreError> {
        let mut statuses = lock(&self.statuses);
        let key = (tenant.clone(), event_id.clone(), new.subscriber_id.clone());
        let matches = match (statuses.get(&key), expected) {
            (None, None) => true,
            (Some(old), Some(exp)) => old.status == exp.status && old.attempts == exp.attempts,
            _ => false,
        };
        if !matches {
            return Ok(false);
        }
        statuses.insert(key, new.clone());
        drop(statuses);
        let before = expected.map(DeliveryStats::of_status).unwrap_or_default();
        self.add_totals(
            tenant,
            &new.subscriber_id,
            DeliveryStats::of_status(new).minus(before),
        );
        Ok(true)
    }
}

enum IdemState {
    /// The event id, and until when the publish that holds the key has it.
    Pending(EventId, DateTime<Utc>),
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
            Some((IdemState::Pending(id, lease), expires)) if *expires >= now => {
                let id = id.clone();
                if *lease > now {
                    return Ok(IdempotencyClaim::Busy(id));
                }
                let expires = *expires;
                keys.insert(
                    k,
                    (
                        IdemState::Pending(id.clone(), until(now, IDEMPOTENCY_LEASE)),
                        expires,
                    ),
                );
                Ok(IdempotencyClaim::Resume(id))
            }
            _ => {
                keys.insert(
                    k,
                    (
                        IdemState::Pending(event_id.clone(), until(now, IDEMPOTENCY_LEASE)),
                        until(now, ttl),
                    ),
                );
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

    async fn abandon(&self, tenant: &TenantId, key: &str) -> Result<(), StoreError> {
        if let Some((IdemState::Pending(_, lease), _)) =
            lock(&self.keys).get_mut(&(tenant.clone(), key.to_string()))
        {
            *lease = DateTime::<Utc>::MIN_UTC;
        }
        Ok(())
    }
}

/// A subscriber's secrets: the current one, and the one it replaced with when that happened.
type SecretVersions = (SigningSecret, Option<(SigningSecret, DateTime<Utc>)>);

/// Secrets in memory; `gets` counts reads so tests can prove caching works. The previous
/// secret of a rotation signs alongside for `grace` (24 h unless set).
pub struct MemorySecretStore {
    secrets: Mutex<HashMap<(TenantId, SubscriberId), SecretVersions>>,
    pub gets: std::sync::atomic::AtomicUsize,
    pub grace: Duration,
}

impl MemorySecretStore {
    pub fn with_grace(grace: Duration) -> Self {
        Self {
            grace,
            ..Self::default()
        }
    }
}

impl Default for MemorySecretStore {
    fn default() -> Self {
        Self {
            secrets: Mutex::default(),
            gets: Default::default(),
            grace: crate::config::DEFAULT_ROTATION_GRACE,
        }
    }
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
        secrets.insert(key, (secret.clone(), None));
        Ok(())
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<SubscriberSecrets>, StoreError> {
        self.gets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = Utc::now();
        Ok(lock(&self.secrets)
            .get(&(tenant.clone(), id.clone()))
            .map(|(current, previous)| match previous {
                Some((old, rotated_at)) if now < until(*rotated_at, self.grace) => {
                    SubscriberSecrets {
                        signing: vec![current.clone(), old.clone()],
                        previous_until: Some(until(*rotated_at, self.grace)),
                    }
                }
                _ => SubscriberSecrets::current(current.clone()),
            }))
    }

    async fn delete(&self, tenant: &TenantId, id: &SubscriberId) -> Result<(), StoreError> {
        lock(&self.secrets).remove(&(tenant.clone(), id.clone()));
        Ok(())
    }

    async fn rotate(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        secret: &SigningSecret,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut secrets = lock(&self.secrets);
        let Some(entry) = secrets.get_mut(&(tenant.clone(), id.clone())) else {
            return Ok(None);
        };
        let now = Utc::now();
        let old = std::mem::replace(&mut entry.0, secret.clone());
        entry.1 = Some((old, now));
        Ok(Some(until(now, self.grace)))
    }
}

/// The dead-letter index in memory.
#[derive(Default)]
pub struct MemoryDeadLetterStore {
    entries: Mutex<BTreeMap<(TenantId, EventId, SubscriberId), DeadLetterEntry>>,
}

#[async_trait]
impl DeadLetterStore for MemoryDeadLetterStore {
    async fn put(&self, entry: &DeadLetterEntry) -> Result<(), StoreError> {
        lock(&self.entries).insert(
            (
                entry.tenant.clone(),
                entry.event_id.clone(),
                entry.subscriber_id.clone(),
            ),
            entry.clone(),
        );
        Ok(())
    }

    async fn list(
        &self,
        tenant: &TenantId,
        subscriber: Option<&SubscriberId>,
        page: &PageRequest,
    ) -> Result<Page<DeadLetterEntry>, StoreError> {
        let items: Vec<DeadLetterEntry> = lock(&self.entries)
            .values()
            .filter(|e| &e.tenant == tenant)
            .filter(|e| subscriber.is_none_or(|s| s == &e.subscriber_id))
            .cloned()
            .collect();
        page_after(
            &items,
            |e| format!("{}#{}", e.event_id, e.subscriber_id),
            page,
        )
    }

    async fn remove(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        subscriber: &SubscriberId,
    ) -> Result<(), StoreError> {
        lock(&self.entries).remove(&(tenant.clone(), event_id.clone(), subscriber.clone()));
        Ok(())
    }
}

struct QueuedDeadMessage {
    message: DeadMessage,
    held: bool,
}

/// A dead-letter queue in memory: messages are held by handle while received.
#[derive(Default)]
pub struct MemoryDeadLetterQueue {
    messages: Mutex<Vec<QueuedDeadMessage>>,
}

impl MemoryDeadLetterQueue {
    pub fn push(&self, body: &str, attempts: Option<u32>) {
        lock(&self.messages).push(QueuedDeadMessage {
            message: DeadMessage {
                handle: format!("h{}", uuid_like()),
                body: body.to_string(),
                attempts,
            },
            held: false,
        });
    }

    pub fn len(&self) -> usize {
        lock(&self.messages).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn uuid_like() -> String {
    EventId::new().to_string()
}

#[async_trait]
impl DeadLetterQueue for MemoryDeadLetterQueue {
    async fn receive(&self, max: usize, _hold: Duration) -> Result<Vec<DeadMessage>, StoreError> {
        let mut messages = lock(&self.messages);
        Ok(messages
            .iter_mut()
            .filter(|m| !m.held)
            .take(max)
            .map(|m| {
                m.held = true;
                m.message.clone()
            })
            .collect())
    }

    async fn delete(&self, handle: &str) -> Result<(), StoreError> {
        lock(&self.messages).retain(|m| m.message.handle != handle);
        Ok(())
    }

    async fn release(&self, handle: &str) -> Result<(), StoreError> {
        for m in lock(&self.messages).iter_mut() {
            if m.message.handle == handle {
                m.held = false;
            }
        }
        Ok(())
    }
}

/// API keys in memory, by digest.
#[derive(Default)]
pub struct MemoryApiKeyStore {
    keys: Mutex<BTreeMap<[u8; 32], ApiKey>>,
}

#[async_trait]
impl ApiKeyStore for MemoryApiKeyStore {
    async fn create(&self, key: &ApiKey, digest: &[u8; 32]) -> Result<(), StoreError> {
        let mut keys = lock(&self.keys);
        if keys.contains_key(digest) {
            return Err(StoreError::Conflict("API key already exists".into()));
        }
        keys.insert(*digest, key.clone());
        Ok(())
    }

    async fn find(&self, digest: &[u8; 32]) -> Result<Option<(ApiKey, [u8; 32])>, StoreError> {
        Ok(lock(&self.keys).get(digest).map(|k| (k.clone(), *digest)))
    }

    async fn list(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<ApiKey>, StoreError> {
        let mut items: Vec<ApiKey> = lock(&self.keys)
            .values()
            .filter(|k| &k.tenant == tenant)
            .cloned()
            .collect();
        items.sort_by(|a, b| a.id.cmp(&b.id));
        page_after(&items, |k| k.id.to_string(), page)
    }

    async fn delete(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<bool, StoreError> {
        let mut keys = lock(&self.keys);
        let before = keys.len();
        keys.retain(|_, k| !(&k.tenant == tenant && &k.id == id));
        Ok(keys.len() != before)
    }
}

/// The audit trail in memory.
#[derive(Default)]
pub struct MemoryAuditLog {
    pub records: Mutex<Vec<AuditRecord>>,
}

#[async_trait]
impl AuditLog for MemoryAuditLog {
    async fn record(&self, record: &AuditRecord) -> Result<(), StoreError> {
        lock(&self.records).push(record.clone());
        Ok(())
    }

    async fn list(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<AuditRecord>, StoreError> {
        let items: Vec<AuditRecord> = lock(&self.records)
            .iter()
            .rev()
            .filter(|r| &r.tenant == tenant)
            .cloned()
            .collect();
        let indexed: Vec<(usize, AuditRecord)> = items.into_iter().enumerate().collect();
        let page = page_after(&indexed, |(i, _)| i.to_string(), page)?;
        Ok(Page {
            items: page.items.into_iter().map(|(_, r)| r).collect(),
            next_cursor: page.next_cursor,
        })
    }
}
