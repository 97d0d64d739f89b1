//! Fairness between subscribers: a cap on the deliveries in flight to each subscriber in one
//! delivery instance, so that one slow endpoint cannot take every connection a batch has,
//! and a subscriber's optional rate limit, shared by every instance through per-second
//! budgets they draw from in blocks. Deliveries over either wait (they are sent again with a
//! short delay) and spend no attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use skyhook_domain::ids::{SubscriberId, TenantId};
use skyhook_domain::ports::{RateBudget, StoreError};

type Key = (TenantId, SubscriberId);

/// Deliveries in flight per subscriber, across every batch this process runs at once.
#[derive(Debug, Default)]
pub struct InFlight {
    counts: Mutex<HashMap<Key, u32>>,
    /// Woken whenever a place is given back.
    freed: tokio::sync::Notify,
}

/// One delivery's place under its subscriber's cap; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    owner: Arc<InFlight>,
    key: Key,
}

impl InFlight {
    /// A place for one more delivery to this subscriber, unless `max` are in flight.
    pub fn claim(self: &Arc<Self>, tenant: &TenantId, id: &SubscriberId, max: u32) -> Option<Slot> {
        let key = (tenant.clone(), id.clone());
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(key.clone()).or_insert(0);
        if *n >= max.max(1) {
            return None;
        }
        *n += 1;
        Some(Slot {
            owner: self.clone(),
            key,
        })
    }

    /// A place for one more delivery to this subscriber, waiting up to `patience` for one
    /// to come free: a fast endpoint's places come back within milliseconds, so only a slow
    /// one's deliveries end up waiting on the queue.
    pub async fn claim_within(
        self: &Arc<Self>,
        tenant: &TenantId,
        id: &SubscriberId,
        max: u32,
        patience: Duration,
    ) -> Option<Slot> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            // Registered before the check, so a place freed in between is not missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(slot) = self.claim(tenant, id, max) {
                return Some(slot);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return None;
            }
        }
    }

    /// Deliveries in flight to this subscriber now.
    pub fn count(&self, tenant: &TenantId, id: &SubscriberId) -> u32 {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .get(&(tenant.clone(), id.clone()))
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.owner.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
        drop(counts);
        self.owner.freed.notify_waiters();
    }
}

/// How long a delivery over its subscriber's cap waits in the batch for a place before it
/// goes back to the queue.
pub const CAP_PATIENCE: Duration = Duration::from_secs(1);

/// How long a delivery over its subscriber's cap waits on the queue: one to three seconds, spread so that
/// the ones that waited together do not all come back together.
pub fn busy_delay() -> Duration {
    Duration::from_secs(rand::random_range(1..=3))
}

/// Whether a delivery may go now under its subscriber's rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Now,
    /// Not this second: wait this long.
    Wait(Duration),
}

/// This instance's share of its subscribers' rate-limit budgets.
pub struct RateLimiter {
    budget: Arc<dyn RateBudget>,
    held: Mutex<HashMap<Key, Held>>,
}

/// Deliveries taken from one second's budget and not used yet, and how many had to wait.
#[derive(Debug, Clone, Copy)]
struct Held {
    second: i64,
    left: u32,
    waiting: u32,
    /// The budget said this second is spent: no need to ask again until the next.
    spent: bool,
}

/// How many deliveries an instance takes from a budget at once: a tenth of it, so that a
/// subscriber sees about ten budget writes a second however many deliveries it gets, and an
/// instance holds little that others could have used.
pub fn block_size(limit: u32) -> u32 {
    limit.div_ceil(10).max(1)
}

impl RateLimiter {
    pub fn new(budget: Arc<dyn RateBudget>) -> Self {
        Self {
            budget,
            held: Mutex::default(),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One delivery to a subscriber limited to `limit` a second, at `now`.
    pub async fn admit(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Admit, StoreError> {
        let second = now.timestamp();
        let key = (tenant.clone(), id.clone());
        {
            let mut held = self.held();
            if let Some(h) = held.get_mut(&key)
                && h.second == second
            {
                if h.left > 0 {
                    h.left -= 1;
                    return Ok(Admit::Now);
                }
                if h.spent {
                    return Ok(Self::wait(h, limit, now));
                }
            }
        }
        let block = block_size(limit);
        let mut got = self.budget.take(tenant, id, second, block, limit).await?;
        let mut taken = block;
        if !got && block > 1 {
            // Less than a block is left: one will do.
            got = self.budget.take(tenant, id, second, 1, limit).await?;
            taken = 1;
        }
        let mut held = self.held();
        let fresh = Held {
            second,
            left: 0,
            waiting: 0,
            spent: false,
        };
        let h = held.entry(key).or_insert(fresh);
        if h.second != second {
            *h = fresh;
        }
        if got {
            h.left += taken - 1;
            return Ok(Admit::Now);
        }
        h.spent = true;
        Ok(Self::wait(h, limit, now))
    }

    /// This second is spent: wait for a later one, the waiters spread a second's worth to
    /// each second after it.
    fn wait(h: &mut Held, limit: u32, now: DateTime<Utc>) -> Admit {
        h.waiting += 1;
        let seconds_ahead = u64::from((h.waiting - 1) / limit.max(1));
        let to_next =
            Duration::from_millis(1000 - u64::from(now.timestamp_subsec_millis().min(999)));
        Admit::Wait(to_next + Duration::from_secs(seconds_ahead))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_holds_per_subscriber_and_places_come_back_when_dropped() {
        let inflight = Arc::new(InFlight::default());
        let tenant = TenantId::default_tenant();
        let (a, b) = (SubscriberId::new(), SubscriberId::new());
        let first = inflight.claim(&tenant, &a, 2).expect("one");
        let second = inflight.claim(&tenant, &a, 2).expect("two");
        assert!(
            inflight.claim(&tenant, &a, 2).is_none(),
            "a third is over the cap"
        );
        assert!(
            inflight.claim(&tenant, &b, 2).is_some(),
            "another subscriber has its own cap"
        );
        drop(first);
        assert_eq!(inflight.count(&tenant, &a), 1);
        let third = inflight.claim(&tenant, &a, 2).expect("a place came back");
        drop((second, third));
        assert_eq!(inflight.count(&tenant, &a), 0);
        assert!(
            inflight.counts.lock().unwrap().is_empty(),
            "nothing left behind"
        );
    }

    #[tokio::test]
    async fn instances_sharing_a_budget_admit_the_limit_each_second_in_blocks_and_the_rest_wait() {
        let budget = Arc::new(skyhook_domain::memory::MemoryRateBudget::default());
        let (a, b) = (
            RateLimiter::new(budget.clone()),
            RateLimiter::new(budget.clone()),
        );
        let tenant = TenantId::default_tenant();
        let sub = SubscriberId::new();
        let second: DateTime<Utc> = "2026-11-29T12:00:00.250Z".parse().unwrap();
        let mut admitted = 0;
        let mut waits = Vec::new();
        for i in 0..100 {
            let limiter = if i % 2 == 0 { &a } else { &b };
            match limiter.admit(&tenant, &sub, 20, second).await.unwrap() {
                Admit::Now => admitted += 1,
                Admit::Wait(d) => waits.push(d),
            }
        }
        assert_eq!(admitted, 20, "exactly the limit within one second");
        assert!(
            budget.takes() < 40,
            "blocks, not a write per delivery: {}",
            budget.takes()
        );
        // The waiters go to the next seconds, a limit's worth each (per instance).
        assert!(waits.iter().all(|d| *d >= Duration::from_millis(750)));
        assert!(waits.iter().any(|d| *d >= Duration::from_millis(1750)));
        // The next second has a fresh budget.
        let next: DateTime<Utc> = "2026-11-29T12:00:01.010Z".parse().unwrap();
        assert_eq!(a.admit(&tenant, &sub, 20, next).await.unwrap(), Admit::Now);
    }

    #[test]
    fn blocks_are_a_tenth_of_the_limit_and_at_least_one() {
        assert_eq!(block_size(1), 1);
        assert_eq!(block_size(10), 1);
        assert_eq!(block_size(25), 3);
        assert_eq!(block_size(10_000), 1_000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_claim_waits_for_a_place_to_come_free_but_not_longer_than_its_patience() {
        let inflight = Arc::new(InFlight::default());
        let tenant = TenantId::default_tenant();
        let sub = SubscriberId::new();
        let held = inflight.claim(&tenant, &sub, 1).expect("the one place");
        let patience = Duration::from_secs(1);
        assert!(
            inflight
                .claim_within(&tenant, &sub, 1, patience)
                .await
                .is_none(),
            "no place came free in time"
        );
        let waiter = {
            let inflight = inflight.clone();
            let (tenant, sub) = (tenant.clone(), sub.clone());
            tokio::spawn(async move { inflight.claim_within(&tenant, &sub, 1, patience).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(held);
        let got = waiter.await.unwrap();
        assert!(got.is_some(), "the freed place went to the waiter");
        assert_eq!(inflight.count(&tenant, &sub), 1);
    }

    #[test]
    fn busy_delays_are_short_and_spread() {
        let delays: std::collections::BTreeSet<u64> =
            (0..200).map(|_| busy_delay().as_secs()).collect();
        assert!(delays.iter().all(|d| (1..=3).contains(d)), "{delays:?}");
        assert!(delays.len() > 1, "{delays:?}");
    }
}
