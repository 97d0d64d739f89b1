//! Fan-out: one accepted event becomes one queue message per matching subscriber. The HTTP
//! ingest and the EventBridge ingest both publish through [`Publisher::publish`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde_json::value::RawValue;

use crate::event_type::EventType;
use crate::ids::{EventId, SubscriberId, TenantId};
use crate::jq::JqError;
use crate::model::{DeliveryMessage, EventRecord, Target, webhook_body};
use crate::ports::{
    DeliveryQueue, EventStore, IdempotencyClaim, IdempotencyStore, PublishReceipt, StoreError,
    SubscriberStore,
};
use crate::retry::Backoff;
use crate::tenants::{RateLimited, TenantGate};

/// How many `SendMessageBatch` calls run at once for one event.
const SEND_CONCURRENCY: usize = 8;
/// Rounds of re-sending entries a batch call reported as failed, before giving up.
const SEND_ROUNDS: u32 = 4;
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
pub const MAX_CORRELATION_ID_LEN: usize = 128;

#[derive(Debug, Clone)]
pub struct PublishRequest {
    pub tenant: TenantId,
    pub event_type: EventType,
    pub data: Box<RawValue>,
    pub idempotency_key: Option<String>,
    /// Explicit targets: these subscribers, whatever their `event_types` say.
    pub subscriber_ids: Option<Vec<SubscriberId>>,
    pub correlation_id: Option<String>,
    /// When the event happened; defaults to the time it was accepted.
    pub timestamp: Option<DateTime<Utc>>,
}

/// Most subscribers one publish may name in `subscriber_ids` (each costs a read).
pub const MAX_TARGETED_SUBSCRIBERS: usize = 100;
/// The time all of one publish's content filters may take together: past it the publish
/// fails with a retryable error rather than send to some and not others by chance.
pub const FILTER_BUDGET: Duration = Duration::from_secs(2);
/// Most distinct content filters one tenant's subscribers may hold (each runs on every
/// event its subscribers' types match).
pub const MAX_FILTERS_PER_TENANT: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("subscriber {0} does not exist or is not active")]
    UnknownSubscriber(SubscriberId),
    #[error(
        "subscriber_ids names {given} subscribers; a publish may name at most {MAX_TARGETED_SUBSCRIBERS}"
    )]
    TooManyTargets { given: usize },
    #[error("{0}")]
    InvalidInput(String),
    /// Another publish with the same idempotency key is under way.
    #[error("a publish with this idempotency key (event {0}) is still in progress; retry shortly")]
    InProgress(EventId),
    /// The event, wrapped for the queue, is larger than one queue message may be.
    #[error("the event is {size} bytes once queued; the queue takes at most {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("{failed} of {total} delivery messages could not be queued: {detail}")]
    Enqueue {
        failed: usize,
        total: usize,
        detail: String,
    },
    /// The tenant is over its publish limit.
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
    /// The content filters took longer than [`FILTER_BUDGET`] together.
    #[error(
        "the content filters of this event's subscribers took longer than {} ms together; retry later, or make them faster",
        FILTER_BUDGET.as_millis()
    )]
    FiltersTooSlow,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PublishError {
    /// Whether the caller may try the same publish again (with the same idempotency key).
    pub fn is_retryable(&self) -> bool {
        match self {
            PublishError::Enqueue { .. }
            | PublishError::InProgress(_)
            | PublishError::RateLimited(_)
            | PublishError::FiltersTooSlow => true,
            PublishError::Store(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// Idempotency-key prefixes Skyhook's own ingests use: an inbound source's messages
/// (`inbound:{source}:{message id}`) and EventBridge events (`eventbridge:{event id}`). A
/// publisher may not use them, or it could claim a key ahead of a webhook and have it
/// answered as a duplicate instead of published.
pub const RESERVED_IDEMPOTENCY_PREFIXES: &[&str] = &["inbound:", "eventbridge:"];

/// Checks a key a caller gave: [`validate_idempotency_key`], and none of the
/// [`RESERVED_IDEMPOTENCY_PREFIXES`].
pub fn validate_caller_idempotency_key(key: &str) -> Result<(), String> {
    validate_idempotency_key(key)?;
    match RESERVED_IDEMPOTENCY_PREFIXES
        .iter()
        .find(|p| key.starts_with(**p))
    {
        Some(p) => Err(format!(
            "idempotency keys starting with {p:?} are reserved for Skyhook's own ingests"
        )),
        None => Ok(()),
    }
}

/// Checks an idempotency key: 1–255 visible ASCII characters.
pub fn validate_idempotency_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(format!(
            "idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"
        ));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("idempotency key must be visible ASCII without spaces".into());
    }
    Ok(())
}

/// Checks a caller-supplied correlation id: 1–128 visible ASCII characters, so it can
/// travel in an HTTP header unchanged.
pub fn validate_correlation_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_CORRELATION_ID_LEN {
        return Err(format!(
            "correlation id must be 1 to {MAX_CORRELATION_ID_LEN} characters"
        ));
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("correlation id must be visible ASCII without spaces".into());
    }
    Ok(())
}

#[derive(Clone)]
pub struct Publisher {
    pub subscribers: Arc<dyn SubscriberStore>,
    pub events: Arc<dyn EventStore>,
    pub queue: Arc<dyn DeliveryQueue>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub idempotency_ttl: Duration,
    /// Runs subscribers' content filters (jq programs) at fan-out.
    pub filters: Arc<dyn crate::ports::ProgramRunner>,
    /// Tenants' publish limits; `None` publishes without a limit.
    pub gate: Option<Arc<TenantGate>>,
}

impl Publisher {
    pub async fn publish(&self, req: PublishRequest) -> Result<PublishReceipt, PublishError> {
        if let Some(key) = &req.idempotency_key {
            validate_idempotency_key(key).map_err(PublishError::InvalidInput)?;
        }
        if let Some(id) = &req.correlation_id {
            validate_correlation_id(id).map_err(PublishError::InvalidInput)?;
        }
        // An EventBridge `time` may be anything a PutEvents caller set; one that RFC 3339
        // cannot write would give a message the delivery function could not read.
        if let Some(t) = req.timestamp
            && !(1..=9999).contains(&chrono::Datelike::year(&t))
        {
            return Err(PublishError::InvalidInput(format!(
                "the event time {t} is outside the years 1 to 9999"
            )));
        }
        if let Some(ids) = &req.subscriber_ids
            && ids.len() > MAX_TARGETED_SUBSCRIBERS
        {
            return Err(PublishError::TooManyTargets { given: ids.len() });
        }
        let now = Utc::now();
        let new_id = EventId::new();
        self.check_size(&req, &new_id)?;
        // The tenant's limit, before any work of its own: a tenant past it costs the others
        // nothing, and a refused publish may be sent again as it is.
        if let Some(gate) = &self.gate {
            gate.admit(&req.tenant, now).await?;
        }
        let Some(key) = req.idempotency_key.clone() else {
            return self.publish_as(&req, new_id, false, now).await;
        };
        let (event_id, resume) = match self
            .idempotency
            .claim(&req.tenant, &key, &new_id, now, self.idempotency_ttl)
            .await?
        {
            IdempotencyClaim::Claimed => (new_id, false),
            IdempotencyClaim::Completed(receipt) => {
                tracing::info!(event_id = %receipt.id, "duplicate publish answered from the idempotency record");
                return Ok(receipt);
            }
            IdempotencyClaim::Busy(existing) => {
                return Err(PublishError::InProgress(existing));
            }
            IdempotencyClaim::Resume(existing) => (existing, true),
        };
        let result = self.publish_as(&req, event_id.clone(), resume, now).await;
        match &result {
            Ok(_) => {}
            // Refused before anything was written: the key was never used.
            Err(
                PublishError::UnknownSubscriber(_)
                | PublishError::TooManyTargets { .. }
                | PublishError::InvalidInput(_),
            ) if !resume => {
                if let Err(e) = self.idempotency.release(&req.tenant, &key, &event_id).await {
                    tracing::warn!(error = %e, "could not release the idempotency key of a refused publish");
                }
            }
            Err(_) => {
                if let Err(e) = self.idempotency.abandon(&req.tenant, &key).await {
                    // The lease then runs out by itself; a retry waits for it.
                    tracing::warn!(error = %e, "could not give up the idempotency lease");
                }
            }
        }
        result
    }

    /// Publishes under `event_id`. `resume` continues a publish that did not finish: the
    /// stored event (if it got that far) fixes the subscribers it goes to.
    async fn publish_as(
        &self,
        req: &PublishRequest,
        event_id: EventId,
        resume: bool,
        now: DateTime<Utc>,
    ) -> Result<PublishReceipt, PublishError> {
        if resume && let Some(event) = self.events.get_event(&req.tenant, &event_id).await? {
            tracing::info!(event_id = %event_id, "resuming an unfinished publish");
            return self.fan_out(req, event, now).await;
        }
        let targets = self.targets(req, now).await?;
        let event = EventRecord {
            correlation_id: req
                .correlation_id
                .clone()
                .unwrap_or_else(|| event_id.to_string()),
            id: event_id,
            tenant: req.tenant.clone(),
            event_type: req.event_type.clone(),
            timestamp: req.timestamp.unwrap_or(now),
            data: Some(req.data.clone()),
            subscriber_ids: targets,
        };
        self.events.put_event(&event).await?;
        self.fan_out(req, event, now).await
    }

    /// Refuses, before anything is written, an event whose queue message would exceed what
    /// the queue takes (the request body limit leaves no room for the message envelope).
    fn check_size(&self, req: &PublishRequest, event_id: &EventId) -> Result<(), PublishError> {
        let probe = EventRecord {
            id: event_id.clone(),
            tenant: req.tenant.clone(),
            event_type: req.event_type.clone(),
            timestamp: req.timestamp.unwrap_or_else(Utc::now),
            data: None,
            correlation_id: req
                .correlation_id
                .clone()
                .unwrap_or_else(|| event_id.to_string()),
            subscriber_ids: Vec::new(),
        };
        let size = DeliveryMessage::for_subscriber(&probe, &req.data, &SubscriberId::new())
            .to_json()
            .len();
        let limit = self.queue.max_batch_bytes();
        if size > limit {
            return Err(PublishError::TooLarge { size, limit });
        }
        Ok(())
    }

    /// The subscribers the event goes to: the ones named, whatever their event types and
    /// filters say (as for a test send); or the active ones whose event types match and whose
    /// content filter, if any, gives `true`.
    async fn targets(
        &self,
        req: &PublishRequest,
        now: DateTime<Utc>,
    ) -> Result<Vec<SubscriberId>, PublishError> {
        match &req.subscriber_ids {
            Some(ids) => {
                if ids.len() > MAX_TARGETED_SUBSCRIBERS {
                    return Err(PublishError::TooManyTargets { given: ids.len() });
                }
                let mut seen: HashSet<&SubscriberId> = HashSet::with_capacity(ids.len());
                let unique: Vec<SubscriberId> =
                    ids.iter().filter(|id| seen.insert(*id)).cloned().collect();
                // Looked up in the order given, a few at a time; the first unknown or
                // inactive one ends the publish, and the reads not yet made are not made.
                let mut found = stream::iter(unique.clone())
                    .map(|id| {
                        let (store, tenant) = (self.subscribers.clone(), req.tenant.clone());
                        async move {
                            let sub = store.get(&tenant, &id).await?;
                            Ok::<_, StoreError>((id, sub))
                        }
                    })
                    .buffered(SEND_CONCURRENCY);
                while let Some(result) = found.next().await {
                    let (id, sub) = result?;
                    if !sub.is_some_and(|s| s.active) {
                        return Err(PublishError::UnknownSubscriber(id));
                    }
                }
                Ok(unique)
            }
            None => {
                let routed = self
                    .subscribers
                    .targets(&req.tenant, &req.event_type)
                    .await?;
                self.filtered(req, routed, now).await
            }
        }
    }

    /// The targets whose content filter passes the event. Each distinct program runs once,
    /// in the sandbox. A program that fails on this event (an error, no or many outputs, too
    /// slow, too big) does not pass it; a sandbox that cannot run at all fails the publish,
    /// which the caller may retry.
    async fn filtered(
        &self,
        req: &PublishRequest,
        targets: Vec<Target>,
        now: DateTime<Utc>,
    ) -> Result<Vec<SubscriberId>, PublishError> {
        let mut programs: Vec<String> = targets.iter().filter_map(|t| t.filter.clone()).collect();
        if programs.is_empty() {
            return Ok(targets.into_iter().map(|t| t.id).collect());
        }
        programs.sort_unstable();
        programs.dedup();
        let body = webhook_body(&req.event_type, req.timestamp.unwrap_or(now), &req.data);
        let input: Arc<str> = String::from_utf8_lossy(&body).into();
        let tenant = &req.tenant;
        let runs = stream::iter(programs)
            .map(|program| {
                let (sandbox, input) = (self.filters.clone(), input.clone());
                async move {
                    let result = sandbox.run(tenant, &program, &input).await;
                    (program, result)
                }
            })
            .buffer_unordered(SEND_CONCURRENCY)
            .collect::<Vec<_>>();
        let started = tokio::time::Instant::now();
        let runs = tokio::time::timeout(FILTER_BUDGET, runs).await;
        // The filters' time is the tenant's: slow ones spend its publish budget, so they
        // cannot hold the ingest's workers and instances at the rate of its plain publishes.
        if let Some(gate) = &self.gate {
            gate.charge_work(&req.tenant, started.elapsed(), now).await;
        }
        let runs = runs.map_err(|_| PublishError::FiltersTooSlow)?;
        let mut passes: HashMap<String, bool> = HashMap::with_capacity(runs.len());
        for (program, result) in runs {
            let pass = match result {
                Ok(out) => out.trim() == "true",
                Err(JqError::Unavailable(e)) => {
                    return Err(StoreError::unavailable("jq sandbox", e).into());
                }
                Err(e) => {
                    tracing::warn!(error = %e, event_type = %req.event_type, "a content filter failed on an event; it does not pass");
                    false
                }
            };
            passes.insert(program, pass);
        }
        Ok(targets
            .iter()
            .filter(|t| {
                t.filter
                    .as_deref()
                    .is_none_or(|p| passes.get(p).copied().unwrap_or(false))
            })
            .map(|t| t.id.clone())
            .collect())
    }

    async fn fan_out(
        &self,
        req: &PublishRequest,
        event: EventRecord,
        now: DateTime<Utc>,
    ) -> Result<PublishReceipt, PublishError> {
        let data: &RawValue = event.data.as_deref().unwrap_or(&req.data);
        let messages: Vec<DeliveryMessage> = event
            .subscriber_ids
            .iter()
            .map(|sub| DeliveryMessage::for_subscriber(&event, data, sub))
            .collect();
        self.enqueue(&messages).await?;
        let receipt = PublishReceipt {
            id: event.id.clone(),
            event_type: event.event_type.clone(),
            subscribers: messages.len(),
        };
        if let Some(key) = &req.idempotency_key {
            self.idempotency
                .complete(&req.tenant, key, &receipt, now, self.idempotency_ttl)
                .await?;
        }
        tracing::info!(
            event_id = %receipt.id,
            event_type = %receipt.event_type,
            correlation_id = %event.correlation_id,
            subscribers = receipt.subscribers,
            "event accepted"
        );
        Ok(receipt)
    }

    /// Sends all messages in queue-sized batches, several batches at once; entries a batch
    /// reports as failed are sent again, so none is silently dropped.
    pub async fn enqueue(&self, messages: &[DeliveryMessage]) -> Result<(), PublishError> {
        let (max_count, max_bytes) = (self.queue.max_batch().max(1), self.queue.max_batch_bytes());
        let mut pending: Vec<&DeliveryMessage> = messages.iter().collect();
        let mut last_error = String::new();
        for round in 0..SEND_ROUNDS {
            if pending.is_empty() {
                return Ok(());
            }
            Backoff::QUEUE_SEND.pause_before(round).await;
            let groups = batches(&pending, max_count, max_bytes);
            let chunks: Vec<Vec<DeliveryMessage>> = groups
                .iter()
                .map(|g| g.iter().map(|m| (*m).clone()).collect())
                .collect();
            let results = stream::iter(chunks)
                .map(|chunk| {
                    let queue = self.queue.clone();
                    async move { queue.send_batch(&chunk).await }
                })
                .buffered(SEND_CONCURRENCY)
                .collect::<Vec<_>>()
                .await;
            let mut still = Vec::new();
            for (result, original) in results.into_iter().zip(&groups) {
                match result {
                    Ok(r) => {
                        if let Some(e) = r.first_error {
                            last_error = e;
                        }
                        still.extend(r.failed.iter().filter_map(|&i| original.get(i).copied()));
                    }
                    Err(e) if e.is_retryable() => {
                        last_error = e.to_string();
                        still.extend(original.iter().copied());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if !still.is_empty() {
                tracing::warn!(
                    failed = still.len(),
                    round,
                    error = %last_error,
                    "queue refused some delivery messages; sending them again"
                );
            }
            pending = still;
        }
        if pending.is_empty() {
            Ok(())
        } else {
            Err(PublishError::Enqueue {
                failed: pending.len(),
                total: messages.len(),
                detail: last_error,
            })
        }
    }
}

/// Splits messages into batches the queue takes: at most `max_count` messages and
/// `max_bytes` of bodies each, in order. A message over `max_bytes` goes alone (and the
/// queue refuses it; `Publisher::publish` checks sizes before it gets this far).
fn batches<'a>(
    messages: &[&'a DeliveryMessage],
    max_count: usize,
    max_bytes: usize,
) -> Vec<Vec<&'a DeliveryMessage>> {
    let mut out: Vec<Vec<&DeliveryMessage>> = Vec::new();
    let mut bytes = 0;
    for m in messages {
        let size = m.to_json().len();
        match out.last_mut() {
            Some(current) if current.len() < max_count && bytes + size <= max_bytes => {
                current.push(m);
                bytes += size;
            }
            _ => {
                out.push(vec![m]);
                bytes = size;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::event_type::EventTypeFilter;
    use crate::memory::{
        MemoryDeliveryQueue, MemoryEventStore, MemoryIdempotencyStore, MemorySubscriberStore,
    };
    use crate::model::Subscriber;
    use crate::signing::SignatureScheme;
    use crate::url::{SubscriberUrl, UrlPolicy};

    struct Fixture {
        publisher: Publisher,
        subs: Arc<MemorySubscriberStore>,
        queue: Arc<MemoryDeliveryQueue>,
    }

    fn fixture() -> Fixture {
        let subs = Arc::new(MemorySubscriberStore::default());
        let queue = Arc::new(MemoryDeliveryQueue::default());
        Fixture {
            publisher: Publisher {
                subscribers: subs.clone(),
                events: Arc::new(MemoryEventStore::default()),
                queue: queue.clone(),
                idempotency: Arc::new(MemoryIdempotencyStore::default()),
                idempotency_ttl: Duration::from_secs(3600),
                // No test here has a content filter, so no worker ever starts.
                filters: Arc::new(crate::memory::NoProgramRunner),
                gate: None,
            },
            subs,
            queue,
        }
    }

    async fn add(f: &Fixture, tenant: &str, filters: &[&str], active: bool) -> SubscriberId {
        let sub = Subscriber {
            id: SubscriberId::new(),
            tenant: TenantId::parse(tenant).unwrap(),
            url: SubscriberUrl::parse("https://example.com/hook", UrlPolicy::STRICT).unwrap(),
            event_types: filters
                .iter()
                .map(|f| EventTypeFilter::parse(f).unwrap())
                .collect(),
            active,
            description: None,
            headers: BTreeMap::new(),
            signature_scheme: SignatureScheme::Standard,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            secret_version: 0,
            max_concurrency: crate::model::DEFAULT_MAX_CONCURRENCY,
            rate_limit: None,
            disabled_reason: None,
            transform: None,
            filter: None,
        };
        f.subs.create(&sub).await.unwrap();
        sub.id
    }

    /// An active subscriber of tenant `default` for `order.*`, with a content filter.
    async fn add_filtered(f: &Fixture) {
        let id = add(f, "default", &["order.*"], true).await;
        let mut sub = f
            .subs
            .get(&TenantId::default_tenant(), &id)
            .await
            .unwrap()
            .unwrap();
        let was = sub.updated_at;
        sub.filter = Some("true".into());
        f.subs.replace(&sub, was).await.unwrap();
    }

    /// A sandbox whose every run takes ten seconds (of paused test time).
    struct SlowRunner;

    #[async_trait::async_trait]
    impl crate::ports::ProgramRunner for SlowRunner {
        async fn run(
            &self,
            _tenant: &TenantId,
            _program: &str,
            _input: &str,
        ) -> Result<String, JqError> {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok("true".into())
        }

        async fn check(&self, _program: &str) -> Result<(), JqError> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn filters_past_their_shared_budget_fail_the_publish_and_queue_nothing() {
        let mut f = fixture();
        f.publisher.filters = Arc::new(SlowRunner);
        add_filtered(&f).await;
        let err = f
            .publisher
            .publish(request("order.created"))
            .await
            .unwrap_err();
        assert!(matches!(err, PublishError::FiltersTooSlow), "{err}");
        assert!(err.is_retryable());
        assert!(f.queue.sent.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn slow_filters_are_charged_to_their_tenant_and_no_other() {
        use crate::tenants::{TenantGate, TenantLimits};
        let mut f = fixture();
        /// Every run takes a second (of paused time) and passes.
        struct Second;
        #[async_trait::async_trait]
        impl crate::ports::ProgramRunner for Second {
            async fn run(
                &self,
                _tenant: &TenantId,
                _program: &str,
                _input: &str,
            ) -> Result<String, JqError> {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok("true".into())
            }
            async fn check(&self, _program: &str) -> Result<(), JqError> {
                Ok(())
            }
        }
        f.publisher.filters = Arc::new(Second);
        let budget = Arc::new(crate::memory::MemoryPublishBudget::default());
        f.publisher.gate = Some(Arc::new(TenantGate::new(
            Arc::new(crate::memory::MemoryTenantStore::default()),
            budget,
            TenantLimits::new(10, 20).unwrap(),
        )));
        add_filtered(&f).await;
        // A second of filtering is 100 publishes' worth: far past a burst of 20.
        f.publisher.publish(request("order.created")).await.unwrap();
        let err = f
            .publisher
            .publish(request("order.created"))
            .await
            .unwrap_err();
        assert!(matches!(err, PublishError::RateLimited(_)), "{err}");
        // Another tenant, without filters, publishes on.
        let mut other = request("order.created");
        other.tenant = TenantId::parse("other").unwrap();
        f.publisher.publish(other).await.unwrap();
    }

    #[tokio::test]
    async fn a_tenant_past_its_limit_is_refused_before_anything_is_stored_or_queued() {
        use crate::tenants::{TenantGate, TenantLimits};
        let mut f = fixture();
        f.publisher.gate = Some(Arc::new(TenantGate::new(
            Arc::new(crate::memory::MemoryTenantStore::default()),
            Arc::new(crate::memory::MemoryPublishBudget::default()),
            TenantLimits::new(1, 2).unwrap(),
        )));
        add(&f, "default", &["order.*"], true).await;
        for _ in 0..2 {
            f.publisher.publish(request("order.created")).await.unwrap();
        }
        let err = f
            .publisher
            .publish(request("order.created"))
            .await
            .unwrap_err();
        match &err {
            PublishError::RateLimited(l) => {
                assert!(l.retry_after > Duration::ZERO && l.retry_after <= Duration::from_secs(1))
            }
            other => panic!("{other}"),
        }
        assert!(err.is_retryable());
        assert_eq!(f.queue.sent.lock().unwrap().len(), 2);
        // Another tenant is not touched.
        let mut other = request("order.created");
        other.tenant = TenantId::parse("other").unwrap();
        f.publisher.publish(other).await.unwrap();
    }

    fn request(event_type: &str) -> PublishRequest {
        PublishRequest {
            tenant: TenantId::default_tenant(),
            event_type: EventType::parse(event_type).unwrap(),
            data: RawValue::from_string(r#"{"n":1}"#.into()).unwrap(),
            idempotency_key: None,
            subscriber_ids: None,
            correlation_id: None,
            timestamp: None,
        }
    }

    #[tokio::test]
    async fn an_event_time_rfc_3339_cannot_write_is_refused_before_anything_is_queued() {
        let f = fixture();
        add(&f, "default", &["*"], true).await;
        for raw in ["0000-01-01T00:00:00+00:01", "9999-12-31T23:59:59-01:00"] {
            let t = chrono::DateTime::parse_from_rfc3339(raw)
                .unwrap()
                .with_timezone(&Utc);
            let mut req = request("a.b");
            req.timestamp = Some(t);
            assert!(
                matches!(
                    f.publisher.publish(req).await,
                    Err(PublishError::InvalidInput(_))
                ),
                "{raw}"
            );
        }
        assert!(f.queue.sent.lock().unwrap().is_empty());
        // parse_time refuses them too, so no message holds a time it cannot write.
        assert!(crate::model::parse_time("9999-12-31T23:59:59-01:00").is_none());
        assert!(crate::model::parse_time("9999-12-31T23:59:59Z").is_some());
    }

    #[tokio::test]
    async fn only_matching_active_subscribers_of_the_tenant_get_a_message() {
        let f = fixture();
        let a = add(&f, "default", &["order.*"], true).await;
        let b = add(&f, "default", &["*"], true).await;
        add(&f, "default", &["invoice.paid"], true).await;
        add(&f, "default", &["order.*"], false).await;
        add(&f, "other", &["*"], true).await;
        let receipt = f.publisher.publish(request("order.created")).await.unwrap();
        assert_eq!(receipt.subscribers, 2);
        let sent = f.queue.sent.lock().unwrap();
        let mut got: Vec<_> = sent.iter().map(|m| m.subscriber_id.clone()).collect();
        got.sort();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(got, want);
        assert!(sent.iter().all(|m| m.event_id == receipt.id));
    }

    #[tokio::test]
    async fn large_fan_out_is_sent_in_batches_of_ten() {
        let f = fixture();
        for _ in 0..23 {
            add(&f, "default", &["*"], true).await;
        }
        f.publisher.publish(request("a.b")).await.unwrap();
        let mut batches = f.queue.batches.lock().unwrap().clone();
        batches.sort();
        assert_eq!(batches, vec![3, 10, 10]);
    }

    #[tokio::test]
    async fn refused_entries_are_sent_again_not_dropped() {
        let f = fixture();
        for _ in 0..12 {
            add(&f, "default", &["*"], true).await;
        }
        *f.queue.refuse_next_entries.lock().unwrap() = 3;
        let receipt = f.publisher.publish(request("a.b")).await.unwrap();
        assert_eq!(receipt.subscribers, 12);
        let sent = f.queue.sent.lock().unwrap();
        let unique: std::collections::HashSet<_> = sent.iter().map(|m| &m.subscriber_id).collect();
        assert_eq!(unique.len(), 12);
        assert_eq!(sent.len(), 12);
    }

    #[tokio::test]
    async fn a_queue_that_keeps_refusing_is_an_error_not_a_silent_loss() {
        let f = fixture();
        add(&f, "default", &["*"], true).await;
        *f.queue.refuse_next_entries.lock().unwrap() = 100;
        let err = f.publisher.publish(request("a.b")).await.unwrap_err();
        assert!(matches!(err, PublishError::Enqueue { failed: 1, .. }));
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn same_idempotency_key_returns_the_same_event_once() {
        let f = fixture();
        add(&f, "default", &["*"], true).await;
        let mut req = request("a.b");
        req.idempotency_key = Some("key-1".into());
        let first = f.publisher.publish(req.clone()).await.unwrap();
        let second = f.publisher.publish(req).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(f.queue.sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_publish_resumes_under_the_same_event_id() {
        let f = fixture();
        add(&f, "default", &["*"], true).await;
        *f.queue.refuse_next_entries.lock().unwrap() = 100;
        let mut req = request("a.b");
        req.idempotency_key = Some("retry-me".into());
        assert!(f.publisher.publish(req.clone()).await.is_err());
        *f.queue.refuse_next_entries.lock().unwrap() = 0;
        let receipt = f.publisher.publish(req).await.unwrap();
        let sent = f.queue.sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].event_id, receipt.id);
    }

    #[tokio::test]
    async fn a_publish_while_another_holds_the_key_is_told_to_wait_not_sent_twice() {
        let f = fixture();
        add(&f, "default", &["*"], true).await;
        let tenant = TenantId::default_tenant();
        // Another caller claimed the key a moment ago and is still fanning out.
        let claim = f
            .publisher
            .idempotency
            .claim(
                &tenant,
                "busy-key",
                &EventId::new(),
                Utc::now(),
                Duration::from_secs(3600),
            )
            .await
            .unwrap();
        assert_eq!(claim, IdempotencyClaim::Claimed);
        let mut req = request("a.b");
        req.idempotency_key = Some("busy-key".into());
        let err = f.publisher.publish(req.clone()).await.unwrap_err();
        assert!(matches!(err, PublishError::InProgress(_)), "{err}");
        assert!(f.queue.sent.lock().unwrap().is_empty());
        // Once its lease is given up (or runs out), the next caller resumes it.
        f.publisher
            .idempotency
            .abandon(&tenant, "busy-key")
            .await
            .unwrap();
        assert_eq!(f.publisher.publish(req).await.unwrap().subscribers, 1);
    }

    #[tokio::test]
    async fn explicit_targets_bypass_filters_but_must_exist_and_be_active() {
        let f = fixture();
        let a = add(&f, "default", &["invoice.*"], true).await;
        let off = add(&f, "default", &["*"], false).await;
        let mut req = request("skyhook.test");
        req.subscriber_ids = Some(vec![a.clone(), a.clone()]);
        assert_eq!(
            f.publisher.publish(req.clone()).await.unwrap().subscribers,
            1
        );
        req.subscriber_ids = Some(vec![off.clone()]);
        assert!(matches!(
            f.publisher.publish(req.clone()).await,
            Err(PublishError::UnknownSubscriber(id)) if id == off
        ));
        // The first unknown one, in the order given, is the one named.
        let unknown = SubscriberId::new();
        req.subscriber_ids = Some(vec![a.clone(), unknown.clone(), off.clone()]);
        assert!(matches!(
            f.publisher.publish(req.clone()).await,
            Err(PublishError::UnknownSubscriber(id)) if id == unknown
        ));
        // At most 100 names, counted before duplicates are dropped; nothing is queued.
        let sent = f.queue.sent.lock().unwrap().len();
        req.subscriber_ids = Some(vec![a.clone(); MAX_TARGETED_SUBSCRIBERS + 1]);
        assert!(matches!(
            f.publisher.publish(req.clone()).await,
            Err(PublishError::TooManyTargets { given }) if given == MAX_TARGETED_SUBSCRIBERS + 1
        ));
        req.subscriber_ids = Some(vec![a.clone(); MAX_TARGETED_SUBSCRIBERS]);
        assert_eq!(f.publisher.publish(req).await.unwrap().subscribers, 1);
        assert_eq!(f.queue.sent.lock().unwrap().len(), sent + 1);
    }

    #[tokio::test]
    async fn correlation_id_defaults_to_the_event_id_and_travels_in_messages() {
        let f = fixture();
        add(&f, "default", &["*"], true).await;
        let receipt = f.publisher.publish(request("a.b")).await.unwrap();
        assert_eq!(
            f.queue.sent.lock().unwrap()[0].correlation_id,
            receipt.id.to_string()
        );
        let mut req = request("a.b");
        req.correlation_id = Some("req-42".into());
        f.publisher.publish(req).await.unwrap();
        assert_eq!(f.queue.sent.lock().unwrap()[1].correlation_id, "req-42");
    }

    #[tokio::test]
    async fn batches_also_respect_the_queues_byte_limit() {
        let f = fixture();
        for _ in 0..10 {
            add(&f, "default", &["*"], true).await;
        }
        // ~300 KB each: three fit in 1 MiB, so ten go in four calls, not one.
        let mut req = request("a.b");
        req.data = RawValue::from_string(format!("\"{}\"", "x".repeat(300_000))).unwrap();
        f.publisher.publish(req).await.unwrap();
        let mut batches = f.queue.batches.lock().unwrap().clone();
        batches.sort();
        assert_eq!(batches, vec![1, 3, 3, 3]);
        assert_eq!(f.queue.sent.lock().unwrap().len(), 10);
    }

    #[tokio::test]
    async fn an_event_too_large_to_queue_is_refused_before_anything_is_written() {
        let f = fixture();
        add(&f, "default", &["*"], true).await;
        let mut req = request("a.b");
        req.data = RawValue::from_string(format!("\"{}\"", "x".repeat(1024 * 1024 - 10))).unwrap();
        req.idempotency_key = Some("big".into());
        let err = f.publisher.publish(req).await.unwrap_err();
        assert!(matches!(err, PublishError::TooLarge { .. }), "{err}");
        assert!(!err.is_retryable());
        assert!(f.queue.batches.lock().unwrap().is_empty());
        // The key was not claimed: a smaller retry with it goes through.
        let mut ok = request("a.b");
        ok.idempotency_key = Some("big".into());
        assert_eq!(f.publisher.publish(ok).await.unwrap().subscribers, 1);
    }

    #[test]
    fn keys_and_correlation_ids_must_be_visible_ascii() {
        assert!(validate_idempotency_key("abc-123").is_ok());
        assert!(validate_idempotency_key("").is_err());
        assert!(validate_idempotency_key("has space").is_err());
        assert!(validate_idempotency_key(&"x".repeat(256)).is_err());
        assert!(validate_correlation_id("c\n").is_err());
    }
}
