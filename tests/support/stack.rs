//! One test's private Skyhook ([`Stack`]): its own resources in the emulator, and the four
//! functions wired over them as their `main`s wire them, called in process. What it is built
//! with ([`StackOptions`]), and the settings every stack shares (the admin key, the tenants'
//! limits, the jq sandbox).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use axum::Router;

use skyhook_aws::{Adapters, Provisioned};
use skyhook_cli::streams::{StartingPosition, StreamPoller};
use skyhook_delivery::Deliverer;
use skyhook_domain::publish::Publisher;
use skyhook_domain::retry::RetrySchedule;
use skyhook_ingest::IngestState;

use crate::RecordingQueue;
use crate::aws::{StackResources, Wiring, sdk_config_at, start_recorder};
use crate::recorder::CallRecorder;

pub const ADMIN_KEY: &str = "sk_test_admin_0123456789abcdef";

#[derive(Clone, Debug)]
pub struct StackOptions {
    pub schedule: String,
    pub http_timeout: Duration,
    pub jitter: f64,
    /// How long the previous secret signs after a rotation.
    pub rotation_grace: Duration,
    /// How long the delivery function caches a subscriber's secrets.
    pub secret_cache_ttl: Duration,
    /// Where the stack's AWS clients send their calls; `None` is `AWS_ENDPOINT_URL`.
    pub endpoint: Option<String>,
    /// The circuit breaker's settings.
    pub breaker: skyhook_domain::breaker::BreakerPolicy,
    /// An EventBridge bus for operational events, with a rule that copies them to a queue
    /// the test reads ([`Stack::ops_events`]).
    pub ops_bus: bool,
    /// The bootstrap admin key in a Secrets Manager secret, as a deployment keeps it,
    /// rather than in the functions' settings.
    pub admin_key_in_secret: bool,
    /// Tenants' publish limits unless they have their own: high, so only the tests of
    /// limits meet them.
    pub tenant_limits: skyhook_domain::tenants::TenantLimits,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            schedule: "1s,1s".to_string(),
            http_timeout: Duration::from_secs(5),
            jitter: 0.2,
            rotation_grace: Duration::from_secs(24 * 3600),
            secret_cache_ttl: Duration::from_secs(60),
            endpoint: None,
            breaker: skyhook_domain::breaker::BreakerPolicy::default(),
            ops_bus: false,
            admin_key_in_secret: false,
            tenant_limits: generous_limits(),
        }
    }
}

/// One test's private Skyhook: resources in the emulator plus the handlers over them.
pub struct Stack {
    pub sdk: SdkConfig,
    /// How long each call of the delivery handler took, in order.
    pub invocations: Arc<Mutex<Vec<Duration>>>,
    /// The adapters every handler of this stack uses (the queue is the recording one).
    pub adapters: Adapters,
    /// The table's change stream, read by the stats consumer when asked.
    pub(crate) stream: tokio::sync::Mutex<StreamPoller>,
    pub resources: Provisioned,
    /// The queue a rule copies the stack's operational events to (with `ops_bus`).
    pub ops_queue_url: Option<String>,
    pub sqs: aws_sdk_sqs::Client,
    pub ddb: aws_sdk_dynamodb::Client,
    pub secrets_client: aws_sdk_secretsmanager::Client,
    pub secret_prefix: String,
    /// Where the inbound sources' secrets of this stack live.
    pub source_secret_prefix: String,
    pub queue: Arc<RecordingQueue>,
    pub publisher: Publisher,
    pub deliverer: Deliverer,
    pub ingest: Router,
    pub api: Router,
    pub api_config: skyhook_api::Config,
    /// The EventBridge ingest's publisher (`skyhook_ingest::handle_eventbridge`).
    pub events_publisher: Publisher,
    /// The adapters of the HTTP ingest and of the EventBridge ingest, as those functions
    /// hold them (their calls are theirs in the IAM record).
    pub ingest_adapters: Adapters,
    pub events_adapters: Adapters,
    /// The stats function's counters, and the delivery event source's queue client.
    pub stats_counters: Arc<dyn skyhook_domain::ports::StatsCounters>,
    pub(crate) delivery_sqs: aws_sdk_sqs::Client,
    /// Records what each function does in AWS (with `SKYHOOK_IAM_RECORD`).
    pub recorder: Option<CallRecorder>,
}

impl Stack {
    pub async fn new() -> Self {
        Self::with(StackOptions::default()).await
    }

    pub async fn with(options: StackOptions) -> Self {
        let sdk = sdk_config_at(options.endpoint.as_deref()).await;
        let schedule = RetrySchedule::parse(&options.schedule).expect("test schedule");
        let own = StackResources::provision(&sdk, &options, schedule.max_attempts()).await;
        let recorder = start_recorder(&sdk, &own).await;
        let wiring = Wiring::new(&sdk, recorder.as_ref(), &own, options.rotation_grace);
        let api_config = api_config(&own, &options);
        // The API sends re-enqueued messages straight to SQS, as in AWS; only the delivery
        // side and the ingests record what they ask of the queue.
        let api = api_router(&wiring.adapters(&wiring.api), &api_config);
        let ingest_adapters = wiring.recording(&wiring.ingest_http);
        let events_adapters = wiring.recording(&wiring.ingest_events);
        let events_publisher =
            events_adapters.publisher(Arc::new(jq_sandbox().sandbox()), options.tenant_limits);
        let (ingest, publisher) = ingest_router(&ingest_adapters, &own, &options);
        let deliverer = deliverer(&wiring, &own, &options, schedule);
        // Lambda's stream and queue event sources read with their function's role.
        let stream = StreamPoller::start(
            aws_sdk_dynamodbstreams::Client::new(&wiring.stats),
            &own.resources.stream_arn,
            StartingPosition::TrimHorizon,
        )
        .await
        .expect("reading the table's stream");
        Stack {
            // The test's own view of everything, outside any function.
            adapters: wiring.recording(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            ddb: aws_sdk_dynamodb::Client::new(&sdk),
            secrets_client: aws_sdk_secretsmanager::Client::new(&sdk),
            sdk,
            invocations: Arc::default(),
            stats_counters: wiring.adapters(&wiring.stats).stats,
            delivery_sqs: aws_sdk_sqs::Client::new(&wiring.delivery),
            queue: wiring.queue,
            events_publisher,
            ingest_adapters,
            events_adapters,
            recorder,
            stream: tokio::sync::Mutex::new(stream),
            ops_queue_url: own.ops.map(|(_, url)| url),
            resources: own.resources,
            secret_prefix: own.secret_prefix,
            source_secret_prefix: own.source_secret_prefix,
            publisher,
            deliverer,
            ingest,
            api,
            api_config,
        }
    }

    /// The API over other adapters (a queue that fails, say), with the stack's settings.
    pub fn api_with(&self, adapters: &Adapters) -> Router {
        api_router(adapters, &self.api_config)
    }
}

fn api_router(adapters: &Adapters, config: &skyhook_api::Config) -> Router {
    skyhook_http::with_fallbacks(skyhook_api::router(Arc::new(skyhook_api::ApiState::new(
        adapters, config,
    ))))
}

/// The management API's settings for a stack's resources.
fn api_config(own: &StackResources, options: &StackOptions) -> skyhook_api::Config {
    skyhook_api::Config {
        table: own.resources.table.clone(),
        stats_table: own.resources.stats_table.clone(),
        queue_url: own.resources.queue_url.clone(),
        dlq_url: own.resources.dlq_url.clone(),
        secret_prefix: own.secret_prefix.clone(),
        log_retention: Duration::from_secs(3600),
        audit_retention: Duration::from_secs(3600),
        rotation_grace: options.rotation_grace,
        admin_key: own.admin_key(),
        local_mode: true,
        event_bus: own.event_bus(),
        transform: jq_sandbox(),
        tenant_limits: options.tenant_limits,
        source_secret_prefix: own.source_secret_prefix.clone(),
        keyring_secret: own.resources.keyring_secret.clone(),
    }
}

/// The HTTP ingest as its `main` builds it (`IngestState::new` from a `Config`), over its
/// adapters; its publisher is the stack's.
fn ingest_router(
    adapters: &Adapters,
    own: &StackResources,
    options: &StackOptions,
) -> (Router, Publisher) {
    let config = skyhook_ingest::Config {
        table: own.resources.table.clone(),
        queue_url: own.resources.queue_url.clone(),
        max_payload_bytes: 256 * 1024,
        log_retention: Duration::from_secs(3600),
        admin_key: Some(own.admin_key()),
        eventbridge_tenant: skyhook_domain::ids::TenantId::default_tenant(),
        sandbox: jq_sandbox(),
        tenant_limits: options.tenant_limits,
        source_secret_prefix: own.source_secret_prefix.clone(),
        keyring_secret: own.resources.keyring_secret.clone(),
    };
    let state = IngestState::new(adapters, &config).expect("the ingest's admin key source");
    let publisher = state.publisher.clone();
    let router = skyhook_http::with_fallbacks(skyhook_ingest::router(Arc::new(state)));
    (router, publisher)
}

/// The delivery function as its `main` builds it, over the recording queue.
fn deliverer(
    wiring: &Wiring,
    own: &StackResources,
    options: &StackOptions,
    schedule: RetrySchedule,
) -> Deliverer {
    let config = skyhook_delivery::Config {
        table: own.resources.table.clone(),
        queue_url: own.resources.queue_url.clone(),
        dlq_url: own.resources.dlq_url.clone(),
        secret_prefix: own.secret_prefix.clone(),
        keyring_secret: own.resources.keyring_secret.clone(),
        retry_schedule: schedule,
        http_timeout: options.http_timeout,
        log_retention: wiring.retention.log,
        secret_cache_ttl: options.secret_cache_ttl,
        rotation_grace: options.rotation_grace,
        // The receivers are on 127.0.0.1 over http, as in `skyhook local`.
        local_mode: true,
        breaker: options.breaker,
        event_bus: own.event_bus(),
        metrics_namespace: None,
        metrics_tenants: Default::default(),
        transform: jq_sandbox(),
    };
    let mut deliverer = Deliverer::new(&wiring.delivery_adapters(), &config).expect("HTTP client");
    deliverer.policy = deliverer.policy.with_jitter(options.jitter);
    deliverer
}

/// Publish limits no test meets unless it sets lower ones.
pub fn generous_limits() -> skyhook_domain::tenants::TenantLimits {
    skyhook_domain::tenants::TenantLimits::new(
        skyhook_domain::tenants::MAX_EVENTS_PER_SECOND,
        skyhook_domain::tenants::MAX_BURST,
    )
    .expect("valid limits")
}

/// The jq sandbox of the in-process functions: a test binary cannot be its own worker, so
/// they use `skyhook-jq-worker`, built beside the test binaries (in `target/<profile>/`,
/// while the test binaries sit in its `deps/`).
pub fn jq_sandbox() -> skyhook_process::SandboxSettings {
    let worker = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .skip(1)
                .take(2)
                .map(|dir| dir.join("skyhook-jq-worker"))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| std::path::PathBuf::from("skyhook-jq-worker"));
    skyhook_process::SandboxSettings {
        limits: skyhook_process::SandboxLimits::default(),
        worker: Some(worker),
    }
}
