//! Skyhook's delivery function: each SQS record is one (event, subscriber) pair, signed and
//! POSTed; failures are retried by moving the message's visibility timeout along the retry
//! schedule, and after the last attempt the message goes to the dead-letter queue.

pub mod fairness;
pub mod metrics;
pub mod resolver;
pub mod stats;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use futures::stream::{self, StreamExt};
use lambda_runtime::LambdaEvent;
use tracing::Instrument;

use skyhook_aws::{Adapters, Resources, Retention};
use skyhook_domain::config::{self, ConfigError, Env};
use skyhook_domain::directory::{Directory, DirectoryView};
use skyhook_domain::health::{BreakerPolicy, BreakerState, Gate, Health, PROBE_WAIT};
use skyhook_domain::jq::JqError;
use skyhook_domain::model::{
    AttemptRecord, AuditRecord, DeadLetterEntry, DeliveryMessage, DeliveryState, DeliveryStatus,
    DisabledReason, OpsEvent, OpsEventKind, Outcome, PARKED_REASON, Subscriber,
};
use skyhook_domain::ports::{
    AttemptLog, AuditLog, DeadLetter, DeadLetterStore, DeliveryQueue, HealthStore, OpsEvents,
    StoreError, SubscriberStore,
};
use skyhook_domain::retry::{RetryDecision, RetryPolicy, RetrySchedule, parse_retry_after};
use skyhook_domain::signing::delivery_headers;
use skyhook_domain::url::{SubscriberUrl, UrlPolicy};
use skyhook_process::SandboxSettings;

/// How much longer than the HTTP timeout a probe holds the breaker's half-open state.
const PROBE_LEASE_MARGIN: Duration = Duration::from_secs(5);

/// Response bodies are kept in the attempt log up to this many bytes.
pub const MAX_LOGGED_BODY_BYTES: usize = 4096;
pub use skyhook_domain::model::CORRELATION_HEADER;
use skyhook_domain::model::{MASKED_VALUE, RESERVED_HEADERS};

/// Settings of the delivery function, read once at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub secret_prefix: String,
    pub retry_schedule: RetrySchedule,
    pub http_timeout: Duration,
    pub log_retention: Duration,
    pub secret_cache_ttl: Duration,
    /// How long the previous secret keeps signing after a rotation.
    pub rotation_grace: Duration,
    /// Local mode lets deliveries reach loopback and private addresses (a receiver on the
    /// developer's machine); outside it they are refused at connect time.
    pub local_mode: bool,
    /// The circuit breaker and auto-disable settings.
    pub breaker: BreakerPolicy,
    /// Where operational events go (`SKYHOOK_EVENT_BUS`); `None`: only logged.
    pub event_bus: Option<String>,
    /// The CloudWatch namespace of the per-batch metrics written as EMF log lines
    /// (`SKYHOOK_METRICS_NAMESPACE`); `None`: no metrics lines.
    pub metrics_namespace: Option<String>,
    /// The jq sandbox of subscribers' transforms (`SKYHOOK_TRANSFORM_TIMEOUT`,
    /// `SKYHOOK_TRANSFORM_MEMORY_MB`).
    pub transform: SandboxSettings,
}

impl Config {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::required(env, config::TABLE)?,
            queue_url: config::required(env, config::QUEUE_URL)?,
            dlq_url: config::required(env, config::DLQ_URL)?,
            secret_prefix: config::optional(env, config::SECRET_PREFIX)
                .unwrap_or_else(|| config::DEFAULT_SECRET_PREFIX.to_string()),
            retry_schedule: config::retry_schedule(env)?,
            http_timeout: config::http_timeout(env)?,
            log_retention: config::duration(
                env,
                config::LOG_RETENTION,
                config::DEFAULT_LOG_RETENTION,
            )?,
            secret_cache_ttl: config::duration(
                env,
                config::SECRET_CACHE_TTL,
                config::DEFAULT_SECRET_CACHE_TTL,
            )?,
            rotation_grace: config::rotation_grace(env)?,
            local_mode: config::local_mode(env)?,
            breaker: config::breaker_policy(env)?,
            event_bus: config::optional(env, config::EVENT_BUS),
            metrics_namespace: config::optional(env, config::METRICS_NAMESPACE),
            transform: SandboxSettings::from_env(env)?,
        })
    }
}

/// What the delivery function cannot start without; the SAM template must set each (a test
/// in `tests/it/template.rs` holds it to this list, and the unit test below holds this list
/// to `Config::from_env`).
pub const REQUIRED_ENV: &[&str] = &[config::TABLE, config::QUEUE_URL, config::DLQ_URL];

fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        // Proxy variables in the environment would send every delivery through a proxy,
        // which resolves the name itself: past the public-only resolver.
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(format!("Skyhook/{}", skyhook_domain::VERSION))
        .pool_idle_timeout(Duration::from_secs(60))
}

/// The HTTP client every delivery uses: built once per process, never follows redirects
/// (a 3xx is a failure), bounded by the attempt timeout, rustls only. It reaches any
/// address, as local mode wants; see [`http_client_for`]. An error (the TLS stack failed to
/// start) stops start-up: a fallback client would break those rules.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    client_builder(timeout).build()
}

/// [`http_client`], and outside local mode one whose DNS answers are filtered to public
/// addresses, so a hostname that resolves into a private network is refused at connect time.
pub fn http_client_for(
    timeout: Duration,
    local_mode: bool,
) -> Result<reqwest::Client, reqwest::Error> {
    if local_mode {
        return http_client(timeout);
    }
    client_builder(timeout)
        .dns_resolver(resolver::PublicOnlyResolver::system())
        .build()
}

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
    pub inflight: Arc<fairness::InFlight>,
    /// Subscribers' rate limits, shared with every other instance.
    pub rates: Arc<fairness::RateLimiter>,
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
    pub sandbox: Arc<dyn skyhook_domain::ports::ProgramRunner>,
}

/// A source of the current time.
pub type Clock = Arc<dyn Fn() -> chrono::DateTime<Utc> + Send + Sync>;

/// The real clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

impl Config {
    /// The resources and retention this configuration names, for [`Adapters::from_sdk`].
    pub fn resources(&self) -> (Resources, Retention) {
        (
            Resources {
                table: self.table.clone(),
                stats_table: None,
                queue_url: self.queue_url.clone(),
                dlq_url: Some(self.dlq_url.clone()),
                secret_prefix: self.secret_prefix.clone(),
                source_secret_prefix: config::DEFAULT_SOURCE_SECRET_PREFIX.to_string(),
                event_bus: self.event_bus.clone(),
            },
            Retention {
                log: self.log_retention,
                rotation_grace: self.rotation_grace,
                ..Retention::default()
            },
        )
    }
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
        Ok(Deliverer {
            directory: Arc::new(
                Directory::new(
                    adapters.subscribers.clone(),
                    adapters.secrets.clone(),
                    config.secret_cache_ttl,
                )
                .with_health(adapters.health.clone()),
            ),
            queue: adapters.queue.clone(),
            log: adapters.log.clone(),
            dead_letters: adapters.dead_letters.clone(),
            http: http_client_for(config.http_timeout, config.local_mode)?,
            url_policy: if config.local_mode {
                UrlPolicy::LOCAL
            } else {
                UrlPolicy::STRICT
            },
            http_timeout: config.http_timeout,
            policy: RetryPolicy::new(config.retry_schedule.clone()),
            inflight: Arc::default(),
            rates: Arc::new(fairness::RateLimiter::new(adapters.rates.clone())),
            health: adapters.health.clone(),
            breaker: config.breaker,
            subscribers: adapters.subscribers.clone(),
            audit: adapters.audit.clone(),
            clock: system_clock(),
            ops: adapters.ops.clone(),
            metrics_namespace: config.metrics_namespace.clone(),
            sandbox: Arc::new(config.transform.sandbox()),
        })
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
        let now = Utc::now();
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

/// The outcome of one HTTP attempt.
struct HttpResult {
    status: Option<u16>,
    error: Option<String>,
    body: Option<String>,
    retry_after: Option<Duration>,
}

fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

fn truncate_utf8(mut bytes: Vec<u8>, max: usize) -> String {
    bytes.truncate(max);
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).unwrap_or_default()
        }
    }
}

/// Describes a transport error without the URL, whose query string may carry a token.
fn describe_error(err: &reqwest::Error, timeout: Option<Duration>) -> String {
    if err.is_timeout() {
        return match timeout {
            Some(t) => format!("timed out after {}", humanize(t)),
            None => "timed out".to_string(),
        };
    }
    let mut text = if err.is_connect() {
        "connection failed".to_string()
    } else if err.is_request() {
        "request failed".to_string()
    } else {
        "error".to_string()
    };
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl Deliverer {
    /// Delivers one parsed SQS record and decides its fate. Never panics on the record's
    /// content.
    async fn deliver_parsed(
        &self,
        record: &SqsMessage,
        message: Result<DeliveryMessage, String>,
        view: &Result<DirectoryView, StoreError>,
    ) -> RecordResult {
        let attempt = receive_count(record);
        let body = record.body.as_deref().unwrap_or("");
        let message = match message {
            Ok(m) => m,
            Err(problem) => {
                tracing::error!(
                    message_id = record.message_id.as_deref().unwrap_or(""),
                    error = %problem,
                    "malformed delivery message; moving it to the dead-letter queue"
                );
                let why = DeadLetter {
                    reason: format!("malformed_message: {problem}"),
                    event_id: None,
                    subscriber_id: None,
                    tenant: None,
                    attempts: attempt,
                };
                return self.dead_letter_or_retry(body, &why).await;
            }
        };
        let span = tracing::info_span!(
            "delivery",
            event_id = %message.event_id,
            subscriber_id = %message.subscriber_id,
            attempt = message.prior_attempts.saturating_add(attempt),
            correlation_id = %message.correlation_id,
        );
        self.deliver(record, body, &message, attempt, view)
            .instrument(span)
            .await
    }

    /// `round` is this SQS message's receive count, which the retry policy goes by; the
    /// attempt number logged adds the attempts of earlier rounds (before a redrive).
    async fn deliver(
        &self,
        record: &SqsMessage,
        raw_body: &str,
        message: &DeliveryMessage,
        round: u32,
        view: &Result<DirectoryView, StoreError>,
    ) -> RecordResult {
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
                return self.park(record, raw_body, message, round).await;
            }
            Ok(None) => {
                tracing::warn!("subscriber no longer exists; ending the delivery");
                self.set_status(
                    message,
                    DeliveryState::SubscriberDeleted,
                    attempt.saturating_sub(1),
                    None,
                    "subscriber_deleted: the subscriber was deleted before the delivery succeeded",
                )
                .await;
                return RecordResult::Done;
            }
            Err(e) => {
                tracing::error!(error = %e, "could not load the subscriber");
                let reason = format!("could not load the subscriber: {e}");
                return self
                    .retry_or_give_up(record, raw_body, message, round, &reason)
                    .await;
            }
        };
        let secrets = match self.directory.secrets(&subscriber).await {
            Ok(Some(s)) if !s.signing.is_empty() => s,
            Ok(_) => {
                tracing::error!("subscriber has no signing secret; dead-lettering");
                let reason = "no signing secret";
                self.set_status(message, DeliveryState::Failed, attempt, None, reason)
                    .await;
                return self
                    .dead_letter_message(raw_body, message, attempt, reason)
                    .await;
            }
            Err(e) => {
                tracing::error!(error = %e, "could not read the signing secret");
                let reason = format!("could not read the signing secret: {e}");
                return self
                    .retry_or_give_up(record, raw_body, message, round, &reason)
                    .await;
            }
        };
        let signing = secrets.at(Utc::now());

        // The subscriber's breaker: open, its deliveries wait without an attempt; after the
        // cool-down, one probe goes through.
        let now = (self.clock)();
        let health = match view {
            Ok(view) => self
                .directory
                .health(view, &message.tenant, &message.subscriber_id)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "could not read the subscriber's health; delivering");
                    None
                }),
            Err(_) => None,
        }
        .unwrap_or_else(Health::healthy);
        let mut probing = false;
        match self.breaker.gate(&health, now) {
            Gate::Go => {}
            Gate::Wait(delay) => {
                return self
                    .defer(record, message, round, delay, "breaker_open")
                    .await;
            }
            Gate::Probe => match self
                .health
                .claim_probe(
                    &message.tenant,
                    &message.subscriber_id,
                    now,
                    self.http_timeout + PROBE_LEASE_MARGIN,
                )
                .await
            {
                Ok(true) => {
                    tracing::info!("breaker half-open: this delivery is the probe");
                    probing = true;
                }
                Ok(false) => {
                    return self
                        .defer(record, message, round, PROBE_WAIT, "breaker_open")
                        .await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not take the breaker's probe");
                    return self
                        .defer(record, message, round, PROBE_WAIT, "breaker_open")
                        .await;
                }
            },
        }

        // Over the subscriber's cap: wait a moment, without an attempt.
        let Some(slot) = self
            .inflight
            .claim_within(
                &message.tenant,
                &message.subscriber_id,
                subscriber.max_concurrency,
                fairness::CAP_PATIENCE,
            )
            .await
        else {
            return self
                .defer(record, message, round, fairness::busy_delay(), "busy")
                .await;
        };
        if let Some(limit) = subscriber.rate_limit {
            match self
                .rates
                .admit(&message.tenant, &message.subscriber_id, limit, Utc::now())
                .await
            {
                Ok(fairness::Admit::Now) => {}
                Ok(fairness::Admit::Wait(delay)) => {
                    return self
                        .defer(record, message, round, delay, "rate_limited")
                        .await;
                }
                Err(e) => {
                    // The budget could not be read: wait rather than go over the limit.
                    tracing::warn!(error = %e, "could not take from the rate-limit budget");
                    return self
                        .defer(
                            record,
                            message,
                            round,
                            fairness::busy_delay(),
                            "rate_limited",
                        )
                        .await;
                }
            }
        }

        // The body sent: the event, or what the subscriber's transform makes of it, made only
        // once the delivery is going out (a deferred one would make it again). A transform
        // that fails ends the delivery (retrying would fail the same way); it is
        // dead-lettered, so a redrive after the program is fixed sends it. A sandbox that
        // could not run it at all is ours to fix, not the tenant's: the delivery is retried
        // on its schedule (and dead-lettered only when every attempt found it so). A probe
        // that ends either way leaves the breaker half-open until its lease runs out, then
        // another probes.
        let body = match &subscriber.transform {
            None => message.webhook_body(),
            Some(program) => match self
                .sandbox
                .run(
                    &message.tenant,
                    program,
                    &String::from_utf8_lossy(&message.webhook_body()),
                )
                .await
            {
                Ok(body) => body.into_bytes(),
                Err(e) if e.is_unavailable() => {
                    drop(slot);
                    tracing::error!(error = %e, "the jq sandbox could not run the subscriber's transform; retrying");
                    let reason = format!("{SANDBOX_UNAVAILABLE}: {e}");
                    self.set_status(message, DeliveryState::Retrying, attempt, None, &reason)
                        .await;
                    return self
                        .retry_or_give_up(record, raw_body, message, round, &reason)
                        .await;
                }
                Err(e) => {
                    return self
                        .transform_failed(raw_body, message, &subscriber, attempt, &e)
                        .await;
                }
            },
        };

        let started_at = Utc::now();
        let clock = Instant::now();
        let result = self
            .post(
                &subscriber,
                message,
                body,
                &signing,
                secrets.headers.as_ref(),
                started_at.timestamp(),
            )
            .await;
        // The cap is on requests to the endpoint; logging the attempt is not one.
        drop(slot);
        let latency_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        metrics::latency(&message.tenant, latency_ms);
        let success = result.status.is_some_and(|s| (200..300).contains(&s));
        let error = if success {
            None
        } else {
            Some(result.error.clone().unwrap_or_else(|| match result.status {
                Some(s) if (300..400).contains(&s) => {
                    format!("HTTP {s}: redirects are not followed")
                }
                Some(s) => format!("HTTP {s}"),
                None => "no response".to_string(),
            }))
        };
        let record_entry = AttemptRecord {
            event_id: message.event_id.clone(),
            tenant: message.tenant.clone(),
            subscriber_id: message.subscriber_id.clone(),
            event_type: message.event_type.clone(),
            attempt,
            outcome: if success {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            status_code: result.status,
            latency_ms,
            error: error.clone(),
            response_body: result.body.clone(),
            url: subscriber.url.to_string(),
            started_at,
            finished_at: Utc::now(),
        };

        if success {
            tracing::info!(status = result.status, latency_ms, "delivered");
            metrics::record(&message.tenant, metrics::Event::Delivered);
            self.log(&record_entry, DeliveryState::Delivered).await;
            if probing || !health.is_healthy() {
                self.healed(view, message).await;
            }
            return RecordResult::Done;
        }

        let error_text = error.unwrap_or_default();
        metrics::record(&message.tenant, metrics::Event::Failed);
        let now = (self.clock)();
        if result.status == Some(410) {
            // Gone: the endpoint says it will not come back. Disabled at once; this delivery
            // (its attempt logged) is parked with the others, for if it is enabled again.
            self.log(&record_entry, DeliveryState::Retrying).await;
            self.disable(&subscriber, DisabledReason::Gone, &error_text, now)
                .await;
            return self.park_after(record, raw_body, message, attempt).await;
        }
        if let Some(reason) = self
            .failed(view, message, &subscriber, probing, &error_text, now)
            .await
        {
            self.disable(&subscriber, reason, &error_text, now).await;
        }
        let retry_after = match result.status {
            Some(429) | Some(503) => result.retry_after,
            _ => None,
        };
        match self.policy.decide_random(round, retry_after) {
            RetryDecision::Retry(delay) => {
                tracing::warn!(
                    status = result.status,
                    error = %error_text,
                    latency_ms,
                    next_attempt_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "delivery failed; will retry"
                );
                self.log(&record_entry, DeliveryState::Retrying).await;
                metrics::record(&message.tenant, metrics::Event::Retried);
                self.schedule_retry(record, round, Some(delay)).await
            }
            RetryDecision::GiveUp => {
                tracing::error!(
                    status = result.status,
                    error = %error_text,
                    "delivery failed on its last attempt; dead-lettering"
                );
                self.log(&record_entry, DeliveryState::Failed).await;
                self.dead_letter_message(
                    raw_body,
                    message,
                    attempt,
                    &format!("attempts_exhausted: {error_text}"),
                )
                .await
            }
        }
    }

    async fn post(
        &self,
        subscriber: &Subscriber,
        message: &DeliveryMessage,
        body: Vec<u8>,
        secrets: &[skyhook_domain::secret::SigningSecret],
        // The custom header values, kept with the secret; `None` for a subscriber saved
        // before they were, whose record holds them.
        headers: Option<&BTreeMap<String, String>>,
        timestamp: i64,
    ) -> HttpResult {
        // A subscriber saved in local mode, or written past the API, is held to the rules of
        // this deployment here; no connection is made. (In local mode every stored URL
        // already passed the local rules when it was saved.)
        if !self.url_policy.allow_insecure
            && let Err(e) = SubscriberUrl::parse(subscriber.url.as_str(), self.url_policy)
        {
            return HttpResult {
                status: None,
                error: Some(format!("{}: {e}", e.code())),
                body: None,
                retry_after: None,
            };
        }
        let mut request = self
            .http
            .post(subscriber.url.as_url().clone())
            .header(http_header::CONTENT_TYPE, "application/json")
            .header(CORRELATION_HEADER, &message.correlation_id);
        for (name, value) in headers.unwrap_or(&subscriber.headers) {
            if !RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str())
                && value != MASKED_VALUE
            {
                request = request.header(name, value);
            }
        }
        for (name, value) in delivery_headers(
            subscriber.signature_scheme,
            secrets,
            message.event_id.as_str(),
            timestamp,
            &body,
        ) {
            request = request.header(name, value);
        }
        let response = match request.body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                return HttpResult {
                    status: None,
                    error: Some(describe_error(&e, Some(self.http_timeout))),
                    body: None,
                    retry_after: None,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(http_header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, Utc::now()));
        let (body, error) = read_limited(response, MAX_LOGGED_BODY_BYTES).await;
        HttpResult {
            status: Some(status),
            error,
            body: Some(body).filter(|b| !b.is_empty()),
            retry_after,
        }
    }

    /// Ends a delivery whose transform failed: the attempt is logged (no request was made),
    /// the status is `failed` with reason `transform_failed`, and the message goes to the
    /// dead-letter queue.
    async fn transform_failed(
        &self,
        raw_body: &str,
        message: &DeliveryMessage,
        subscriber: &Subscriber,
        attempt: u32,
        err: &JqError,
    ) -> RecordResult {
        let reason = format!("{TRANSFORM_FAILED}: {err}");
        tracing::warn!(error = %err, "the subscriber's transform failed; dead-lettering");
        let now = Utc::now();
        let entry = AttemptRecord {
            event_id: message.event_id.clone(),
            tenant: message.tenant.clone(),
            subscriber_id: message.subscriber_id.clone(),
            event_type: message.event_type.clone(),
            attempt,
            outcome: Outcome::Failure,
            status_code: None,
            latency_ms: 0,
            error: Some(reason.clone()),
            response_body: None,
            url: subscriber.url.to_string(),
            started_at: now,
            finished_at: now,
        };
        self.log(&entry, DeliveryState::Failed).await;
        self.dead_letter_message(raw_body, message, attempt, &reason)
            .await
    }

    async fn log(&self, entry: &AttemptRecord, state: DeliveryState) {
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

    async fn set_status(
        &self,
        message: &DeliveryMessage,
        state: DeliveryState,
        attempts: u32,
        code: Option<u16>,
        error: &str,
    ) {
        let status = DeliveryStatus {
            subscriber_id: message.subscriber_id.clone(),
            status: state,
            attempts,
            last_status_code: code,
            last_error: Some(error.to_string()),
            updated_at: Some(Utc::now()),
        };
        if let Err(e) = self
            .log
            .set_status(&message.tenant, &message.event_id, &status)
            .await
        {
            tracing::error!(error = %e, "could not write the delivery status");
        }
    }

    fn dead_letter_info(
        &self,
        message: &DeliveryMessage,
        attempts: u32,
        reason: &str,
    ) -> DeadLetter {
        DeadLetter {
            reason: reason.to_string(),
            event_id: Some(message.event_id.to_string()),
            subscriber_id: Some(message.subscriber_id.to_string()),
            tenant: Some(message.tenant.to_string()),
            attempts,
        }
    }

    /// Dead-letters a parsed message and adds it to the tenant's dead-letter index, which
    /// `GET /v1/dlq` lists. An index write that fails is logged: the message is safe in the
    /// DLQ and a redrive still finds it there.
    async fn dead_letter_message(
        &self,
        raw_body: &str,
        message: &DeliveryMessage,
        attempts: u32,
        reason: &str,
    ) -> RecordResult {
        let why = self.dead_letter_info(message, attempts, reason);
        let result = self.dead_letter_or_retry(raw_body, &why).await;
        if result == RecordResult::Done {
            let entry = DeadLetterEntry {
                tenant: message.tenant.clone(),
                event_id: message.event_id.clone(),
                subscriber_id: message.subscriber_id.clone(),
                event_type: message.event_type.clone(),
                reason: reason.to_string(),
                attempts,
                dead_at: Utc::now(),
                message: None,
            };
            if let Err(e) = self.dead_letters.put(&entry).await {
                tracing::error!(error = %e, "could not index the dead letter");
            }
            if reason.starts_with("attempts_exhausted") {
                metrics::record(&message.tenant, metrics::Event::Exhausted);
                self.emit(
                    OpsEvent::new(
                        OpsEventKind::DeliveryExhausted,
                        &message.tenant,
                        &message.subscriber_id,
                        reason,
                        Utc::now(),
                    )
                    .with_event(&message.event_id),
                )
                .await;
            }
        }
        result
    }

    /// Puts an operational event on the bus; a failure is logged, never the delivery's.
    async fn emit(&self, event: OpsEvent) {
        if let Err(e) = self.ops.emit(&event).await {
            tracing::error!(error = %e, ops_event = event.kind.as_str(), "could not put the operational event on the bus");
        }
    }

    /// A success after failures: the subscriber is healthy again, and an open or half-open
    /// breaker closes.
    async fn healed(&self, view: &Result<DirectoryView, StoreError>, message: &DeliveryMessage) {
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
                        (self.clock)(),
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
    async fn failed(
        &self,
        view: &Result<DirectoryView, StoreError>,
        message: &DeliveryMessage,
        subscriber: &Subscriber,
        probing: bool,
        error: &str,
        now: chrono::DateTime<Utc>,
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
            match self.health.open(tenant, id, now, cooldown).await {
                Ok(true) => {
                    tracing::warn!(
                        consecutive_failures = health.consecutive_failures,
                        cooldown_s = cooldown.as_secs(),
                        "breaker opened: deliveries to this subscriber wait"
                    );
                    self.emit(OpsEvent::new(
                        OpsEventKind::BreakerOpened,
                        tenant,
                        id,
                        if probing {
                            format!("probe_failed: {error}")
                        } else {
                            format!(
                                "{} consecutive failures: {error}",
                                health.consecutive_failures
                            )
                        },
                        now,
                    ))
                    .await;
                    health.state = BreakerState::Open;
                    health.opened_at = health.opened_at.or(Some(now));
                    health.retry_at = chrono::Duration::from_std(cooldown).ok().map(|c| now + c);
                    health.cooldown = cooldown;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "could not open the breaker"),
            }
        }
        if let Ok(view) = view {
            self.directory
                .note_health(view, tenant, id, Some(health.clone()))
                .await;
        }
        (subscriber.active && self.breaker.disables(&health, now))
            .then_some(DisabledReason::Failing)
    }

    /// Disables the subscriber for `reason`, with an audit record. An edit that raced this
    /// one is read back and disabled in turn; a subscriber already disabled is left as is.
    async fn disable(
        &self,
        subscriber: &Subscriber,
        reason: DisabledReason,
        error: &str,
        now: chrono::DateTime<Utc>,
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
        why: &str,
    ) -> RecordResult {
        let mut later = message.clone();
        later.prior_attempts = message
            .prior_attempts
            .saturating_add(round.saturating_sub(1));
        match self.queue.send_later(&later, delay).await {
            Ok(()) => {
                metrics::record(&message.tenant, metrics::Event::Deferred);
                tracing::debug!(
                    reason = why,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "delivery deferred"
                );
                RecordResult::Done
            }
            Err(e) => {
                tracing::warn!(error = %e, reason = why, "could not defer the delivery; it waits on the queue instead");
                self.schedule_retry(record, round, Some(delay)).await
            }
        }
    }

    /// Parks a disabled subscriber's message: kept, with the attempts it has had and none
    /// spent now, in the dead-letter index (`GET /v1/dlq` lists it with reason
    /// `subscriber_disabled`), from where enabling the subscriber sends it again. A message too
    /// big for an item goes to the SQS dead-letter queue with the same reason instead, for
    /// `POST /v1/dlq/redrive`.
    async fn park(
        &self,
        record: &SqsMessage,
        raw_body: &str,
        message: &DeliveryMessage,
        round: u32,
    ) -> RecordResult {
        // This round made no attempt; the rounds before it each made one.
        let attempts = message
            .prior_attempts
            .saturating_add(round.saturating_sub(1));
        self.park_after(record, raw_body, message, attempts).await
    }

    /// Parks a message that has had `attempts` attempts.
    async fn park_after(
        &self,
        record: &SqsMessage,
        raw_body: &str,
        message: &DeliveryMessage,
        attempts: u32,
    ) -> RecordResult {
        if raw_body.len() > DeadLetterEntry::MAX_MESSAGE_BYTES {
            return self
                .dead_letter_message(raw_body, message, attempts, PARKED_REASON)
                .await;
        }
        let mut kept = message.clone();
        kept.prior_attempts = attempts;
        let entry = DeadLetterEntry {
            tenant: message.tenant.clone(),
            event_id: message.event_id.clone(),
            subscriber_id: message.subscriber_id.clone(),
            event_type: message.event_type.clone(),
            reason: PARKED_REASON.to_string(),
            attempts,
            dead_at: Utc::now(),
            message: Some(kept.to_json()),
        };
        if let Err(e) = self.dead_letters.put(&entry).await {
            tracing::error!(error = %e, "could not park the delivery; it stays queued");
            return self
                .schedule_retry(record, receive_count(record), Some(fairness::busy_delay()))
                .await;
        }
        // Enabling the subscriber sends its parked messages again. If it was enabled after
        // this batch read the directory but before the entry above was written, that pass
        // may have missed this one: look again, and send it back at once if so.
        match self
            .directory
            .fresh_subscriber(&message.tenant, &message.subscriber_id)
            .await
        {
            Ok(Some(s)) if s.active => {
                let sent = match self.queue.send_batch(std::slice::from_ref(&kept)).await {
                    Ok(r) if r.failed.is_empty() => Ok(()),
                    Ok(r) => Err(r.first_error.unwrap_or_default()),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = sent {
                    tracing::error!(error = %e, "the subscriber was enabled meanwhile, but re-sending its parked delivery failed; enabling it again sends it");
                } else if let Err(e) = self
                    .dead_letters
                    .remove(&message.tenant, &message.event_id, &message.subscriber_id)
                    .await
                {
                    tracing::warn!(error = %e, "could not unpark a re-sent delivery");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not check the subscriber again after parking")
            }
        }
        RecordResult::Done
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

    /// For a round that never reached the subscriber (a backing service failed): retry on the
    /// schedule, or after the last round end it like a failed delivery — status `failed`
    /// and the message in the DLQ — rather than leave it to the redrive policy, which would
    /// keep the status at `retrying` and the DLQ listing empty.
    async fn retry_or_give_up(
        &self,
        record: &SqsMessage,
        raw_body: &str,
        message: &DeliveryMessage,
        round: u32,
        reason: &str,
    ) -> RecordResult {
        if round < self.policy.schedule.max_attempts() {
            return self.schedule_retry(record, round, None).await;
        }
        let attempts = message.prior_attempts.saturating_add(round);
        self.set_status(message, DeliveryState::Failed, attempts, None, reason)
            .await;
        self.dead_letter_message(
            raw_body,
            message,
            attempts,
            &format!("attempts_exhausted: {reason}"),
        )
        .await
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
                // Out of attempts (callers check first, see `retry_or_give_up`): visible
                // again at once, so the redrive policy moves it to the DLQ.
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

/// Reads at most `max` bytes of a response body; the rest is not downloaded.
async fn read_limited(mut response: reqwest::Response, max: usize) -> (String, Option<String>) {
    let mut buf = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                buf.extend_from_slice(&chunk);
                if buf.len() >= max {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                return (
                    truncate_utf8(buf, max),
                    Some(format!(
                        "reading the response failed: {}",
                        describe_error(&e, None)
                    )),
                );
            }
        }
    }
    (truncate_utf8(buf, max), None)
}

use reqwest::header as http_header;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_never_splits_a_utf8_character() {
        let s = "é".repeat(3000).into_bytes();
        let out = truncate_utf8(s, 4095);
        assert!(out.len() <= 4095);
        assert!(out.chars().all(|c| c == 'é'));
    }

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

    #[test]
    fn config_names_missing_and_malformed_variables() {
        let mut env = std::collections::HashMap::new();
        env.insert("SKYHOOK_TABLE", "t");
        env.insert("SKYHOOK_QUEUE_URL", "q");
        assert_eq!(Config::from_env(&env).unwrap_err().name, config::DLQ_URL);
        env.insert("SKYHOOK_DLQ_URL", "d");
        let c = Config::from_env(&env).unwrap();
        assert_eq!(c.http_timeout, Duration::from_secs(15));
        assert_eq!(c.retry_schedule.max_attempts(), 8);
        assert!(!c.local_mode);
        assert_eq!(c.rotation_grace, Duration::from_secs(24 * 3600));
        env.insert("SKYHOOK_LOCAL_MODE", "true");
        env.insert("SKYHOOK_SECRET_ROTATION_GRACE", "10m");
        let c = Config::from_env(&env).unwrap();
        assert!(c.local_mode);
        assert_eq!(c.rotation_grace, Duration::from_secs(600));
        env.insert("SKYHOOK_SECRET_ROTATION_GRACE", "soon");
        assert_eq!(
            Config::from_env(&env).unwrap_err().name,
            config::ROTATION_GRACE
        );
        env.remove("SKYHOOK_SECRET_ROTATION_GRACE");
        env.insert("SKYHOOK_RETRY_SCHEDULE", "5s,forever");
        assert_eq!(
            Config::from_env(&env).unwrap_err().name,
            config::RETRY_SCHEDULE
        );
        // 27 × 12 h could outlive the queue's 14-day retention: refused at start-up.
        let too_long = vec!["12h"; 27].join(",");
        env.insert("SKYHOOK_RETRY_SCHEDULE", &too_long);
        let err = Config::from_env(&env).unwrap_err();
        assert_eq!(err.name, config::RETRY_SCHEDULE);
        assert!(err.to_string().contains("retention"), "{err}");
    }

    #[test]
    fn required_env_is_exactly_what_config_needs() {
        let all: std::collections::HashMap<&str, &str> =
            REQUIRED_ENV.iter().map(|name| (*name, "set")).collect();
        assert!(Config::from_env(&all).is_ok());
        for missing in REQUIRED_ENV {
            let mut env = all.clone();
            env.remove(missing);
            let err = Config::from_env(&env).unwrap_err();
            assert!(err.to_string().contains(missing), "{err}");
        }
    }
}
