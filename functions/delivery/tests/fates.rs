//! `deliver` over the in-memory twins of its ports, one test per fate, with a receiver on
//! loopback: fast, and without an emulator. (The same paths against the emulator are in
//! `tests/it/delivery.rs` and `tests/it/health.rs`.)

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::value::RawValue;

use skyhook_delivery::admission::DeferReason;
use skyhook_delivery::fate::Fate;
use skyhook_delivery::{Config, Deliverer, Ports};
use skyhook_domain::breaker::{BreakerPolicy, BreakerState};
use skyhook_domain::event_type::{EventType, EventTypeFilter};
use skyhook_domain::ids::{EventId, SubscriberId, TenantId};
use skyhook_domain::jq::JqError;
use skyhook_domain::memory::{
    MemoryAttemptLog, MemoryAuditLog, MemoryDeadLetterStore, MemoryDeliveryQueue,
    MemoryHealthStore, MemoryOpsEvents, MemoryRateBudget, MemorySecretStore, MemorySubscriberStore,
};
use skyhook_domain::model::{
    DeadLetterReason, DeliveryMessage, DeliveryState, DisabledReason, OpsEventKind, Outcome,
    PARKED_REASON, Subscriber,
};
use skyhook_domain::ports::{
    AttemptLog, AuditLog, DeadLetterStore, HealthStore, PageRequest, ProgramRunner, SecretStore,
    SubscriberStore,
};
use skyhook_domain::retry::RetrySchedule;
use skyhook_domain::secret::SigningSecret;
use skyhook_domain::signing::{SignatureScheme, verify};
use skyhook_domain::url::{SubscriberUrl, UrlPolicy};

/// A receiver on loopback that answers with the statuses it is given, in order (then 200),
/// and keeps what it received.
/// A request as received: its headers and body.
type Seen = (HeaderMap, Vec<u8>);

#[derive(Clone, Default)]
struct Receiver {
    answers: Arc<Mutex<VecDeque<u16>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    r.seen.lock().unwrap().push((headers, body.to_vec()));
    let code = r.answers.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(code).unwrap_or(StatusCode::OK)
}

impl Receiver {
    async fn start(answers: &[u16]) -> (Self, String) {
        let receiver = Receiver::default();
        receiver.answers.lock().unwrap().extend(answers);
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A stand-in for the jq sandbox: runs nothing, answers as told.
struct FakeRunner(Result<String, JqError>);

#[async_trait]
impl ProgramRunner for FakeRunner {
    async fn run(
        &self,
        _tenant: &TenantId,
        _program: &str,
        _input: &str,
    ) -> Result<String, JqError> {
        self.0.clone()
    }

    async fn check(&self, _program: &str) -> Result<(), JqError> {
        Ok(())
    }
}

/// The twins and a deliverer over them, with a clock the test sets.
struct Bench {
    subscribers: Arc<MemorySubscriberStore>,
    secrets: Arc<MemorySecretStore>,
    queue: Arc<MemoryDeliveryQueue>,
    log: Arc<MemoryAttemptLog>,
    dead_letters: Arc<MemoryDeadLetterStore>,
    health: Arc<MemoryHealthStore>,
    audit: Arc<MemoryAuditLog>,
    ops: Arc<MemoryOpsEvents>,
    now: Arc<Mutex<DateTime<Utc>>>,
    deliverer: Deliverer,
    tenant: TenantId,
    secret: SigningSecret,
}

/// Three attempts: 1 s, then 1 s.
const SCHEDULE: &str = "1s,1s";

fn config(breaker: BreakerPolicy) -> Config {
    Config {
        table: "unused".into(),
        queue_url: "unused".into(),
        dlq_url: "unused".into(),
        secret_prefix: "unused/".into(),
        keyring_secret: "unused".into(),
        retry_schedule: RetrySchedule::parse(SCHEDULE).unwrap(),
        http_timeout: Duration::from_secs(5),
        log_retention: Duration::from_secs(3600),
        secret_cache_ttl: Duration::from_secs(60),
        rotation_grace: Duration::from_secs(3600),
        local_mode: true,
        breaker,
        event_bus: None,
        metrics_namespace: None,
        metrics_tenants: Default::default(),
        transform: skyhook_process::SandboxSettings::from_env(&HashMap::<&str, &str>::new())
            .unwrap(),
    }
}

impl Bench {
    fn new() -> Self {
        Self::with_breaker(BreakerPolicy {
            failures: 1000,
            ..BreakerPolicy::default()
        })
    }

    fn with_breaker(breaker: BreakerPolicy) -> Self {
        let subscribers = Arc::new(MemorySubscriberStore::default());
        let health = Arc::new(subscribers.health_store());
        let secrets = Arc::new(MemorySecretStore::default());
        let queue = Arc::new(MemoryDeliveryQueue::default());
        let log = Arc::new(MemoryAttemptLog::default());
        let dead_letters = Arc::new(MemoryDeadLetterStore::default());
        let audit = Arc::new(MemoryAuditLog::default());
        let ops = Arc::new(MemoryOpsEvents::default());
        let ports = Ports {
            subscribers: subscribers.clone(),
            secrets: secrets.clone(),
            queue: queue.clone(),
            log: log.clone(),
            dead_letters: dead_letters.clone(),
            rates: Arc::new(MemoryRateBudget::default()),
            health: health.clone(),
            audit: audit.clone(),
            ops: ops.clone(),
        };
        let mut deliverer = Deliverer::over(ports, &config(breaker)).unwrap();
        let now = Arc::new(Mutex::new(Utc::now()));
        let clock = now.clone();
        deliverer.clock = Arc::new(move || *clock.lock().unwrap());
        deliverer.sandbox = Arc::new(FakeRunner(Err(JqError::Unavailable("no sandbox".into()))));
        Bench {
            subscribers,
            secrets,
            queue,
            log,
            dead_letters,
            health,
            audit,
            ops,
            now,
            deliverer,
            tenant: TenantId::parse("acme").unwrap(),
            secret: SigningSecret::generate(),
        }
    }

    fn later(&self, by: chrono::Duration) {
        *self.now.lock().unwrap() += by;
    }

    /// A subscriber to `url`, stored with its secret.
    async fn subscriber(&self, url: &str, edit: impl FnOnce(&mut Subscriber)) -> Subscriber {
        let now = *self.now.lock().unwrap();
        let mut s = Subscriber {
            id: SubscriberId::new(),
            tenant: self.tenant.clone(),
            url: SubscriberUrl::parse(url, UrlPolicy::LOCAL).unwrap(),
            event_types: vec![EventTypeFilter::parse("*").unwrap()],
            active: true,
            description: None,
            headers: BTreeMap::new(),
            signature_scheme: SignatureScheme::Standard,
            created_at: now,
            updated_at: now,
            secret_version: 0,
            max_concurrency: skyhook_domain::model::DEFAULT_MAX_CONCURRENCY,
            rate_limit: None,
            disabled_reason: None,
            transform: None,
            filter: None,
        };
        edit(&mut s);
        self.subscribers.create(&s).await.unwrap();
        self.secrets
            .create(&s.tenant, &s.id, &self.secret, &BTreeMap::new())
            .await
            .unwrap();
        s
    }

    fn message(&self, sub: &Subscriber) -> DeliveryMessage {
        DeliveryMessage {
            v: 1,
            event_id: EventId::new(),
            tenant: sub.tenant.clone(),
            subscriber_id: sub.id.clone(),
            event_type: EventType::parse("order.created").unwrap(),
            timestamp: *self.now.lock().unwrap(),
            data: RawValue::from_string(r#"{"id":7}"#.into()).unwrap(),
            correlation_id: "corr-1".into(),
            prior_attempts: 0,
        }
    }

    /// One round of `message`, to its fate.
    async fn deliver(&self, message: &DeliveryMessage, round: u32) -> Fate {
        let view = self
            .deliverer
            .directory
            .view(std::slice::from_ref(&self.tenant))
            .await;
        self.deliverer.deliver(message, round, &view).await
    }

    /// One round through the Lambda handler: the fate applied to the SQS record. `true`
    /// when the record is left on the queue.
    async fn handle(&self, body: &str, round: u32) -> bool {
        let mut record = SqsMessage::default();
        record.message_id = Some("m-1".into());
        record.receipt_handle = Some("handle-1".into());
        record.body = Some(body.into());
        record
            .attributes
            .insert("ApproximateReceiveCount".into(), round.to_string());
        let mut event = SqsEvent::default();
        event.records.push(record);
        let response =
            skyhook_delivery::handle(&self.deliverer, LambdaEvent::new(event, Context::default()))
                .await
                .unwrap();
        !response.batch_item_failures.is_empty()
    }

    async fn status(&self, m: &DeliveryMessage) -> (DeliveryState, u32) {
        let s = self
            .log
            .status(&m.tenant, &m.event_id, &m.subscriber_id)
            .await
            .unwrap()
            .expect("a status");
        (s.status, s.attempts)
    }

    async fn dead(&self) -> Vec<skyhook_domain::model::DeadLetterEntry> {
        let page = PageRequest {
            limit: 100,
            ..PageRequest::default()
        };
        self.dead_letters
            .list(&self.tenant, None, &page)
            .await
            .unwrap()
            .items
    }

    fn ops_kinds(&self) -> Vec<OpsEventKind> {
        self.ops
            .events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.kind)
            .collect()
    }
}

#[tokio::test]
async fn a_delivery_that_succeeds_is_done_signed_and_logged() {
    let bench = Bench::new();
    let (receiver, url) = Receiver::start(&[204]).await;
    let sub = bench.subscriber(&url, |_| {}).await;
    let m = bench.message(&sub);
    assert_eq!(bench.deliver(&m, 1).await, Fate::Done);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "one request");
    let (headers, body) = &requests[0];
    let header = |name: &str| headers[name].to_str().unwrap().to_string();
    assert_eq!(header("webhook-id"), m.event_id.as_str());
    assert_eq!(header(skyhook_delivery::CORRELATION_HEADER), "corr-1");
    assert_eq!(body, &m.webhook_body());
    let now = bench.now.lock().unwrap().timestamp();
    assert_eq!(
        header("webhook-timestamp"),
        now.to_string(),
        "signed by the deliverer's clock"
    );
    verify(
        &bench.secret,
        m.event_id.as_str(),
        &header("webhook-timestamp"),
        &header("webhook-signature"),
        body,
        now,
    )
    .expect("a valid signature");
    assert_eq!(bench.status(&m).await, (DeliveryState::Delivered, 1));
    let attempts = bench.log.all_attempts();
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        (attempts[0].outcome, attempts[0].status_code),
        (Outcome::Success, Some(204))
    );
}

#[tokio::test]
async fn a_failure_with_attempts_left_is_retried_after_the_schedules_delay() {
    let bench = Bench::new();
    let (_receiver, url) = Receiver::start(&[500, 500]).await;
    let sub = bench.subscriber(&url, |_| {}).await;
    let m = bench.message(&sub);
    let Fate::RetryIn(Some(delay)) = bench.deliver(&m, 1).await else {
        panic!("a retry with a delay");
    };
    // 1 s with the default jitter of ±20 %.
    assert!((800..=1200).contains(&delay.as_millis()), "{delay:?}");
    assert_eq!(bench.status(&m).await, (DeliveryState::Retrying, 1));
    let health = bench
        .health
        .get(&sub.tenant, &sub.id)
        .await
        .unwrap()
        .expect("health");
    assert_eq!(health.consecutive_failures, 1, "the breaker counts it");
    // Through the handler: the record stays, hidden for the delay.
    assert!(bench.handle(&m.to_json(), 1).await, "left on the queue");
    let visibility = bench.queue.visibility.lock().unwrap().clone();
    assert_eq!(visibility.len(), 1);
    assert_eq!(visibility[0].0, "handle-1");
}

#[tokio::test]
async fn the_last_failure_is_dead_lettered_and_announced() {
    let bench = Bench::new();
    let (_receiver, url) = Receiver::start(&[503]).await;
    let sub = bench.subscriber(&url, |_| {}).await;
    let m = bench.message(&sub);
    assert!(!bench.handle(&m.to_json(), 3).await, "done with the record");
    assert_eq!(bench.status(&m).await, (DeliveryState::Failed, 3));
    let dead = bench.queue.dead.lock().unwrap().clone();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].1.reason, "attempts_exhausted: HTTP 503");
    assert_eq!(dead[0].1.attempts, 3);
    let index = bench.dead().await;
    assert_eq!(index.len(), 1);
    assert_eq!(index[0].reason, "attempts_exhausted: HTTP 503");
    assert_eq!(
        index[0].message, None,
        "the message itself waits in the DLQ"
    );
    assert_eq!(bench.ops_kinds(), vec![OpsEventKind::DeliveryExhausted]);
}

#[tokio::test]
async fn a_410_disables_the_subscriber_and_parks_the_delivery() {
    let bench = Bench::new();
    let (receiver, url) = Receiver::start(&[410]).await;
    let sub = bench.subscriber(&url, |_| {}).await;
    let m = bench.message(&sub);
    assert_eq!(bench.deliver(&m, 1).await, Fate::Park { attempts: 1 });
    let stored = bench
        .subscribers
        .get(&sub.tenant, &sub.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.active);
    assert_eq!(stored.disabled_reason, Some(DisabledReason::Gone));
    let audit = bench
        .audit
        .list(
            &bench.tenant,
            &PageRequest {
                limit: 10,
                ..PageRequest::default()
            },
        )
        .await
        .unwrap()
        .items;
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].action.as_str(), audit[0].actor.as_str()),
        ("subscriber.disable", "skyhook:delivery")
    );
    assert_eq!(bench.ops_kinds(), vec![OpsEventKind::SubscriberDisabled]);
    assert_eq!(receiver.requests().len(), 1, "a 410 is not retried");
}

#[tokio::test]
async fn a_disabled_subscribers_delivery_is_parked_without_an_attempt() {
    let bench = Bench::new();
    let (receiver, url) = Receiver::start(&[]).await;
    let sub = bench.subscriber(&url, |s| s.active = false).await;
    let mut m = bench.message(&sub);
    m.prior_attempts = 2;
    assert_eq!(bench.deliver(&m, 1).await, Fate::Park { attempts: 2 });
    assert!(!bench.handle(&m.to_json(), 1).await);
    assert!(receiver.requests().is_empty(), "no request");
    let parked = bench.dead().await;
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].reason, PARKED_REASON);
    assert_eq!(parked[0].attempts, 2);
    let kept = DeliveryMessage::from_json(parked[0].message.as_deref().expect("kept")).unwrap();
    assert_eq!(
        (kept.event_id, kept.prior_attempts),
        (m.event_id.clone(), 2)
    );
}

#[tokio::test]
async fn a_deleted_subscribers_delivery_ends_as_subscriber_deleted() {
    let bench = Bench::new();
    let sub = bench.subscriber("http://127.0.0.1:9/hook", |_| {}).await;
    let m = bench.message(&sub);
    bench
        .subscribers
        .delete(&sub.tenant, &sub.id)
        .await
        .unwrap();
    assert_eq!(bench.deliver(&m, 2).await, Fate::Done);
    assert_eq!(
        bench.status(&m).await,
        (DeliveryState::SubscriberDeleted, 1)
    );
}

#[tokio::test]
async fn a_subscriber_without_a_secret_is_dead_lettered() {
    let bench = Bench::new();
    let sub = bench.subscriber("http://127.0.0.1:9/hook", |_| {}).await;
    bench.secrets.delete(&sub.tenant, &sub.id).await.unwrap();
    let m = bench.message(&sub);
    assert_eq!(
        bench.deliver(&m, 1).await,
        Fate::DeadLetter {
            attempts: 1,
            reason: DeadLetterReason::NoSigningSecret
        }
    );
    assert_eq!(bench.status(&m).await, (DeliveryState::Failed, 1));
}

#[tokio::test]
async fn an_open_breaker_defers_without_an_attempt_and_a_probe_closes_it() {
    let bench = Bench::with_breaker(BreakerPolicy {
        failures: 1,
        ..BreakerPolicy::default()
    });
    let (receiver, url) = Receiver::start(&[500]).await;
    let sub = bench.subscriber(&url, |_| {}).await;
    let m = bench.message(&sub);
    assert!(matches!(bench.deliver(&m, 1).await, Fate::RetryIn(Some(_))));
    assert_eq!(bench.ops_kinds(), vec![OpsEventKind::BreakerOpened]);
    let Fate::Defer(DeferReason::BreakerOpen, wait) = bench.deliver(&m, 2).await else {
        panic!("deferred while the breaker is open");
    };
    assert!(wait > Duration::ZERO);
    assert_eq!(receiver.requests().len(), 1, "no attempt while open");
    // Applied: sent again later, counting the attempt made so far.
    assert!(!bench.handle(&m.to_json(), 2).await);
    let later = bench.queue.later.lock().unwrap().clone();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].0.prior_attempts, 1);
    // After the cool-down, one probe goes; it succeeds and the breaker closes.
    bench.later(chrono::Duration::hours(1));
    assert_eq!(bench.deliver(&m, 2).await, Fate::Done);
    assert_eq!(bench.health.get(&sub.tenant, &sub.id).await.unwrap(), None);
    assert_eq!(
        bench.ops_kinds(),
        vec![OpsEventKind::BreakerOpened, OpsEventKind::BreakerClosed]
    );
}

#[tokio::test]
async fn a_subscriber_at_its_cap_defers_as_busy() {
    let bench = Bench::new();
    let (receiver, url) = Receiver::start(&[]).await;
    let sub = bench.subscriber(&url, |s| s.max_concurrency = 1).await;
    let _held = bench
        .deliverer
        .inflight
        .claim(&sub.tenant, &sub.id, 1)
        .expect("a place");
    let m = bench.message(&sub);
    assert!(matches!(
        bench.deliver(&m, 1).await,
        Fate::Defer(DeferReason::Busy, _)
    ));
    assert!(receiver.requests().is_empty());
}

#[tokio::test]
async fn a_subscriber_over_its_rate_limit_defers_until_the_next_second() {
    let bench = Bench::new();
    let (receiver, url) = Receiver::start(&[]).await;
    let sub = bench.subscriber(&url, |s| s.rate_limit = Some(1)).await;
    let (first, second) = (bench.message(&sub), bench.message(&sub));
    assert_eq!(bench.deliver(&first, 1).await, Fate::Done);
    let Fate::Defer(DeferReason::RateLimited, wait) = bench.deliver(&second, 1).await else {
        panic!("rate limited");
    };
    assert!(wait <= Duration::from_secs(2), "{wait:?}");
    assert_eq!(receiver.requests().len(), 1);
    bench.later(chrono::Duration::seconds(1));
    assert_eq!(bench.deliver(&second, 1).await, Fate::Done);
}

#[tokio::test]
async fn a_failing_transform_is_dead_lettered_and_an_unavailable_sandbox_retried() {
    let mut bench = Bench::new();
    let (receiver, url) = Receiver::start(&[]).await;
    let sub = bench
        .subscriber(&url, |s| s.transform = Some(".data".into()))
        .await;
    let m = bench.message(&sub);
    assert_eq!(
        bench.deliver(&m, 1).await,
        Fate::RetryIn(None),
        "ours to fix: retried"
    );
    assert_eq!(bench.status(&m).await.0, DeliveryState::Retrying);
    let Fate::DeadLetter {
        attempts: 3,
        reason: DeadLetterReason::AttemptsExhausted(why),
    } = bench.deliver(&m, 3).await
    else {
        panic!("exhausted on the last round");
    };
    assert!(why.starts_with("sandbox_unavailable"), "{why}");

    bench.deliverer.sandbox = Arc::new(FakeRunner(Err(JqError::Runtime("boom".into()))));
    let m = bench.message(&sub);
    let Fate::DeadLetter {
        attempts: 1,
        reason: DeadLetterReason::TransformFailed(why),
    } = bench.deliver(&m, 1).await
    else {
        panic!("the tenant's program failed: dead-lettered");
    };
    assert!(why.contains("boom"), "{why}");
    assert_eq!(bench.status(&m).await, (DeliveryState::Failed, 1));

    bench.deliverer.sandbox = Arc::new(FakeRunner(Ok(r#"{"n":7}"#.into())));
    let m = bench.message(&sub);
    assert_eq!(bench.deliver(&m, 1).await, Fate::Done);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "only the transformed one was sent");
    assert_eq!(requests[0].1, br#"{"n":7}"#);
}

#[tokio::test]
async fn an_unreadable_directory_retries_then_dead_letters_on_the_last_round() {
    let bench = Bench::new();
    let sub = bench.subscriber("http://127.0.0.1:9/hook", |_| {}).await;
    let m = bench.message(&sub);
    let down = Err(skyhook_domain::ports::StoreError::unavailable(
        "DynamoDB", "down",
    ));
    assert_eq!(
        bench.deliverer.deliver(&m, 1, &down).await,
        Fate::RetryIn(None)
    );
    let Fate::DeadLetter {
        attempts: 3,
        reason,
    } = bench.deliverer.deliver(&m, 3, &down).await
    else {
        panic!("dead-lettered on the last round");
    };
    assert!(reason.is_exhausted());
    assert_eq!(bench.status(&m).await, (DeliveryState::Failed, 3));
}

#[tokio::test]
async fn a_record_that_is_not_a_delivery_message_is_dead_lettered_as_malformed() {
    let bench = Bench::new();
    assert!(!bench.handle("{not json", 1).await, "done with the record");
    let dead = bench.queue.dead.lock().unwrap().clone();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0, "{not json", "the body as it came");
    assert!(
        dead[0].1.reason.starts_with("malformed_message: "),
        "{}",
        dead[0].1.reason
    );
    assert_eq!(dead[0].1.event_id, None);
}

#[tokio::test]
async fn a_breaker_state_is_read_from_the_health_store() {
    // The twin's health changes raise the version the directory reads, as in DynamoDB.
    let bench = Bench::new();
    let (_receiver, url) = Receiver::start(&[]).await;
    let sub = bench.subscriber(&url, |_| {}).await;
    let now = *bench.now.lock().unwrap();
    bench
        .health
        .failed(&sub.tenant, &sub.id, "HTTP 500", now)
        .await
        .unwrap();
    assert!(
        bench
            .health
            .open(&sub.tenant, &sub.id, now, Duration::from_secs(60))
            .await
            .unwrap()
    );
    let health = bench
        .health
        .get(&sub.tenant, &sub.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(health.state, BreakerState::Open);
    let m = bench.message(&sub);
    assert!(matches!(
        bench.deliver(&m, 1).await,
        Fate::Defer(DeferReason::BreakerOpen, _)
    ));
}
