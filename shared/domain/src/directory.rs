//! Subscribers and their signing secrets as deliveries need them, cached per process.
//!
//! A cache that only expires can sign with a rotated-out secret or post to an old URL for
//! as long as its TTL. This one is never stale in a way a caller can see: before each
//! batch the caller takes a [`DirectoryView`], one consistent read of each tenant's
//! directory version (every change to a subscriber bumps it), and a cached subscriber is
//! used only if it was read at that same version. Secrets are cached by the subscriber's
//! secret version, which every rotation bumps, so a rotation is read once, right away.
//! Concurrent misses for one key share one read.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use moka::future::Cache;

use crate::breaker::Health;
use crate::event_type::EventType;
use crate::ids::{SubscriberId, TenantId};
use crate::model::{Subscriber, Target};
use crate::ports::{
    HealthStore, Page, PageRequest, SecretStore, StoreError, SubscriberSecrets, SubscriberStore,
    TenantVersions,
};

/// Enough entries for every subscriber a busy delivery function sees.
const MAX_ENTRIES: u64 = 20_000;

/// The fan-out targets of an event type as read at a directory version.
type Targets = Arc<(u64, Vec<Target>)>;

/// A subscriber as read at a directory version (`None`: it did not exist).
type Record = Arc<(u64, Option<Subscriber>)>;

/// A subscriber's health as known at a tenant health version (`None`: healthy).
type HealthAt = Arc<(u64, Option<Health>)>;

pub struct Directory {
    subscribers: Arc<dyn SubscriberStore>,
    secrets: Arc<dyn SecretStore>,
    records: Cache<(TenantId, SubscriberId), Record>,
    keys: Cache<(TenantId, SubscriberId, u64), Arc<Option<SubscriberSecrets>>>,
    health: Option<Arc<dyn HealthStore>>,
    /// Each subscriber's health as read (or last written) at a tenant health version.
    healths: Cache<(TenantId, SubscriberId), HealthAt>,
}

/// The directory versions read for one batch.
#[derive(Debug, Clone, Default)]
pub struct DirectoryView {
    versions: HashMap<TenantId, TenantVersions>,
}

impl DirectoryView {
    /// The tenant's health version as of this view (0: none of its subscribers ever failed).
    pub fn health_version(&self, tenant: &TenantId) -> u64 {
        self.versions.get(tenant).map_or(0, |v| v.health)
    }
}

impl Directory {
    /// `secret_ttl` bounds how long a secret is kept even without a rotation (a secret
    /// changed by hand in the secret store is picked up after it).
    pub fn new(
        subscribers: Arc<dyn SubscriberStore>,
        secrets: Arc<dyn SecretStore>,
        secret_ttl: Duration,
    ) -> Self {
        Self {
            subscribers,
            secrets,
            records: Cache::builder().max_capacity(MAX_ENTRIES).build(),
            keys: Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(secret_ttl.max(Duration::from_millis(1)))
                .build(),
            health: None,
            healths: Cache::builder().max_capacity(MAX_ENTRIES).build(),
        }
    }

    /// Reads subscribers' health from `store`; without it every subscriber is healthy.
    pub fn with_health(mut self, store: Arc<dyn HealthStore>) -> Self {
        self.health = Some(store);
        self
    }

    /// The subscriber's health as of `view`: `None` (healthy) without a read while none of
    /// the tenant's subscribers ever failed; otherwise read once per tenant health version.
    pub async fn health(
        &self,
        view: &DirectoryView,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<Health>, StoreError> {
        let Some(store) = &self.health else {
            return Ok(None);
        };
        let version = view.health_version(tenant);
        if version == 0 {
            return Ok(None);
        }
        at_version(
            &self.healths,
            (tenant.clone(), id.clone()),
            version,
            store.get(tenant, id),
        )
        .await
    }

    /// What this process itself just learned of a subscriber's health (from its own
    /// write), kept for the view's health version.
    pub async fn note_health(
        &self,
        view: &DirectoryView,
        tenant: &TenantId,
        id: &SubscriberId,
        health: Option<Health>,
    ) {
        let version = view.health_version(tenant);
        self.healths
            .insert(
                (tenant.clone(), id.clone()),
                Arc::new((version, health.filter(|h| !h.is_healthy()))),
            )
            .await;
    }

    /// Reads the directory version of each tenant once, consistently.
    pub async fn view(&self, tenants: &[TenantId]) -> Result<DirectoryView, StoreError> {
        let mut unique = tenants.to_vec();
        unique.sort();
        unique.dedup();
        Ok(DirectoryView {
            versions: self.subscribers.tenant_versions(&unique).await?,
        })
    }

    /// The subscriber as of `view`: cached when it was read at the view's version.
    pub async fn subscriber(
        &self,
        view: &DirectoryView,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<Subscriber>, StoreError> {
        let version = view.versions.get(tenant).map_or(0, |v| v.directory);
        let key = (tenant.clone(), id.clone());
        at_version(
            &self.records,
            key,
            version,
            self.subscribers.get(tenant, id),
        )
        .await
    }

    /// The subscriber as it is now: its tenant's directory version read again, consistently.
    pub async fn fresh_subscriber(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<Subscriber>, StoreError> {
        let view = self.view(std::slice::from_ref(tenant)).await?;
        self.subscriber(&view, tenant, id).await
    }

    /// The subscriber's signing secrets, read once per secret version.
    pub async fn secrets(&self, sub: &Subscriber) -> Result<Option<SubscriberSecrets>, StoreError> {
        let key = (sub.tenant.clone(), sub.id.clone(), sub.secret_version);
        let store = self.secrets.clone();
        let entry = self
            .keys
            .try_get_with(key, async move {
                // A secret never rotated has no predecessor to read.
                let found = if sub.secret_version == 0 {
                    store.get_current(&sub.tenant, &sub.id).await?
                } else {
                    store.get(&sub.tenant, &sub.id).await?
                };
                Ok::<_, StoreError>(Arc::new(found))
            })
            .await
            .map_err(unshare)?;
        if entry.is_none() {
            // Not kept: a subscriber without a secret is rare and short-lived.
            self.keys
                .invalidate(&(sub.tenant.clone(), sub.id.clone(), sub.secret_version))
                .await;
        }
        Ok((*entry).clone())
    }
}

/// The subscriber store as publishing sees it: the fan-out targets of each event type are
/// cached per process and used only while the tenant's directory version is the one they
/// were read at, so a publish costs one small consistent read instead of one query per
/// route level, and a new or changed subscriber is seen by the very next publish. Every
/// other call goes straight to the store.
pub struct CachedRoutes {
    store: Arc<dyn SubscriberStore>,
    targets: Cache<(TenantId, EventType), Targets>,
}

impl CachedRoutes {
    pub fn new(store: Arc<dyn SubscriberStore>) -> Self {
        Self {
            store,
            targets: Cache::builder().max_capacity(MAX_ENTRIES).build(),
        }
    }
}

#[async_trait]
impl SubscriberStore for CachedRoutes {
    async fn create(&self, s: &Subscriber) -> Result<(), StoreError> {
        self.store.create(s).await
    }

    async fn get(&self, t: &TenantId, id: &SubscriberId) -> Result<Option<Subscriber>, StoreError> {
        self.store.get(t, id).await
    }

    async fn delete(&self, t: &TenantId, id: &SubscriberId) -> Result<bool, StoreError> {
        self.store.delete(t, id).await
    }

    async fn list(&self, t: &TenantId, p: &PageRequest) -> Result<Page<Subscriber>, StoreError> {
        self.store.list(t, p).await
    }

    async fn targets(
        &self,
        tenant: &TenantId,
        event_type: &EventType,
    ) -> Result<Vec<Target>, StoreError> {
        let version = self
            .store
            .versions(std::slice::from_ref(tenant))
            .await?
            .get(tenant)
            .copied()
            .unwrap_or(0);
        let key = (tenant.clone(), event_type.clone());
        at_version(
            &self.targets,
            key,
            version,
            self.store.targets(tenant, event_type),
        )
        .await
    }

    async fn replace(&self, s: &Subscriber, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.store.replace(s, at).await
    }

    async fn secret_changed(&self, t: &TenantId, id: &SubscriberId) -> Result<(), StoreError> {
        self.store.secret_changed(t, id).await
    }

    async fn versions(&self, t: &[TenantId]) -> Result<HashMap<TenantId, u64>, StoreError> {
        self.store.versions(t).await
    }

    async fn tenant_versions(
        &self,
        t: &[TenantId],
    ) -> Result<HashMap<TenantId, TenantVersions>, StoreError> {
        self.store.tenant_versions(t).await
    }
}

/// The value cached under `key` if it was read at `version`; otherwise `load` reads it (one
/// load per key at a time: concurrent callers wait for it) and it is kept with `version`.
async fn at_version<K, V>(
    cache: &Cache<K, Arc<(u64, V)>>,
    key: K,
    version: u64,
    load: impl std::future::Future<Output = Result<V, StoreError>>,
) -> Result<V, StoreError>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    if let Some(entry) = cache.get(&key).await {
        if entry.0 == version {
            return Ok(entry.1.clone());
        }
        cache.invalidate(&key).await;
    }
    let entry = cache
        .try_get_with(key, async move {
            Ok::<_, StoreError>(Arc::new((version, load.await?)))
        })
        .await
        .map_err(unshare)?;
    Ok(entry.1.clone())
}

/// A load error as every waiter on it sees it.
fn unshare(e: Arc<StoreError>) -> StoreError {
    match &*e {
        StoreError::Unavailable { service, detail } => StoreError::Unavailable {
            service,
            detail: detail.clone(),
        },
        StoreError::Rejected { service, detail } => StoreError::Rejected {
            service,
            detail: detail.clone(),
        },
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
        StoreError::BadCursor => StoreError::BadCursor,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::event_type::EventTypeFilter;
    use crate::memory::{MemorySecretStore, MemorySubscriberStore};
    use crate::secret::SigningSecret;
    use crate::signing::SignatureScheme;
    use crate::url::{SubscriberUrl, UrlPolicy};

    /// Counts the reads that reach the subscriber store.
    struct Counting {
        inner: MemorySubscriberStore,
        gets: AtomicUsize,
        routes: AtomicUsize,
    }

    #[async_trait]
    impl SubscriberStore for Counting {
        async fn create(&self, s: &Subscriber) -> Result<(), StoreError> {
            self.inner.create(s).await
        }
        async fn get(
            &self,
            t: &TenantId,
            id: &SubscriberId,
        ) -> Result<Option<Subscriber>, StoreError> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            // Concurrent misses must share one read whether or not they overlap: one waits
            // for the load in flight, a later one finds its result cached.
            tokio::task::yield_now().await;
            self.inner.get(t, id).await
        }
        async fn delete(&self, t: &TenantId, id: &SubscriberId) -> Result<bool, StoreError> {
            self.inner.delete(t, id).await
        }
        async fn list(
            &self,
            t: &TenantId,
            p: &crate::ports::PageRequest,
        ) -> Result<crate::ports::Page<Subscriber>, StoreError> {
            self.inner.list(t, p).await
        }
        async fn targets(&self, t: &TenantId, e: &EventType) -> Result<Vec<Target>, StoreError> {
            self.routes.fetch_add(1, Ordering::SeqCst);
            self.inner.targets(t, e).await
        }
        async fn replace(&self, s: &Subscriber, at: DateTime<Utc>) -> Result<(), StoreError> {
            self.inner.replace(s, at).await
        }
        async fn secret_changed(&self, t: &TenantId, id: &SubscriberId) -> Result<(), StoreError> {
            self.inner.secret_changed(t, id).await
        }
        async fn versions(&self, t: &[TenantId]) -> Result<HashMap<TenantId, u64>, StoreError> {
            self.inner.versions(t).await
        }
    }

    fn subscriber(tenant: &TenantId) -> Subscriber {
        let now = Utc::now();
        Subscriber {
            id: SubscriberId::new(),
            tenant: tenant.clone(),
            url: SubscriberUrl::parse("https://example.com/a", UrlPolicy::STRICT).unwrap(),
            event_types: vec![EventTypeFilter::parse("*").unwrap()],
            active: true,
            description: None,
            headers: Default::default(),
            signature_scheme: SignatureScheme::Standard,
            created_at: now,
            updated_at: now,
            secret_version: 0,
            max_concurrency: crate::model::DEFAULT_MAX_CONCURRENCY,
            rate_limit: None,
            disabled_reason: None,
            transform: None,
            filter: None,
        }
    }

    struct Fixture {
        store: Arc<Counting>,
        secrets: Arc<MemorySecretStore>,
        directory: Directory,
        tenant: TenantId,
    }

    fn counting() -> Arc<Counting> {
        Arc::new(Counting {
            inner: MemorySubscriberStore::default(),
            gets: AtomicUsize::new(0),
            routes: AtomicUsize::new(0),
        })
    }

    impl Fixture {
        /// The tenant's directory view, as a batch reads it.
        async fn view(&self) -> DirectoryView {
            self.directory
                .view(std::slice::from_ref(&self.tenant))
                .await
                .unwrap()
        }

        /// The subscriber as the next batch sees it.
        async fn current(&self, id: &SubscriberId) -> Option<Subscriber> {
            self.directory
                .fresh_subscriber(&self.tenant, id)
                .await
                .unwrap()
        }

        /// How many secrets sign for this subscriber.
        async fn signing(&self, sub: &Subscriber) -> usize {
            self.directory
                .secrets(sub)
                .await
                .unwrap()
                .unwrap()
                .signing
                .len()
        }
    }

    fn fixture() -> Fixture {
        let store = counting();
        let secrets = Arc::new(MemorySecretStore::default());
        let directory = Directory::new(store.clone(), secrets.clone(), Duration::from_secs(3600));
        Fixture {
            store,
            secrets,
            directory,
            tenant: TenantId::default_tenant(),
        }
    }

    #[tokio::test]
    async fn a_batch_reads_each_subscriber_once_and_later_batches_not_at_all() {
        let f = fixture();
        let sub = subscriber(&f.tenant);
        f.store.create(&sub).await.unwrap();
        let view = f.view().await;
        let reads = (0..10).map(|_| f.directory.subscriber(&view, &f.tenant, &sub.id));
        for found in futures::future::join_all(reads).await {
            assert_eq!(found.unwrap().unwrap().id, sub.id);
        }
        let view = f.view().await;
        f.directory
            .subscriber(&view, &f.tenant, &sub.id)
            .await
            .unwrap();
        assert_eq!(f.store.gets.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn any_change_to_the_tenant_is_seen_by_the_next_batch() {
        let f = fixture();
        let sub = subscriber(&f.tenant);
        f.store.create(&sub).await.unwrap();
        assert!(f.current(&sub.id).await.unwrap().active);
        let mut off = sub.clone();
        off.active = false;
        off.updated_at = sub.updated_at + chrono::Duration::milliseconds(1);
        f.store.replace(&off, sub.updated_at).await.unwrap();
        assert!(!f.current(&sub.id).await.unwrap().active);
        f.store.delete(&f.tenant, &sub.id).await.unwrap();
        assert!(f.current(&sub.id).await.is_none());
    }

    #[tokio::test]
    async fn a_rotation_signs_with_both_secrets_from_the_next_batch_on() {
        let f = fixture();
        let sub = subscriber(&f.tenant);
        f.store.create(&sub).await.unwrap();
        let first = SigningSecret::generate();
        f.secrets
            .create(&f.tenant, &sub.id, &first, &Default::default())
            .await
            .unwrap();
        let current = f.current(&sub.id).await.unwrap();
        assert_eq!(f.signing(&current).await, 1);
        // Read again without a rotation: served from the cache.
        assert_eq!(f.signing(&current).await, 1);
        let reads = f.secrets.gets.load(Ordering::SeqCst);
        f.secrets
            .rotate(&f.tenant, &sub.id, &SigningSecret::generate())
            .await
            .unwrap();
        f.store.secret_changed(&f.tenant, &sub.id).await.unwrap();
        let rotated = f.current(&sub.id).await.unwrap();
        assert_eq!(f.signing(&rotated).await, 2);
        assert_eq!(f.secrets.gets.load(Ordering::SeqCst), reads + 1);
    }

    #[tokio::test]
    async fn publish_targets_are_cached_until_the_directory_changes() {
        let store = counting();
        let routes = CachedRoutes::new(store.clone());
        let tenant = TenantId::default_tenant();
        let order = EventType::parse("order.created").unwrap();
        assert!(routes.targets(&tenant, &order).await.unwrap().is_empty());
        let sub = subscriber(&tenant);
        routes.create(&sub).await.unwrap();
        for _ in 0..5 {
            assert_eq!(
                routes.targets(&tenant, &order).await.unwrap(),
                vec![Target {
                    id: sub.id.clone(),
                    filter: None
                }]
            );
        }
        assert_eq!(
            store.routes.load(Ordering::SeqCst),
            2,
            "read once per version"
        );
        assert!(routes.delete(&tenant, &sub.id).await.unwrap());
        assert!(routes.targets(&tenant, &order).await.unwrap().is_empty());
    }
}
