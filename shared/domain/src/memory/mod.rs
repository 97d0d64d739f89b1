//! In-memory twins of the ports, for unit tests here and in other crates (the `testing`
//! feature; never in a binary). `crate::contract` holds the cases each twin and its AWS
//! adapter must both pass.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::event_type::EventType;
use crate::ids::{ApiKeyId, EventId, SourceId, SubscriberId, TenantId};
use crate::inbound::{Source, SourceSecret};
use crate::jq::JqError;
use crate::model::{ApiKey, DeliveryMessage, EventRecord, Subscriber, Target};
use crate::ports::{
    ApiKeyStore, BatchSendResult, DeadLetter, DeliveryQueue, EventStore, IDEMPOTENCY_LEASE,
    IdempotencyClaim, IdempotencyStore, Page, PageRequest, PublishReceipt, ReplayGuard,
    SecretStore, SourceSecrets, SourceStore, StoreError, SubscriberSecrets, SubscriberStore,
};
use crate::secret::SigningSecret;

mod delivery;
mod queues;
pub use delivery::{
    MemoryAttemptLog, MemoryAuditLog, MemoryDeadLetterStore, MemoryHealthStore, MemoryOpsEvents,
    MemoryRateBudget,
};
pub use queues::{InProcessRunner, MemorySecretValues, MemoryStatsCounters};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic in another test thread must not cascade into every later call.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A [`crate::ports::ProgramRunner`] for places with no content filter or transform: every
/// run is refused as unavailable (nothing runs in-process).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgramRunner;

#[async_trait]
impl crate::ports::ProgramRunner for NoProgramRunner {
    async fn run(
        &self,
        _tenant: &TenantId,
        _program: &str,
        _input: &str,
    ) -> Result<String, JqError> {
        Err(JqError::Unavailable("no jq sandbox here".into()))
    }

    async fn check(&self, _program: &str) -> Result<(), JqError> {
        Err(JqError::Unavailable("no jq sandbox here".into()))
    }
}

#[derive(Default)]
pub struct MemorySubscriberStore {
    items: Mutex<BTreeMap<(TenantId, SubscriberId), Subscriber>>,
    versions: Mutex<HashMap<TenantId, u64>>,
    /// The tenants' health versions, which a health store made by
    /// [`MemorySubscriberStore::health_store`] raises (in DynamoDB one item holds both).
    health_versions: std::sync::Arc<HealthVersions>,
}

impl MemorySubscriberStore {
    fn bump(&self, tenant: &TenantId) {
        *lock(&self.versions).entry(tenant.clone()).or_default() += 1;
    }

    /// A health store whose changes raise this store's health versions, as the DynamoDB
    /// adapters share one version item.
    pub fn health_store(&self) -> MemoryHealthStore {
        MemoryHealthStore::with_versions(self.health_versions.clone())
    }
}

/// Tenants' health versions (0: none of its subscribers ever failed).
#[derive(Default)]
pub struct HealthVersions(Mutex<HashMap<TenantId, u64>>);

impl HealthVersions {
    fn bump(&self, tenant: &TenantId) {
        *lock(&self.0).entry(tenant.clone()).or_default() += 1;
    }

    fn get(&self, tenant: &TenantId) -> u64 {
        lock(&self.0).get(tenant).copied().unwrap_or(0)
    }
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
        drop(items);
        self.bump(&subscriber.tenant);
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
        let removed = lock(&self.items)
            .remove(&(tenant.clone(), id.clone()))
            .is_some();
        if removed {
            self.bump(tenant);
        }
        Ok(removed)
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

    async fn targets(
        &self,
        tenant: &TenantId,
        event_type: &EventType,
    ) -> Result<Vec<Target>, StoreError> {
        Ok(lock(&self.items)
            .values()
            .filter(|s| &s.tenant == tenant && s.active && s.wants(event_type))
            .map(|s| Target {
                id: s.id.clone(),
                filter: s.filter.clone(),
            })
            .collect())
    }

    async fn secret_changed(&self, tenant: &TenantId, id: &SubscriberId) -> Result<(), StoreError> {
        {
            let mut items = lock(&self.items);
            let sub = items
                .get_mut(&(tenant.clone(), id.clone()))
                .ok_or_else(|| StoreError::Conflict(format!("subscriber {id} was deleted")))?;
            sub.secret_version += 1;
        }
        self.bump(tenant);
        Ok(())
    }

    async fn tenant_versions(
        &self,
        tenants: &[TenantId],
    ) -> Result<HashMap<TenantId, crate::ports::TenantVersions>, StoreError> {
        let versions = lock(&self.versions);
        Ok(tenants
            .iter()
            .map(|t| {
                let v = crate::ports::TenantVersions {
                    directory: versions.get(t).copied().unwrap_or(0),
                    health: self.health_versions.get(t),
                };
                (t.clone(), v)
            })
            .collect())
    }

    async fn versions(&self, tenants: &[TenantId]) -> Result<HashMap<TenantId, u64>, StoreError> {
        let versions = lock(&self.versions);
        Ok(tenants
            .iter()
            .map(|t| (t.clone(), versions.get(t).copied().unwrap_or(0)))
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
                let mut new = subscriber.clone();
                new.secret_version = old.secret_version;
                items.insert(key, new);
                drop(items);
                self.bump(&subscriber.tenant);
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
    /// Messages sent with a delay, and the delay.
    pub later: Mutex<Vec<(DeliveryMessage, Duration)>>,
    /// What readers of `dead` (as the dead-letter queue) hold or deleted.
    dlq: Mutex<queues::DeadState>,
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

    async fn send_later(
        &self,
        message: &DeliveryMessage,
        delay: Duration,
    ) -> Result<(), StoreError> {
        lock(&self.later).push((message.clone(), delay));
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

    async fn release(
        &self,
        tenant: &TenantId,
        key: &str,
        event_id: &EventId,
    ) -> Result<(), StoreError> {
        let mut keys = lock(&self.keys);
        let entry = (tenant.clone(), key.to_string());
        if matches!(keys.get(&entry), Some((IdemState::Pending(id, _), _)) if id == event_id) {
            keys.remove(&entry);
        }
        Ok(())
    }
}

/// A subscriber's secrets: the current one, the one it replaced with when that happened,
/// and the header values.
type SecretVersions = (
    SigningSecret,
    Option<(SigningSecret, DateTime<Utc>)>,
    BTreeMap<String, String>,
);

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
        headers: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let mut secrets = lock(&self.secrets);
        let key = (tenant.clone(), id.clone());
        if secrets.contains_key(&key) {
            return Err(StoreError::Conflict(format!(
                "a secret for subscriber {id} already exists"
            )));
        }
        secrets.insert(key, (secret.clone(), None, headers.clone()));
        Ok(())
    }

    async fn set_headers(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        headers: &BTreeMap<String, String>,
    ) -> Result<bool, StoreError> {
        let mut secrets = lock(&self.secrets);
        let Some(entry) = secrets.get_mut(&(tenant.clone(), id.clone())) else {
            return Ok(false);
        };
        entry.2 = headers.clone();
        Ok(true)
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<SubscriberSecrets>, StoreError> {
        self.gets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = Utc::now();
        Ok(lock(&self.secrets).get(&(tenant.clone(), id.clone())).map(
            |(current, previous, headers)| match previous {
                Some((old, rotated_at)) if now < until(*rotated_at, self.grace) => {
                    SubscriberSecrets {
                        signing: vec![current.clone(), old.clone()],
                        previous_until: Some(until(*rotated_at, self.grace)),
                        headers: Some(headers.clone()),
                    }
                }
                _ => SubscriberSecrets::current(current.clone()).with_headers(headers.clone()),
            },
        ))
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

/// Inbound sources in memory, by id.
#[derive(Default)]
pub struct MemorySourceStore {
    items: Mutex<BTreeMap<SourceId, Source>>,
}

#[async_trait]
impl SourceStore for MemorySourceStore {
    async fn create(&self, source: &Source) -> Result<(), StoreError> {
        let mut items = lock(&self.items);
        if items.contains_key(&source.id) {
            return Err(StoreError::Conflict(format!("source {} exists", source.id)));
        }
        items.insert(source.id.clone(), source.clone());
        Ok(())
    }

    async fn get(&self, id: &SourceId) -> Result<Option<Source>, StoreError> {
        Ok(lock(&self.items).get(id).cloned())
    }

    async fn list(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<Source>, StoreError> {
        let items: Vec<Source> = lock(&self.items)
            .values()
            .filter(|s| &s.tenant == tenant)
            .cloned()
            .collect();
        page_after(&items, |s| s.id.to_string(), page)
    }

    async fn replace(&self, source: &Source, expected: DateTime<Utc>) -> Result<(), StoreError> {
        let mut items = lock(&self.items);
        match items.get(&source.id) {
            Some(old) if old.updated_at == expected => {
                items.insert(source.id.clone(), source.clone());
                Ok(())
            }
            _ => Err(StoreError::Conflict(format!(
                "source {} changed meanwhile",
                source.id
            ))),
        }
    }

    async fn delete(&self, tenant: &TenantId, id: &SourceId) -> Result<bool, StoreError> {
        let mut items = lock(&self.items);
        if items.get(id).is_some_and(|s| &s.tenant == tenant) {
            items.remove(id);
            Ok(true)
        } else {
            Ok(false)
        }
    }
}

/// Inbound sources' secrets in memory.
#[derive(Default)]
pub struct MemorySourceSecrets {
    items: Mutex<BTreeMap<(TenantId, SourceId), crate::inbound::StoredSourceSecret>>,
}

#[async_trait]
impl SourceSecrets for MemorySourceSecrets {
    async fn create(
        &self,
        tenant: &TenantId,
        id: &SourceId,
        secret: &SourceSecret,
    ) -> Result<(), StoreError> {
        let mut items = lock(&self.items);
        let key = (tenant.clone(), id.clone());
        if items.contains_key(&key) {
            return Err(StoreError::Conflict(format!("a secret for {id} exists")));
        }
        items.insert(
            key,
            crate::inbound::StoredSourceSecret {
                secret: secret.clone(),
                version: 0,
            },
        );
        Ok(())
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &SourceId,
    ) -> Result<Option<crate::inbound::StoredSourceSecret>, StoreError> {
        Ok(lock(&self.items)
            .get(&(tenant.clone(), id.clone()))
            .cloned())
    }

    async fn put(
        &self,
        tenant: &TenantId,
        id: &SourceId,
        secret: &SourceSecret,
        version: u64,
    ) -> Result<bool, StoreError> {
        Ok(lock(&self.items)
            .get_mut(&(tenant.clone(), id.clone()))
            .map(|s| {
                if s.version < version {
                    *s = crate::inbound::StoredSourceSecret {
                        secret: secret.clone(),
                        version,
                    };
                }
            })
            .is_some())
    }

    async fn delete(&self, tenant: &TenantId, id: &SourceId) -> Result<(), StoreError> {
        lock(&self.items).remove(&(tenant.clone(), id.clone()));
        Ok(())
    }
}

/// The replay guard in memory: each remembered message with when it is forgotten.
#[derive(Default)]
pub struct MemoryReplayGuard {
    items: Mutex<BTreeMap<(SourceId, String), DateTime<Utc>>>,
}

impl MemoryReplayGuard {
    /// How many messages it remembers.
    pub fn len(&self) -> usize {
        lock(&self.items).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl ReplayGuard for MemoryReplayGuard {
    async fn claim(
        &self,
        source: &SourceId,
        key: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut items = lock(&self.items);
        let entry = (source.clone(), key.to_string());
        if items.get(&entry).is_some_and(|expires| *expires >= now) {
            return Ok(false);
        }
        items.insert(entry, until);
        Ok(true)
    }

    async fn release(&self, source: &SourceId, key: &str) -> Result<(), StoreError> {
        lock(&self.items).remove(&(source.clone(), key.to_string()));
        Ok(())
    }
}

/// Tenants' records in memory.
#[derive(Default)]
pub struct MemoryTenantStore {
    tenants: Mutex<BTreeMap<TenantId, crate::tenants::TenantRecord>>,
}

#[async_trait]
impl crate::ports::TenantStore for MemoryTenantStore {
    async fn get(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<crate::tenants::TenantRecord>, StoreError> {
        Ok(lock(&self.tenants).get(tenant).cloned())
    }

    async fn put(
        &self,
        record: &crate::tenants::TenantRecord,
    ) -> Result<crate::tenants::TenantRecord, StoreError> {
        let mut tenants = lock(&self.tenants);
        let mut stored = record.clone();
        if let Some(old) = tenants.get(&record.id) {
            stored.created_at = old.created_at;
        }
        tenants.insert(record.id.clone(), stored.clone());
        Ok(stored)
    }

    async fn ensure(&self, tenant: &TenantId, now: DateTime<Utc>) -> Result<(), StoreError> {
        lock(&self.tenants)
            .entry(tenant.clone())
            .or_insert_with(|| crate::tenants::TenantRecord {
                id: tenant.clone(),
                limits: None,
                created_at: now,
                updated_at: now,
            });
        Ok(())
    }

    async fn list(
        &self,
        page: PageRequest,
    ) -> Result<Page<crate::tenants::TenantRecord>, StoreError> {
        let items: Vec<_> = lock(&self.tenants).values().cloned().collect();
        page_after(&items, |t| t.id.to_string(), &page)
    }
}

/// Tenants' publish buckets in memory (one process's worth of instances).
#[derive(Default)]
pub struct MemoryPublishBudget {
    tats: Mutex<HashMap<TenantId, i64>>,
    takes: std::sync::atomic::AtomicUsize,
}

impl MemoryPublishBudget {
    /// How many times the bucket was asked: what a shared store would be written.
    pub fn takes(&self) -> usize {
        self.takes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[async_trait]
impl crate::ports::PublishBudget for MemoryPublishBudget {
    async fn take(
        &self,
        tenant: &TenantId,
        n: u32,
        limits: crate::tenants::TenantLimits,
        now: DateTime<Utc>,
    ) -> Result<crate::tenants::Admission, StoreError> {
        self.takes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tats = lock(&self.tats);
        let tat = tats.get(tenant).copied();
        Ok(
            match crate::tenants::gcra(tat, now.timestamp_micros(), n, limits) {
                Ok(new) => {
                    tats.insert(tenant.clone(), new);
                    crate::tenants::Admission::Admitted
                }
                Err(wait) => crate::tenants::Admission::Limited(wait),
            },
        )
    }

    async fn charge(
        &self,
        tenant: &TenantId,
        n: u32,
        limits: crate::tenants::TenantLimits,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.takes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tats = lock(&self.tats);
        let now_us = now.timestamp_micros();
        let tat = tats.get(tenant).copied().unwrap_or(now_us).max(now_us);
        let cost = limits.interval_us().saturating_mul(i64::from(n));
        tats.insert(tenant.clone(), tat.saturating_add(cost));
        Ok(())
    }
}
