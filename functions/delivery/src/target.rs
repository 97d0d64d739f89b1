//! Where a delivery goes: its subscriber, active, with its secrets and its health, as this
//! batch's view of the directory has them; or the fate of one that cannot go.

use skyhook_domain::breaker::Health;
use skyhook_domain::directory::DirectoryView;
use skyhook_domain::model::{DeadLetterReason, DeliveryMessage, DeliveryState, Subscriber};
use skyhook_domain::ports::{StoreError, SubscriberSecrets};

use crate::Deliverer;
use crate::fate::Fate;

impl Deliverer {
    /// The subscriber, active, and its secrets; or the fate of a delivery that cannot go to
    /// it: parked (disabled), ended (deleted), dead-lettered (no secret) or retried (the
    /// directory could not be read).
    pub(crate) async fn target(
        &self,
        message: &DeliveryMessage,
        round: u32,
        view: &Result<DirectoryView, StoreError>,
    ) -> Result<(Subscriber, SubscriberSecrets), Fate> {
        let attempt = message.prior_attempts.saturating_add(round);
        let found = match view {
            Ok(view) => {
                self.directory
                    .subscriber(view, &message.tenant, &message.subscriber_id)
                    .await
            }
            Err(e) => Err(StoreError::unavailable("DynamoDB", e)),
        };
        let subscriber = match found {
            Ok(Some(s)) if s.active => s,
            Ok(Some(_)) => {
                tracing::debug!("subscriber is disabled; parking the delivery until it is enabled");
                // This round made no attempt; the rounds before it each made one.
                return Err(Fate::Park {
                    attempts: attempt.saturating_sub(1),
                });
            }
            Ok(None) => {
                tracing::warn!("subscriber no longer exists; ending the delivery");
                self.set_status(
                    message,
                    DeliveryState::SubscriberDeleted,
                    attempt.saturating_sub(1),
                    "subscriber_deleted: the subscriber was deleted before the delivery succeeded",
                )
                .await;
                return Err(Fate::Done);
            }
            Err(e) => {
                tracing::error!(error = %e, "could not load the subscriber");
                let reason = format!("could not load the subscriber: {e}");
                return Err(self.unreached(message, round, &reason).await);
            }
        };
        let secrets = self.secrets_of(message, &subscriber, round).await?;
        Ok((subscriber, secrets))
    }

    /// The subscriber's secrets; or, when it has none, the dead-letter queue, and when they
    /// could not be read, a retry.
    async fn secrets_of(
        &self,
        message: &DeliveryMessage,
        subscriber: &Subscriber,
        round: u32,
    ) -> Result<SubscriberSecrets, Fate> {
        let attempt = message.prior_attempts.saturating_add(round);
        match self.directory.secrets(subscriber).await {
            Ok(Some(s)) if !s.signing.is_empty() => Ok(s),
            Ok(_) => {
                tracing::error!("subscriber has no signing secret; dead-lettering");
                let reason = DeadLetterReason::NoSigningSecret;
                self.set_status(message, DeliveryState::Failed, attempt, &reason.text())
                    .await;
                Err(Fate::DeadLetter {
                    attempts: attempt,
                    reason,
                })
            }
            Err(e) => {
                // The detail (the keyring's name, an AWS error naming a role) stays in the
                // log; what the tenant sees in the delivery's status says only which kind.
                tracing::error!(error = %e, "could not read the signing secret");
                let reason = match e {
                    StoreError::Corrupt(_) => {
                        "the stored signing secret is unreadable (altered, or moved from another record); rotate it"
                    }
                    _ => "the signing secret could not be read; will retry",
                };
                Err(self.unreached(message, round, reason).await)
            }
        }
    }

    /// The subscriber's health as this batch read it; healthy when it could not be read.
    pub(crate) async fn health_of(
        &self,
        message: &DeliveryMessage,
        view: &Result<DirectoryView, StoreError>,
    ) -> Health {
        let Ok(view) = view else {
            return Health::healthy();
        };
        self.directory
            .health(view, &message.tenant, &message.subscriber_id)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not read the subscriber's health; delivering");
                None
            })
            .unwrap_or_else(Health::healthy)
    }
}
