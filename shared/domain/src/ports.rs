//! Ports: one small trait per capability the functions need from the outside world.
//! Each has an AWS adapter (`crate::aws`); some have an in-memory twin (`crate::memory`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::breaker::Health;
use crate::event_type::EventType;
use crate::ids::{ApiKeyId, EventId, SourceId, SubscriberId, TenantId};
use crate::inbound::source::{Source, SourceSecret, StoredSourceSecret};
use crate::jq::JqError;
use crate::model::{
    ApiKey, AttemptRecord, AuditRecord, DeadLetterEntry, DeliveryMessage, DeliveryStats,
    DeliveryStatus, EventRecord, OpsEvent, Outcome, Subscriber, Target,
};
use crate::secret::SigningSecret;
use crate::series::{Bucket, SeriesChange, SeriesCounts};
use crate::tenants::limits::{Admission, TenantLimits, TenantRecord};

/// A failure of a backing service. `Unavailable` is worth retrying; the others are not.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{service} is unavailable: {detail}")]
    Unavailable {
        service: &'static str,
        detail: String,
    },
    /// The service refused the request itself (too large, malformed): sending it again
    /// cannot help, so this is not retryable; it is a fault of ours, not of the caller.
    #[error("{service} refused the request: {detail}")]
    Rejected {
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

/// Runs tenants' jq programs (transforms and content filters) away from the calling process,
/// bounded in time, memory and output. Each run compiles the program with the same checks as
/// [`crate::jq::Program::compile`], so a program saved before a rule changed is refused too.
/// Implemented by `skyhook-process`'s sandbox of worker processes.
#[async_trait]
pub trait ProgramRunner: Send + Sync {
    /// `program`'s one output on `input` (JSON text), as JSON text, or why not; an error
    /// for which [`JqError::is_unavailable`] holds is the runner's, not the program's. The
    /// run is `tenant`'s: a runner shares its workers fairly between tenants.
    async fn run(&self, tenant: &TenantId, program: &str, input: &str) -> Result<String, JqError>;
    /// Compiles `program` as a run would, without running it: what saving a program
    /// checks. Done away from the caller too, so a program that could crash the compiler
    /// costs only a worker.
    async fn check(&self, program: &str) -> Result<(), JqError>;
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
    /// Stores a new subscriber and its routes; `Conflict` when the id is taken.
    async fn create(&self, subscriber: &Subscriber) -> Result<(), StoreError>;
    /// Read consistently: a change is seen by the very next read.
    async fn get(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<Subscriber>, StoreError>;
    /// Removes the subscriber and its routes. Returns whether something was deleted.
    async fn delete(&self, tenant: &TenantId, id: &SubscriberId) -> Result<bool, StoreError>;
    async fn list(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<Subscriber>, StoreError>;
    /// The active subscribers whose event type filters match `event_type`, ordered by id,
    /// each with its content filter, for fan-out. Reads only what can match, never the
    /// tenant's whole list, and nothing more per subscriber.
    async fn targets(
        &self,
        tenant: &TenantId,
        event_type: &EventType,
    ) -> Result<Vec<Target>, StoreError>;
    /// Replaces a subscriber that was last updated at `expected_updated_at`. `Conflict` when it
    /// changed or disappeared meanwhile, so two concurrent edits never silently undo each other
    /// and an edit never brings a deleted subscriber back.
    async fn replace(
        &self,
        subscriber: &Subscriber,
        expected_updated_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Notes that the subscriber's signing secret changed: its secret version goes up, so
    /// every cache of the secret reads it again before the next delivery.
    async fn secret_changed(&self, tenant: &TenantId, id: &SubscriberId) -> Result<(), StoreError>;
    /// Each tenant's directory version, read consistently: it goes up with every change to
    /// one of the tenant's subscribers (0: never changed). Caches compare it before use.
    async fn versions(&self, tenants: &[TenantId]) -> Result<HashMap<TenantId, u64>, StoreError>;
    /// The directory versions and, from the same read, each tenant's health version, which
    /// goes up when one of its subscribers starts failing, or its breaker opens or closes (0:
    /// never). A store that keeps no health gives 0.
    async fn tenant_versions(
        &self,
        tenants: &[TenantId],
    ) -> Result<HashMap<TenantId, TenantVersions>, StoreError> {
        Ok(self
            .versions(tenants)
            .await?
            .into_iter()
            .map(|(t, directory)| {
                (
                    t,
                    TenantVersions {
                        directory,
                        health: 0,
                    },
                )
            })
            .collect())
    }
}

/// A tenant's versions, read together once per delivery batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantVersions {
    pub directory: u64,
    pub health: u64,
}

/// Subscribers' health ([`crate::breaker`]): one item per subscriber that is failing or whose
/// breaker is not closed; none for a healthy one.
#[async_trait]
pub trait HealthStore: Send + Sync {
    /// The subscriber's health, read consistently; `None`: healthy.
    async fn get(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
    ) -> Result<Option<Health>, StoreError>;
    /// The health of each of these subscribers that has any.
    async fn get_many(
        &self,
        tenant: &TenantId,
        subscribers: &[SubscriberId],
    ) -> Result<HashMap<SubscriberId, Health>, StoreError>;
    /// Counts one more failed attempt, atomically; the health after it. The first failure
    /// of a streak raises the tenant's health version.
    async fn failed(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<Health, StoreError>;
    /// Opens the breaker until `now + cooldown`, unless it is already open; `Ok(false)` when
    /// it was. Raises the tenant's health version.
    async fn open(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
        now: DateTime<Utc>,
        cooldown: Duration,
    ) -> Result<bool, StoreError>;
    /// Takes the one probe of an open breaker whose cool-down is over (or whose last probe's
    /// lease ran out), for `lease`; `Ok(false)` when another instance has it.
    async fn claim_probe(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<bool, StoreError>;
    /// A success: back to healthy. The health it had, if any (an open or half-open one
    /// means the breaker just closed, which raises the tenant's health version).
    async fn reset(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
    ) -> Result<Option<Health>, StoreError>;
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
    /// Most messages `send_batch` accepts at once (SQS: 10).
    fn max_batch(&self) -> usize {
        10
    }
    /// Most bytes of message bodies one `send_batch` carries, and so the largest message
    /// (SQS: 1 MiB for a message and for a whole batch).
    fn max_batch_bytes(&self) -> usize {
        1024 * 1024
    }
    async fn send_batch(&self, messages: &[DeliveryMessage])
    -> Result<BatchSendResult, StoreError>;
    /// Hides a received message for `delay`, which is how retries are scheduled.
    async fn retry_after(&self, receipt_handle: &str, delay: Duration) -> Result<(), StoreError>;
    /// Sends a message that becomes visible after `delay` (SQS: at most 15 minutes). How a
    /// delivery waits without spending an attempt: a new message starts its receive count,
    /// which numbers attempts and which the queue's redrive policy counts, from zero.
    async fn send_later(
        &self,
        message: &DeliveryMessage,
        delay: Duration,
    ) -> Result<(), StoreError>;
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

/// The delivery ledger: one item per (event, subscriber) holding its latest attempt, which
/// is the delivery's status, and the attempts before it.
#[async_trait]
pub trait AttemptLog: Send + Sync {
    /// Logs one attempt and moves the (event, subscriber) status on. A status never goes
    /// back to an earlier attempt, so a late duplicate cannot undo a newer result (it is
    /// still logged, as an earlier attempt).
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
    /// The status of one delivery; `None` before its first attempt.
    async fn status(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        subscriber: &SubscriberId,
    ) -> Result<Option<DeliveryStatus>, StoreError>;
    /// The statuses of an event's deliveries to these subscribers, where one exists.
    async fn statuses(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        subscribers: &[SubscriberId],
    ) -> Result<Vec<DeliveryStatus>, StoreError>;
    /// Every logged attempt of one delivery, in attempt order.
    async fn attempts(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        subscriber: &SubscriberId,
    ) -> Result<Vec<AttemptRecord>, StoreError>;
    /// One page of the tenant's attempt log, filtered. Newest event first, each event's
    /// attempts newest first; with `event_id`, by subscriber and attempt number.
    async fn list(
        &self,
        tenant: &TenantId,
        query: &AttemptQuery,
    ) -> Result<Page<AttemptRecord>, StoreError>;
    /// Totals over finished deliveries, of the tenant or of one of its subscribers, as far
    /// as the stats consumer has folded the ledger's changes in.
    async fn stats(
        &self,
        tenant: &TenantId,
        subscriber: Option<&SubscriberId>,
    ) -> Result<DeliveryStats, StoreError>;
    /// Attempts over time of the tenant or one of its subscribers: what is stored for the
    /// `bucket`s starting from `first` to `last` (unix seconds; at most
    /// [`crate::series::MAX_POINTS`] of them), as far as the stats consumer has folded.
    async fn series(
        &self,
        tenant: &TenantId,
        subscriber: Option<&SubscriberId>,
        bucket: Bucket,
        first: i64,
        last: i64,
    ) -> Result<Vec<(i64, SeriesCounts)>, StoreError>;
    /// Moves a status from `expected` (`None`: no status yet) to `new`. `Ok(false)` when the
    /// stored status is no longer `expected` (same state and attempts): someone else moved it
    /// first. Used to reopen a failed delivery for redrive or recovery.
    async fn replace_status(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        expected: Option<&DeliveryStatus>,
        new: &DeliveryStatus,
    ) -> Result<bool, StoreError>;
}

/// One change of the totals, folded from a batch of ledger changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsChange {
    pub tenant: TenantId,
    /// `None`: the tenant's totals.
    pub subscriber: Option<SubscriberId>,
    pub delta: DeliveryStats,
}

/// The stats counters. `batch` names the batch of ledger changes the deltas were folded
/// from: applying the same batch twice (a retried stream batch) counts it once.
#[async_trait]
pub trait StatsCounters: Send + Sync {
    /// Applies the totals' `changes` and the time series' `series` of one batch.
    async fn apply(
        &self,
        batch: &str,
        changes: &[StatsChange],
        series: &[SeriesChange],
    ) -> Result<(), StoreError>;
}

/// Filters of `GET /v1/deliveries`. Times are inclusive bounds on an attempt's start.
#[derive(Debug, Clone, Default)]
pub struct AttemptQuery {
    pub subscriber_id: Option<SubscriberId>,
    pub event_id: Option<EventId>,
    pub outcome: Option<Outcome>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: usize,
    pub cursor: Option<String>,
}

/// The index of dead-lettered deliveries, so the DLQ can be listed per tenant and page by
/// page; the messages themselves stay in the SQS dead-letter queue until redriven.
#[async_trait]
pub trait DeadLetterStore: Send + Sync {
    async fn put(&self, entry: &DeadLetterEntry) -> Result<(), StoreError>;
    /// Oldest event first.
    async fn list(
        &self,
        tenant: &TenantId,
        subscriber: Option<&SubscriberId>,
        page: &PageRequest,
    ) -> Result<Page<DeadLetterEntry>, StoreError>;
    async fn remove(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        subscriber: &SubscriberId,
    ) -> Result<(), StoreError>;
}

/// A message read from the dead-letter queue, held invisible until deleted or released.
#[derive(Debug, Clone)]
pub struct DeadMessage {
    /// The SQS message id: the same message received again has the same id.
    pub id: String,
    pub handle: String,
    pub body: String,
    /// Why it died: the `skyhook_reason` attribute the delivery function set; `None` for a
    /// message the queue's redrive policy moved.
    pub reason: Option<String>,
    /// When it arrived in the dead-letter queue.
    pub dead_at: Option<DateTime<Utc>>,
    /// Attempts made before it died: the `skyhook_attempts` attribute the delivery function
    /// set, else the receive count it arrived with (a message moved by the redrive policy).
    pub attempts: Option<u32>,
}

/// Reading the SQS dead-letter queue, for redrive.
#[async_trait]
pub trait DeadLetterQueue: Send + Sync {
    /// Up to `max` messages, hidden from other readers for `hold`.
    async fn receive(&self, max: usize, hold: Duration) -> Result<Vec<DeadMessage>, StoreError>;
    async fn delete(&self, handle: &str) -> Result<(), StoreError>;
    /// Makes a held message visible again at once.
    async fn release(&self, handle: &str) -> Result<(), StoreError>;
    /// How many messages are held right now, by any reader (SQS's approximate count of
    /// messages not visible).
    async fn held(&self) -> Result<u64, StoreError>;
}

/// API keys, looked up by the SHA-256 digest of the key; the key itself is never stored.
/// Inbound sources: the record, found by id alone (an inbound request names only the
/// source), and each tenant's list.
#[async_trait]
pub trait SourceStore: Send + Sync {
    /// `Conflict` when the id is taken.
    async fn create(&self, source: &Source) -> Result<(), StoreError>;
    /// Read consistently: an edit or a delete applies to the very next inbound request.
    async fn get(&self, id: &SourceId) -> Result<Option<Source>, StoreError>;
    async fn list(&self, tenant: &TenantId, page: &PageRequest)
    -> Result<Page<Source>, StoreError>;
    /// Replaces a source last updated at `expected_updated_at`; `Conflict` when it changed or
    /// was deleted meanwhile.
    async fn replace(
        &self,
        source: &Source,
        expected_updated_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Whether something was deleted.
    async fn delete(&self, tenant: &TenantId, id: &SourceId) -> Result<bool, StoreError>;
}

/// Inbound sources' secrets, one per source.
#[async_trait]
pub trait SourceSecrets: Send + Sync {
    async fn create(
        &self,
        tenant: &TenantId,
        id: &SourceId,
        secret: &SourceSecret,
    ) -> Result<(), StoreError>;
    /// The secret and the source version it was written for (`create` writes version 0).
    async fn get(
        &self,
        tenant: &TenantId,
        id: &SourceId,
    ) -> Result<Option<StoredSourceSecret>, StoreError>;
    /// Replaces the secret with the one of source version `version`, unless the stored one
    /// is of that version or a later one already (a later change landed first); `false`
    /// when there is no secret.
    async fn put(
        &self,
        tenant: &TenantId,
        id: &SourceId,
        secret: &SourceSecret,
        version: u64,
    ) -> Result<bool, StoreError>;
    async fn delete(&self, tenant: &TenantId, id: &SourceId) -> Result<(), StoreError>;
}

/// Remembers the inbound messages of the last few minutes, so a replayed request is refused.
#[async_trait]
pub trait ReplayGuard: Send + Sync {
    /// Remembers `key` for `source` until `until`, in one conditional write: `false` when it
    /// is remembered already (a replay).
    async fn claim(
        &self,
        source: &SourceId,
        key: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Forgets `key`: the message was not published, so the sender may send it again.
    async fn release(&self, source: &SourceId, key: &str) -> Result<(), StoreError>;
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    async fn create(&self, key: &ApiKey, digest: &[u8; 32]) -> Result<(), StoreError>;
    /// The key whose digest this is, with the stored digest (for a constant-time comparison).
    async fn find(&self, digest: &[u8; 32]) -> Result<Option<(ApiKey, [u8; 32])>, StoreError>;
    async fn list(&self, tenant: &TenantId, page: &PageRequest)
    -> Result<Page<ApiKey>, StoreError>;
    /// Returns whether something was deleted.
    async fn delete(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<bool, StoreError>;
}

/// The audit trail of management changes.
#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn record(&self, record: &AuditRecord) -> Result<(), StoreError>;
    /// Newest first.
    async fn list(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<AuditRecord>, StoreError>;
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
    /// An earlier publish with this key did not finish (it failed, or its process died) and
    /// its lease has run out: this caller now holds the key and resumes under the same event
    /// id, which is safe for receivers, who dedupe on `webhook-id`.
    Resume(EventId),
    /// Another publish with this key holds its lease right now.
    Busy(EventId),
}

/// How long a claim on an idempotency key is held by the publish that made it; a second
/// publish with the key inside this window is told to wait rather than send everything
/// twice. A publish that fails gives its lease up at once.
pub const IDEMPOTENCY_LEASE: Duration = Duration::from_secs(30);

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
    /// Gives up the lease of an unfinished publish (it failed), so a retry resumes at once.
    async fn abandon(&self, tenant: &TenantId, key: &str) -> Result<(), StoreError>;
    /// Removes the claim `event_id` holds on `key`, for a publish refused before it wrote
    /// anything: the key is as if never used. A claim completed or taken over since stays.
    async fn release(
        &self,
        tenant: &TenantId,
        key: &str,
        event_id: &EventId,
    ) -> Result<(), StoreError>;
}

/// The secrets a delivery is signed with: the current one first, then any still in grace.
#[derive(Debug, Clone)]
pub struct SubscriberSecrets {
    pub signing: Vec<SigningSecret>,
    /// When the secrets after the first stop signing (the end of the rotation grace period).
    pub previous_until: Option<DateTime<Utc>>,
    /// The values of the subscriber's custom headers, which are receiver credentials and
    /// so are kept with the signing secret, not in the table. `None` for a secret stored
    /// before they were: the subscriber record still holds them.
    pub headers: Option<BTreeMap<String, String>>,
}

impl SubscriberSecrets {
    /// Just one secret, no rotation under way.
    pub fn current(secret: SigningSecret) -> Self {
        Self {
            signing: vec![secret],
            previous_until: None,
            headers: None,
        }
    }

    pub fn with_headers(mut self, headers: BTreeMap<String, String>) -> Self {
        self.headers = Some(headers);
        self
    }

    /// The secrets to sign with at `now`: the previous ones drop out once their grace ends,
    /// even if this value was cached before that moment.
    pub fn at(&self, now: DateTime<Utc>) -> Vec<SigningSecret> {
        match self.previous_until {
            Some(until) if now >= until => self.signing.iter().take(1).cloned().collect(),
            _ => self.signing.clone(),
        }
    }
}

/// Secret values by name or ARN: where a deployment keeps the bootstrap admin key.
#[async_trait]
pub trait SecretValues: Send + Sync {
    /// The secret's current string value; `None` when there is no such secret.
    async fn secret_string(&self, id: &str) -> Result<Option<String>, StoreError>;
}

#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Stores a new subscriber's signing secret with the values of its custom headers.
    async fn create(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        secret: &SigningSecret,
        headers: &BTreeMap<String, String>,
    ) -> Result<(), StoreError>;
    /// Replaces the values of the subscriber's custom headers, keeping its secrets (and a
    /// rotation's grace period) as they are. `false` when the subscriber has no secret.
    async fn set_headers(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        headers: &BTreeMap<String, String>,
    ) -> Result<bool, StoreError>;
    /// `None` when the subscriber has no secret (it was deleted).
    async fn get(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<SubscriberSecrets>, StoreError>;
    /// The current secret alone, for a subscriber whose secret was never rotated (nothing
    /// else can be signing): one read where [`SecretStore::get`] may need two.
    async fn get_current(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<SubscriberSecrets>, StoreError> {
        self.get(tenant, id).await
    }
    async fn delete(&self, tenant: &TenantId, id: &SubscriberId) -> Result<(), StoreError>;
    /// Makes `secret` the current one, keeping the headers; the one it replaces keeps
    /// signing alongside for the store's grace period. Returns when the grace period ends, or `None` when the subscriber
    /// has no secret.
    async fn rotate(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        secret: &SigningSecret,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// Shared rate-limit budgets: each subscriber with a `rate_limit` has a budget of that many
/// deliveries per wall-clock second, which delivery instances draw from in blocks.
#[async_trait]
pub trait RateBudget: Send + Sync {
    /// Takes `want` deliveries from the subscriber's budget for `second` (Unix seconds),
    /// which holds `limit`: all of them, or none when fewer are left.
    async fn take(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
        second: i64,
        want: u32,
        limit: u32,
    ) -> Result<bool, StoreError>;
}

/// The tenants' registry: limits of their own, and when each was first seen.
#[async_trait]
pub trait TenantStore: Send + Sync {
    async fn get(&self, tenant: &TenantId) -> Result<Option<TenantRecord>, StoreError>;
    /// Creates or replaces the record (its `created_at` is kept when it exists).
    async fn put(&self, record: &TenantRecord) -> Result<TenantRecord, StoreError>;
    /// Records the tenant with the defaults unless it is there already.
    async fn ensure(&self, tenant: &TenantId, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Tenants in id order.
    async fn list(&self, page: PageRequest) -> Result<Page<TenantRecord>, StoreError>;
}

/// Tenants' publish buckets, shared by every instance (see [`crate::tenants`]).
#[async_trait]
pub trait PublishBudget: Send + Sync {
    /// Takes `n` publishes from the tenant's bucket of `limits` at `now`: all, or none and
    /// how long until they would fit.
    async fn take(
        &self,
        tenant: &TenantId,
        n: u32,
        limits: TenantLimits,
        now: DateTime<Utc>,
    ) -> Result<Admission, StoreError>;
    /// Charges `n` publishes' worth to the tenant's bucket whatever is left in it (work the
    /// tenant caused after its publish was admitted, such as slow content filters): past
    /// the burst, its next publishes wait.
    async fn charge(
        &self,
        tenant: &TenantId,
        n: u32,
        limits: TenantLimits,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// Where operational events go (the stack's EventBridge bus).
#[async_trait]
pub trait OpsEvents: Send + Sync {
    async fn emit(&self, event: &OpsEvent) -> Result<(), StoreError>;
}
