//! Judging an attempt: the attempt log's record of it, the breaker's bookkeeping, and the
//! fate that follows (done, parked after a 410, retried, or dead-lettered after the last).

use chrono::{DateTime, Utc};

use skyhook_domain::breaker::Health;
use skyhook_domain::directory::DirectoryView;
use skyhook_domain::model::{
    AttemptRecord, DeadLetterReason, DeliveryMessage, DeliveryState, DisabledReason, Outcome,
    Subscriber,
};
use skyhook_domain::ports::StoreError;
use skyhook_domain::retry::RetryDecision;

use crate::fate::Fate;
use crate::http::{Answer, Verdict};
use crate::{Deliverer, metrics};

impl Deliverer {
    /// Logs the attempt and decides what follows: done; parked after a 410 (the subscriber
    /// disabled); or a retry, or the dead-letter queue after the last attempt.
    pub(crate) async fn judge(
        &self,
        message: &DeliveryMessage,
        subscriber: &Subscriber,
        health: &Health,
        round: u32,
        sent: Sent,
        view: &Result<DirectoryView, StoreError>,
    ) -> Fate {
        let attempt = message.prior_attempts.saturating_add(round);
        let entry = sent.record(message, subscriber, attempt, self.now());
        metrics::latency(&message.tenant, sent.latency_ms);
        match sent.answer.verdict() {
            Verdict::Delivered => {
                tracing::debug!(
                    status = entry.status_code,
                    latency_ms = sent.latency_ms,
                    "delivered"
                );
                metrics::record(&message.tenant, metrics::Event::Delivered);
                self.log(&entry, DeliveryState::Delivered).await;
                if sent.probing || !health.is_healthy() {
                    self.healed(view, message).await;
                }
                Fate::Done
            }
            Verdict::Gone => {
                // The endpoint says it will not come back. Disabled at once; this delivery
                // (its attempt logged) is parked with the others, for if it is enabled again.
                metrics::record(&message.tenant, metrics::Event::Failed);
                self.log(&entry, DeliveryState::Retrying).await;
                let error = entry.error.as_deref().unwrap_or_default();
                self.disable(subscriber, DisabledReason::Gone, error, self.now())
                    .await;
                Fate::Park { attempts: attempt }
            }
            Verdict::Failed => {
                metrics::record(&message.tenant, metrics::Event::Failed);
                self.retry_or_dead_letter(message, subscriber, round, &sent, entry, view)
                    .await
            }
        }
    }

    /// After a failed attempt, which the breaker counts (and which may disable the
    /// subscriber): a retry on the schedule, or the dead-letter queue after the last one.
    async fn retry_or_dead_letter(
        &self,
        message: &DeliveryMessage,
        subscriber: &Subscriber,
        round: u32,
        sent: &Sent,
        entry: AttemptRecord,
        view: &Result<DirectoryView, StoreError>,
    ) -> Fate {
        let error = entry.error.clone().unwrap_or_default();
        let now = self.now();
        if let Some(reason) = self
            .failed(view, message, subscriber, sent.probing, &error, now)
            .await
        {
            self.disable(subscriber, reason, &error, now).await;
        }
        let (status, latency_ms) = (entry.status_code, sent.latency_ms);
        match self.policy.decide_random(round, sent.answer.retry_after()) {
            RetryDecision::Retry(delay) => {
                let next_attempt_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                tracing::warn!(status, error = %error, latency_ms, next_attempt_in_ms, "delivery failed; will retry");
                self.log(&entry, DeliveryState::Retrying).await;
                metrics::record(&message.tenant, metrics::Event::Retried);
                Fate::RetryIn(Some(delay))
            }
            RetryDecision::GiveUp => {
                tracing::error!(status, error = %error, "delivery failed on its last attempt; dead-lettering");
                self.log(&entry, DeliveryState::Failed).await;
                Fate::DeadLetter {
                    attempts: entry.attempt,
                    reason: DeadLetterReason::AttemptsExhausted(error),
                }
            }
        }
    }
}

/// A request that went out (or was refused before it could): what came back, and when.
pub(crate) struct Sent {
    pub(crate) answer: Answer,
    /// Whether it was the breaker's probe.
    pub(crate) probing: bool,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) latency_ms: u64,
}

impl Sent {
    /// The attempt log's record of it.
    fn record(
        &self,
        message: &DeliveryMessage,
        subscriber: &Subscriber,
        attempt: u32,
        finished_at: DateTime<Utc>,
    ) -> AttemptRecord {
        let error = self.answer.error();
        AttemptRecord {
            event_id: message.event_id.clone(),
            tenant: message.tenant.clone(),
            subscriber_id: message.subscriber_id.clone(),
            event_type: message.event_type.clone(),
            attempt,
            outcome: if error.is_none() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            status_code: self.answer.status(),
            latency_ms: self.latency_ms,
            error,
            response_body: self.answer.body().map(str::to_string),
            url: subscriber.url.to_string(),
            started_at: self.started_at,
            finished_at,
        }
    }
}
