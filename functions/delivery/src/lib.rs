//! Skyhook's delivery function: each SQS record is one (event, subscriber) pair, signed and
//! POSTed; failures are retried by moving the message's visibility timeout along the retry
//! schedule, and after the last attempt the message goes to the dead-letter queue.
//!
//! A delivery goes in steps ([`Deliverer::deliver`]): find the subscriber and its secret,
//! ask [`admission`] whether it may go now, make the body, send the request ([`http`]),
//! judge the answer (with the [`breaker`]'s bookkeeping), and apply the resulting
//! [`fate::Fate`] to the SQS message in one place.

pub mod admission;
pub mod breaker;
pub mod config;
pub mod fate;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod resolver;
pub mod stats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use lambda_runtime::LambdaEvent;
use tracing::Instrument;

use skyhook_aws::Adapters;
use skyhook_domain::breaker::{BreakerPolicy, Health};
use skyhook_domain::directory::{Directory, DirectoryView};
use skyhook_domain::jq::JqError;
use skyhook_domain::model::{
    AttemptRecord, DeadLetterReason, DeliveryMessage, DeliveryState, DisabledReason, Outcome,
    Subscriber,
};
use skyhook_domain::ports::{
    AttemptLog, AuditLog, DeadLetterStore, DeliveryQueue, HealthStore, OpsEvents, ProgramRunner,
    RateBudget, SecretStore, StoreError, SubscriberSecrets, SubscriberStore,
};
use skyhook_domain::retry::{RetryDecision, RetryPolicy};
use skyhook_domain::url::UrlPolicy;

pub use crate::config::{Config, REQUIRED_ENV};
use crate::fate::Fate;
use crate::http::{Answer, Verdict};
pub use crate::http::{MAX_LOGGED_BODY_BYTES, http_client, http_client_for};
pub use skyhook_domain::model::CORRELATION_HEADER;

/// Everything a delivery needs; built once in `main` (no AWS call happens here).
#[derive(Clone)]
pub struct Deliverer {
    /// Subscribers and secrets, cached and checked against the directory version per batch.
    pub directory: Arc<Directory>,
    pub queue: Arc<dyn DeliveryQueue>,
    pub log: Arc<dyn AttemptLog>,
    /// The index `GET /v1/dlq` lists; written when a message is dead-lettered.
    pub dead_letters: Arc<dyn DeadLetterStore>,
    pub http: reqwest::Client,
    /// Which URLs a delivery may go to, checked again before every request: outside local
    /// mode `https` only, and no IP-literal host that is not public (the client's resolver
    /// sees names only; an IP literal never reaches it).
    pub url_policy: UrlPolicy,
    /// The timeout `http` was built with, named in the attempt log when it strikes.
    pub http_timeout: Duration,
    pub policy: RetryPolicy,
    /// Deliveries in flight per subscriber in this process, held to its `max_concurrency`.
    pub inflight: Arc<limits::InFlight>,
    /// Subscribers' rate limits, shared with every other instance.
    pub rates: Arc<limits::RateLimiter>,
    /// Subscribers' health, shared with every other instance: failures and breakers.
    pub health: Arc<dyn HealthStore>,
    pub breaker: BreakerPolicy,
    /// Where a subscriber is disabled (410 Gone, failing too long), and the audit trail.
    pub subscribers: Arc<dyn SubscriberStore>,
    pub audit: Arc<dyn AuditLog>,
    /// "Now" for the breaker and auto-disable decisions; a test moves it on.
    pub clock: Clock,
    /// Operational events: breaker opened or closed, subscriber disabled, delivery exhausted.
    pub ops: Arc<dyn OpsEvents>,
    /// Where each batch's metrics go as EMF lines on stdout; `None`: nowhere.
    pub metrics_namespace: Option<String>,
    /// Runs subscribers' transforms, each in a worker process with bounded time and memory.
    pub sandbox: Arc<dyn ProgramRunner>,
}

/// The ports a deliverer works through.
#[derive(Clone)]
pub struct Ports {
    pub subscribers: Arc<dyn SubscriberStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub queue: Arc<dyn DeliveryQueue>,
    pub log: Arc<dyn AttemptLog>,
    pub dead_letters: Arc<dyn DeadLetterStore>,
    pub rates: Arc<dyn RateBudget>,
    pub health: Arc<dyn HealthStore>,
    pub audit: Arc<dyn AuditLog>,
    pub ops: Arc<dyn OpsEvents>,
}

impl Ports {
    /// The delivery function's share of the adapters.
    pub fn of(adapters: &Adapters) -> Self {
        Ports {
            subscribers: adapters.subscribers.clone(),
            secrets: adapters.secrets.clone(),
            queue: adapters.queue.clone(),
            log: adapters.log.clone(),
            dead_letters: adapters.dead_letters.clone(),
            rates: adapters.rates.clone(),
            health: adapters.health.clone(),
            audit: adapters.audit.clone(),
            ops: adapters.ops.clone(),
        }
    }
}

/// A source of the current time.
pub type Clock = Arc<dyn Fn() -> chrono::DateTime<Utc> + Send + Sync>;

/// The real clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

impl Deliverer {
    /// Fails only when the HTTP client cannot be built (its TLS stack did not start).
    pub fn from_config(
        sdk: &aws_config::SdkConfig,
        config: &Config,
    ) -> Result<Self, reqwest::Error> {
        let (resources, retention) = config.resources();
        Self::new(&Adapters::from_sdk(sdk, &resources, &retention), config)
    }

    /// A deliverer over these adapters.
    pub fn new(adapters: &Adapters, config: &Config) -> Result<Self, reqwest::Error> {
        Self::over(Ports::of(adapters), config)
    }

    /// A deliverer over these ports: the AWS adapters, or the twins in unit tests.
    pub fn over(ports: Ports, config: &Config) -> Result<Self, reqwest::Error> {
        let directory = Directory::new(
            ports.subscribers.clone(),
            ports.secrets,
            config.secret_cache_ttl,
        )
        .with_health(ports.health.clone());
        Ok(Deliverer {
            directory: Arc::new(directory),
            queue: ports.queue,
            log: ports.log,
            dead_letters: ports.dead_letters,
            http: http_client_for(config.http_timeout, config.local_mode)?,
            url_policy: if config.local_mode {
                UrlPolicy::LOCAL
            } else {
                UrlPolicy::STRICT
            },
            http_timeout: config.http_timeout,
            policy: RetryPolicy::new(config.retry_schedule.clone()),
            inflight: Arc::default(),
            rates: Arc::new(limits::RateLimiter::new(ports.rates)),
            health: ports.health,
            breaker: config.breaker,
            subscribers: ports.subscribers,
            audit: ports.audit,
            clock: system_clock(),
            ops: ports.ops,
            metrics_namespace: config.metrics_namespace.clone(),
            sandbox: Arc::new(config.transform.sandbox()),
        })
    }

    /// Now, by the deliverer's one clock.
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }
}

/// The reason a delivery ends with when its subscriber's transform fails.
pub const TRANSFORM_FAILED: &str = "transform_failed";
/// The reason a delivery waits with when the jq sandbox could not run its transform.
pub const SANDBOX_UNAVAILABLE: &str = "sandbox_unavailable";

/// What became of one SQS record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordResult {
    /// Delivered, or finished for good (dead-lettered, subscriber gone): delete it.
    Done,
    /// Leave it on the queue; its visibility timeout says when it comes back.
    Retry,
}

/// Most deliveries of one batch in flight at once: the template's largest batch, so that a
/// batch takes one HTTP timeout at most.
const MAX_CONCURRENT_DELIVERIES: usize = 100;

/// The Lambda handler: the records of a batch are delivered concurrently (up to
/// [`MAX_CONCURRENT_DELIVERIES`] at a time), so a batch of up to that many takes about as
/// long as its slowest delivery; only the records to retry are reported.
pub async fn handle(
    deliverer: &Deliverer,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let records = &event.payload.records;
    let messages: Vec<Result<DeliveryMessage, String>> = records
        .iter()
        .map(|r| DeliveryMessage::from_json(r.body.as_deref().unwrap_or("")))
        .collect();
    // One consistent read of the directory versions for the whole batch.
    let tenants: Vec<_> = messages
        .iter()
        .filter_map(|m| m.as_ref().ok().map(|m| m.tenant.clone()))
        .collect();
    let view = if tenants.is_empty() {
        Ok(DirectoryView::default())
    } else {
        deliverer.directory.view(&tenants).await
    };
    let deliveries: Vec<_> = records
        .iter()
        .zip(messages)
        .map(|(record, message)| deliverer.deliver_parsed(record, message, &view))
        .collect();
    let tally = metrics::Tally::default();
    let results: Vec<RecordResult> = tally
        .scope(
            stream::iter(deliveries)
                .buffered(MAX_CONCURRENT_DELIVERIES)
                .collect(),
        )
        .await;
    if let Some(namespace) = &deliverer.metrics_namespace {
        let now = deliverer.now();
        for (tenant, counts) in tally.tenants() {
            // Lambda sends stdout to CloudWatch Logs, which reads EMF lines as metrics.
            println!("{}", metrics::emf(namespace, &tenant, &counts, now));
        }
    }
    let mut response = SqsBatchResponse::default();
    for (record, result) in event.payload.records.iter().zip(results) {
        if result == RecordResult::Retry {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}

fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

impl Deliverer {
    /// Delivers one parsed SQS record and applies its fate. Never panics on the record's
    /// content.
    async fn deliver_parsed(
        &self,
        record: &SqsMessage,
        message: Result<DeliveryMessage, String>,
        view: &Result<DirectoryView, StoreError>,
    ) -> RecordResult {
        let round = receive_count(record);
        let body = record.body.as_deref().unwrap_or("");
        let message = match message {
            Ok(m) => m,
            Err(problem) => {
                tracing::error!(
                    message_id = record.message_id.as_deref().unwrap_or(""),
                    error = %problem,
                    "malformed delivery message; moving it to the dead-letter queue"
                );
                let fate = Fate::DeadLetter {
                    attempts: round,
                    reason: DeadLetterReason::MalformedMessage(problem),
                };
                return self.settle(record, body, None, round, fate).await;
            }
        };
        let span = tracing::info_span!(
            "delivery",
            event_id = %message.event_id,
            subscriber_id = %message.subscriber_id,
            attempt = message.prior_attempts.saturating_add(round),
            correlation_id = %message.correlation_id,
        );
        async {
            let fate = self.deliver(&message, round, view).await;
            self.settle(record, body, Some(&message), round, fate).await
        }
        .instrument(span)
        .await
    }

    /// One round of a delivery, to its fate. `round` is this SQS message's receive count,
    /// which the retry policy goes by; the attempt number logged adds the attempts of
    /// earlier rounds (before a redrive or a deferral).
    pub async fn deliver(
        &self,
        message: &DeliveryMessage,
        round: u32,
        view: &Result<DirectoryView, StoreError>,
    ) -> Fate {
        let (subscriber, secrets) = match self.target(message, round, view).await {
            Ok(target) => target,
            Err(fate) => return fate,
        };
        let health = self.health_of(message, view).await;
        let pass = match self.admit(message, &subscriber, &health, self.now()).await {
            admission::Admission::Go(pass) => pass,
            admission::Admission::Wait(why, delay) => return Fate::Defer(why, delay),
        };
        let body = match self.body(message, &subscriber).await {
            Ok(body) => body,
            Err(e) => {
                drop(pass);
                return self.transform_failed(message, &subscriber, round, e).await;
            }
        };
        let started_at = self.now();
        let clock = Instant::now();
        let answer = http::post(
            &self.http,
            self.url_policy,
            self.http_timeout,
            http::Request {
                subscriber: &subscriber,
                message,
                body,
                secrets: &secrets.at(started_at),
                headers: secrets.headers.as_ref(),
                now: started_at,
            },
        )
        .await;
        // The cap is on requests to the endpoint; logging the attempt is not one.
        drop(pass.slot);
        let sent = Sent {
            answer,
            probing: pass.probing,
            started_at,
            latency_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        self.judge(message, &subscriber, &health, round, sent, view)
            .await
    }

    /// The subscriber, active, and its secrets; or the fate of a delivery that cannot go to
    /// it: parked (disabled), ended (deleted), dead-lettered (no secret) or retried (the
    /// directory could not be read).
    async fn target(
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
                tracing::info!("subscriber is disabled; parking the delivery until it is enabled");
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
                tracing::error!(error = %e, "could not read the signing secret");
                let reason = format!("could not read the signing secret: {e}");
                Err(self.unreached(message, round, &reason).await)
            }
        }
    }

    /// The subscriber's health as this batch read it; healthy when it could not be read.
    async fn health_of(
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

    /// The body sent: the event, or what the subscriber's transform makes of it, made only
    /// once the delivery is going out (a deferred one would make it again).
    async fn body(
        &self,
        message: &DeliveryMessage,
        subscriber: &Subscriber,
    ) -> Result<Vec<u8>, JqError> {
        let event = message.webhook_body();
        let Some(program) = &subscriber.transform else {
            return Ok(event);
        };
        let input = String::from_utf8_lossy(&event);
        let body = self.sandbox.run(&message.tenant, program, &input).await?;
        Ok(body.into_bytes())
    }

    /// A transform that fails ends the delivery (retrying would fail the same way): the
    /// attempt is logged (no request was made) and the message dead-lettered, so a redrive
    /// after the program is fixed sends it. A sandbox that could not run it at all is ours
    /// to fix, not the tenant's: the delivery is retried on its schedule (and dead-lettered
    /// only when every attempt found it so). A probe that ends either way leaves the breaker
    /// half-open until its lease runs out, then another probes.
    async fn transform_failed(
        &self,
        message: &DeliveryMessage,
        subscriber: &Subscriber,
        round: u32,
        err: JqError,
    ) -> Fate {
        let attempt = message.prior_attempts.saturating_add(round);
        if err.is_unavailable() {
            tracing::error!(error = %err, "the jq sandbox could not run the subscriber's transform; retrying");
            let reason = format!("{SANDBOX_UNAVAILABLE}: {err}");
            self.set_status(message, DeliveryState::Retrying, attempt, &reason)
                .await;
            return self.unreached(message, round, &reason).await;
        }
        tracing::warn!(error = %err, "the subscriber's transform failed; dead-lettering");
        let reason = DeadLetterReason::TransformFailed(err.to_string());
        let now = self.now();
        let entry = AttemptRecord {
            event_id: message.event_id.clone(),
            tenant: message.tenant.clone(),
            subscriber_id: message.subscriber_id.clone(),
            event_type: message.event_type.clone(),
            attempt,
            outcome: Outcome::Failure,
            status_code: None,
            latency_ms: 0,
            error: Some(reason.text()),
            response_body: None,
            url: subscriber.url.to_string(),
            started_at: now,
            finished_at: now,
        };
        self.log(&entry, DeliveryState::Failed).await;
        Fate::DeadLetter {
            attempts: attempt,
            reason,
        }
    }

    /// Logs the attempt and decides what follows: done; parked after a 410 (the subscriber
    /// disabled); or a retry, or the dead-letter queue after the last attempt.
    async fn judge(
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
                tracing::info!(
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
struct Sent {
    answer: Answer,
    /// Whether it was the breaker's probe.
    probing: bool,
    started_at: DateTime<Utc>,
    latency_ms: u64,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_count_defaults_to_first_attempt() {
        let mut m = SqsMessage::default();
        assert_eq!(receive_count(&m), 1);
        m.attributes
            .insert("ApproximateReceiveCount".into(), "3".into());
        assert_eq!(receive_count(&m), 3);
        m.attributes
            .insert("ApproximateReceiveCount".into(), "zero".into());
        assert_eq!(receive_count(&m), 1);
    }
}
