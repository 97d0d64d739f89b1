//! Tenants and their publish limits. Each tenant may publish `events_per_second` on average
//! and `burst` at once (a token bucket), across every instance of every function that
//! publishes: the HTTP ingest, the EventBridge ingest, inbound sources and the API's test
//! sends. Past it, its publishes are refused with a time to wait; other tenants' are not
//! touched.
//!
//! The bucket lives in the [`PublishBudget`] port as a theoretical arrival time (GCRA): one
//! conditional write takes a block of publishes at once. An instance takes one at a time
//! while a tenant is quiet, and blocks of a tenth of the rate once the tenant publishes
//! often in it, so a busy tenant costs about ten writes a second however fast it publishes.
//! A tenant found over its limit is refused without a write until its wait is over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ids::TenantId;
use crate::ports::{PublishBudget, StoreError, TenantStore};

pub mod limits;
pub use limits::*;

/// This instance's view of one tenant's bucket.
#[derive(Debug, Default, Clone, Copy)]
struct Local {
    /// Publishes taken from the bucket and not used yet, and until when they may be.
    held: u32,
    held_until_us: i64,
    /// Refused until then, without asking the bucket again.
    limited_until_us: i64,
    /// This instance's publishes of the tenant in the current second, to tell quiet from
    /// busy.
    second: i64,
    seen: u32,
}

/// What an instance's own view of a tenant says of one more publish.
enum Want {
    /// Taken from the bucket before, and held here.
    Held,
    /// Refused here until the bucket has room: the wait in microseconds.
    Refused(i64),
    /// Take this many from the bucket.
    Take(u32),
}

/// Admits or refuses each publish by its tenant's limits (see the module's documentation).
pub struct TenantGate {
    tenants: Arc<dyn TenantStore>,
    budget: Arc<dyn PublishBudget>,
    defaults: TenantLimits,
    limits: moka::future::Cache<TenantId, TenantLimits>,
    local: Mutex<HashMap<TenantId, Local>>,
    /// Takes from the shared buckets so far (each one write): what the limit costs.
    takes: std::sync::atomic::AtomicU64,
    /// Keys (by digest) whose tenant was refused, until when: a flood goes on being refused
    /// before its key is even looked up.
    keys: Mutex<HashMap<[u8; 32], (i64, RateLimited)>>,
}

/// Most tenants one instance keeps local state for; beyond it the state starts afresh
/// (which only costs a write).
const LOCAL_TENANTS: usize = 10_000;

impl TenantGate {
    pub fn new(
        tenants: Arc<dyn TenantStore>,
        budget: Arc<dyn PublishBudget>,
        defaults: TenantLimits,
    ) -> Self {
        TenantGate {
            tenants,
            budget,
            defaults,
            limits: moka::future::Cache::builder()
                .max_capacity(LOCAL_TENANTS as u64)
                .time_to_live(LIMITS_CACHE_TTL)
                .build(),
            local: Mutex::default(),
            takes: std::sync::atomic::AtomicU64::new(0),
            keys: Mutex::default(),
        }
    }

    /// How long a publish with the key of `digest` would still be refused, from what this
    /// instance learnt by refusing its tenant ([`TenantGate::note_key`]).
    pub fn key_wait(&self, digest: &[u8; 32], now: DateTime<Utc>) -> Option<RateLimited> {
        let now_us = now.timestamp_micros();
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.get(digest)
            .filter(|(until, _)| *until > now_us)
            .map(|(until, refused)| RateLimited {
                retry_after: Duration::from_micros((until - now_us) as u64),
                ..refused.clone()
            })
    }

    /// Remembers that the key of `digest` published for a tenant refused as `refused` says.
    pub fn note_key(&self, digest: [u8; 32], refused: &RateLimited, now: DateTime<Utc>) {
        let now_us = now.timestamp_micros();
        let until = now_us
            .saturating_add(i64::try_from(refused.retry_after.as_micros()).unwrap_or(i64::MAX));
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= LOCAL_TENANTS && !keys.contains_key(&digest) {
            keys.retain(|_, (u, _)| *u > now_us);
            if keys.len() >= LOCAL_TENANTS {
                keys.clear();
            }
        }
        keys.insert(digest, (until, refused.clone()));
    }

    /// How many times this gate has taken from the shared buckets (one write each).
    pub fn takes(&self) -> u64 {
        self.takes.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn defaults(&self) -> TenantLimits {
        self.defaults
    }

    /// The tenant's limits: its own, or the defaults (read through a short cache).
    pub async fn limits_of(&self, tenant: &TenantId) -> Result<TenantLimits, StoreError> {
        if let Some(l) = self.limits.get(tenant).await {
            return Ok(l);
        }
        let limits = self
            .tenants
            .get(tenant)
            .await?
            .and_then(|t| t.limits)
            .unwrap_or(self.defaults);
        self.limits.insert(tenant.clone(), limits).await;
        Ok(limits)
    }

    /// Forgets what this instance read of a tenant's limits (after a change of them here).
    pub async fn forget(&self, tenant: &TenantId) {
        self.limits.invalidate(tenant).await;
    }

    fn local(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Local>> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What this instance's own view of the tenant says: a publish held from an earlier
    /// take, refused until a known time, or how many to take from the bucket (quiet here:
    /// one; busy: a block, the rest held for a second).
    fn local_want(&self, tenant: &TenantId, limits: TenantLimits, now_us: i64) -> Want {
        let mut local = self.local();
        if local.len() >= LOCAL_TENANTS && !local.contains_key(tenant) {
            local.clear();
        }
        let l = local.entry(tenant.clone()).or_default();
        if l.limited_until_us > now_us {
            return Want::Refused(l.limited_until_us - now_us);
        }
        let second = now_us.div_euclid(1_000_000);
        if l.second != second {
            l.second = second;
            l.seen = 0;
        }
        l.seen = l.seen.saturating_add(1);
        if l.held > 0 && l.held_until_us > now_us {
            l.held -= 1;
            return Want::Held;
        }
        Want::Take(if l.seen > 1 { limits.block() } else { 1 })
    }

    /// Takes `want` from the tenant's bucket, or one when less than that is left; what it
    /// answered and how many were taken.
    async fn take(
        &self,
        tenant: &TenantId,
        want: u32,
        limits: TenantLimits,
        now: DateTime<Utc>,
    ) -> (Result<Admission, StoreError>, u32) {
        let count = || {
            self.takes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        };
        count();
        let outcome = self.budget.take(tenant, want, limits, now).await;
        if matches!(outcome, Ok(Admission::Limited(_))) && want > 1 {
            // Less than a block is left: one will do.
            count();
            return (self.budget.take(tenant, 1, limits, now).await, 1);
        }
        (outcome, want)
    }

    /// One publish of `tenant` at `now`. A failure to read the limits or the bucket admits
    /// the publish (a limit protects the stack; it must not stop it) and is logged.
    pub async fn admit(&self, tenant: &TenantId, now: DateTime<Utc>) -> Result<(), RateLimited> {
        let limits = match self.limits_of(tenant).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, tenant = %tenant, "could not read the tenant's limits; admitting");
                return Ok(());
            }
        };
        let now_us = now.timestamp_micros();
        let refused = |wait_us: i64| RateLimited {
            tenant: tenant.clone(),
            events_per_second: limits.events_per_second,
            burst: limits.burst,
            retry_after: Duration::from_micros(wait_us.max(1) as u64),
        };
        let want = match self.local_want(tenant, limits, now_us) {
            Want::Held => return Ok(()),
            Want::Refused(wait_us) => return Err(refused(wait_us)),
            Want::Take(n) => n,
        };
        let (outcome, taken) = self.take(tenant, want, limits, now).await;
        match outcome {
            Ok(Admission::Admitted) => {
                let mut local = self.local();
                let l = local.entry(tenant.clone()).or_default();
                l.held = taken - 1;
                l.held_until_us = now_us + 1_000_000;
                Ok(())
            }
            Ok(Admission::Limited(wait)) => {
                let wait_us = i64::try_from(wait.as_micros()).unwrap_or(i64::MAX);
                let mut local = self.local();
                let l = local.entry(tenant.clone()).or_default();
                l.limited_until_us = now_us.saturating_add(wait_us);
                Err(refused(wait_us))
            }
            Err(e) => {
                tracing::warn!(error = %e, tenant = %tenant, "could not take from the tenant's publish budget; admitting");
                Ok(())
            }
        }
    }
}

impl TenantGate {
    /// Charges `work` (time a publish of `tenant` took of shared workers, such as its
    /// content filters) to its bucket: one publish for every [`WORK_PER_PUBLISH`] of it. A
    /// failure is logged; the publish it is for has happened.
    pub async fn charge_work(&self, tenant: &TenantId, work: Duration, now: DateTime<Utc>) {
        let n = u32::try_from(work.as_micros() / WORK_PER_PUBLISH.as_micros()).unwrap_or(u32::MAX);
        if n == 0 {
            return;
        }
        let limits = match self.limits_of(tenant).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, tenant = %tenant, "could not read the tenant's limits to charge its work");
                return;
            }
        };
        self.takes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = self.budget.charge(tenant, n, limits, now).await {
            tracing::warn!(error = %e, tenant = %tenant, "could not charge the tenant's work to its publish budget");
        }
    }
}

/// How much of a shared worker's time counts as one publish against a tenant's limit: a
/// tenant whose content filters take 2 s a publish pays 200 publishes for it.
pub const WORK_PER_PUBLISH: Duration = Duration::from_millis(10);

/// The bucket's arithmetic (GCRA), shared by the adapters: given the stored theoretical
/// arrival time `tat_us` (`None` for a bucket never used), whether `n` publishes fit at
/// `now_us`, and the new arrival time, or how long to wait.
pub fn gcra(
    tat_us: Option<i64>,
    now_us: i64,
    n: u32,
    limits: TenantLimits,
) -> Result<i64, Duration> {
    let cost = limits.interval_us().saturating_mul(i64::from(n));
    let start = tat_us.map_or(now_us, |t| t.max(now_us));
    let new = start.saturating_add(cost);
    let allowed_until = now_us.saturating_add(limits.tolerance_us());
    if new <= allowed_until {
        Ok(new)
    } else {
        Err(Duration::from_micros((new - allowed_until).max(1) as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::memory::{MemoryPublishBudget, MemoryTenantStore};

    fn limits(rate: u32, burst: u32) -> TenantLimits {
        TenantLimits::new(rate, burst).unwrap()
    }

    #[test]
    fn the_bucket_lets_a_burst_through_then_the_rate() {
        let l = limits(10, 5);
        let mut tat = None;
        let now = 1_000_000_000;
        for _ in 0..5 {
            tat = Some(gcra(tat, now, 1, l).unwrap());
        }
        let wait = gcra(tat, now, 1, l).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        // A tenth of a second later, one more fits.
        assert!(gcra(tat, now + 100_000, 1, l).is_ok());
        // A long quiet spell refills the burst, no more.
        let later = now + 60_000_000;
        let mut t = tat;
        for _ in 0..5 {
            t = Some(gcra(t, later, 1, l).unwrap());
        }
        assert!(gcra(t, later, 1, l).is_err());
    }

    #[test]
    fn limits_are_checked_and_blocks_are_a_tenth_within_the_burst() {
        assert!(TenantLimits::new(0, 1).is_err());
        assert!(TenantLimits::new(1, 0).is_err());
        assert!(TenantLimits::new(MAX_EVENTS_PER_SECOND + 1, 1).is_err());
        assert_eq!(limits(100, 1000).block(), 10);
        assert_eq!(limits(5, 1000).block(), 1);
        assert_eq!(limits(1000, 20).block(), 20);
        assert_eq!(retry_after_secs(&Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(&Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(&Duration::ZERO), 1);
    }

    #[test]
    fn defaults_come_from_the_environment() {
        let env: HashMap<&str, &str> = HashMap::new();
        assert_eq!(TenantLimits::from_env(&env).unwrap(), limits(100, 1000));
        let env: HashMap<&str, &str> = [(config::TENANT_EVENTS_PER_SECOND, "20")].into();
        assert_eq!(TenantLimits::from_env(&env).unwrap(), limits(20, 200));
        let env: HashMap<&str, &str> = [
            (config::TENANT_EVENTS_PER_SECOND, "20"),
            (config::TENANT_BURST, "3"),
        ]
        .into();
        assert_eq!(TenantLimits::from_env(&env).unwrap(), limits(20, 3));
        let env: HashMap<&str, &str> = [(config::TENANT_EVENTS_PER_SECOND, "0")].into();
        assert!(TenantLimits::from_env(&env).is_err());
    }

    #[test]
    fn a_refused_key_is_refused_again_until_its_wait_is_over() {
        let gate = TenantGate::new(
            Arc::new(MemoryTenantStore::default()),
            Arc::new(MemoryPublishBudget::default()),
            limits(1, 1),
        );
        let now = Utc::now();
        let refused = RateLimited {
            tenant: TenantId::parse("noisy").unwrap(),
            events_per_second: 1,
            burst: 1,
            retry_after: Duration::from_millis(800),
        };
        assert!(gate.key_wait(&[1; 32], now).is_none());
        gate.note_key([1; 32], &refused, now);
        let again = gate
            .key_wait(&[1; 32], now + chrono::Duration::milliseconds(300))
            .unwrap();
        assert_eq!(again.tenant, refused.tenant);
        assert_eq!(again.retry_after, Duration::from_millis(500));
        assert!(gate.key_wait(&[2; 32], now).is_none(), "another key");
        assert!(
            gate.key_wait(&[1; 32], now + chrono::Duration::seconds(1))
                .is_none()
        );
    }

    #[tokio::test]
    async fn one_tenant_over_its_limit_does_not_touch_another() {
        let store = Arc::new(MemoryTenantStore::default());
        let now = Utc::now();
        store
            .put(&TenantRecord {
                id: TenantId::parse("noisy").unwrap(),
                limits: Some(limits(10, 10)),
                created_at: now,
                updated_at: now,
            })
            .await
            .unwrap();
        let budget = Arc::new(MemoryPublishBudget::default());
        // Two instances share the bucket.
        let a = TenantGate::new(store.clone(), budget.clone(), limits(1000, 1000));
        let b = TenantGate::new(store, budget.clone(), limits(1000, 1000));
        let noisy = TenantId::parse("noisy").unwrap();
        let quiet = TenantId::parse("quiet").unwrap();
        let mut admitted = 0;
        let mut refused = Vec::new();
        for i in 0..100 {
            let gate = if i % 2 == 0 { &a } else { &b };
            match gate.admit(&noisy, now).await {
                Ok(()) => admitted += 1,
                Err(e) => refused.push(e),
            }
            assert!(a.admit(&quiet, now).await.is_ok());
        }
        // The burst, across both instances, and not one more.
        assert_eq!(admitted, 10);
        assert_eq!(refused.len(), 90);
        assert!(
            refused
                .iter()
                .all(|e| e.retry_after > Duration::ZERO && e.retry_after <= Duration::from_secs(1))
        );
        // Refusals come from what an instance learnt, not a write each.
        assert!(budget.takes() < 30, "{}", budget.takes());
        // A second later, a second's worth again.
        let later = now + chrono::Duration::seconds(1);
        let mut again = 0;
        for _ in 0..30 {
            if a.admit(&noisy, later).await.is_ok() {
                again += 1;
            }
        }
        assert_eq!(again, 10);
    }
}
