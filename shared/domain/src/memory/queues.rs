//! Twins of the dead-letter queue (the [`MemoryDeliveryQueue`]'s dead letters, read back),
//! the stats counters, secret values, and a jq runner that runs in the test's own process.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{MemoryDeliveryQueue, lock};
use crate::ids::{SubscriberId, TenantId};
use crate::jq::{JqError, Program};
use crate::model::DeliveryStats;
use crate::ports::{
    DeadLetterQueue, DeadMessage, ProgramRunner, StatsChange, StatsCounters, StoreError,
};
use crate::series::{Bucket, SeriesChange, SeriesCounts};

/// Which dead letters a reader holds (until when) or deleted, by their index in `dead`.
#[derive(Default)]
pub(super) struct DeadState {
    held: HashMap<usize, Instant>,
    deleted: HashSet<usize>,
    receives: u64,
}

fn index_of(handle: &str) -> Result<usize, StoreError> {
    handle
        .split_once(':')
        .and_then(|(i, _)| i.parse().ok())
        .ok_or_else(|| StoreError::Rejected {
            service: "SQS",
            detail: "ReceiptHandleIsInvalid".into(),
        })
}

/// The queue's dead letters, as the SQS dead-letter queue gives them out: each message is
/// hidden from other readers while held, and gone once deleted.
#[async_trait]
impl DeadLetterQueue for MemoryDeliveryQueue {
    async fn receive(&self, max: usize, hold: Duration) -> Result<Vec<DeadMessage>, StoreError> {
        let dead = lock(&self.dead);
        let mut state = lock(&self.dlq);
        let now = Instant::now();
        let mut out = Vec::new();
        for (i, (body, why)) in dead.iter().enumerate() {
            let held = state.held.get(&i).is_some_and(|until| *until > now);
            if out.len() == max.clamp(1, 10) || held || state.deleted.contains(&i) {
                continue;
            }
            state.receives += 1;
            state.held.insert(i, now + hold);
            out.push(DeadMessage {
                id: format!("dead-{i}"),
                handle: format!("{i}:{}", state.receives),
                body: body.clone(),
                reason: Some(why.reason.clone()),
                dead_at: None,
                attempts: Some(why.attempts),
            });
        }
        Ok(out)
    }

    async fn delete(&self, handle: &str) -> Result<(), StoreError> {
        let i = index_of(handle)?;
        let mut state = lock(&self.dlq);
        state.held.remove(&i);
        state.deleted.insert(i);
        Ok(())
    }

    async fn release(&self, handle: &str) -> Result<(), StoreError> {
        let i = index_of(handle)?;
        lock(&self.dlq).held.remove(&i);
        Ok(())
    }

    async fn held(&self) -> Result<u64, StoreError> {
        let state = lock(&self.dlq);
        let now = Instant::now();
        let held = state
            .held
            .iter()
            .filter(|(i, until)| **until > now && !state.deleted.contains(i))
            .count();
        Ok(u64::try_from(held).unwrap_or(u64::MAX))
    }
}

type SeriesKey = (TenantId, Option<SubscriberId>, Bucket, i64);

/// The stats counters in memory: totals and series as the stats consumer folds them, each
/// batch counted once however often it is applied.
#[derive(Default)]
pub struct MemoryStatsCounters {
    batches: Mutex<HashSet<String>>,
    totals: Mutex<HashMap<(TenantId, Option<SubscriberId>), DeliveryStats>>,
    series: Mutex<HashMap<SeriesKey, SeriesCounts>>,
}

impl MemoryStatsCounters {
    /// The totals of a tenant (`None`) or one of its subscribers.
    pub fn totals(&self, tenant: &TenantId, subscriber: Option<&SubscriberId>) -> DeliveryStats {
        let key = (tenant.clone(), subscriber.cloned());
        lock(&self.totals).get(&key).copied().unwrap_or_default()
    }

    /// The stored buckets of a series from `first` to `last`.
    pub fn points(
        &self,
        tenant: &TenantId,
        subscriber: Option<&SubscriberId>,
        bucket: Bucket,
        first: i64,
        last: i64,
    ) -> Vec<(i64, SeriesCounts)> {
        let series = lock(&self.series);
        let mut points: Vec<(i64, SeriesCounts)> = series
            .iter()
            .filter(|((t, s, b, start), _)| {
                t == tenant
                    && s.as_ref() == subscriber
                    && *b == bucket
                    && (first..=last).contains(start)
            })
            .map(|((_, _, _, start), counts)| (*start, *counts))
            .collect();
        points.sort_by_key(|(start, _)| *start);
        points
    }
}

#[async_trait]
impl StatsCounters for MemoryStatsCounters {
    async fn apply(
        &self,
        batch: &str,
        changes: &[StatsChange],
        series: &[SeriesChange],
    ) -> Result<(), StoreError> {
        if !lock(&self.batches).insert(batch.to_string()) {
            return Ok(());
        }
        let mut totals = lock(&self.totals);
        for c in changes {
            let t = totals
                .entry((c.tenant.clone(), c.subscriber.clone()))
                .or_default();
            *t = t.plus(c.delta);
        }
        let mut stored = lock(&self.series);
        for c in series {
            let key = (c.tenant.clone(), c.subscriber.clone(), c.bucket, c.start);
            let point = stored.entry(key).or_default();
            *point = point.plus(&c.delta);
        }
        Ok(())
    }
}

/// Secret values by name, as a test puts them.
#[derive(Default)]
pub struct MemorySecretValues {
    values: Mutex<HashMap<String, String>>,
}

impl MemorySecretValues {
    pub fn put(&self, id: &str, value: &str) {
        lock(&self.values).insert(id.to_string(), value.to_string());
    }
}

#[async_trait]
impl crate::ports::SecretValues for MemorySecretValues {
    async fn secret_string(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(lock(&self.values).get(id).cloned())
    }
}

/// Runs jq programs in the test's own process, with the same checks as the sandbox's
/// workers but none of its limits: for tests, never for programs from outside.
#[derive(Debug, Default, Clone, Copy)]
pub struct InProcessRunner;

/// The largest output a run gives, as the sandbox's default.
const MAX_OUTPUT_BYTES: usize = 256 * 1024;

#[async_trait]
impl ProgramRunner for InProcessRunner {
    async fn run(&self, _tenant: &TenantId, program: &str, input: &str) -> Result<String, JqError> {
        Program::compile(program)?.run(input.as_bytes(), MAX_OUTPUT_BYTES)
    }

    async fn check(&self, program: &str) -> Result<(), JqError> {
        Program::compile(program).map(drop)
    }
}
