//! A tenant's publish limits and registry record: the plain types the ports speak in.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{self, ConfigError, Env};
use crate::ids::TenantId;

/// Highest `events_per_second` a tenant may be given.
pub const MAX_EVENTS_PER_SECOND: u32 = 100_000;
/// Highest `burst` a tenant may be given.
pub const MAX_BURST: u32 = 1_000_000;
/// The default rate when `SKYHOOK_TENANT_EVENTS_PER_SECOND` is not set.
pub const DEFAULT_EVENTS_PER_SECOND: u32 = 100;
/// How long an instance trusts a tenant's limits it read.
pub const LIMITS_CACHE_TTL: Duration = Duration::from_secs(30);

/// How much a tenant may publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantLimits {
    /// Publishes per second, on average.
    pub events_per_second: u32,
    /// Publishes at once after a quiet spell (at least 1).
    pub burst: u32,
}

impl TenantLimits {
    /// Checks the numbers: a rate of 1 to 100,000 a second, a burst of 1 to 1,000,000.
    pub fn new(events_per_second: u32, burst: u32) -> Result<Self, String> {
        if !(1..=MAX_EVENTS_PER_SECOND).contains(&events_per_second) {
            return Err(format!(
                "events_per_second must be from 1 to {MAX_EVENTS_PER_SECOND}"
            ));
        }
        if !(1..=MAX_BURST).contains(&burst) {
            return Err(format!("burst must be from 1 to {MAX_BURST}"));
        }
        Ok(TenantLimits {
            events_per_second,
            burst,
        })
    }

    /// The stack's defaults: `SKYHOOK_TENANT_EVENTS_PER_SECOND` (100) and
    /// `SKYHOOK_TENANT_BURST` (ten seconds' worth).
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let rate = config::parsed(
            env,
            config::TENANT_EVENTS_PER_SECOND,
            DEFAULT_EVENTS_PER_SECOND,
            |v| match v.parse::<u32>() {
                Ok(n) if (1..=MAX_EVENTS_PER_SECOND).contains(&n) => Ok(n),
                _ => Err(format!(
                    "expected a number from 1 to {MAX_EVENTS_PER_SECOND}"
                )),
            },
        )?;
        let burst = config::parsed(
            env,
            config::TENANT_BURST,
            rate.saturating_mul(10).min(MAX_BURST),
            |v| match v.parse::<u32>() {
                Ok(n) if (1..=MAX_BURST).contains(&n) => Ok(n),
                _ => Err(format!("expected a number from 1 to {MAX_BURST}")),
            },
        )?;
        Ok(TenantLimits {
            events_per_second: rate,
            burst,
        })
    }

    /// Microseconds one publish takes of the bucket.
    pub fn interval_us(&self) -> i64 {
        1_000_000 / i64::from(self.events_per_second.max(1))
    }

    /// How far ahead of now the bucket may run: the burst's worth of intervals.
    pub fn tolerance_us(&self) -> i64 {
        self.interval_us()
            .saturating_mul(i64::from(self.burst.max(1)))
    }

    /// Publishes an instance takes at once from a busy tenant's bucket: a tenth of a
    /// second's worth, within the burst.
    pub fn block(&self) -> u32 {
        self.events_per_second
            .div_ceil(10)
            .clamp(1, self.burst.max(1))
    }
}

/// A tenant as the registry keeps it: limits of its own, or the stack's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    pub id: TenantId,
    /// `None`: the stack's defaults.
    pub limits: Option<TenantLimits>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What became of a request to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// Over the limit: try again after this long.
    Limited(Duration),
}

/// A publish refused for its tenant's limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "tenant {tenant} is over its limit of {events_per_second} events a second (burst {burst}); retry after {} s",
    retry_after_secs(.retry_after)
)]
pub struct RateLimited {
    pub tenant: TenantId,
    pub events_per_second: u32,
    pub burst: u32,
    pub retry_after: Duration,
}

/// Whole seconds to wait, at least one: what `Retry-After` says.
pub fn retry_after_secs(wait: &Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}
