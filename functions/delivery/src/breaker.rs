//! The breaker's bookkeeping after an attempt: a success heals the subscriber, a failure
//! counts toward opening its breaker and, after failing for too long, disables it (as a 410
//! does at once), with an audit record and an operational event.

use chrono::{DateTime, Utc};

use skyhook_domain::breaker::{BreakerState, Health};
use skyhook_domain::directory::DirectoryView;
use skyhook_domain::model::{
    AuditRecord, DeliveryMessage, DisabledReason, OpsEvent, OpsEventKind, Subscriber,
};
use skyhook_domain::ports::StoreError;

use crate::Deliverer;

impl Deliverer {
    /// Puts an operational event on the bus; a failure is logged, never the delivery's.
    pub(crate) async fn emit(&self, event: OpsEvent) {
        if let Err(e) = self.ops.emit(&event).await {
            tracing::error!(error = %e, ops_event = event.kind.as_str(), "could not put the operational event on the bus");
        }
    }

    /// A success after failures: the subscriber is healthy again, and an open or half-open
    /// breaker closes.
    pub(crate) async fn healed(
        &self,
        view: &Result<DirectoryView, StoreError>,
        message: &DeliveryMessage,
    ) {
        match self
            .health
            .reset(&message.tenant, &message.subscriber_id)
            .await
        {
            Ok(old) => {
                if old.is_some_and(|h| h.state != BreakerState::Closed) {
                    tracing::info!("breaker closed: the endpoint answered again");
                    self.emit(OpsEvent::new(
                        OpsEventKind::BreakerClosed,
                        &message.tenant,
                        &message.subscriber_id,
                        "probe_succeeded",
                        self.now(),
                    ))
                    .await;
                }
                if let Ok(view) = view {
                    self.directory
                        .note_health(view, &message.tenant, &message.subscriber_id, None)
                        .await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not clear the subscriber's failures"),
        }
    }

    /// Counts a failed attempt toward the breaker: it opens at the threshold, and a failed
    /// probe opens it again for longer. Returns a reason to disable the subscriber when it
    /// has failed with no success for `auto_disable_after`.
    pub(crate) async fn failed(
        &self,
        view: &Result<DirectoryView, StoreError>,
        message: &DeliveryMessage,
        subscriber: &Subscriber,
        probing: bool,
        error: &str,
        now: DateTime<Utc>,
    ) -> Option<DisabledReason> {
        let (tenant, id) = (&message.tenant, &message.subscriber_id);
        let mut health = match self.health.failed(tenant, id, error, now).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "could not count the failure toward the breaker");
                return None;
            }
        };
        let cooldown = if probing {
            Some(self.breaker.next_cooldown(&health))
        } else if self.breaker.opens(&health) {
            Some(self.breaker.cooldown)
        } else {
            None
        };
        if let Some(cooldown) = cooldown {
            self.open(message, &mut health, probing, error, now, cooldown)
                .await;
        }
        if let Ok(view) = view {
            self.directory
                .note_health(view, tenant, id, Some(health.clone()))
                .await;
        }
        (subscriber.active && self.breaker.disables(&health, now))
            .then_some(DisabledReason::Failing)
    }

    /// Opens the breaker for `cooldown` (unless another instance just did), announces it,
    /// and updates `health` to match.
    async fn open(
        &self,
        message: &DeliveryMessage,
        health: &mut Health,
        probing: bool,
        error: &str,
        now: DateTime<Utc>,
        cooldown: std::time::Duration,
    ) {
        let (tenant, id) = (&message.tenant, &message.subscriber_id);
        match self.health.open(tenant, id, now, cooldown).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not open the breaker");
                return;
            }
        }
        tracing::warn!(
            consecutive_failures = health.consecutive_failures,
            cooldown_s = cooldown.as_secs(),
            "breaker opened: deliveries to this subscriber wait"
        );
        let reason = if probing {
            format!("probe_failed: {error}")
        } else {
            format!(
                "{} consecutive failures: {error}",
                health.consecutive_failures
            )
        };
        self.emit(OpsEvent::new(
            OpsEventKind::BreakerOpened,
            tenant,
            id,
            reason,
            now,
        ))
        .await;
        health.state = BreakerState::Open;
        health.opened_at = health.opened_at.or(Some(now));
        health.retry_at = chrono::Duration::from_std(cooldown).ok().map(|c| now + c);
        health.cooldown = cooldown;
    }

    /// Disables the subscriber for `reason`, with an audit record. An edit that raced this
    /// one is read back and disabled in turn; a subscriber already disabled is left as is.
    pub(crate) async fn disable(
        &self,
        subscriber: &Subscriber,
        reason: DisabledReason,
        error: &str,
        now: DateTime<Utc>,
    ) {
        let mut current = subscriber.clone();
        for _ in 0..2 {
            if !current.active {
                return;
            }
            let mut off = current.clone();
            off.active = false;
            off.disabled_reason = Some(reason);
            off.updated_at = now.max(current.updated_at + chrono::Duration::milliseconds(1));
            match self.subscribers.replace(&off, current.updated_at).await {
                Ok(()) => {
                    tracing::warn!(reason = reason.as_str(), error, "subscriber disabled");
                    let record = AuditRecord {
                        tenant: off.tenant.clone(),
                        at: now,
                        actor: "skyhook:delivery".into(),
                        action: "subscriber.disable".into(),
                        resource: off.id.to_string(),
                        detail: Some(serde_json::json!({
                            "reason": reason.as_str(),
                            "last_error": error,
                        })),
                    };
                    if let Err(e) = self.audit.record(&record).await {
                        tracing::error!(error = %e, "could not write the audit record of a disable");
                    }
                    self.emit(OpsEvent::new(
                        OpsEventKind::SubscriberDisabled,
                        &off.tenant,
                        &off.id,
                        reason.as_str(),
                        now,
                    ))
                    .await;
                    return;
                }
                Err(StoreError::Conflict(_)) => {
                    match self.subscribers.get(&off.tenant, &off.id).await {
                        Ok(Some(fresh)) => current = fresh,
                        _ => return,
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, reason = reason.as_str(), "could not disable the subscriber");
                    return;
                }
            }
        }
    }
}
