//! Ports: one small trait per capability the functions need from the outside world.
//! Each has an AWS adapter (`crate::aws`) and an in-memory twin (`crate::memory`).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::event_type::EventType;
use crate::ids::{EventId, SubscriberId, TenantId};
use crate::model::{AttemptRecord, DeliveryMessage, DeliveryStatus, EventRecord, Subscriber};
use crate::secret::SigningSecret;

/// A failure of a backing service. `Unavailable` is worth retrying; the others are not.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{service} is unavailable: {detail}")]
    Unavailable {
        service: &'static str,
        detail: String,
    },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("invalid pagination cursor")]
    BadCursor,
}

impl StoreError {
    pub fn unavailable(service: &'static str, err: impl std::fmt::Display) -> Self {
        StoreError::Unavailable {
            service,
            detail: err.to_string(),
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<String>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[async_trait]
pub trait SubscriberStore: Send + Sync {
    /// Stores a new subscriber; `Conflict` when the id is taken.
    async fn create(&self, subscriber: &Subscriber) -> Result<(), StoreError>;
    async fn get(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<Subscriber>, StoreError>;
    /// Returns whether something was deleted.
    async fn delete(&self, tenant: &TenantId, id: &SubscriberId) -> Result<bool, StoreError>;
    async fn list(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<Subscriber>, StoreError>;
    /// Every active subscriber of the tenant, for fan-out.
    async fn active(&self, tenant: &TenantId) -> Result<Vec<Subscriber>, StoreError>;
}

/// The result of one `SendMessageBatch`-sized send: the indexes (into the slice given)
/// of the entries the queue did not accept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchSendResult {
    pub failed: Vec<usize>,
    pub first_error: Option<String>,
}

/// Why a message was moved to the dead-letter queue, carried as message attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub reason: String,
    pub event_id: Option<String>,
    pub subscriber_id: Option<String>,
    pub tenant: Option<String>,
    pub attempts: u32,
}

#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Largest batch `send_batch` accepts (SQS: 10).
    fn max_batch(&self) -> usize {
        10
    }
    async fn send_batch(&self, messages: &[DeliveryMessage])
    -> Result<BatchSendResult, StoreError>;
    /// Hides a received message for `delay`, which is how retries are scheduled.
    async fn retry_after(&self, receipt_handle: &str, delay: Duration) -> Result<(), StoreError>;
    /// Puts a raw message body on the dead-letter queue.
    async fn dead_letter(&self, body: &str, why: &DeadLetter) -> Result<(), StoreError>;
}

#[async_trait]
pub trait EventStore: Send + Sync {
    async fn put_event(&self, event: &EventRecord) -> Result<(), StoreError>;
    async fn get_event(
        &self,
        tenant: &TenantId,
        id: &EventId,
    ) -> Result<Option<EventRecord>, StoreError>;
}

#[async_trait]
pub trait AttemptLog: Send + Sync {
    /// Logs one attempt and moves the (event, subscriber) status on. A status never goes
    /// back to an earlier attempt, so a late duplicate cannot undo a newer result.
    async fn record(
        &self,
        attempt: &AttemptRecord,
        status: &DeliveryStatus,
    ) -> Result<(), StoreError>;
    /// Sets a status without an HTTP attempt (e.g. the subscriber was deleted).
    async fn set_status(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        status: &DeliveryStatus,
    ) -> Result<(), StoreError>;
    async fn statuses(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
    ) -> Result<Vec<DeliveryStatus>, StoreError>;
    async fn attempts(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
    ) -> Result<Vec<AttemptRecord>, StoreError>;
}

/// What a publish returned, kept so that a repeated publish returns the same answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReceipt {
    pub id: EventId,
    pub event_type: EventType,
    pub subscribers: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// This caller owns the key and must publish under `event_id`.
    Claimed,
    /// An earlier publish with this key completed.
    Completed(PublishReceipt),
    /// An earlier publish with this key started but did not finish (it failed or is
    /// still running); resuming it under the same event id is safe for receivers,
    /// which dedupe on `webhook-id`.
    InProgress(EventId),
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    async fn claim(
        &self,
        tenant: &TenantId,
        key: &str,
        event_id: &EventId,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError>;
    async fn complete(
        &self,
        tenant: &TenantId,
        key: &str,
        receipt: &PublishReceipt,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<(), StoreError>;
}

/// The secrets a delivery is signed with: the current one first, then any still in grace.
#[derive(Debug, Clone)]
pub struct SubscriberSecrets {
    pub signing: Vec<SigningSecret>,
}

#[async_trait]
pub trait SecretStore: Send + Sync {
    async fn create(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        secret: &SigningSecret,
    ) -> Result<(), StoreError>;
    /// `None` when the subscriber has no secret (it was deleted).
    async fn get(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<SubscriberSecrets>, StoreError>;
    async fn delete(&self, tenant: &TenantId, id: &SubscriberId) -> Result<(), StoreError>;
}
