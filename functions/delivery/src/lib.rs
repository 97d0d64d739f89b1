//! Skyhook's delivery function: each SQS record is one (event, subscriber) pair, signed and
//! POSTed; failures are retried by moving the message's visibility timeout along the retry
//! schedule, and after the last attempt the message goes to the dead-letter queue.
//!
//! A delivery goes in steps ([`Deliverer::deliver`]): find the subscriber and its secret
//! (`target`), ask [`admission`] whether it may go now, make the body, send the request
//! ([`http`]), judge the answer with the [`breaker`]'s bookkeeping (`judge`), and apply the
//! resulting [`fate::Fate`] to the SQS message in one place.

pub mod admission;
pub mod breaker;
pub mod config;
pub mod fate;
pub mod http;
mod judge;
pub mod limits;
pub mod metrics;
pub mod resolver;
pub mod stats;
mod target;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use lambda_runtime::LambdaEvent;
use tracing::Instrument;

use skyhook_aws::Adapters;
use skyhook_domain::breaker::BreakerPolicy;
use skyhook_domain::directory::{Directory, DirectoryView};
use skyhook_domain::jq::JqError;
use skyhook_domain::model::{
    AttemptRecord, DeadLetterReason, DeliveryMessage, DeliveryState, Outcome, Subscriber,
};
use skyhook_domain::ports::{
    AttemptLog, AuditLog, DeadLetterStore, DeliveryQueue, HealthStore, OpsEvents, ProgramRunner,
    RateBudget, SecretStore, StoreError, SubscriberStore,
};
use skyhook_domain::retry::RetryPolicy;
use skyhook_domain::url::UrlPolicy;

pub use crate::config::{Config, REQUIRED_ENV};
use crate::fate::Fate;
pub use crate::http::{MAX_LOGGED_BODY_BYTES, http_client, http_client_for};
use crate::judge::Sent;
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
    /// Tenants whose metrics also carry a `Tenant` dimension.
    pub metrics_tenants: Arc<std::collections::BTreeSet<skyhook_domain::ids::TenantId>>,
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
            metrics_tenants: Arc::new(config.metrics_tenants.clone()),
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
    let tenants = tally.tenants();
    let all = metrics::Tally::total(&tenants);
    summarise(records.len(), &results, tenants.len(), &all);
    if let Some(namespace) = &deliverer.metrics_namespace {
        let (named, now) = (&deliverer.metrics_tenants, deliverer.now());
        // Lambda sends stdout to CloudWatch Logs, which reads EMF lines as metrics.
        for line in metrics::documents(namespace, &all, &tenants, named, now) {
            println!("{line}");
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

/// One INFO line per batch: what its records came to. Each delivery's own lines are at
/// DEBUG (`RUST_LOG=skyhook_delivery=debug`), failures at WARN and ERROR: a log line per
/// delivery would cost more than the delivery.
fn summarise(records: usize, results: &[RecordResult], tenants: usize, all: &metrics::TenantTally) {
    let left = results
        .iter()
        .filter(|r| **r == RecordResult::Retry)
        .count();
    tracing::info!(
        records,
        tenants,
        delivered = all.delivered,
        failed = all.failed,
        retried = all.retried,
        deferred = all.deferred,
        exhausted = all.exhausted,
        left_on_queue = left,
        "delivery batch done"
    );
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
                return self.reject(body, round, problem).await;
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
            self.settle(record, body, &message, round, fate).await
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
