//! Admission: whether a delivery may go to its endpoint now. The subscriber's breaker, its
//! cap on deliveries in flight and its rate limit each say go, or wait this long without
//! spending an attempt.

use std::time::Duration;

use chrono::{DateTime, Utc};

use skyhook_domain::breaker::{Gate, Health, PROBE_WAIT};
use skyhook_domain::model::{DeliveryMessage, Subscriber};

use crate::Deliverer;
use crate::limits::{self, Admit, Slot};

/// How much longer than the HTTP timeout a probe holds the breaker's half-open state.
const PROBE_LEASE_MARGIN: Duration = Duration::from_secs(5);

/// Why a delivery waits without an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeferReason {
    /// The subscriber's breaker is open, or another delivery holds its probe.
    BreakerOpen,
    /// The subscriber's deliveries in flight in this instance are at its cap.
    Busy,
    /// The subscriber's rate limit has nothing left this second (or could not be read).
    RateLimited,
}

impl DeferReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeferReason::BreakerOpen => "breaker_open",
            DeferReason::Busy => "busy",
            DeferReason::RateLimited => "rate_limited",
        }
    }
}

/// A delivery let through: its place under the cap, held until the request ends, and
/// whether it is the breaker's probe.
pub struct Pass {
    pub slot: Slot,
    pub probing: bool,
}

/// Go, or wait.
pub enum Admission {
    Go(Pass),
    Wait(DeferReason, Duration),
}

impl Deliverer {
    /// The breaker's say: go (`true` when this delivery is the probe of a half-open
    /// breaker), or wait this long.
    async fn gate(
        &self,
        message: &DeliveryMessage,
        health: &Health,
        now: DateTime<Utc>,
    ) -> Result<bool, Duration> {
        match self.breaker.gate(health, now) {
            Gate::Go => Ok(false),
            Gate::Wait(delay) => Err(delay),
            Gate::Probe => {
                // After the cool-down, one delivery goes through as the probe.
                let lease = self.http_timeout + PROBE_LEASE_MARGIN;
                let (tenant, id) = (&message.tenant, &message.subscriber_id);
                match self.health.claim_probe(tenant, id, now, lease).await {
                    Ok(true) => {
                        tracing::info!("breaker half-open: this delivery is the probe");
                        Ok(true)
                    }
                    Ok(false) => Err(PROBE_WAIT),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not take the breaker's probe");
                        Err(PROBE_WAIT)
                    }
                }
            }
        }
    }

    /// Asks the breaker, then the cap, then the rate limit. `health` is the subscriber's, as
    /// this batch read it.
    pub(crate) async fn admit(
        &self,
        message: &DeliveryMessage,
        subscriber: &Subscriber,
        health: &Health,
        now: DateTime<Utc>,
    ) -> Admission {
        let probing = match self.gate(message, health, now).await {
            Ok(probing) => probing,
            Err(wait) => return Admission::Wait(DeferReason::BreakerOpen, wait),
        };
        let Some(slot) = self
            .inflight
            .claim_within(
                &message.tenant,
                &message.subscriber_id,
                subscriber.max_concurrency,
                limits::CAP_PATIENCE,
            )
            .await
        else {
            return Admission::Wait(DeferReason::Busy, limits::busy_delay());
        };
        if let Some(limit) = subscriber.rate_limit {
            match self
                .rates
                // Read again: the cap may have kept this delivery waiting.
                .admit(&message.tenant, &message.subscriber_id, limit, self.now())
                .await
            {
                Ok(Admit::Now) => {}
                Ok(Admit::Wait(delay)) => {
                    return Admission::Wait(DeferReason::RateLimited, delay);
                }
                Err(e) => {
                    // The budget could not be read: wait rather than go over the limit.
                    tracing::warn!(error = %e, "could not take from the rate-limit budget");
                    return Admission::Wait(DeferReason::RateLimited, limits::busy_delay());
                }
            }
        }
        Admission::Go(Pass { slot, probing })
    }
}
