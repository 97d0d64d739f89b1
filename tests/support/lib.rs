//! Helpers shared by the integration tests: clients for the AWS API emulator, a freshly
//! provisioned stack per test (its own table, queues and secret prefix, so tests run in
//! parallel), a scriptable webhook receiver on `127.0.0.1:0`, and a delivery runner that
//! polls SQS like Lambda's event source mapping and calls the real delivery handler.

use recorder::CallRecorder;

pub mod iam;
pub mod meter;
pub mod prices;
pub mod recorder;
pub mod samples;
pub mod template;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

use skyhook_aws::{
    Adapters, Provisioned, ResourceNames, Resources, Retention, SqsDeliveryQueue, provision,
};
use skyhook_cli::sqs_poller::{SqsHandler, SqsPoller, handler};
use skyhook_cli::streams::{StartingPosition, StreamPoller, stream_handler};
use skyhook_delivery::Deliverer;
use skyhook_domain::config::AdminKeySource;
use skyhook_domain::model::DeliveryMessage;
use skyhook_domain::ports::{BatchSendResult, DeadLetter, DeliveryQueue, StoreError};
use skyhook_domain::publish::Publisher;
use skyhook_domain::retry::RetrySchedule;
use skyhook_domain::secret::SigningSecret;
use skyhook_http::Authenticator;
use skyhook_ingest::IngestState;

pub const ADMIN_KEY: &str = "sk_test_admin_0123456789abcdef";

/// SDK configuration pointing at the emulator. Integration tests never skip: without an
/// emulator they fail and say how to run them.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_at(None).await
}

/// SDK configuration pointing at `endpoint` (a proxy in front of the emulator, say), or at
/// the emulator itself when `None`.
pub async fn sdk_config_at(endpoint: Option<&str>) -> SdkConfig {
    let endpoint = endpoint
        .map(str::to_string)
        .unwrap_or_else(|| std::env::var("AWS_ENDPOINT_URL").unwrap_or_default());
    assert!(
        !endpoint.is_empty(),
        "AWS_ENDPOINT_URL is not set: the integration tests run against an AWS API emulator; \
         run them with `make test`, which starts one"
    );
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_string());
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "skyhook-tests",
        ))
        .load()
        .await
}

/// Serves `app` on `127.0.0.1:0` until the sender is used or dropped; returns the port, the
/// sender and the server's task. The meter, the recorder and the receivers start this way.
pub(crate) async fn serve_on_loopback(
    app: Router,
    what: &str,
) -> (
    u16,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("binding the {what} to 127.0.0.1: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("the {what}'s address: {e}"))
        .port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    (port, tx, task)
}

pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

/// Records what the fan-out and delivery code asked of the real SQS queue.
pub struct RecordingQueue {
    inner: SqsDeliveryQueue,
    pub batch_sizes: Arc<Mutex<Vec<usize>>>,
    pub delays: Arc<Mutex<Vec<Duration>>>,
    pub dead_letters: Arc<Mutex<Vec<DeadLetter>>>,
    /// Deliveries sent again to wait (deferred), with their delay.
    pub deferred: Arc<Mutex<Vec<(DeliveryMessage, Duration)>>>,
}

impl RecordingQueue {
    fn new(inner: SqsDeliveryQueue) -> Self {
        Self {
            inner,
            batch_sizes: Arc::default(),
            delays: Arc::default(),
            dead_letters: Arc::default(),
            deferred: Arc::default(),
        }
    }

    /// Another function's queue client, recording into the same lists.
    fn sharing(&self, inner: SqsDeliveryQueue) -> Self {
        Self {
            inner,
            batch_sizes: self.batch_sizes.clone(),
            delays: self.delays.clone(),
            dead_letters: self.dead_letters.clone(),
            deferred: self.deferred.clone(),
        }
    }
}

#[async_trait]
impl DeliveryQueue for RecordingQueue {
    async fn send_batch(
        &self,
        messages: &[DeliveryMessage],
    ) -> Result<BatchSendResult, StoreError> {
        self.batch_sizes.lock().unwrap().push(messages.len());
        self.inner.send_batch(messages).await
    }

    async fn retry_after(&self, receipt_handle: &str, delay: Duration) -> Result<(), StoreError> {
        self.delays.lock().unwrap().push(delay);
        self.inner.retry_after(receipt_handle, delay).await
    }

    async fn dead_letter(&self, body: &str, why: &DeadLetter) -> Result<(), StoreError> {
        self.dead_letters.lock().unwrap().push(why.clone());
        self.inner.dead_letter(body, why).await
    }

    async fn send_later(
        &self,
        message: &DeliveryMessage,
        delay: Duration,
    ) -> Result<(), StoreError> {
        self.deferred.lock().unwrap().push((message.clone(), delay));
        self.inner.send_later(message, delay).await
    }
}

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
    stream: tokio::sync::Mutex<StreamPoller>,
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
    delivery_sqs: aws_sdk_sqs::Client,
    /// Records what each function does in AWS (with `SKYHOOK_IAM_RECORD`).
    pub recorder: Option<CallRecorder>,
}

fn api_router(adapters: &Adapters, config: &skyhook_api::Config) -> Router {
    skyhook_http::with_fallbacks(skyhook_api::router(Arc::new(skyhook_api::ApiState::new(
        adapters, config,
    ))))
}

impl Stack {
    pub async fn new() -> Self {
        Self::with(StackOptions::default()).await
    }

    /// The operational events the stack put on its bus so far (with `ops_bus`), each as
    /// EventBridge delivers it: `source`, `detail-type`, `detail`.
    pub async fn ops_events(&self) -> Vec<Value> {
        let Some(url) = &self.ops_queue_url else {
            panic!("the stack was built without ops_bus");
        };
        let mut all = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("reading the operational events");
            let batch: Vec<Value> = out
                .messages()
                .iter()
                .filter_map(|m| serde_json::from_str(m.body()?).ok())
                .collect();
            for m in out.messages() {
                if let Some(h) = m.receipt_handle() {
                    let _ = self
                        .sqs
                        .delete_message()
                        .queue_url(url)
                        .receipt_handle(h)
                        .send()
                        .await;
                }
            }
            if batch.is_empty() {
                return all;
            }
            all.extend(batch);
        }
    }

    pub async fn with(options: StackOptions) -> Self {
        let sdk = sdk_config_at(options.endpoint.as_deref()).await;
        let prefix = unique("skyhook-test");
        let schedule = RetrySchedule::parse(&options.schedule).expect("test schedule");
        let resources = provision(
            &sdk,
            &ResourceNames::with_prefix(&prefix),
            schedule.max_attempts(),
        )
        .await
        .expect("provisioning the emulator");
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        let secrets_client = aws_sdk_secretsmanager::Client::new(&sdk);
        let secret_prefix = format!("{prefix}/subscribers/");
        let source_secret_prefix = format!("{prefix}/sources/");
        let ops = if options.ops_bus {
            Some(ops_bus(&sdk, &prefix).await)
        } else {
            None
        };
        let admin_secret = if options.admin_key_in_secret {
            let name = format!("{prefix}/admin-key");
            secrets_client
                .create_secret()
                .name(&name)
                .secret_string(ADMIN_KEY)
                .send()
                .await
                .expect("storing the admin key");
            Some(name)
        } else {
            None
        };
        let admin_key = || match &admin_secret {
            Some(name) => AdminKeySource::Secret(name.clone()),
            None => AdminKeySource::Value(ADMIN_KEY.to_string()),
        };
        // With SKYHOOK_IAM_RECORD set, each function's clients go through a recorder under
        // credentials of their own, so the suite learns what each function does in AWS.
        let recorder = match std::env::var_os(recorder::RECORD_DIR) {
            Some(dir) => Some(
                CallRecorder::start(
                    sdk.endpoint_url().expect("the emulator's endpoint"),
                    std::path::Path::new(&dir),
                    recorder::StackNames {
                        table: resources.table.clone(),
                        stats_table: resources.stats_table.clone(),
                        queue_url: resources.queue_url.clone(),
                        dlq_url: resources.dlq_url.clone(),
                        stream_arn: resources.stream_arn.clone(),
                        secret_prefix: secret_prefix.clone(),
                        source_secret_prefix: source_secret_prefix.clone(),
                        admin_key_secret: admin_secret.clone(),
                        event_bus: ops.as_ref().map(|(bus, _)| bus.clone()),
                    },
                )
                .await,
            ),
            None => None,
        };
        let function_sdk = |function: &str| match &recorder {
            Some(r) => sdk
                .to_builder()
                .endpoint_url(&r.url)
                .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(
                    Credentials::new(
                        recorder::access_key(function),
                        "testing",
                        None,
                        None,
                        "skyhook-tests",
                    ),
                ))
                .build(),
            None => sdk.clone(),
        };
        // The same wiring as the functions and `skyhook local`, one set of adapters per
        // function; the delivery side's and the ingests' queue calls are recorded.
        let resources_config = Resources {
            table: resources.table.clone(),
            stats_table: Some(resources.stats_table.clone()),
            queue_url: resources.queue_url.clone(),
            dlq_url: Some(resources.dlq_url.clone()),
            secret_prefix: secret_prefix.clone(),
            source_secret_prefix: source_secret_prefix.clone(),
            event_bus: ops.as_ref().map(|(bus, _)| bus.clone()),
        };
        let retention = Retention {
            // Inside moto's view: it hides expired items on read.
            log: Duration::from_secs(3600),
            audit: Duration::from_secs(3600),
            rotation_grace: options.rotation_grace,
            idempotency: Duration::from_secs(24 * 3600),
        };
        let adapters_of = |sdk: &SdkConfig| Adapters::from_sdk(sdk, &resources_config, &retention);
        let queue_of = |sdk: &SdkConfig| {
            SqsDeliveryQueue::new(aws_sdk_sqs::Client::new(sdk), &resources.queue_url)
                .with_dead_letter_queue(&resources.dlq_url)
        };
        let (ingest_sdk, events_sdk, api_sdk, delivery_sdk, stats_sdk) = (
            function_sdk("ingest-http"),
            function_sdk("ingest-events"),
            function_sdk("api"),
            function_sdk("delivery"),
            function_sdk("stats"),
        );
        let queue = Arc::new(RecordingQueue::new(queue_of(&delivery_sdk)));
        // The test's own view of everything, outside any function.
        let mut adapters = adapters_of(&sdk);
        adapters.queue = Arc::new(queue.sharing(queue_of(&sdk)));
        let api_config = skyhook_api::Config {
            table: resources.table.clone(),
            stats_table: resources.stats_table.clone(),
            queue_url: resources.queue_url.clone(),
            dlq_url: resources.dlq_url.clone(),
            secret_prefix: secret_prefix.clone(),
            log_retention: Duration::from_secs(3600),
            audit_retention: Duration::from_secs(3600),
            rotation_grace: options.rotation_grace,
            admin_key: admin_key(),
            local_mode: true,
            event_bus: ops.as_ref().map(|(bus, _)| bus.clone()),
            transform: jq_sandbox(),
            tenant_limits: options.tenant_limits,
            source_secret_prefix: source_secret_prefix.clone(),
        };
        // The API sends re-enqueued messages straight to SQS, as in AWS; only the delivery
        // side and the ingests record what they ask of the queue.
        let api = api_router(&adapters_of(&api_sdk), &api_config);
        let mut ingest_adapters = adapters_of(&ingest_sdk);
        ingest_adapters.queue = Arc::new(queue.sharing(queue_of(&ingest_sdk)));
        let publisher =
            ingest_adapters.publisher(Arc::new(jq_sandbox().sandbox()), options.tenant_limits);
        let mut events_adapters = adapters_of(&events_sdk);
        events_adapters.queue = Arc::new(queue.sharing(queue_of(&events_sdk)));
        let events_publisher =
            events_adapters.publisher(Arc::new(jq_sandbox().sandbox()), options.tenant_limits);
        let auth = Arc::new(
            Authenticator::new(admin_key(), Some(ingest_adapters.secret_values.clone()))
                .with_key_store(ingest_adapters.keys.clone()),
        );
        // The delivery function as its `main` builds it, over the recording queue.
        let delivery_config = skyhook_delivery::Config {
            table: resources.table.clone(),
            queue_url: resources.queue_url.clone(),
            dlq_url: resources.dlq_url.clone(),
            secret_prefix: secret_prefix.clone(),
            retry_schedule: schedule,
            http_timeout: options.http_timeout,
            log_retention: retention.log,
            secret_cache_ttl: options.secret_cache_ttl,
            rotation_grace: options.rotation_grace,
            // The receivers are on 127.0.0.1 over http, as in `skyhook local`.
            local_mode: true,
            breaker: options.breaker,
            event_bus: ops.as_ref().map(|(bus, _)| bus.clone()),
            metrics_namespace: None,
            transform: jq_sandbox(),
        };
        let mut delivery = adapters_of(&delivery_sdk);
        delivery.queue = queue.clone();
        let mut deliverer = Deliverer::new(&delivery, &delivery_config).expect("HTTP client");
        deliverer.policy = deliverer.policy.with_jitter(options.jitter);
        let ingest = skyhook_http::with_fallbacks(skyhook_ingest::router(Arc::new(IngestState {
            publisher: publisher.clone(),
            inbound: skyhook_ingest::inbound::Inbound::of(&ingest_adapters),
            auth,
            max_payload_bytes: 256 * 1024,
        })));
        // Lambda's stream and queue event sources read with their function's role.
        let stats_counters = adapters_of(&stats_sdk).stats;
        let stream = StreamPoller::start(
            aws_sdk_dynamodbstreams::Client::new(&stats_sdk),
            &resources.stream_arn,
            StartingPosition::TrimHorizon,
        )
        .await
        .expect("reading the table's stream");
        let delivery_sqs = aws_sdk_sqs::Client::new(&delivery_sdk);
        Stack {
            sdk,
            invocations: Arc::default(),
            adapters,
            stats_counters,
            delivery_sqs,
            events_publisher,
            ingest_adapters,
            events_adapters,
            recorder,
            stream: tokio::sync::Mutex::new(stream),
            resources,
            ops_queue_url: ops.map(|(_, url)| url),
            sqs,
            ddb,
            secrets_client,
            secret_prefix,
            source_secret_prefix,
            queue,
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

    /// Sends one request to a router, as API Gateway would hand it to the Lambda.
    pub async fn send(
        router: &Router,
        method: Method,
        path: &str,
        body: Option<Body>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = http::Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body.unwrap_or_else(Body::empty)).unwrap();
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("non-JSON response: {}", String::from_utf8_lossy(&bytes))
            })
        };
        (status, value)
    }

    const AUTH: (&'static str, &'static str) =
        ("authorization", "Bearer sk_test_admin_0123456789abcdef");

    pub async fn ingest_json(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        Self::send(
            &self.ingest,
            method,
            path,
            Some(Body::from(body.to_string())),
            &[Self::AUTH, ("content-type", "application/json")],
        )
        .await
    }

    pub async fn api_call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        self.api_as(ADMIN_KEY, method, path, body).await
    }

    /// A management call with another key (`""` sends no key at all).
    pub async fn api_as(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        self.api_via(&self.api, key, method, path, body).await
    }

    /// A management call through another router (see [`Stack::api_with`]).
    pub async fn api_via(
        &self,
        router: &Router,
        key: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let auth = format!("Bearer {key}");
        let mut headers = vec![("content-type", "application/json")];
        if !key.is_empty() {
            headers.push(("authorization", auth.as_str()));
        }
        Self::send(
            router,
            method,
            path,
            body.map(|b| Body::from(b.to_string())),
            &headers,
        )
        .await
    }

    /// A publish through the ingest router with another key (`""` sends no key at all).
    pub async fn ingest_as(&self, key: &str, body: &Value) -> (StatusCode, Value) {
        let auth = format!("Bearer {key}");
        let mut headers = vec![("content-type", "application/json")];
        if !key.is_empty() {
            headers.push(("authorization", auth.as_str()));
        }
        Self::send(
            &self.ingest,
            Method::POST,
            "/v1/events",
            Some(Body::from(body.to_string())),
            &headers,
        )
        .await
    }

    /// Creates an API key with the bootstrap key; returns (id, key).
    pub async fn api_key(&self, tenant: &str, role: &str) -> (String, String) {
        let (status, body) = self
            .api_call(
                Method::POST,
                "/v1/api-keys",
                Some(&json!({"tenant": tenant, "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["id"].as_str().unwrap().to_string(),
            body["key"].as_str().unwrap().to_string(),
        )
    }

    /// Walks a list route to its end with `limit`, checking every page; returns all items.
    pub async fn walk(&self, key: &str, path: &str, limit: usize) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..200 {
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
                None => format!("{path}{sep}limit={limit}"),
            };
            let (status, body) = self.api_as(key, Method::GET, &url, None).await;
            assert_eq!(status, StatusCode::OK, "{url}: {body}");
            let data = body["data"].as_array().unwrap();
            assert!(data.len() <= limit, "{url}: page larger than the limit");
            all.extend(data.iter().cloned());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return all,
            }
        }
        panic!("{path}: pagination does not end");
    }

    /// Creates a subscriber through the API; returns its id and signing secret.
    pub async fn subscribe(&self, url: &str, event_types: &[&str]) -> (String, String) {
        let (status, body) = self
            .api_call(
                Method::POST,
                "/v1/subscribers",
                Some(&json!({"url": url, "event_types": event_types})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["id"].as_str().unwrap().to_string(),
            body["secret"].as_str().unwrap().to_string(),
        )
    }

    /// Publishes through `POST /v1/events`; returns the `202` body.
    pub async fn publish(&self, event: Value) -> Value {
        let (status, body) = self.ingest_json(Method::POST, "/v1/events", &event).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body
    }

    pub async fn event_status(&self, id: &str) -> Value {
        let (status, body) = self
            .api_call(Method::GET, &format!("/v1/events/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// The delivery function as the poller calls it; every call's duration is recorded in
    /// [`Stack::invocations`] (what Lambda would bill).
    pub fn delivery_handler(&self) -> SqsHandler {
        let deliverer = self.deliverer.clone();
        let invocations = self.invocations.clone();
        handler(move |event| {
            let (deliverer, invocations) = (deliverer.clone(), invocations.clone());
            async move {
                let started = Instant::now();
                let result = skyhook_delivery::handle(&deliverer, event).await;
                invocations.lock().unwrap().push(started.elapsed());
                result
            }
        })
    }

    pub fn poller(&self) -> SqsPoller {
        SqsPoller::new(self.delivery_sqs.clone(), &self.resources.queue_url)
            .with_wait_time(Duration::from_secs(1))
    }

    /// Runs the stats consumer over everything the table's stream holds now, as Lambda's
    /// stream event source would shortly after; returns how many records it read.
    pub async fn settle_stats(&self) -> usize {
        let counters = self.stats_counters.clone();
        let handler = stream_handler(move |event| {
            let counters = counters.clone();
            async move { skyhook_delivery::stats::handle(&counters, event).await }
        });
        self.stream
            .lock()
            .await
            .drain(&handler)
            .await
            .expect("the stats consumer failed")
    }

    /// Starts polling the delivery queue in the background, like the event source mapping.
    pub fn start_delivery(&self) -> DeliveryRunner {
        self.start_delivery_with(self.poller())
    }

    /// [`Stack::start_delivery`] with batches gathered as an event source with a batching
    /// window does (up to `size` messages within `window`), and 20-second long polls as
    /// Lambda makes them.
    pub fn start_batched_delivery(&self, size: usize, window: Duration) -> DeliveryRunner {
        self.start_delivery_with(
            self.poller()
                .with_batch_size(size)
                .with_batching_window(window)
                .with_wait_time(Duration::from_secs(20)),
        )
    }

    fn start_delivery_with(&self, poller: SqsPoller) -> DeliveryRunner {
        let (stop, rx) = watch::channel(false);
        let handler = self.delivery_handler();
        // One consumer: a message is never in two handlers at once, so a test sees each
        // attempt once (SQS may still redeliver; the tests allow for that by webhook-id).
        let task = tokio::spawn(async move { poller.run(handler, 1, rx).await });
        DeliveryRunner { stop, task }
    }

    /// Visible plus in-flight messages of a queue.
    pub async fn queue_depth(&self, url: &str) -> usize {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let attrs = out.attributes().cloned().unwrap_or_default();
        [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .map(|k| {
            attrs
                .get(k)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0)
        })
        .sum()
    }

    /// Receives (and leaves) up to 10 messages of the DLQ.
    /// Takes every message waiting in the delivery queue out of it; returns their bodies.
    pub async fn take_queued(&self) -> Vec<String> {
        let mut taken = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.resources.queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .send()
                .await
                .expect("receiving from the delivery queue");
            if out.messages().is_empty() {
                return taken;
            }
            for m in out.messages() {
                self.sqs
                    .delete_message()
                    .queue_url(&self.resources.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("deleting from the delivery queue");
                taken.push(m.body().unwrap_or_default().to_string());
            }
        }
    }

    /// Moves every message waiting in the delivery queue to the dead-letter queue without
    /// attributes, as the queue's redrive policy does when receives run out; returns the
    /// bodies moved.
    pub async fn move_queued_to_dlq(&self) -> Vec<String> {
        let moved = self.take_queued().await;
        for body in &moved {
            self.sqs
                .send_message()
                .queue_url(&self.resources.dlq_url)
                .message_body(body)
                .send()
                .await
                .expect("sending to the DLQ");
        }
        moved
    }

    pub async fn dlq_messages(&self) -> Vec<aws_sdk_sqs::types::Message> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.resources.dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        out.messages().to_vec()
    }

    /// Every item of this stack's table but the audit trail and the subscriber directory's
    /// bookkeeping (routes, version), which record the test's own set-up (tests use it to
    /// prove a refused request wrote nothing).
    pub async fn table_items(&self) -> usize {
        let out = self
            .ddb
            .scan()
            .table_name(&self.resources.table)
            .filter_expression(
                "attribute_not_exists(kind) OR NOT (kind IN (:audit, :route, :directory, :rate))",
            )
            // A tenant's publish bucket is bookkeeping too (see `tests/it/bad_input.rs`).
            .expression_attribute_values(
                ":rate",
                aws_sdk_dynamodb::types::AttributeValue::S("publish_rate".into()),
            )
            .expression_attribute_values(
                ":audit",
                aws_sdk_dynamodb::types::AttributeValue::S("audit".into()),
            )
            .expression_attribute_values(
                ":route",
                aws_sdk_dynamodb::types::AttributeValue::S("route".into()),
            )
            .expression_attribute_values(
                ":directory",
                aws_sdk_dynamodb::types::AttributeValue::S("directory".into()),
            )
            .send()
            .await
            .unwrap();
        out.items().len()
    }

    pub async fn secret_count(&self) -> usize {
        let out = self
            .secrets_client
            .list_secrets()
            .filters(
                aws_sdk_secretsmanager::types::Filter::builder()
                    .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                    .values(&self.secret_prefix)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.secret_list().len()
    }
}

pub struct DeliveryRunner {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl DeliveryRunner {
    /// Stops polling after in-flight batches finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(30), &mut task)
            .await
            .is_err()
        {
            // Left running, it would race whatever the test checks next.
            task.abort();
            panic!("the delivery runner did not stop within 30 s");
        }
    }
}

/// What the receiver answers to one request.
#[derive(Clone, Debug)]
pub enum Reply {
    Status(u16),
    WithHeaders(u16, Vec<(&'static str, String)>),
    /// Waits before answering, to provoke a timeout.
    Slow(Duration, u16),
    /// Answers with this body, as a real receiver would say `{"ok":true}`.
    Body(u16, &'static str),
}

#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }

    /// The delivery's id: `webhook-id`, or `x-webhook-id` under the legacy schemes.
    pub fn id(&self) -> &str {
        match self.header("webhook-id") {
            "" => self.header("x-webhook-id"),
            id => id,
        }
    }

    /// Checks the Standard Webhooks signature against `secret`, twice: with Skyhook's own
    /// code and with the official `standardwebhooks` library, which must agree.
    pub fn verify(&self, secret: &str) -> Result<(), skyhook_domain::signing::VerifyError> {
        let parsed = SigningSecret::parse(secret).expect("secret");
        let ours = skyhook_domain::signing::verify(
            &parsed,
            self.header("webhook-id"),
            self.header("webhook-timestamp"),
            self.header("webhook-signature"),
            &self.body,
            chrono::Utc::now().timestamp(),
        );
        let theirs = standardwebhooks::Webhook::new(secret)
            .expect("the official library takes the secret")
            .verify(&self.body, &self.headers);
        assert_eq!(
            ours.is_ok(),
            theirs.is_ok(),
            "Skyhook's verify ({ours:?}) and the standardwebhooks crate ({theirs:?}) disagree"
        );
        ours
    }
}

struct ReceiverState {
    script: Mutex<VecDeque<Reply>>,
    /// With [`Receiver::per_id`]: how many requests each delivery id made so far.
    per_id: Mutex<Option<HashMap<String, usize>>>,
    /// Requests being answered right now, and the most there ever were at once.
    in_flight: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
    then: Reply,
    requests: Mutex<Vec<Received>>,
    notify: Notify,
}

/// A webhook receiver on `127.0.0.1:0` answering from a script, then with `then`.
pub struct Receiver {
    pub port: u16,
    state: Arc<ReceiverState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Receiver {
    pub async fn start(script: Vec<Reply>, then: Reply) -> Self {
        let state = Arc::new(ReceiverState {
            script: Mutex::new(script.into()),
            per_id: Mutex::default(),
            in_flight: Default::default(),
            peak: Default::default(),
            then,
            requests: Mutex::default(),
            notify: Notify::new(),
        });
        let app_state = state.clone();
        let app = Router::new().fallback(move |req: Request| {
            let state = app_state.clone();
            async move { receive(state, req).await }
        });
        let (port, tx, _) = serve_on_loopback(app, "receiver").await;
        Receiver {
            port,
            state,
            shutdown: Some(tx),
        }
    }

    /// Always answers `status`.
    pub async fn always(status: u16) -> Self {
        Self::start(vec![], Reply::Status(status)).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.state.requests.lock().unwrap().clone()
    }

    /// A receiver whose script is per delivery: the n-th request carrying a given
    /// `webhook-id` gets `script[n]`, then `then`. A duplicate of one delivery never takes
    /// another's reply; with one consumer, the n-th request of an id is its n-th attempt.
    pub async fn per_id(script: Vec<Reply>, then: Reply) -> Self {
        let receiver = Self::start(script, then).await;
        *receiver.state.per_id.lock().unwrap() = Some(HashMap::new());
        receiver
    }

    /// The most requests this receiver was answering at the same moment.
    pub fn peak_in_flight(&self) -> usize {
        self.state.peak.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The distinct delivery ids received so far: what a test compares with what it
    /// expects, since at-least-once delivery may bring any of them twice.
    pub fn ids(&self) -> std::collections::BTreeSet<String> {
        self.requests().iter().map(|r| r.id().to_string()).collect()
    }

    /// The requests so far by delivery id (`webhook-id`), each id's in arrival order.
    pub fn by_id(&self) -> BTreeMap<String, Vec<Received>> {
        let mut out: BTreeMap<String, Vec<Received>> = BTreeMap::new();
        for r in self.requests() {
            out.entry(r.id().to_string()).or_default().push(r);
        }
        out
    }

    /// Waits until every id in `ids` arrived at least once; returns the requests by id.
    /// Panics after `timeout`, naming what is missing.
    pub async fn wait_for_ids(
        &self,
        ids: &[&str],
        timeout: Duration,
    ) -> BTreeMap<String, Vec<Received>> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.state.notify.notified();
            let got = self.by_id();
            let missing: Vec<&&str> = ids.iter().filter(|id| !got.contains_key(**id)).collect();
            if missing.is_empty() {
                return got;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "receiver still misses {missing:?} after {timeout:?} (got {:?})",
                got.keys().collect::<Vec<_>>()
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }

    /// Waits for the first request that `matches`; panics after `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        matches: impl Fn(&Received) -> bool,
    ) -> Received {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.state.notify.notified();
            if let Some(r) = self.requests().into_iter().find(|r| matches(r)) {
                return r;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no request with {what} within {timeout:?} ({} others)",
                self.requests().len()
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }

    /// Waits until at least `n` requests arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.state.notify.notified();
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "receiver got {} of {n} requests within {timeout:?}",
                got.len()
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn receive(state: Arc<ReceiverState>, req: Request) -> Response {
    use std::sync::atomic::Ordering::SeqCst;
    let now = state.in_flight.fetch_add(1, SeqCst) + 1;
    state.peak.fetch_max(now, SeqCst);
    let response = answer(&state, req).await;
    state.in_flight.fetch_sub(1, SeqCst);
    response
}

async fn answer(state: &ReceiverState, req: Request) -> Response {
    let at = Instant::now();
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let reply = {
        let mut per_id = state.per_id.lock().unwrap();
        match per_id.as_mut() {
            Some(seen) => {
                let id = headers
                    .get("webhook-id")
                    .or_else(|| headers.get("x-webhook-id"))
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let n = seen.entry(id).or_insert(0);
                let reply = state.script.lock().unwrap().get(*n).cloned();
                *n += 1;
                reply.unwrap_or_else(|| state.then.clone())
            }
            None => state
                .script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| state.then.clone()),
        }
    };
    state.requests.lock().unwrap().push(Received {
        path,
        headers,
        body,
        at,
    });
    state.notify.notify_waiters();
    match reply {
        Reply::Status(s) => status(s).into_response(),
        Reply::WithHeaders(s, headers) => {
            let mut resp = status(s).into_response();
            for (k, v) in headers {
                resp.headers_mut().insert(k, v.parse().unwrap());
            }
            resp
        }
        Reply::Slow(wait, s) => {
            tokio::time::sleep(wait).await;
            status(s).into_response()
        }
        Reply::Body(s, body) => (status(s), body).into_response(),
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap()
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An EventBridge bus for a stack's operational events, and a queue a rule copies them to.
async fn ops_bus(sdk: &SdkConfig, prefix: &str) -> (String, String) {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("{prefix}-ops"))
        .send()
        .await
        .expect("the operational events queue")
        .queue_url
        .expect("its URL");
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("its attributes")
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("its ARN");
    let eb = aws_sdk_eventbridge::Client::new(sdk);
    let bus = format!("{prefix}-bus");
    eb.create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("the event bus");
    let rule = format!("{prefix}-ops");
    eb.put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(r#"{"source": ["skyhook"]}"#)
        .send()
        .await
        .expect("the rule");
    eb.put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("ops-queue")
                .arn(arn)
                .build()
                .expect("a target"),
        )
        .send()
        .await
        .expect("the target");
    (bus, queue_url)
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
