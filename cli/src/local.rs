//! `skyhook local`: the whole system in one process against an AWS API emulator. It
//! provisions what it needs, serves the ingest and management routers (the ones the Lambda
//! binaries run) on one port, and feeds the delivery queue and the EventBridge queue to the
//! Lambda handlers the way event source mappings would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
use aws_sdk_eventbridge::types::{RuleState, Target};
use serde_json::value::RawValue;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use skyhook_aws::{
    Adapters, Provisioned, ResourceNames, create_queue, load_sdk_config, provision, queue_arn,
};
use skyhook_domain::config::{self, Env, ProcessEnv};
use skyhook_domain::ids::TenantId;
use skyhook_domain::ports::StatsCounters;
use skyhook_domain::publish::Publisher;

use crate::sqs_poller::{SqsPoller, handler};
use crate::streams::{Checkpoint, StartingPosition, StreamPoller, stream_handler};

pub const LOCAL_ADDR: &str = "SKYHOOK_LOCAL_ADDR";
pub const LOCAL_PREFIX: &str = "SKYHOOK_LOCAL_PREFIX";
pub const LOCAL_POLLERS: &str = "SKYHOOK_LOCAL_POLLERS";
pub const LOCAL_BATCH_SIZE: &str = "SKYHOOK_LOCAL_BATCH_SIZE";
pub const LOCAL_BATCHING_WINDOW: &str = "SKYHOOK_LOCAL_BATCHING_WINDOW";
/// The delivery event source's batch as `infra/template.yaml` has it (`DeliveryBatchSize`,
/// `DeliveryBatchingWindowSeconds`).
pub const DEFAULT_BATCH_SIZE: usize = 100;
pub const DEFAULT_BATCHING_WINDOW: Duration = Duration::from_secs(1);
pub const LOCAL_EVENT_PATTERN: &str = "SKYHOOK_LOCAL_EVENT_PATTERN";
pub const DEFAULT_LOCAL_ADDR: &str = "127.0.0.1:3000";
pub const DEFAULT_LOCAL_PREFIX: &str = "skyhook-local";
/// Every event on the local bus goes to Skyhook.
pub const DEFAULT_EVENT_PATTERN: &str = r#"{"source":[{"prefix":""}]}"#;

/// Settings of `skyhook local`, on top of the functions' own `SKYHOOK_` settings.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub addr: SocketAddr,
    pub prefix: String,
    pub pollers: usize,
    /// Most deliveries handed to one handler call, and how long a batch gathers them (as
    /// the delivery function's SQS event source: `BatchSize`, `MaximumBatchingWindowInSeconds`).
    pub batch_size: usize,
    pub batching_window: Duration,
    pub admin_key: String,
    /// Whether the admin key was generated (and must be printed for the user).
    pub generated_key: bool,
    pub event_pattern: String,
    pub endpoint: String,
}

impl LocalConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self, config::ConfigError> {
        let endpoint = config::optional(env, "AWS_ENDPOINT_URL").ok_or_else(|| {
            config::ConfigError::new(
                "AWS_ENDPOINT_URL",
                "is required: skyhook local runs against an AWS API emulator such as moto or \
                 LocalStack (make run starts one)",
            )
        })?;
        let (admin_key, generated_key) = admin_key(env)?;
        let event_pattern = event_pattern(env)?;
        Ok(Self {
            addr: config::parsed(
                env,
                LOCAL_ADDR,
                DEFAULT_LOCAL_ADDR
                    .parse()
                    .unwrap_or(([127, 0, 0, 1], 3000).into()),
                |v| v.parse::<SocketAddr>().map_err(|e| e.to_string()),
            )?,
            prefix: config::parsed(env, LOCAL_PREFIX, DEFAULT_LOCAL_PREFIX.to_string(), prefix)?,
            pollers: config::parsed(env, LOCAL_POLLERS, 4, pollers)?,
            batch_size: config::parsed(env, LOCAL_BATCH_SIZE, DEFAULT_BATCH_SIZE, batch_size)?,
            batching_window: config::parsed(
                env,
                LOCAL_BATCHING_WINDOW,
                DEFAULT_BATCHING_WINDOW,
                batching_window,
            )?,
            admin_key,
            generated_key,
            event_pattern,
            endpoint,
        })
    }

    pub fn bus_name(&self) -> String {
        format!("{}-bus", self.prefix)
    }
}

/// `SKYHOOK_ADMIN_KEY` if set (long enough), else a generated one; and whether it was
/// generated.
fn admin_key(env: &dyn Env) -> Result<(String, bool), config::ConfigError> {
    match config::optional(env, config::ADMIN_KEY) {
        Some(k) if k.len() >= config::MIN_ADMIN_KEY_LEN => Ok((k, false)),
        Some(_) => Err(config::ConfigError::new(
            config::ADMIN_KEY,
            format!("must be at least {} characters", config::MIN_ADMIN_KEY_LEN),
        )),
        None => Ok((generate_key(), true)),
    }
}

/// `SKYHOOK_LOCAL_EVENT_PATTERN`, which must be JSON, or the pattern matching every event.
fn event_pattern(env: &dyn Env) -> Result<String, config::ConfigError> {
    let event_pattern = config::optional(env, LOCAL_EVENT_PATTERN)
        .unwrap_or_else(|| DEFAULT_EVENT_PATTERN.to_string());
    serde_json::from_str::<serde_json::Value>(&event_pattern)
        .map_err(|e| config::ConfigError::new(LOCAL_EVENT_PATTERN, e))?;
    Ok(event_pattern)
}

/// `SKYHOOK_LOCAL_PREFIX`: the resource names' prefix.
fn prefix(v: &str) -> Result<String, &'static str> {
    if !v.is_empty() && v.len() <= 40 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(v.to_string())
    } else {
        Err("use 1 to 40 letters, digits and dashes")
    }
}

/// `SKYHOOK_LOCAL_POLLERS`: delivery batches in flight at once.
fn pollers(v: &str) -> Result<usize, &'static str> {
    match v.parse::<usize>() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err("expected a number from 1 to 64"),
    }
}

/// `SKYHOOK_LOCAL_BATCH_SIZE`: most deliveries a handler call gets.
fn batch_size(v: &str) -> Result<usize, &'static str> {
    match v.parse::<usize>() {
        Ok(n) if (1..=10_000).contains(&n) => Ok(n),
        _ => Err("expected a number from 1 to 10000"),
    }
}

/// `SKYHOOK_LOCAL_BATCHING_WINDOW`: whole seconds a batch gathers for.
fn batching_window(v: &str) -> Result<Duration, &'static str> {
    match v.parse::<u64>() {
        Ok(n) if n <= 300 => Ok(Duration::from_secs(n)),
        _ => Err("expected whole seconds from 0 to 300"),
    }
}

/// A fresh admin key for a local run: `sk_local_` and 32 random hex digits.
pub fn generate_key() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sk_local_{hex}")
}

/// The functions read their settings from the environment; locally the provisioned
/// resources are laid over it, and anything the user set explicitly still wins.
struct LayeredEnv {
    overrides: HashMap<String, String>,
}

impl Env for LayeredEnv {
    fn get(&self, name: &str) -> Option<String> {
        ProcessEnv
            .get(name)
            .filter(|v| !v.trim().is_empty() && !self.forced(name))
            .or_else(|| self.overrides.get(name).cloned())
    }
}

impl LayeredEnv {
    /// Resource names always come from provisioning: a stale exported value must not
    /// point the runner at another table or queue.
    fn forced(&self, name: &str) -> bool {
        matches!(
            name,
            config::TABLE
                | config::QUEUE_URL
                | config::DLQ_URL
                | config::ADMIN_KEY
                | config::KEYRING_SECRET
        ) || name == config::LOCAL_MODE
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("provisioning failed: {0}")]
    Provision(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// What `skyhook local` made, for the banner and for callers.
#[derive(Debug, Clone)]
pub struct Running {
    pub addr: SocketAddr,
    pub resources: Provisioned,
    pub eventbridge_queue_url: String,
    pub bus: String,
}

async fn provision_eventbridge(
    sdk: &aws_config::SdkConfig,
    cfg: &LocalConfig,
) -> Result<String, LocalError> {
    let fail = |what: &str, e: String| LocalError::Provision(format!("{what}: {e}"));
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let queue_url = create_queue(&sqs, &format!("{}-eventbridge", cfg.prefix))
        .await
        .map_err(|e| fail("EventBridge target queue", e.to_string()))?;
    let arn = queue_arn(&sqs, &queue_url)
        .await
        .map_err(|e| fail("EventBridge target queue", e.to_string()))?;
    let eb = aws_sdk_eventbridge::Client::new(sdk);
    let bus = cfg.bus_name();
    if let Err(e) = eb.create_event_bus().name(&bus).send().await
        && !e
            .as_service_error()
            .is_some_and(|s| s.is_resource_already_exists_exception())
    {
        return Err(fail(
            "event bus",
            aws_sdk_eventbridge::error::DisplayErrorContext(&e).to_string(),
        ));
    }
    let rule = format!("{}-to-ingest", cfg.prefix);
    eb.put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(&cfg.event_pattern)
        .state(RuleState::Enabled)
        .send()
        .await
        .map_err(|e| {
            fail(
                "event rule",
                aws_sdk_eventbridge::error::DisplayErrorContext(&e).to_string(),
            )
        })?;
    let target = Target::builder()
        .id("skyhook-ingest-events")
        .arn(arn)
        .build()
        .map_err(|e| fail("event target", e.to_string()))?;
    eb.put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(target)
        .send()
        .await
        .map_err(|e| {
            fail(
                "event target",
                aws_sdk_eventbridge::error::DisplayErrorContext(&e).to_string(),
            )
        })?;
    Ok(queue_url)
}

/// The `ingest-events` handler behind an SQS queue, as an EventBridge → SQS → Lambda chain:
/// records that cannot become events are logged and dropped (they never will), records that
/// failed for a passing reason are retried.
fn eventbridge_handler(publisher: Publisher, tenant: TenantId) -> crate::sqs_poller::SqsHandler {
    handler(
        move |event: lambda_runtime::LambdaEvent<aws_lambda_events::sqs::SqsEvent>| {
            let (publisher, tenant) = (publisher.clone(), tenant.clone());
            async move {
                let mut response = SqsBatchResponse::default();
                for record in event.payload.records {
                    let body = record.body.as_deref().unwrap_or("");
                    let parsed: Result<EventBridgeEvent<Box<RawValue>>, _> =
                        serde_json::from_str(body);
                    let result = match parsed {
                        Ok(ev) => {
                            skyhook_ingest::handle_eventbridge(
                                &publisher,
                                &tenant,
                                lambda_runtime::LambdaEvent::new(
                                    ev,
                                    lambda_runtime::Context::default(),
                                ),
                            )
                            .await
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "not an EventBridge event; dropping it");
                            continue;
                        }
                    };
                    match result {
                        Ok(out) => {
                            tracing::info!(event_id = %out["id"], "EventBridge event published")
                        }
                        Err(skyhook_ingest::EventBridgeError::Publish(e)) if e.is_retryable() => {
                            tracing::warn!(error = %e, "EventBridge event not published; will retry");
                            let mut failure = BatchItemFailure::default();
                            failure.item_identifier = record.message_id.clone().unwrap_or_default();
                            response.batch_item_failures.push(failure);
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "EventBridge event rejected; dropping it")
                        }
                    }
                }
                Ok(response)
            }
        },
    )
}

/// Runs until `shutdown` resolves, then stops accepting requests, lets in-flight deliveries
/// finish, and returns. `on_ready` is called once everything is up.
pub async fn run(
    cfg: LocalConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(&LocalConfig, &Running),
) -> Result<(), LocalError> {
    let sdk = load_sdk_config().await;
    let schedule = config::retry_schedule(&ProcessEnv)?;
    let resources = provision(
        &sdk,
        &ResourceNames::with_prefix(&cfg.prefix),
        schedule.max_attempts(),
    )
    .await
    .map_err(|e| LocalError::Provision(e.to_string()))?;
    let eventbridge_queue_url = provision_eventbridge(&sdk, &cfg).await?;
    let services = Services::build(&sdk, &cfg, &resources).await?;

    let listener = tokio::net::TcpListener::bind(cfg.addr)
        .await
        .map_err(|source| LocalError::Bind {
            addr: cfg.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(LocalError::Serve)?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = Workers {
        delivery: spawn_delivery(&sqs, &resources.queue_url, &cfg, &services, &stop_rx),
        stats: spawn_stats(services.stream, services.counters, &stop_rx),
        events: spawn_events(
            sqs,
            &eventbridge_queue_url,
            services.publisher,
            services.eventbridge_tenant,
            &stop_rx,
        ),
        server: spawn_server(listener, services.app, &stop_rx),
    };

    let running = Running {
        addr,
        resources,
        eventbridge_queue_url,
        bus: cfg.bus_name(),
    };
    on_ready(&cfg, &running);
    shutdown.await;
    tracing::info!("stopping: finishing in-flight deliveries");
    let _ = stop_tx.send(true);
    workers.finish().await
}

/// The provisioned resources laid over the environment the functions read their settings
/// from.
fn layered_env(cfg: &LocalConfig, resources: &Provisioned) -> LayeredEnv {
    LayeredEnv {
        overrides: HashMap::from([
            (config::TABLE.to_string(), resources.table.clone()),
            (
                config::STATS_TABLE.to_string(),
                resources.stats_table.clone(),
            ),
            (config::QUEUE_URL.to_string(), resources.queue_url.clone()),
            (config::DLQ_URL.to_string(), resources.dlq_url.clone()),
            (
                config::KEYRING_SECRET.to_string(),
                resources.keyring_secret.clone(),
            ),
            (config::ADMIN_KEY.to_string(), cfg.admin_key.clone()),
            (config::LOCAL_MODE.to_string(), "true".to_string()),
            // Operational events go to the local bus, as to the stack's bus in AWS.
            (config::EVENT_BUS.to_string(), cfg.bus_name()),
            (
                config::SECRET_PREFIX.to_string(),
                format!("{}/subscribers/", cfg.prefix),
            ),
            (
                config::SOURCE_SECRET_PREFIX.to_string(),
                format!("{}/sources/", cfg.prefix),
            ),
        ]),
    }
}

/// What the four functions are made of locally: the routers of ingest and the API, and
/// what the delivery, stats and EventBridge pollers hand their batches to.
struct Services {
    /// The ingest and management routers, merged to serve on one port.
    app: axum::Router,
    publisher: Publisher,
    /// The tenant events from the EventBridge bus are published for.
    eventbridge_tenant: TenantId,
    deliverer: skyhook_delivery::Deliverer,
    counters: Arc<dyn StatsCounters>,
    /// The table's change stream, which feeds the stats.
    stream: StreamPoller,
}

impl Services {
    /// Reads each function's configuration from the layered environment and builds it the
    /// way the function builds its own.
    async fn build(
        sdk: &aws_config::SdkConfig,
        cfg: &LocalConfig,
        resources: &Provisioned,
    ) -> Result<Self, LocalError> {
        let env = layered_env(cfg, resources);
        let ingest_cfg = skyhook_ingest::Config::from_env(&env, true)?;
        let api_cfg = skyhook_api::Config::from_env(&env)?;
        let delivery_cfg = skyhook_delivery::Config::from_env(&env)?;

        // One set of adapters for all four functions, built the way each function builds its own.
        let (resources_cfg, retention) = api_cfg.resources();
        let adapters = Adapters::from_sdk(sdk, &resources_cfg, &retention);
        let ingest_state = skyhook_ingest::IngestState::new(&adapters, &ingest_cfg)
            .ok_or_else(|| LocalError::Provision("ingest has no admin key".into()))?;
        let publisher = ingest_state.publisher.clone();
        let api_state = skyhook_api::ApiState::new(&adapters, &api_cfg);
        let deliverer = skyhook_delivery::Deliverer::new(&adapters, &delivery_cfg)
            .map_err(|e| LocalError::Provision(format!("cannot build the HTTP client: {e}")))?;
        let stream = resume_stream(sdk, resources).await?;
        let app = skyhook_http::with_fallbacks(
            skyhook_ingest::router(Arc::new(ingest_state))
                .merge(skyhook_api::router(Arc::new(api_state))),
        );
        Ok(Services {
            app,
            publisher,
            eventbridge_tenant: ingest_cfg.eventbridge_tenant.clone(),
            deliverer,
            counters: adapters.stats.clone(),
            stream,
        })
    }
}

/// The table's stream, from where the last runner on this state got to (its checkpoint in
/// the stats table), as Lambda's event source goes on after a crash; on new state, changes
/// from now on.
async fn resume_stream(
    sdk: &aws_config::SdkConfig,
    resources: &Provisioned,
) -> Result<StreamPoller, LocalError> {
    let checkpoint = Checkpoint::load(
        aws_sdk_dynamodb::Client::new(sdk),
        resources.stats_table.clone(),
        &resources.stream_arn,
    )
    .await
    .map_err(|e| LocalError::Provision(e.to_string()))?;
    let stream = StreamPoller::resume(
        aws_sdk_dynamodbstreams::Client::new(sdk),
        &resources.stream_arn,
        StartingPosition::Latest,
        checkpoint,
    )
    .await
    .map_err(|e| LocalError::Provision(e.to_string()))?
    // Locally the stats follow within a second; the template gives Lambda a longer window.
    .with_window(Duration::from_secs(1));
    Ok(stream)
}

/// The delivery queue's pollers, handing batches to the delivery handler.
fn spawn_delivery(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    cfg: &LocalConfig,
    services: &Services,
    stop: &watch::Receiver<bool>,
) -> JoinHandle<()> {
    let poller = SqsPoller::new(sqs.clone(), queue_url)
        .with_batch_size(cfg.batch_size)
        .with_batching_window(cfg.batching_window);
    let deliverer = services.deliverer.clone();
    let handler = handler(move |event| {
        let deliverer = deliverer.clone();
        async move { skyhook_delivery::handle(&deliverer, event).await }
    });
    let rx = stop.clone();
    let pollers = cfg.pollers;
    tokio::spawn(async move { poller.run(handler, pollers, rx).await })
}

/// The change stream's poller, handing batches to the stats handler.
fn spawn_stats(
    stream: StreamPoller,
    counters: Arc<dyn StatsCounters>,
    stop: &watch::Receiver<bool>,
) -> JoinHandle<()> {
    let handler = stream_handler(move |event| {
        let counters = counters.clone();
        async move { skyhook_delivery::stats::handle(&counters, event).await }
    });
    let rx = stop.clone();
    tokio::spawn(async move { stream.run(handler, rx).await })
}

/// The EventBridge target queue's poller, handing batches to the `ingest-events` handler.
fn spawn_events(
    sqs: aws_sdk_sqs::Client,
    queue_url: &str,
    publisher: Publisher,
    tenant: TenantId,
    stop: &watch::Receiver<bool>,
) -> JoinHandle<()> {
    let poller = SqsPoller::new(sqs, queue_url);
    let handler = eventbridge_handler(publisher, tenant);
    let rx = stop.clone();
    tokio::spawn(async move { poller.run(handler, 1, rx).await })
}

/// The HTTP server, until `stop` turns true.
fn spawn_server(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    stop: &watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    let mut server_stop = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|stop| *stop).await;
            })
            .await
    })
}

/// The runner's tasks.
struct Workers {
    delivery: JoinHandle<()>,
    stats: JoinHandle<()>,
    events: JoinHandle<()>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Workers {
    /// Once told to stop: waits for the server, then up to a minute for the pollers to
    /// finish their batches; the server's outcome is the run's.
    async fn finish(self) -> Result<(), LocalError> {
        let served = self.server.await;
        let _ = tokio::time::timeout(Duration::from_secs(60), async {
            let _ = self.delivery.await;
            let _ = self.events.await;
            let _ = self.stats.await;
        })
        .await;
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(LocalError::Serve(e)),
            Err(e) => Err(LocalError::Serve(std::io::Error::other(e))),
        }
    }
}

/// The banner printed once the runner is up: where things are and a copy-paste quickstart.
pub fn banner(cfg: &LocalConfig, running: &Running) -> String {
    let url = format!("http://{}", running.addr);
    let key_note = if cfg.generated_key {
        " (generated; set SKYHOOK_ADMIN_KEY to choose one)"
    } else {
        ""
    };
    format!(
        r#"Skyhook is running locally.

  API          {url}
  Admin key    {key}{key_note}
  Emulator     {endpoint}
  Queue        {queue}
  DLQ          {dlq}
  Table        {table}
  Keyring      {keyring}  (skyhook keyring status|rotate|reseal)
  Event bus    {bus}  (events put here are published too)

Quickstart (in another terminal):

  export SKYHOOK_API_URL={url} SKYHOOK_API_KEY={key}

  # a receiver that verifies every delivery and prints it, subscribed to everything
  skyhook listen --port 4000 --subscribe '*'

  # or with curl: create a subscriber, then publish an event
  curl -s $SKYHOOK_API_URL/v1/subscribers -H "authorization: Bearer $SKYHOOK_API_KEY" \
    -H 'content-type: application/json' \
    -d '{{"url": "http://127.0.0.1:4000/webhooks", "event_types": ["order.*"]}}'
  curl -s $SKYHOOK_API_URL/v1/events -H "authorization: Bearer $SKYHOOK_API_KEY" \
    -H 'content-type: application/json' \
    -d '{{"type": "order.created", "data": {{"id": "ord_1"}}}}'

Press Ctrl-C to stop (in-flight deliveries finish first).
"#,
        key = cfg.admin_key,
        endpoint = cfg.endpoint,
        queue = running.resources.queue_url,
        dlq = running.resources.dlq_url,
        table = running.resources.table,
        keyring = running.resources.keyring_secret,
        bus = running.bus,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn an_emulator_endpoint_is_required() {
        let err = LocalConfig::from_env(&env(&[])).unwrap_err();
        assert_eq!(err.name, "AWS_ENDPOINT_URL");
    }

    #[test]
    fn defaults_and_a_generated_key() {
        let cfg =
            LocalConfig::from_env(&env(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")])).unwrap();
        assert_eq!(cfg.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(cfg.prefix, "skyhook-local");
        assert_eq!(cfg.batch_size, 100);
        assert_eq!(cfg.batching_window, Duration::from_secs(1));
        assert!(cfg.generated_key);
        assert!(cfg.admin_key.starts_with("sk_local_"));
        assert_eq!(cfg.admin_key.len(), "sk_local_".len() + 32);
        assert_ne!(generate_key(), generate_key());
    }

    #[test]
    fn bad_settings_name_their_variable() {
        for (name, value) in [
            (LOCAL_ADDR, "localhost"),
            (LOCAL_PREFIX, "has space"),
            (LOCAL_POLLERS, "0"),
            (LOCAL_BATCH_SIZE, "0"),
            (LOCAL_BATCH_SIZE, "10001"),
            (LOCAL_BATCHING_WINDOW, "1.5"),
            (LOCAL_BATCHING_WINDOW, "301"),
            (LOCAL_EVENT_PATTERN, "{not json"),
            (config::ADMIN_KEY, "short"),
        ] {
            let err = LocalConfig::from_env(&env(&[
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
                (name, value),
            ]))
            .unwrap_err();
            assert_eq!(err.name, name);
        }
    }
}
