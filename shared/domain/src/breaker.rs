//! Endpoint health: a circuit breaker per subscriber, shared by every delivery instance
//! through one small item, and the decisions made from it. Nothing here reads a clock;
//! "now" comes in as an argument.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a subscriber's breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Deliveries go through.
    Closed,
    /// Deliveries wait, with no HTTP call and no attempt spent, until `retry_at`.
    Open,
    /// The cool-down is over and one probe is under way (until `retry_at`, its lease).
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "closed" => Some(BreakerState::Closed),
            "open" => Some(BreakerState::Open),
            "half_open" => Some(BreakerState::HalfOpen),
            _ => None,
        }
    }
}

/// A subscriber's health. A healthy subscriber has no stored health at all, which is what
/// keeps its successful deliveries free of writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub state: BreakerState,
    pub consecutive_failures: u32,
    /// When the breaker opened (kept while it stays open or half-open).
    pub opened_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The first failure with no success since.
    pub failing_since: Option<DateTime<Utc>>,
    /// Open: when the cool-down ends. Half-open: when the probe's lease ends.
    pub retry_at: Option<DateTime<Utc>>,
    /// The cool-down the breaker opened with last; each failed probe doubles it.
    pub cooldown: Duration,
}

impl Health {
    pub fn healthy() -> Self {
        Health {
            state: BreakerState::Closed,
            consecutive_failures: 0,
            opened_at: None,
            last_error: None,
            failing_since: None,
            retry_at: None,
            cooldown: Duration::ZERO,
        }
    }

    /// Whether a success has anything to clear.
    pub fn is_healthy(&self) -> bool {
        self.state == BreakerState::Closed && self.consecutive_failures == 0
    }
}

/// The breaker's settings (`SKYHOOK_BREAKER_*`, `SKYHOOK_AUTO_DISABLE_AFTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failed attempts that open the breaker.
    pub failures: u32,
    /// The first cool-down.
    pub cooldown: Duration,
    /// The longest cool-down, however many probes failed.
    pub max_cooldown: Duration,
    /// A subscriber failing with no success for this long is disabled.
    pub auto_disable_after: Duration,
}

pub const DEFAULT_BREAKER_FAILURES: u32 = 5;
pub const DEFAULT_BREAKER_COOLDOWN: Duration = Duration::from_secs(30);
pub const DEFAULT_BREAKER_MAX_COOLDOWN: Duration = Duration::from_secs(3600);
pub const DEFAULT_AUTO_DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            failures: DEFAULT_BREAKER_FAILURES,
            cooldown: DEFAULT_BREAKER_COOLDOWN,
            max_cooldown: DEFAULT_BREAKER_MAX_COOLDOWN,
            auto_disable_after: DEFAULT_AUTO_DISABLE_AFTER,
        }
    }
}

/// What a delivery does before its HTTP call, given the subscriber's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Closed: go.
    Go,
    /// The cool-down is over: try to become the one probe.
    Probe,
    /// Open (or another probe under way): wait this long, no attempt spent.
    Wait(Duration),
}

/// How long a delivery waits when another instance holds the probe.
pub const PROBE_WAIT: Duration = Duration::from_secs(5);

impl BreakerPolicy {
    pub fn gate(&self, health: &Health, now: DateTime<Utc>) -> Gate {
        match health.state {
            BreakerState::Closed => Gate::Go,
            BreakerState::Open | BreakerState::HalfOpen => match health.retry_at {
                Some(at) if at > now => {
                    let left = (at - now).to_std().unwrap_or(Duration::ZERO);
                    if health.state == BreakerState::HalfOpen {
                        Gate::Wait(left.min(PROBE_WAIT).max(Duration::from_secs(1)))
                    } else {
                        Gate::Wait(left.max(Duration::from_secs(1)))
                    }
                }
                _ => Gate::Probe,
            },
        }
    }

    /// Whether a failure that left `health` opens the breaker.
    pub fn opens(&self, health: &Health) -> bool {
        health.state == BreakerState::Closed && health.consecutive_failures >= self.failures.max(1)
    }

    /// The cool-down after a failed probe: twice the last, at most `max_cooldown`.
    pub fn next_cooldown(&self, health: &Health) -> Duration {
        (health.cooldown.max(self.cooldown) * 2).min(self.max_cooldown.max(self.cooldown))
    }

    /// Whether a subscriber has failed with no success for long enough to be disabled.
    pub fn disables(&self, health: &Health, now: DateTime<Utc>) -> bool {
        health.failing_since.is_some_and(|since| {
            (now - since).to_std().unwrap_or(Duration::ZERO) >= self.auto_disable_after
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_breaker_opens_at_the_threshold_waits_out_its_cool_down_then_probes() {
        let policy = BreakerPolicy::default();
        let now = at("2026-11-29T12:00:00Z");
        let mut h = Health::healthy();
        assert_eq!(policy.gate(&h, now), Gate::Go);
        h.consecutive_failures = 4;
        assert!(!policy.opens(&h));
        h.consecutive_failures = 5;
        assert!(policy.opens(&h));
        h.state = BreakerState::Open;
        h.retry_at = Some(now + chrono::Duration::seconds(30));
        h.cooldown = policy.cooldown;
        assert!(!policy.opens(&h), "an open breaker does not open again");
        assert_eq!(policy.gate(&h, now), Gate::Wait(Duration::from_secs(30)));
        assert_eq!(
            policy.gate(&h, now + chrono::Duration::seconds(30)),
            Gate::Probe
        );
        h.state = BreakerState::HalfOpen;
        h.retry_at = Some(now + chrono::Duration::seconds(20));
        assert_eq!(
            policy.gate(&h, now),
            Gate::Wait(PROBE_WAIT),
            "another probe is out"
        );
        assert_eq!(
            policy.gate(&h, now + chrono::Duration::seconds(21)),
            Gate::Probe,
            "a probe that never reported loses its lease"
        );
    }

    #[test]
    fn failed_probes_double_the_cool_down_up_to_the_maximum() {
        let policy = BreakerPolicy::default();
        let mut h = Health::healthy();
        h.cooldown = Duration::from_secs(30);
        assert_eq!(policy.next_cooldown(&h), Duration::from_secs(60));
        h.cooldown = Duration::from_secs(3000);
        assert_eq!(policy.next_cooldown(&h), Duration::from_secs(3600));
    }

    #[test]
    fn a_subscriber_is_disabled_only_after_failing_for_the_whole_period() {
        let policy = BreakerPolicy::default();
        let now = at("2026-11-29T12:00:00Z");
        let mut h = Health::healthy();
        assert!(!policy.disables(&h, now));
        h.failing_since = Some(now - chrono::Duration::days(5) + chrono::Duration::seconds(1));
        assert!(!policy.disables(&h, now));
        h.failing_since = Some(now - chrono::Duration::days(5));
        assert!(policy.disables(&h, now));
    }
}
