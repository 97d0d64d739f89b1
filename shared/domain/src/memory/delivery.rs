//! Twins of the ports the delivery side writes: the attempt log, subscribers' health, the
//! dead-letter index, the audit trail, operational events and rate budgets.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{HealthVersions, MemoryStatsCounters, lock, page_after};
use crate::breaker::{BreakerState, Health};
use crate::ids::{EventId, SubscriberId, TenantId};
use crate::model::{
    AttemptRecord, AuditRecord, DeadLetterEntry, DeliveryState, DeliveryStats, DeliveryStatus,
    OpsEvent, Outcome,
};
use crate::ports::{
    AttemptLog, AttemptQuery, AuditLog, DeadLetterStore, HealthStore, OpsEvents, Page, PageRequest,
    RateBudget, StoreError,
};
use crate::series::{AttemptSample, Bucket, SeriesCounts};

type DeliveryKey = (TenantId, EventId, SubscriberId);

/// The attempt log in memory. Its totals and series are folded at once (the DynamoDB
/// adapter's wait for the stats consumer), or, made [`MemoryAttemptLog::with_counters`],
/// read from those counters as the adapter reads the stats table.
#[derive(Default)]
pub struct MemoryAttemptLog {
    statuses: Mutex<BTreeMap<DeliveryKey, DeliveryStatus>>,
    attempts: Mutex<Vec<AttemptRecord>>,
    counters: Option<Arc<MemoryStatsCounters>>,
}

impl MemoryAttemptLog {
    /// A log whose totals and series are what `counters` were given.
    pub fn with_counters(counters: Arc<MemoryStatsCounters>) -> Self {
        Self {
            counters: Some(counters),
            ..Self::default()
        }
    }

    /// Every attempt logged, in the order they were.
    pub fn all_attempts(&self) -> Vec<AttemptRecord> {
        lock(&self.attempts).clone()
    }
}

/// Whether a write for attempt `n` may move the stored status on: a status never goes back
/// to an earlier attempt, nor out of `delivered` or `failed` (only a reopen does that);
/// `or_equal` lets a status set without an attempt replace one of the same attempt.
fn advances(stored: Option<&DeliveryStatus>, n: u32, or_equal: bool) -> bool {
    match stored {
        None => true,
        Some(s) if matches!(s.status, DeliveryState::Delivered | DeliveryState::Failed) => false,
        Some(s) => s.attempts < n || (or_equal && s.attempts == n),
    }
}

fn sample(a: &AttemptRecord) -> AttemptSample {
    AttemptSample {
        started_at: a.started_at,
        success: a.outcome == Outcome::Success,
        latency_ms: a.status_code.map(|_| a.latency_ms),
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
        let key = (
            attempt.tenant.clone(),
            attempt.event_id.clone(),
            attempt.subscriber_id.clone(),
        );
        let mut statuses = lock(&self.statuses);
        if advances(statuses.get(&key), attempt.attempt, false) {
            statuses.insert(key, status.clone());
        }
        Ok(())
    }

    async fn set_status(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        status: &DeliveryStatus,
    ) -> Result<(), StoreError> {
        let key = (
            tenant.clone(),
            event_id.clone(),
            status.subscriber_id.clone(),
        );
        let mut statuses = lock(&self.statuses);
        if advances(statuses.get(&key), status.attempts, true) {
            statuses.insert(key, status.clone());
        }
        Ok(())
    }

    async fn status(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        subscriber: &SubscriberId,
    ) -> Result<Option<DeliveryStatus>, StoreError> {
        let key = (tenant.clone(), event_id.clone(), subscriber.clone());
        Ok(lock(&self.statuses).get(&key).cloned())
    }

    async fn statuses(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        subscribers: &[SubscriberId],
    ) -> Result<Vec<DeliveryStatus>, StoreError> {
        let statuses = lock(&self.statuses);
        Ok(subscribers
            .iter()
            .filter_map(|s| {
                statuses
                    .get(&(tenant.clone(), event_id.clone(), s.clone()))
                    .cloned()
            })
            .collect())
    }

    async fn attempts(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        subscriber: &SubscriberId,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let mut found: Vec<_> = lock(&self.attempts)
            .iter()
            .filter(|a| {
                &a.tenant == tenant && &a.event_id == event_id && &a.subscriber_id == subscriber
            })
            .cloned()
            .collect();
        found.sort_by_key(|a| a.attempt);
        Ok(found)
    }

    async fn list(
        &self,
        tenant: &TenantId,
        query: &AttemptQuery,
    ) -> Result<Page<AttemptRecord>, StoreError> {
        let mut found: Vec<_> = lock(&self.attempts)
            .iter()
            .filter(|a| &a.tenant == tenant)
            .filter(|a| {
                query
                    .subscriber_id
                    .as_ref()
                    .is_none_or(|s| s == &a.subscriber_id)
            })
            .filter(|a| query.event_id.as_ref().is_none_or(|e| e == &a.event_id))
            .filter(|a| query.outcome.is_none_or(|o| o == a.outcome))
            .filter(|a| query.since.is_none_or(|t| a.started_at >= t))
            .filter(|a| query.until.is_none_or(|t| a.started_at <= t))
            .cloned()
            .collect();
        if query.event_id.is_some() {
            found.sort_by(|a, b| (&a.subscriber_id, a.attempt).cmp(&(&b.subscriber_id, b.attempt)));
        } else {
            // Event ids sort by time: newest event first, its attempts newest first.
            found.sort_by(|a, b| {
                (&b.event_id, b.attempt, &b.subscriber_id).cmp(&(
                    &a.event_id,
                    a.attempt,
                    &a.subscriber_id,
                ))
            });
        }
        let page = PageRequest {
            limit: query.limit.clamp(1, 1000),
            cursor: query.cursor.clone(),
            active: None,
        };
        page_after(
            &found,
            |a| format!("{}/{}/{}", a.event_id, a.subscriber_id, a.attempt),
            &page,
        )
    }

    async fn stats(
        &self,
        tenant: &TenantId,
        subscriber: Option<&SubscriberId>,
    ) -> Result<DeliveryStats, StoreError> {
        if let Some(counters) = &self.counters {
            return Ok(counters.totals(tenant, subscriber));
        }
        Ok(lock(&self.statuses)
            .iter()
            .filter(|((t, _, s), _)| t == tenant && subscriber.is_none_or(|want| want == s))
            .map(|(_, status)| DeliveryStats::of(status.status, status.attempts))
            .fold(DeliveryStats::default(), |sum, d| sum.plus(d)))
    }

    async fn series(
        &self,
        tenant: &TenantId,
        subscriber: Option<&SubscriberId>,
        bucket: Bucket,
        first: i64,
        last: i64,
    ) -> Result<Vec<(i64, SeriesCounts)>, StoreError> {
        if let Some(counters) = &self.counters {
            return Ok(counters.points(tenant, subscriber, bucket, first, last));
        }
        let mut points: BTreeMap<i64, SeriesCounts> = BTreeMap::new();
        for a in lock(&self.attempts).iter() {
            if &a.tenant != tenant || subscriber.is_some_and(|s| s != &a.subscriber_id) {
                continue;
            }
            let start = bucket.start_of(a.started_at.timestamp());
            if (first..=last).contains(&start) {
                points.entry(start).or_default().add(&sample(a));
            }
        }
        Ok(points.into_iter().collect())
    }

    async fn replace_status(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        expected: Option<&DeliveryStatus>,
        new: &DeliveryStatus,
    ) -> Result<bool, StoreError> {
        let key = (tenant.clone(), event_id.clone(), new.subscriber_id.clone());
        let mut statuses = lock(&self.statuses);
        let same = match (statuses.get(&key), expected) {
            (None, None) => true,
            (Some(s), Some(e)) => s.status == e.status && s.attempts == e.attempts,
            _ => false,
        };
        if same {
            statuses.insert(key, new.clone());
        }
        Ok(same)
    }
}

/// Subscribers' health in memory. Made by [`super::MemorySubscriberStore::health_store`], its
/// changes raise the tenants' health versions that store reads, as in DynamoDB.
#[derive(Default)]
pub struct MemoryHealthStore {
    items: Mutex<HashMap<(TenantId, SubscriberId), Health>>,
    versions: Arc<HealthVersions>,
}

impl MemoryHealthStore {
    pub(super) fn with_versions(versions: Arc<HealthVersions>) -> Self {
        Self {
            items: Mutex::default(),
            versions,
        }
    }
}

fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[async_trait]
impl HealthStore for MemoryHealthStore {
    async fn get(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
    ) -> Result<Option<Health>, StoreError> {
        Ok(lock(&self.items)
            .get(&(tenant.clone(), subscriber.clone()))
            .cloned())
    }

    async fn get_many(
        &self,
        tenant: &TenantId,
        subscribers: &[SubscriberId],
    ) -> Result<HashMap<SubscriberId, Health>, StoreError> {
        let items = lock(&self.items);
        Ok(subscribers
            .iter()
            .filter_map(|s| {
                let h = items.get(&(tenant.clone(), s.clone()))?;
                Some((s.clone(), h.clone()))
            })
            .collect())
    }

    async fn failed(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<Health, StoreError> {
        let mut items = lock(&self.items);
        let h = items
            .entry((tenant.clone(), subscriber.clone()))
            .or_insert_with(Health::healthy);
        h.consecutive_failures = h.consecutive_failures.saturating_add(1);
        h.last_error = Some(error.to_string());
        h.failing_since = h.failing_since.or(Some(now));
        if h.consecutive_failures == 1 {
            self.versions.bump(tenant);
        }
        Ok(h.clone())
    }

    async fn open(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
        now: DateTime<Utc>,
        cooldown: Duration,
    ) -> Result<bool, StoreError> {
        let mut items = lock(&self.items);
        let Some(h) = items.get_mut(&(tenant.clone(), subscriber.clone())) else {
            return Ok(false);
        };
        if h.state == BreakerState::Open {
            return Ok(false);
        }
        h.state = BreakerState::Open;
        h.opened_at = h.opened_at.or(Some(now));
        h.retry_at = Some(after(now, cooldown));
        h.cooldown = cooldown;
        self.versions.bump(tenant);
        Ok(true)
    }

    async fn claim_probe(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let mut items = lock(&self.items);
        let Some(h) = items.get_mut(&(tenant.clone(), subscriber.clone())) else {
            return Ok(false);
        };
        let due = h.retry_at.is_some_and(|t| t <= now);
        if h.state == BreakerState::Closed || !due {
            return Ok(false);
        }
        h.state = BreakerState::HalfOpen;
        h.retry_at = Some(after(now, lease));
        Ok(true)
    }

    async fn reset(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
    ) -> Result<Option<Health>, StoreError> {
        let old = lock(&self.items).remove(&(tenant.clone(), subscriber.clone()));
        if old
            .as_ref()
            .is_some_and(|h| h.state != BreakerState::Closed)
        {
            self.versions.bump(tenant);
        }
        Ok(old)
    }
}

/// The dead-letter index in memory.
#[derive(Default)]
pub struct MemoryDeadLetterStore {
    entries: Mutex<BTreeMap<DeliveryKey, DeadLetterEntry>>,
}

#[async_trait]
impl DeadLetterStore for MemoryDeadLetterStore {
    async fn put(&self, entry: &DeadLetterEntry) -> Result<(), StoreError> {
        let key = (
            entry.tenant.clone(),
            entry.event_id.clone(),
            entry.subscriber_id.clone(),
        );
        lock(&self.entries).insert(key, entry.clone());
        Ok(())
    }

    async fn list(
        &self,
        tenant: &TenantId,
        subscriber: Option<&SubscriberId>,
        page: &PageRequest,
    ) -> Result<Page<DeadLetterEntry>, StoreError> {
        // Keys sort by event id, which sorts by time: oldest event first.
        let items: Vec<_> = lock(&self.entries)
            .iter()
            .filter(|((t, _, s), _)| t == tenant && subscriber.is_none_or(|want| want == s))
            .map(|(_, e)| e.clone())
            .collect();
        page_after(
            &items,
            |e| format!("{}/{}", e.event_id, e.subscriber_id),
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

/// The audit trail in memory.
#[derive(Default)]
pub struct MemoryAuditLog {
    records: Mutex<Vec<AuditRecord>>,
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
        let mut items: Vec<(usize, AuditRecord)> = lock(&self.records)
            .iter()
            .enumerate()
            .filter(|(_, r)| &r.tenant == tenant)
            .map(|(i, r)| (i, r.clone()))
            .collect();
        // Newest first; records of the same instant in the reverse of their writing.
        items.sort_by(|(i, a), (j, b)| (b.at, j).cmp(&(a.at, i)));
        let page = page_after(&items, |(i, _)| i.to_string(), page)?;
        Ok(Page {
            items: page.items.into_iter().map(|(_, r)| r).collect(),
            next_cursor: page.next_cursor,
        })
    }
}

/// Operational events, kept in the order they were emitted.
#[derive(Default)]
pub struct MemoryOpsEvents {
    pub events: Mutex<Vec<OpsEvent>>,
}

#[async_trait]
impl OpsEvents for MemoryOpsEvents {
    async fn emit(&self, event: &OpsEvent) -> Result<(), StoreError> {
        lock(&self.events).push(event.clone());
        Ok(())
    }
}

/// Rate budgets in memory: what each (subscriber, second) has given out.
#[derive(Default)]
pub struct MemoryRateBudget {
    taken: Mutex<HashMap<(TenantId, SubscriberId, i64), u32>>,
    takes: std::sync::atomic::AtomicUsize,
}

impl MemoryRateBudget {
    /// How many times a budget was asked: what the shared store would be written.
    pub fn takes(&self) -> usize {
        self.takes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[async_trait]
impl RateBudget for MemoryRateBudget {
    async fn take(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
        second: i64,
        want: u32,
        limit: u32,
    ) -> Result<bool, StoreError> {
        self.takes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut taken = lock(&self.taken);
        let used = taken
            .entry((tenant.clone(), subscriber.clone(), second))
            .or_default();
        if used.saturating_add(want) > limit {
            return Ok(false);
        }
        *used += want;
        Ok(true)
    }
}
