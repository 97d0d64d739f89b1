//! The AWS side of a test stack: SDK configuration for the emulator, the stack's own
//! resources provisioned in it, each function's clients (through the IAM check's recorder
//! when it runs), and the recording queue the delivery side and the ingests share.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::{Credentials, SharedCredentialsProvider};

use skyhook_aws::{
    Adapters, Provisioned, ResourceNames, Resources, Retention, SqsDeliveryQueue, provision,
};
use skyhook_domain::config::AdminKeySource;
use skyhook_domain::model::DeliveryMessage;
use skyhook_domain::ports::{BatchSendResult, DeadLetter, DeliveryQueue, StoreError};

use crate::recorder::{self, CallRecorder};
use crate::{ADMIN_KEY, StackOptions};

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

/// A name no other test uses: `prefix` and 12 random hex digits.
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

/// A stack's own resources in the emulator, under a prefix no other test uses.
pub(crate) struct StackResources {
    pub(crate) resources: Provisioned,
    /// Where the subscribers' secrets of this stack live.
    pub(crate) secret_prefix: String,
    /// Where the inbound sources' secrets of this stack live.
    pub(crate) source_secret_prefix: String,
    /// The operational events' bus, and the queue a rule copies them to (with `ops_bus`).
    pub(crate) ops: Option<(String, String)>,
    /// The secret the bootstrap admin key is kept in (with `admin_key_in_secret`).
    pub(crate) admin_secret: Option<String>,
}

impl StackResources {
    /// Provisions the table, the queues (`max_attempts` receives before the DLQ) and, as
    /// `options` ask, the operational events' bus and the admin key's secret.
    pub(crate) async fn provision(
        sdk: &SdkConfig,
        options: &StackOptions,
        max_attempts: u32,
    ) -> Self {
        let prefix = unique("skyhook-test");
        let resources = provision(sdk, &ResourceNames::with_prefix(&prefix), max_attempts)
            .await
            .expect("provisioning the emulator");
        let ops = if options.ops_bus {
            Some(ops_bus(sdk, &prefix).await)
        } else {
            None
        };
        let admin_secret = if options.admin_key_in_secret {
            Some(admin_key_secret(sdk, &prefix).await)
        } else {
            None
        };
        StackResources {
            resources,
            secret_prefix: format!("{prefix}/subscribers/"),
            source_secret_prefix: format!("{prefix}/sources/"),
            ops,
            admin_secret,
        }
    }

    /// The operational events' bus, if the stack has one.
    pub(crate) fn event_bus(&self) -> Option<String> {
        self.ops.as_ref().map(|(bus, _)| bus.clone())
    }

    /// Where the functions read the bootstrap admin key.
    pub(crate) fn admin_key(&self) -> AdminKeySource {
        match &self.admin_secret {
            Some(name) => AdminKeySource::Secret(name.clone()),
            None => AdminKeySource::Value(ADMIN_KEY.to_string()),
        }
    }

    /// The resources as the functions' settings name them.
    fn config(&self) -> Resources {
        Resources {
            table: self.resources.table.clone(),
            stats_table: Some(self.resources.stats_table.clone()),
            queue_url: self.resources.queue_url.clone(),
            dlq_url: Some(self.resources.dlq_url.clone()),
            secret_prefix: self.secret_prefix.clone(),
            source_secret_prefix: self.source_secret_prefix.clone(),
            keyring_secret: self.resources.keyring_secret.clone(),
            event_bus: self.event_bus(),
        }
    }

    /// The names the recorder tells the template's resources by.
    fn recorder_names(&self) -> recorder::StackNames {
        recorder::StackNames {
            table: self.resources.table.clone(),
            stats_table: self.resources.stats_table.clone(),
            queue_url: self.resources.queue_url.clone(),
            dlq_url: self.resources.dlq_url.clone(),
            stream_arn: self.resources.stream_arn.clone(),
            secret_prefix: self.secret_prefix.clone(),
            source_secret_prefix: self.source_secret_prefix.clone(),
            admin_key_secret: self.admin_secret.clone(),
            keyring_secret: self.resources.keyring_secret.clone(),
            event_bus: self.event_bus(),
        }
    }
}

/// The bootstrap admin key in a Secrets Manager secret, as a deployment keeps it; returns
/// the secret's name.
async fn admin_key_secret(sdk: &SdkConfig, prefix: &str) -> String {
    let name = format!("{prefix}/admin-key");
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(&name)
        .secret_string(ADMIN_KEY)
        .send()
        .await
        .expect("storing the admin key");
    name
}

/// With `SKYHOOK_IAM_RECORD` set, a recorder in front of the emulator, through which each
/// function's clients go under credentials of their own, so the suite learns what each
/// function does in AWS.
pub(crate) async fn start_recorder(sdk: &SdkConfig, own: &StackResources) -> Option<CallRecorder> {
    let dir = std::env::var_os(recorder::RECORD_DIR)?;
    Some(
        CallRecorder::start(
            sdk.endpoint_url().expect("the emulator's endpoint"),
            Path::new(&dir),
            own.recorder_names(),
        )
        .await,
    )
}

/// The SDK configuration of one function's clients: through the recorder under the
/// function's own credentials when there is one, else the test's own.
fn function_sdk(sdk: &SdkConfig, recorder: Option<&CallRecorder>, function: &str) -> SdkConfig {
    match recorder {
        Some(r) => sdk
            .to_builder()
            .endpoint_url(&r.url)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                recorder::access_key(function),
                "testing",
                None,
                None,
                "skyhook-tests",
            )))
            .build(),
        None => sdk.clone(),
    }
}

/// The same wiring as the functions and `skyhook local`: one set of adapters per function,
/// each over its own clients. The delivery side's and the ingests' queue calls are recorded
/// in one [`RecordingQueue`].
pub(crate) struct Wiring {
    config: Resources,
    pub(crate) retention: Retention,
    queue_url: String,
    dlq_url: String,
    /// Each function's SDK configuration.
    pub(crate) ingest_http: SdkConfig,
    pub(crate) ingest_events: SdkConfig,
    pub(crate) api: SdkConfig,
    pub(crate) delivery: SdkConfig,
    pub(crate) stats: SdkConfig,
    /// The delivery function's queue client, recording what it is asked.
    pub(crate) queue: Arc<RecordingQueue>,
}

impl Wiring {
    pub(crate) fn new(
        sdk: &SdkConfig,
        recorder: Option<&CallRecorder>,
        own: &StackResources,
        rotation_grace: Duration,
    ) -> Self {
        let of = |function: &str| function_sdk(sdk, recorder, function);
        let delivery = of("delivery");
        let queue_url = own.resources.queue_url.clone();
        let dlq_url = own.resources.dlq_url.clone();
        let queue = Arc::new(RecordingQueue::new(
            SqsDeliveryQueue::new(aws_sdk_sqs::Client::new(&delivery), &queue_url)
                .with_dead_letter_queue(&dlq_url),
        ));
        Wiring {
            config: own.config(),
            retention: Retention {
                // Inside moto's view: it hides expired items on read.
                log: Duration::from_secs(3600),
                audit: Duration::from_secs(3600),
                rotation_grace,
                idempotency: Duration::from_secs(24 * 3600),
            },
            queue_url,
            dlq_url,
            ingest_http: of("ingest-http"),
            ingest_events: of("ingest-events"),
            api: of("api"),
            delivery,
            stats: of("stats"),
            queue,
        }
    }

    /// Adapters over `sdk`'s clients, the queue's calls not recorded.
    pub(crate) fn adapters(&self, sdk: &SdkConfig) -> Adapters {
        Adapters::from_sdk(sdk, &self.config, &self.retention)
    }

    /// Adapters over `sdk`'s clients whose queue calls are recorded with the delivery
    /// function's.
    pub(crate) fn recording(&self, sdk: &SdkConfig) -> Adapters {
        let mut adapters = self.adapters(sdk);
        let queue = SqsDeliveryQueue::new(aws_sdk_sqs::Client::new(sdk), &self.queue_url)
            .with_dead_letter_queue(&self.dlq_url);
        adapters.queue = Arc::new(self.queue.sharing(queue));
        adapters
    }

    /// The delivery function's adapters, over the recording queue itself.
    pub(crate) fn delivery_adapters(&self) -> Adapters {
        let mut adapters = self.adapters(&self.delivery);
        adapters.queue = self.queue.clone();
        adapters
    }
}
