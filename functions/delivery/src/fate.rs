//! What becomes of a delivery's SQS message once its attempt (or the lack of one) is
//! decided: one [`Fate`], applied in one place, [`Deliverer::settle`].

use std::time::Duration;

use aws_lambda_events::sqs::SqsMessage;

use skyhook_domain::model::{
    AttemptRecord, DeadLetterEntry, DeadLetterReason, DeliveryMessage, DeliveryState,
    DeliveryStatus, OpsEvent, OpsEventKind,
};
use skyhook_domain::ports::DeadLetter;
use skyhook_domain::retry::RetryDecision;

use crate::admission::DeferReason;
use crate::{Deliverer, RecordResult, limits, metrics};

/// The end of one round of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Finished: delivered, or ended with its status written (the subscriber is gone).
    Done,
    /// Try again on this message after `delay`; `None`: the schedule's delay for this round.
    RetryIn(Option<Duration>),
    /// Put off for the delay without spending an attempt.
    Defer(DeferReason, Duration),
    /// Kept for the subscriber, which is disabled, after `attempts` attempts.
    Park { attempts: u32 },
    /// Moved to the dead-letter queue after `attempts` attempts.
    DeadLetter {
        attempts: u32,
        reason: DeadLetterReason,
    },
}

impl Deliverer {
    /// Applies a delivery's fate to the SQS record it came from.
    pub(crate) async fn settle(
        &self,
        record: &SqsMessage,
        raw_body: &str,
        message: &DeliveryMessage,
        round: u32,
        fate: Fate,
    ) -> RecordResult {
        match fate {
            Fate::Done => RecordResult::Done,
            Fate::RetryIn(delay) => self.schedule_retry(record, round, delay).await,
            Fate::Defer(why, delay) => self.defer(record, message, round, delay, why).await,
            Fate::Park { attempts } => self.park(record, raw_body, message, attempts).await,
            Fate::DeadLetter { attempts, reason } => {
                self.dead_letter(raw_body, message, attempts, &reason).await
            }
        }
    }

    /// Moves a record that is not a delivery message to the dead-letter queue as it came,
    /// with the reason: there is no delivery to log, index or announce.
    pub(crate) async fn reject(&self, raw_body: &str, round: u32, problem: String) -> RecordResult {
        let why = DeadLetter {
            reason: DeadLetterReason::MalformedMessage(problem).text(),
            event_id: None,
            subscriber_id: None,
            tenant: None,
            attempts: round,
        };
        self.dead_letter_or_retry(raw_body, &why).await
    }

    /// For a round that never reached the subscriber (a backing service failed): retry on
    /// the schedule, or after the last round end it like a failed delivery — status
    /// `failed` and the message in the DLQ — rather than leave it to the redrive policy,
    /// which would keep the status at `retrying` and the DLQ listing empty.
    pub(crate) async fn unreached(
        &self,
        message: &DeliveryMessage,
        round: u32,
        reason: &str,
    ) -> Fate {
        if round < self.policy.schedule.max_attempts() {
            return Fate::RetryIn(None);
        }
        let attempts = message.prior_attempts.saturating_add(round);
        self.set_status(message, DeliveryState::Failed, attempts, reason)
            .await;
        Fate::DeadLetter {
            attempts,
            reason: DeadLetterReason::AttemptsExhausted(reason.to_string()),
        }
    }

    /// Writes an attempt to the log, with the delivery's status after it.
    pub(crate) async fn log(&self, entry: &AttemptRecord, state: DeliveryState) {
        let status = DeliveryStatus {
            subscriber_id: entry.subscriber_id.clone(),
            status: state,
            attempts: entry.attempt,
            last_status_code: entry.status_code,
            last_error: entry.error.clone(),
            updated_at: Some(entry.finished_at),
        };
        // The delivery already happened; a logging failure must not cause a resend.
        if let Err(e) = self.log.record(entry, &status).await {
            tracing::error!(error = %e, "could not write the attempt log");
        }
    }

    /// Writes the delivery's status where no attempt was made.
    pub(crate) async fn set_status(
        &self,
        message: &DeliveryMessage,
        state: DeliveryState,
        attempts: u32,
        error: &str,
    ) {
        let status = DeliveryStatus {
            subscriber_id: message.subscriber_id.clone(),
            status: state,
            attempts,
            last_status_code: None,
            last_error: Some(error.to_string()),
            updated_at: Some(self.now()),
        };
        if let Err(e) = self
            .log
            .set_status(&message.tenant, &message.event_id, &status)
            .await
        {
            tracing::error!(error = %e, "could not write the delivery status");
        }
    }

    /// Dead-letters a parsed message and adds it to the tenant's dead-letter index, which
    /// `GET /v1/dlq` lists. An index write that fails is logged: the message is safe in the
    /// DLQ and a redrive still finds it there.
    async fn dead_letter(
        &self,
        raw_body: &str,
        message: &DeliveryMessage,
        attempts: u32,
        reason: &DeadLetterReason,
    ) -> RecordResult {
        let text = reason.text();
        let why = DeadLetter {
            reason: text.clone(),
            event_id: Some(message.event_id.to_string()),
            subscriber_id: Some(message.subscriber_id.to_string()),
            tenant: Some(message.tenant.to_string()),
            attempts,
        };
        let result = self.dead_letter_or_retry(raw_body, &why).await;
        if result != RecordResult::Done {
            return result;
        }
        let entry = DeadLetterEntry {
            tenant: message.tenant.clone(),
            event_id: message.event_id.clone(),
            subscriber_id: message.subscriber_id.clone(),
            event_type: message.event_type.clone(),
            reason: text.clone(),
            attempts,
            dead_at: self.now(),
            message: None,
        };
        if let Err(e) = self.dead_letters.put(&entry).await {
            tracing::error!(error = %e, "could not index the dead letter");
        }
        if reason.is_exhausted() {
            metrics::record(&message.tenant, metrics::Event::Exhausted);
            self.emit(
                OpsEvent::new(
                    OpsEventKind::DeliveryExhausted,
                    &message.tenant,
                    &message.subscriber_id,
                    text,
                    self.now(),
                )
                .with_event(&message.event_id),
            )
            .await;
        }
        result
    }

    /// Moves a message to the DLQ and deletes it from the queue. If the DLQ refuses it, the
    /// message stays; the queue's redrive policy moves it once its receives run out.
    async fn dead_letter_or_retry(&self, body: &str, why: &DeadLetter) -> RecordResult {
        match self.queue.dead_letter(body, why).await {
            Ok(()) => RecordResult::Done,
            Err(e) => {
                tracing::error!(error = %e, "could not dead-letter the message; leaving it queued");
                RecordResult::Retry
            }
        }
    }

    /// Puts a delivery off for `delay` without spending an attempt: it is sent again as a
    /// new message that counts the attempts made so far, and this one is done. (A visibility
    /// change would count as a receive: an attempt number gone, and a step toward the queue's
    /// redrive policy.) If the send fails, the message waits by visibility instead.
    async fn defer(
        &self,
        record: &SqsMessage,
        message: &DeliveryMessage,
        round: u32,
        delay: Duration,
        why: DeferReason,
    ) -> RecordResult {
        let mut later = message.clone();
        later.prior_attempts = message
            .prior_attempts
            .saturating_add(round.saturating_sub(1));
        match self.queue.send_later(&later, delay).await {
            Ok(()) => {
                metrics::record(&message.tenant, metrics::Event::Deferred);
                tracing::debug!(
                    reason = why.as_str(),
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "delivery deferred"
                );
                RecordResult::Done
            }
            Err(e) => {
                tracing::warn!(error = %e, reason = why.as_str(), "could not defer the delivery; it waits on the queue instead");
                self.schedule_retry(record, round, Some(delay)).await
            }
        }
    }

    /// Parks a disabled subscriber's message, which has had `attempts` attempts: kept in the
    /// dead-letter index (`GET /v1/dlq` lists it with reason `subscriber_disabled`), from
    /// where enabling the subscriber sends it again. A message too big for an item goes to
    /// the SQS dead-letter queue with the same reason instead, for `POST /v1/dlq/redrive`.
    async fn park(
        &self,
        record: &SqsMessage,
        raw_body: &str,
        message: &DeliveryMessage,
        attempts: u32,
    ) -> RecordResult {
        let reason = DeadLetterReason::SubscriberDisabled;
        if raw_body.len() > DeadLetterEntry::MAX_MESSAGE_BYTES {
            return self.dead_letter(raw_body, message, attempts, &reason).await;
        }
        let mut kept = message.clone();
        kept.prior_attempts = attempts;
        let entry = DeadLetterEntry {
            tenant: message.tenant.clone(),
            event_id: message.event_id.clone(),
            subscriber_id: message.subscriber_id.clone(),
            event_type: message.event_type.clone(),
            reason: reason.text(),
            attempts,
            dead_at: self.now(),
            message: Some(kept.to_json()),
        };
        if let Err(e) = self.dead_letters.put(&entry).await {
            tracing::error!(error = %e, "could not park the delivery; it stays queued");
            let round = crate::receive_count(record);
            return self
                .schedule_retry(record, round, Some(limits::busy_delay()))
                .await;
        }
        self.unpark_if_enabled_meanwhile(&kept).await;
        RecordResult::Done
    }

    /// Enabling the subscriber sends its parked messages again. If it was enabled after this
    /// batch read the directory but before the parked entry was written, that pass may have
    /// missed this one: look again, and send it back at once if so.
    async fn unpark_if_enabled_meanwhile(&self, kept: &DeliveryMessage) {
        match self
            .directory
            .fresh_subscriber(&kept.tenant, &kept.subscriber_id)
            .await
        {
            Ok(Some(s)) if s.active => {}
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not check the subscriber again after parking");
                return;
            }
        }
        let sent = match self.queue.send_batch(std::slice::from_ref(kept)).await {
            Ok(r) if r.failed.is_empty() => Ok(()),
            Ok(r) => Err(r.first_error.unwrap_or_default()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = sent {
            tracing::error!(error = %e, "the subscriber was enabled meanwhile, but re-sending its parked delivery failed; enabling it again sends it");
        } else if let Err(e) = self
            .dead_letters
            .remove(&kept.tenant, &kept.event_id, &kept.subscriber_id)
            .await
        {
            tracing::warn!(error = %e, "could not unpark a re-sent delivery");
        }
    }

    /// Hides the message until its next attempt. `None` uses the schedule's delay for
    /// this attempt (the attempt never reached the subscriber).
    async fn schedule_retry(
        &self,
        record: &SqsMessage,
        attempt: u32,
        delay: Option<Duration>,
    ) -> RecordResult {
        let delay = match delay {
            Some(d) => d,
            None => match self.policy.decide_random(attempt, None) {
                RetryDecision::Retry(d) => d,
                // Out of attempts (callers check first, see `unreached`): visible again at
                // once, so the redrive policy moves it to the DLQ.
                RetryDecision::GiveUp => Duration::ZERO,
            },
        };
        if let Some(handle) = record.receipt_handle.as_deref()
            && let Err(e) = self.queue.retry_after(handle, delay).await
        {
            // The message comes back after the queue's own visibility timeout instead.
            tracing::error!(error = %e, "could not set the retry delay");
        }
        RecordResult::Retry
    }
}
