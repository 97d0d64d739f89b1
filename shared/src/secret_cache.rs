//! A TTL cache in front of a [`SecretStore`], so that a warm delivery function does not call
//! Secrets Manager per message, and still picks up a rotated secret within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ids::{SubscriberId, TenantId};
use crate::ports::{SecretStore, StoreError, SubscriberSecrets};
use crate::secret::SigningSecret;

type Key = (TenantId, SubscriberId);

pub struct CachedSecrets {
    inner: Arc<dyn SecretStore>,
    ttl: Duration,
    entries: Mutex<HashMap<Key, (Instant, SubscriberSecrets)>>,
    /// One fetch per key at a time: the records of a batch for the same subscriber wait for
    /// the first one's read instead of each reading Secrets Manager.
    fetching: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

impl CachedSecrets {
    pub fn new(inner: Arc<dyn SecretStore>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
            fetching: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, key: &Key) -> Option<SubscriberSecrets> {
        self.entries()
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, secrets)| secrets.clone())
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (Instant, SubscriberSecrets)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn invalidate(&self, tenant: &TenantId, id: &SubscriberId) {
        self.entries().remove(&(tenant.clone(), id.clone()));
    }
}

#[async_trait]
impl SecretStore for CachedSecrets {
    async fn create(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        secret: &SigningSecret,
    ) -> Result<(), StoreError> {
        self.invalidate(tenant, id);
        self.inner.create(tenant, id, secret).await
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<SubscriberSecrets>, StoreError> {
        let key = (tenant.clone(), id.clone());
        if let Some(secrets) = self.cached(&key) {
            return Ok(Some(secrets));
        }
        let gate = self
            .fetching
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let _turn = gate.lock().await;
        // Whoever held the gate before may have fetched it meanwhile.
        if let Some(secrets) = self.cached(&key) {
            return Ok(Some(secrets));
        }
        // Misses are not cached: a subscriber without a secret is rare and short-lived.
        let fetched = self.inner.get(tenant, id).await?;
        let mut entries = self.entries();
        match &fetched {
            Some(secrets) => {
                entries.insert(key, (Instant::now(), secrets.clone()));
            }
            None => {
                entries.remove(&key);
            }
        }
        Ok(fetched)
    }

    async fn delete(&self, tenant: &TenantId, id: &SubscriberId) -> Result<(), StoreError> {
        self.invalidate(tenant, id);
        self.inner.delete(tenant, id).await
    }

    async fn rotate(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        secret: &SigningSecret,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.invalidate(tenant, id);
        self.inner.rotate(tenant, id, secret).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::memory::MemorySecretStore;

    #[tokio::test]
    async fn repeated_reads_within_ttl_hit_the_store_once() {
        let store = Arc::new(MemorySecretStore::default());
        let cache = CachedSecrets::new(store.clone(), Duration::from_secs(60));
        let (t, id) = (TenantId::default_tenant(), SubscriberId::new());
        store
            .create(&t, &id, &SigningSecret::generate())
            .await
            .unwrap();
        for _ in 0..50 {
            assert!(cache.get(&t, &id).await.unwrap().is_some());
        }
        assert_eq!(store.gets.load(Ordering::Relaxed), 1);
    }

    /// A store whose reads take a while, so that concurrent misses really overlap.
    struct Slow(Arc<MemorySecretStore>);

    #[async_trait]
    impl SecretStore for Slow {
        async fn create(
            &self,
            t: &TenantId,
            id: &SubscriberId,
            s: &SigningSecret,
        ) -> Result<(), StoreError> {
            self.0.create(t, id, s).await
        }
        async fn get(
            &self,
            t: &TenantId,
            id: &SubscriberId,
        ) -> Result<Option<SubscriberSecrets>, StoreError> {
            tokio::time::sleep(Duration::from_millis(30)).await;
            self.0.get(t, id).await
        }
        async fn delete(&self, t: &TenantId, id: &SubscriberId) -> Result<(), StoreError> {
            self.0.delete(t, id).await
        }
        async fn rotate(
            &self,
            t: &TenantId,
            id: &SubscriberId,
            s: &SigningSecret,
        ) -> Result<Option<DateTime<Utc>>, StoreError> {
            self.0.rotate(t, id, s).await
        }
    }

    #[tokio::test]
    async fn concurrent_misses_for_one_subscriber_read_the_store_once() {
        let store = Arc::new(MemorySecretStore::default());
        let cache = Arc::new(CachedSecrets::new(
            Arc::new(Slow(store.clone())),
            Duration::from_secs(60),
        ));
        let (t, id) = (TenantId::default_tenant(), SubscriberId::new());
        store
            .create(&t, &id, &SigningSecret::generate())
            .await
            .unwrap();
        let reads = (0..10).map(|_| {
            let (cache, t, id) = (cache.clone(), t.clone(), id.clone());
            tokio::spawn(async move { cache.get(&t, &id).await.unwrap().is_some() })
        });
        for r in futures::future::join_all(reads).await {
            assert!(r.unwrap());
        }
        assert_eq!(store.gets.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn entries_expire_after_the_ttl() {
        let store = Arc::new(MemorySecretStore::default());
        let cache = CachedSecrets::new(store.clone(), Duration::from_millis(20));
        let (t, id) = (TenantId::default_tenant(), SubscriberId::new());
        store
            .create(&t, &id, &SigningSecret::generate())
            .await
            .unwrap();
        cache.get(&t, &id).await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        cache.get(&t, &id).await.unwrap();
        assert_eq!(store.gets.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn a_rotation_elsewhere_is_picked_up_once_the_ttl_passes() {
        let store = Arc::new(MemorySecretStore::default());
        let cache = CachedSecrets::new(store.clone(), Duration::from_millis(30));
        let (t, id) = (TenantId::default_tenant(), SubscriberId::new());
        let (old, new) = (SigningSecret::generate(), SigningSecret::generate());
        store.create(&t, &id, &old).await.unwrap();
        assert_eq!(
            cache.get(&t, &id).await.unwrap().unwrap().signing,
            std::slice::from_ref(&old)
        );
        // Another process (the API) rotates behind this cache's back.
        store.rotate(&t, &id, &new).await.unwrap();
        assert_eq!(
            cache.get(&t, &id).await.unwrap().unwrap().signing,
            std::slice::from_ref(&old)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let fresh = cache.get(&t, &id).await.unwrap().unwrap();
        assert_eq!(fresh.signing, [new, old]);
        assert!(fresh.previous_until.is_some());
    }

    #[tokio::test]
    async fn the_previous_secret_stops_signing_when_its_grace_ends_even_from_the_cache() {
        let store = Arc::new(MemorySecretStore::with_grace(Duration::from_millis(40)));
        let cache = CachedSecrets::new(store.clone(), Duration::from_secs(60));
        let (t, id) = (TenantId::default_tenant(), SubscriberId::new());
        let (old, new) = (SigningSecret::generate(), SigningSecret::generate());
        store.create(&t, &id, &old).await.unwrap();
        store.rotate(&t, &id, &new).await.unwrap();
        let cached = cache.get(&t, &id).await.unwrap().unwrap();
        assert_eq!(cached.at(Utc::now()), [new.clone(), old]);
        tokio::time::sleep(Duration::from_millis(60)).await;
        let cached = cache.get(&t, &id).await.unwrap().unwrap();
        assert_eq!(cached.at(Utc::now()), [new]);
        assert_eq!(
            store.gets.load(Ordering::Relaxed),
            1,
            "served from the cache"
        );
    }

    #[tokio::test]
    async fn misses_are_not_cached() {
        let store = Arc::new(MemorySecretStore::default());
        let cache = CachedSecrets::new(store.clone(), Duration::from_secs(60));
        let (t, id) = (TenantId::default_tenant(), SubscriberId::new());
        assert!(cache.get(&t, &id).await.unwrap().is_none());
        store
            .create(&t, &id, &SigningSecret::generate())
            .await
            .unwrap();
        assert!(cache.get(&t, &id).await.unwrap().is_some());
    }
}
