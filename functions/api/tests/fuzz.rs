//! Property-based fuzzing of the management API's router, with no AWS behind it: request
//! bodies of `POST`/`PATCH /v1/subscribers`, `/v1/api-keys`, rotate, recover and redrive,
//! path ids, the query strings of every list route and their cursors, methods and paths no
//! route serves. No request may panic a handler; every 4xx and 5xx body is the SPEC error
//! shape with a snake_case code; the only 5xx is `503 service_unavailable` from an AWS
//! adapter that is not there, and only on routes that reach one.
//!
//! The adapters are [`Adapters::from_sdk`] over an SDK configuration aimed at a closed port
//! (`127.0.0.1:9`, no retries: every AWS call fails at once as unavailable), with the
//! in-memory twins put in place of the subscriber, route, secret, event, queue, idempotency,
//! API key and tenant stores and the publish budget. The attempt log, dead-letter index and queue, audit log, health
//! store and operational events have no twin, so a request that gets as far as one of them
//! answers `503`: everything such a route checks before it is fuzzed, nothing after it.
//! A second state keeps every adapter AWS's, so the cursors of every list are decoded by the
//! real DynamoDB adapters (before any call): refused as `400 invalid_cursor`, or `503`.
//!
//! Every test is named `fuzz_…` (`make fuzz` selects them). Case counts default low enough
//! for `make test`; `PROPTEST_CASES` raises them, and failures are never persisted to files.

use skyhook_domain::fuzzing::{block_on, config, is_snake_case, json_value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use axum::Router;
use axum::body::Body;
use chrono::Utc;
use http::{Method, Request, StatusCode};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

use skyhook_api::{ApiState, Config};
use skyhook_aws::{Adapters, Resources, Retention};
use skyhook_domain::event_type::EventTypeFilter;
use skyhook_domain::ids::{ApiKeyId, SubscriberId, TenantId};
use skyhook_domain::memory::{
    MemoryApiKeyStore, MemoryDeliveryQueue, MemoryEventStore, MemoryIdempotencyStore,
    MemorySecretStore, MemorySubscriberStore,
};
use skyhook_domain::model::{ApiKey, MASKED_VALUE, Role, Subscriber, format_time, parse_time};
use skyhook_domain::ports::{ApiKeyStore, SecretStore, SubscriberStore};
use skyhook_domain::secret::SigningSecret;
use skyhook_domain::signing::SignatureScheme;
use skyhook_domain::url::{SubscriberUrl, UrlPolicy};

const ADMIN_KEY: &str = "sk_fuzz_admin_0123456789";
const READER_KEY: &str = "sk_fuzz_reader_0123456789";
const PUBLISHER_KEY: &str = "sk_fuzz_publisher_0123456789";
/// The seeded subscriber's custom header value: a receiver credential no response shows.
const HEADER_VALUE: &str = "hv-FUZZCREDENTIAL-7f3a";

fn env() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("SKYHOOK_TABLE", "fuzz-table"),
        ("SKYHOOK_STATS_TABLE", "fuzz-stats"),
        (
            "SKYHOOK_QUEUE_URL",
            "http://127.0.0.1:9/000000000000/fuzz-queue",
        ),
        (
            "SKYHOOK_DLQ_URL",
            "http://127.0.0.1:9/000000000000/fuzz-dlq",
        ),
        ("SKYHOOK_ADMIN_KEY", ADMIN_KEY),
    ])
}

/// An SDK configuration whose every call fails at once: a closed loopback port, no
/// retries, static credentials (nothing is looked up).
fn unreachable_sdk() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "fuzz", "fuzz", None, None, "fuzz",
        )))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .build()
}

fn api_config() -> Config {
    Config::from_env(&env()).expect("the fuzz configuration is complete")
}

/// The AWS adapters, built once per thread (building SDK clients is the slow part).
fn aws_adapters() -> Adapters {
    thread_local! {
        static ADAPTERS: Adapters = {
            let (resources, retention): (Resources, Retention) = api_config().resources();
            Adapters::from_sdk(&unreachable_sdk(), &resources, &retention)
        };
    }
    ADAPTERS.with(Adapters::clone)
}

/// A fresh state per case: the AWS adapters with the memory twins in place, one subscriber
/// of tenant `default`, and a reader and a publisher key.
struct World {
    router: Router,
    subscriber: SubscriberId,
    secret: SigningSecret,
}

fn world(local_mode: bool, active: bool) -> World {
    let mut adapters = aws_adapters();
    let subscribers = Arc::new(MemorySubscriberStore::default());
    let secrets = Arc::new(MemorySecretStore::default());
    let keys = Arc::new(MemoryApiKeyStore::default());
    adapters.subscribers = subscribers.clone();
    adapters.routes = subscribers.clone();
    adapters.secrets = secrets.clone();
    adapters.events = Arc::new(MemoryEventStore::default());
    adapters.queue = Arc::new(MemoryDeliveryQueue::default());
    adapters.idempotency = Arc::new(MemoryIdempotencyStore::default());
    adapters.keys = keys.clone();
    adapters.tenants = Arc::new(skyhook_domain::memory::MemoryTenantStore::default());
    adapters.publish_budget = Arc::new(skyhook_domain::memory::MemoryPublishBudget::default());
    let mut config = api_config();
    config.local_mode = local_mode;
    let now = Utc::now();
    let sub = Subscriber {
        id: SubscriberId::new(),
        tenant: TenantId::default_tenant(),
        url: SubscriberUrl::parse(
            "https://hooks.example.com/in?token=t0k3n",
            UrlPolicy::STRICT,
        )
        .unwrap(),
        event_types: vec![EventTypeFilter::parse("order.*").unwrap()],
        active,
        description: Some("seeded".into()),
        headers: BTreeMap::from([("x-api-key".to_string(), MASKED_VALUE.to_string())]),
        signature_scheme: SignatureScheme::Standard,
        created_at: now,
        updated_at: now,
        secret_version: 0,
        max_concurrency: 10,
        rate_limit: None,
        disabled_reason: None,
        transform: None,
        filter: None,
    };
    let secret = SigningSecret::generate();
    block_on(async {
        secrets
            .create(
                &sub.tenant,
                &sub.id,
                &secret,
                &BTreeMap::from([("x-api-key".to_string(), HEADER_VALUE.to_string())]),
            )
            .await
            .unwrap();
        subscribers.create(&sub).await.unwrap();
        for (key, role) in [(READER_KEY, Role::Reader), (PUBLISHER_KEY, Role::Publisher)] {
            let stored = ApiKey {
                id: ApiKeyId::new(),
                tenant: TenantId::default_tenant(),
                role,
                description: None,
                created_at: now,
                created_by: "bootstrap".into(),
            };
            keys.create(&stored, &skyhook_http::api_key_digest(key))
                .await
                .unwrap();
        }
    });
    let state = ApiState::new(&adapters, &config);
    World {
        router: skyhook_http::with_fallbacks(skyhook_api::router(Arc::new(state))),
        subscriber: sub.id,
        secret,
    }
}

/// The router over AWS adapters only, built once per thread.
fn aws_router() -> Router {
    thread_local! {
        static ROUTER: Router = {
            let state = ApiState::new(&aws_adapters(), &api_config());
            skyhook_http::with_fallbacks(skyhook_api::router(Arc::new(state)))
        };
    }
    ROUTER.with(Router::clone)
}

struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    /// A `HEAD` answer has no body to check.
    head: bool,
}

fn send(
    router: Router,
    method: &Method,
    uri: &str,
    auth: Option<&str>,
    body: Option<Vec<u8>>,
) -> Option<Answer> {
    // A URI hyper would not hand on never reaches a route.
    let uri: http::Uri = uri.parse().ok()?;
    let mut req = Request::builder().method(method.clone()).uri(uri);
    if let Some(a) = auth {
        req = req.header(http::header::AUTHORIZATION, a);
    }
    if body.is_some() {
        req = req.header(http::header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .ok()?;
    let head = method == Method::HEAD;
    block_on(async move {
        let res = router.oneshot(req).await.unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Some(Answer { status, body, head })
    })
}

/// The SPEC's rules for every answer: errors in the shape with a snake_case code, the only
/// 5xx a `503` from an absent AWS adapter where the route may reach one, JSON otherwise.
fn check_answer(
    what: &str,
    answer: &Answer,
    may_reach_aws: bool,
    world: Option<&World>,
) -> Result<(), TestCaseError> {
    let status = answer.status;
    prop_assert!(
        status != StatusCode::INTERNAL_SERVER_ERROR,
        "{what}: 500 {}",
        String::from_utf8_lossy(&answer.body)
    );
    if answer.head {
        prop_assert!(
            !status.is_server_error()
                || (may_reach_aws && status == StatusCode::SERVICE_UNAVAILABLE),
            "{what}: {status}"
        );
    } else if status.is_client_error() || status.is_server_error() {
        let body: Result<Value, _> = serde_json::from_slice(&answer.body);
        prop_assert!(
            body.is_ok(),
            "{what}: {status} with a body that is not JSON"
        );
        let body = body.unwrap();
        prop_assert_eq!(
            body.as_object().map(|o| o.len()),
            Some(1),
            "{}: {}",
            what,
            body
        );
        let err = body["error"].as_object();
        prop_assert!(err.is_some_and(|e| e.len() == 2), "{what}: {body}");
        let code = body["error"]["code"].as_str().unwrap_or("");
        prop_assert!(is_snake_case(code), "{what}: code {code:?}");
        prop_assert!(body["error"]["message"].is_string(), "{what}: {body}");
        if status.is_server_error() {
            prop_assert_eq!(
                status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{}: {}",
                what,
                body
            );
            prop_assert_eq!(code, "service_unavailable");
            prop_assert!(
                may_reach_aws,
                "{what}: 503 from a route that has every store in memory"
            );
        }
    } else if status != StatusCode::NO_CONTENT {
        prop_assert!(
            serde_json::from_slice::<Value>(&answer.body).is_ok(),
            "{what}: {status} with a body that is not JSON"
        );
    }
    let text = String::from_utf8_lossy(&answer.body);
    prop_assert!(
        !text.contains(HEADER_VALUE),
        "{what}: a custom header value in {text}"
    );
    if let Some(w) = world {
        prop_assert!(
            !text.contains(&w.secret.expose()[6..]),
            "{what}: the seeded signing secret in {text}"
        );
    }
    Ok(())
}

/// A field value: the right kind most of the time (from `good`), else any JSON.
fn field(good: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        24 => good.prop_map(Some),
        8 => Just(None),
        1 => json_value(3, 4).prop_map(Some),
    ]
    .boxed()
}

fn string_of(s: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Value> {
    s.prop_map(Value::String).boxed()
}

fn url_value() -> BoxedStrategy<Value> {
    string_of(prop_oneof![
        8 => "https://[a-z]{1,8}\\.(com|io)/[a-z/]{0,10}(\\?[a-z]{1,4}=[a-z0-9]{0,6})?",
        1 => Just("http://localhost:9000/hook".to_string()),
        1 => Just("https://127.0.0.1/".to_string()),
        1 => Just("https://[::ffff:10.0.0.1]/".to_string()),
        1 => Just("https://u:p@hooks.example.com/".to_string()),
        1 => Just("https://hooks.example.com/#f".to_string()),
        1 => Just("ftp://hooks.example.com/".to_string()),
        1 => "https://\\PC{0,30}",
        1 => "\\PC{0,30}",
        1 => (2030usize..2060).prop_map(|n| format!("https://example.com/{}", "a".repeat(n))),
    ])
}

fn event_types_value() -> BoxedStrategy<Value> {
    let entry = string_of(prop_oneof![
        8 => "[a-z]{1,6}(\\.[a-z]{1,6}){0,2}(\\.\\*)?",
        2 => Just("*".to_string()),
        1 => "[a-z*.]{0,8}",
        1 => "\\PC{0,10}",
    ]);
    prop_oneof![
        8 => prop::collection::vec(entry, 1..4).prop_map(Value::Array),
        1 => Just(json!([])),
        1 => (45usize..52).prop_map(|n| Value::Array((0..n).map(|i| json!(format!("t{i}"))).collect())),
    ]
    .boxed()
}

fn headers_value() -> BoxedStrategy<Value> {
    let name = prop_oneof![
        6 => "x-[a-z]{1,8}",
        1 => Just("webhook-signature".to_string()),
        1 => Just("Content-Type".to_string()),
        1 => Just("X-Api-Key".to_string()),
        2 => Just("x-api-key".to_string()),
        1 => "\\PC{0,10}",
    ];
    let value = prop_oneof![
        2 => Just(Value::String(MASKED_VALUE.to_string())),
        6 => string_of("[ -~]{0,20}"),
        1 => string_of("\\PC{0,10}"),
        1 => string_of(Just("a\r\nb".to_string())),
        1 => (1020usize..1030)
            .prop_map(|n| Value::String("v".repeat(n)))
            .boxed(),
        1 => json_value(3, 4).boxed(),
    ];
    prop_oneof![
        6 => prop::collection::vec((name, value), 0..3)
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        1 => (19usize..23).prop_map(|n| Value::Object((0..n).map(|i| (format!("x-h{i}"), json!("v"))).collect())),
    ]
    .boxed()
}

fn secret_value() -> BoxedStrategy<Value> {
    string_of(prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 24..=64).prop_map(|k| {
            SigningSecret::parse(&format!("whsec_{}", base64_standard(&k))).unwrap().expose()
        }),
        1 => "whsec_[A-Za-z0-9+/=]{0,90}",
        1 => "\\PC{0,20}",
    ])
}

/// Standard base64 with padding, for secrets.
fn base64_standard(bytes: &[u8]) -> String {
    let url = base64url(bytes).replace('-', "+").replace('_', "/");
    let pad = (4 - url.len() % 4) % 4;
    format!("{url}{}", "=".repeat(pad))
}

/// A count in `1..=max` mostly; zero, past the maximum, negative, fractional or null else.
fn count_value(max: u64) -> BoxedStrategy<Value> {
    prop_oneof![
        24 => (1..=max).prop_map(Value::from),
        1 => Just(json!(0)),
        1 => (max + 1..max * 3).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => Just(json!(1.5)),
        1 => Just(Value::Null),
    ]
    .boxed()
}

fn object(fields: Vec<(&'static str, Option<Value>)>, extra: Option<(String, Value)>) -> Value {
    let mut map: serde_json::Map<String, Value> = fields
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect();
    if let Some((k, v)) = extra {
        map.insert(k, v);
    }
    Value::Object(map)
}

/// Subscriber bodies for create (`patch: false`) or patch: half of them well formed with
/// valid values (so the routes get past parsing to their checks and the stores), half noisy.
fn subscriber_body(patch: bool) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![clean_subscriber_body(patch), noisy_subscriber_body(patch)].boxed()
}

fn clean_subscriber_body(patch: bool) -> BoxedStrategy<Vec<u8>> {
    let present = |v: BoxedStrategy<Value>| prop::option::of(v).boxed();
    (
        present(string_of("https://[a-z]{1,8}\\.(com|io)/[a-z]{0,8}")),
        present(
            prop::collection::vec(
                string_of(prop_oneof![
                    "[a-z]{1,6}(\\.[a-z]{1,6}){0,2}(\\.\\*)?",
                    Just("*".to_string())
                ]),
                1..4,
            )
            .prop_map(Value::Array)
            .boxed(),
        ),
        present(string_of("\\PC{0,20}")),
        present(secret_value()),
        present(
            prop::collection::vec(
                (
                    "x-[a-z]{1,8}",
                    prop_oneof![string_of("[!-~]{1,20}"), Just(json!(MASKED_VALUE)).boxed()],
                ),
                0..3,
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect()))
            .boxed(),
        ),
        present(string_of(prop_oneof![
            Just("standard".to_string()),
            Just("hex-sha256".to_string()),
            Just("hex-sha512".to_string())
        ])),
        present((1u64..=100).prop_map(Value::from).boxed()),
        present(prop_oneof![(1u64..=10_000).prop_map(Value::from), Just(Value::Null)].boxed()),
        present(any::<bool>().prop_map(Value::Bool).boxed()),
    )
        .prop_map(
            move |(url, et, desc, secret, headers, scheme, mc, rl, active)| {
                let (url, et) = if patch {
                    (url, et)
                } else {
                    (
                        url.or(Some(json!("https://hooks.example.com/in"))),
                        et.or(Some(json!(["order.*"]))),
                    )
                };
                let mut fields = vec![
                    ("url", url),
                    ("event_types", et),
                    ("description", desc),
                    ("headers", headers),
                    ("signature_scheme", scheme),
                    ("max_concurrency", mc),
                ];
                if patch {
                    fields.push(("active", active));
                    fields.push(("rate_limit", rl));
                } else {
                    fields.push(("secret", secret));
                    fields.push(("rate_limit", rl.filter(|v| !v.is_null())));
                }
                object(fields, None).to_string().into_bytes()
            },
        )
        .boxed()
}

/// Noisy subscriber bodies, for create (`patch: false`: `url` and `event_types` present most of
/// the time) or patch: each field good, absent, or of the wrong type; now and then a field
/// the route does not know; and bodies that are not objects or not JSON.
fn noisy_subscriber_body(patch: bool) -> BoxedStrategy<Vec<u8>> {
    let required = |good: BoxedStrategy<Value>| -> BoxedStrategy<Option<Value>> {
        if patch {
            field(good)
        } else {
            prop_oneof![12 => good.prop_map(Some), 1 => Just(None), 1 => json_value(3, 4).prop_map(Some)].boxed()
        }
    };
    let fields = (
        required(url_value()),
        required(event_types_value()),
        field(string_of(prop_oneof![
            "\\PC{0,20}",
            (1020usize..1030).prop_map(|n| "d".repeat(n))
        ])),
        field(if patch {
            Just(Value::Null).boxed()
        } else {
            secret_value()
        }),
        field(headers_value()),
        field(string_of(prop_oneof![
            Just("standard".to_string()),
            Just("hex-sha256".to_string()),
            Just("hex-sha512".to_string()),
            "\\PC{0,10}"
        ])),
        field(count_value(100)),
        field(count_value(10_000)),
        field(any::<bool>().prop_map(Value::Bool).boxed()),
        prop::option::weighted(0.1, ("\\PC{0,10}", json_value(3, 4))),
    )
        .prop_map(
            move |(url, et, desc, secret, headers, scheme, mc, rl, active, extra)| {
                let mut fields = vec![
                    ("url", url),
                    ("event_types", et),
                    ("description", desc),
                    ("headers", headers),
                    ("signature_scheme", scheme),
                    ("max_concurrency", mc),
                    ("rate_limit", rl),
                ];
                // Each route's own fields: a secret only on create, `active` only on patch.
                if patch {
                    fields.push(("active", active));
                } else {
                    fields.push(("secret", secret));
                }
                object(fields, extra).to_string().into_bytes()
            },
        );
    raw_or(fields)
}

/// A body: mostly the structured kind, else any JSON, bytes, or too large.
fn raw_or(structured: impl Strategy<Value = Vec<u8>> + 'static) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        16 => structured,
        1 => json_value(3, 4).prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..40),
        1 => Just(Vec::new()),
        1 => Just(format!("{{\"description\":\"{}\"}}", "x".repeat(64 * 1024)).into_bytes()),
    ]
    .boxed()
}

fn time_value() -> BoxedStrategy<Value> {
    string_of(prop_oneof![
        Just("2026-01-02T03:04:05Z".to_string()),
        Just("0000-01-01T00:00:00+00:01".to_string()),
        Just("9999-12-31T23:59:59-01:00".to_string()),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})",
        "\\PC{0,25}",
    ])
}

/// The percent-encoding of any text, so that any value can sit in a query or a path.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A path id: `None` (the seeded subscriber's, or a well-formed unknown one), another
/// well-formed one, or anything, percent-encoded.
fn id_segment(prefix: &'static str) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(format!("{prefix}01ARZ3NDEKTSV4RRFFQ69G5FAV"))),
        1 => "[a-z]{3}_[0-9A-Za-z]{1,70}".prop_map(Some),
        1 => "\\PC{0,20}".prop_map(|s| Some(encode(&s))),
        1 => Just(Some("%FF%FE".to_string())),
        1 => Just(Some("sub_%00".to_string())),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Auth {
    Admin,
    Reader,
    Publisher,
    None,
    Garbage,
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        12 => Just(Auth::Admin),
        2 => Just(Auth::Reader),
        2 => Just(Auth::Publisher),
        1 => Just(Auth::None),
        1 => Just(Auth::Garbage),
    ]
}

fn auth_header(a: Auth) -> Option<String> {
    match a {
        Auth::Admin => Some(format!("Bearer {ADMIN_KEY}")),
        Auth::Reader => Some(format!("Bearer {READER_KEY}")),
        Auth::Publisher => Some(format!("Bearer {PUBLISHER_KEY}")),
        Auth::None => None,
        Auth::Garbage => Some("Bearer sk_wrong".into()),
    }
}

/// One request to the management API. `id: None` is the seeded subscriber.
#[derive(Debug, Clone)]
enum Call {
    CreateSubscriber(Vec<u8>),
    PatchSubscriber(Option<String>, Vec<u8>),
    GetSubscriber(Option<String>),
    DeleteSubscriber(Option<String>),
    Rotate(Option<String>, Vec<u8>),
    Test(Option<String>),
    Recover(Option<String>, Vec<u8>),
    GetEvent(String),
    List(&'static str, String),
    CreateKey(Vec<u8>),
    DeleteKey(String),
    Redrive(Vec<u8>),
    Other(Method, String),
}

/// A query string for a list route: its own parameters with good or bad values, unknown
/// ones, repeated ones, cursors of every kind.
fn list_query(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    let value = prop_oneof![
        "[0-9]{1,4}",
        Just("0".to_string()),
        Just("251".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        Just("success".to_string()),
        Just("failure".to_string()),
        "sub_[0-9A-Z]{26}",
        "evt_[0-9A-Z]{26}",
        time_value().prop_map(|v| v.as_str().unwrap_or_default().to_string()),
        "[A-Za-z0-9_-]{0,60}",
        "\\PC{0,20}",
    ];
    let name = prop_oneof![
        8 => prop::sample::select(names).prop_map(str::to_string),
        1 => "[a-z_]{1,8}",
    ];
    prop::collection::vec((name, value), 0..5).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    })
}

const LISTS: &[(&str, &[&str])] = &[
    ("/v1/subscribers", &["limit", "cursor", "active"]),
    (
        "/v1/deliveries",
        &[
            "subscriber_id",
            "event_id",
            "outcome",
            "since",
            "until",
            "limit",
            "cursor",
        ],
    ),
    ("/v1/dlq", &["subscriber_id", "limit", "cursor"]),
    ("/v1/audit", &["limit", "cursor"]),
    ("/v1/api-keys", &["limit", "cursor"]),
    ("/v1/stats", &["subscriber_id"]),
];

fn call() -> impl Strategy<Value = Call> {
    let list = prop::sample::select(LISTS)
        .prop_flat_map(|(path, names)| list_query(names).prop_map(move |q| Call::List(path, q)));
    let patch = subscriber_body(true);
    let rotate = raw_or(
        field(secret_value())
            .prop_map(|s| object(vec![("secret", s)], None).to_string().into_bytes()),
    );
    let recover = raw_or(
        (
            field(time_value()),
            field(time_value()),
            prop::option::of(("\\PC{0,6}", json_value(3, 4))),
        )
            .prop_map(|(since, until, extra)| {
                object(vec![("since", since), ("until", until)], extra)
                    .to_string()
                    .into_bytes()
            }),
    );
    let key = raw_or(
        (
            field(string_of(prop_oneof![
                "[a-z0-9][a-z0-9_-]{0,10}",
                Just("default".to_string()),
                "\\PC{0,10}"
            ])),
            field(string_of(prop_oneof![
                Just("admin".to_string()),
                Just("reader".to_string()),
                Just("publisher".to_string()),
                "\\PC{0,8}"
            ])),
            field(string_of(prop_oneof![
                "\\PC{0,20}",
                (250usize..260).prop_map(|n| "k".repeat(n))
            ])),
        )
            .prop_map(|(t, r, d)| {
                object(vec![("tenant", t), ("role", r), ("description", d)], None)
                    .to_string()
                    .into_bytes()
            }),
    );
    let redrive = prop_oneof![
        Just(Vec::new()),
        raw_or(
            field(string_of(prop_oneof!["sub_[0-9A-Z]{26}", "\\PC{0,10}"])).prop_map(|s| object(
                vec![("subscriber_id", s)],
                None
            )
            .to_string()
            .into_bytes())
        ),
    ];
    let other = (
        prop::sample::select(vec![
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::HEAD,
            Method::OPTIONS,
        ]),
        prop_oneof![
            Just("/v1/subscribers".to_string()),
            Just("/v1/openapi.json".to_string()),
            Just("/v1/dlq/redrive".to_string()),
            Just("/v1/api-keys".to_string()),
            Just("/v1/stats".to_string()),
            "/v1/[a-z/-]{0,20}",
            "/\\PC{0,20}".prop_map(|p| format!("/{}", encode(&p))),
        ],
    )
        .prop_map(|(m, p)| Call::Other(m, p));
    prop_oneof![
        4 => subscriber_body(false).prop_map(Call::CreateSubscriber),
        4 => (id_segment("sub_"), patch).prop_map(|(id, b)| Call::PatchSubscriber(id, b)),
        1 => id_segment("sub_").prop_map(Call::GetSubscriber),
        1 => id_segment("sub_").prop_map(Call::DeleteSubscriber),
        2 => (id_segment("sub_"), rotate).prop_map(|(id, b)| Call::Rotate(id, b)),
        1 => id_segment("sub_").prop_map(Call::Test),
        2 => (id_segment("sub_"), recover).prop_map(|(id, b)| Call::Recover(id, b)),
        1 => id_segment("evt_").prop_map(|id| Call::GetEvent(id.unwrap_or_else(|| "evt_01ARZ3NDEKTSV4RRFFQ69G5FAV".into()))),
        5 => list,
        2 => key.prop_map(Call::CreateKey),
        1 => id_segment("key_").prop_map(|id| Call::DeleteKey(id.unwrap_or_else(|| "key_01ARZ3NDEKTSV4RRFFQ69G5FAV".into()))),
        1 => redrive.prop_map(Call::Redrive),
        2 => other,
    ]
}

impl Call {
    /// Method, URI, body, and whether the route may reach an AWS adapter with no twin.
    fn request(&self, seeded: &SubscriberId) -> (Method, String, Option<Vec<u8>>, bool) {
        let id = |i: &Option<String>| i.clone().unwrap_or_else(|| seeded.to_string());
        match self {
            Call::CreateSubscriber(b) => (
                Method::POST,
                "/v1/subscribers".into(),
                Some(b.clone()),
                false,
            ),
            // Health (read after every change) and the dead-letter index (enabling unparks)
            // are AWS's.
            Call::PatchSubscriber(i, b) => (
                Method::PATCH,
                format!("/v1/subscribers/{}", id(i)),
                Some(b.clone()),
                true,
            ),
            Call::GetSubscriber(i) => (
                Method::GET,
                format!("/v1/subscribers/{}", id(i)),
                None,
                true,
            ),
            Call::DeleteSubscriber(i) => (
                Method::DELETE,
                format!("/v1/subscribers/{}", id(i)),
                None,
                false,
            ),
            Call::Rotate(i, b) => (
                Method::POST,
                format!("/v1/subscribers/{}/rotate-secret", id(i)),
                Some(b.clone()),
                false,
            ),
            Call::Test(i) => (
                Method::POST,
                format!("/v1/subscribers/{}/test", id(i)),
                None,
                false,
            ),
            // The attempt log is AWS's.
            Call::Recover(i, b) => (
                Method::POST,
                format!("/v1/subscribers/{}/recover", id(i)),
                Some(b.clone()),
                true,
            ),
            Call::GetEvent(i) => (Method::GET, format!("/v1/events/{i}"), None, true),
            Call::List(path, q) => (
                Method::GET,
                format!("{path}?{q}"),
                None,
                // Subscribers: only health, and only for a non-empty page; keys: in memory.
                *path != "/v1/api-keys",
            ),
            Call::CreateKey(b) => (Method::POST, "/v1/api-keys".into(), Some(b.clone()), false),
            Call::DeleteKey(i) => (Method::DELETE, format!("/v1/api-keys/{i}"), None, false),
            Call::Redrive(b) => (
                Method::POST,
                "/v1/dlq/redrive".into(),
                Some(b.clone()),
                true,
            ),
            Call::Other(m, p) => (m.clone(), p.clone(), None, true),
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// Any request to any route, with any key: no panic, no 500, errors in the SPEC shape,
    /// 503 only where an AWS adapter without a twin is reached, and neither the seeded
    /// subscriber's signing secret nor its custom header values in any answer.
    #[test]
    fn fuzz_api_requests(call in call(), who in auth(), local in any::<bool>(), active in any::<bool>()) {
        let w = world(local, active);
        let (method, uri, body, may_reach_aws) = call.request(&w.subscriber);
        let what = format!("{method} {uri} as {who:?}");
        if let Some(answer) = send(w.router.clone(), &method, &uri, auth_header(who).as_deref(), body) {
            check_answer(&what, &answer, may_reach_aws, Some(&w))?;
            // Without a valid key nothing is done: only a path no route serves (404, 405) or
            // a malformed path or query (400) is refused before the key is checked.
            if matches!(who, Auth::None | Auth::Garbage) {
                prop_assert!(
                    [StatusCode::UNAUTHORIZED, StatusCode::BAD_REQUEST, StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED]
                        .contains(&answer.status)
                        || (matches!(call, Call::Other(..)) && answer.status == StatusCode::OK && uri == "/v1/health"),
                    "{}: {}", what, answer.status
                );
            }
            if matches!(call, Call::CreateSubscriber(_)) && answer.status == StatusCode::CREATED {
                let v: Value = serde_json::from_slice(&answer.body).unwrap();
                prop_assert!(v["id"].as_str().is_some_and(|id| SubscriberId::parse(id).is_ok()));
                prop_assert!(v["secret"].as_str().is_some_and(|s| SigningSecret::parse(s).is_ok()));
                prop_assert!(v["headers"].as_object().is_some_and(|h| h.values().all(|v| v == MASKED_VALUE)));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Cursors, decoded by the real DynamoDB adapters
// ---------------------------------------------------------------------------------------

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The binding a cursor carries, as the DynamoDB adapters compute it: the first 8 bytes of
/// SHA-256 over the tenant, the list and its filters. It is made of nothing secret, so any
/// caller can make a cursor that passes the binding check.
fn binding(tenant: &str, list: &str, filters: &[Option<String>]) -> String {
    let mut input = format!("{tenant}\u{0}{list}");
    for f in filters {
        input.push('\u{0}');
        match f {
            Some(v) => {
                input.push('\u{1}');
                input.push_str(v);
            }
            None => input.push('\u{2}'),
        }
    }
    skyhook_http::api_key_digest(&input)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A list query whose cursor is built to reach each check of the adapter's decoding.
#[derive(Debug, Clone)]
struct CursorCase {
    path: &'static str,
    params: Vec<(&'static str, String)>,
    cursor: String,
    /// The cursor cannot decode (not base64url, not an envelope, or bound elsewhere): the
    /// answer must be exactly `400 invalid_cursor`.
    refused: bool,
}

fn position() -> impl Strategy<Value = Value> {
    prop_oneof![
        string_of(prop_oneof![
            "SUB#sub_[0-9A-Z]{26}",
            "KEY#key_[0-9A-Z]{26}",
            "D#evt_[0-9A-Z]{26}#[0-9]{5}#[0-9]{13}",
            "evt_[0-9A-Z]{26}",
            "(SUB#|KEY#|D#|evt_|)\\PC{0,20}",
            Just(String::new()),
            (1020usize..1100).prop_map(|n| format!("SUB#{}", "z".repeat(n))),
        ]),
        (
            "evt_[0-9A-Z]{26}",
            prop::option::of("sub_[0-9A-Z]{26}"),
            prop::option::of("\\PC{0,12}")
        )
            .prop_map(|(e, s, k)| json!({"e": e, "s": s, "k": k})),
        ("\\PC{0,12}", "\\PC{0,12}").prop_map(|(s, k)| json!({"s": s, "k": k})),
        json_value(3, 4).boxed(),
    ]
}

fn cursor_case() -> impl Strategy<Value = CursorCase> {
    let list = prop_oneof![
        any::<Option<bool>>().prop_map(|active| {
            let params = active
                .map(|a| vec![("active", a.to_string())])
                .unwrap_or_default();
            (
                "/v1/subscribers",
                "subscribers",
                vec![active.map(|a| a.to_string())],
                params,
            )
        }),
        (
            prop::option::of("sub_[0-9A-Z]{26}"),
            prop::option::of("evt_[0-9A-Z]{26}"),
            prop::option::of(prop_oneof![Just("success"), Just("failure")]),
            prop::option::of(time_value())
        )
            .prop_map(|(sub, evt, outcome, since)| {
                let since = since
                    .and_then(|t| t.as_str().map(str::to_string))
                    .and_then(|raw| parse_time(&raw).map(|t| (raw, t)));
                let mut params = Vec::new();
                if let Some(s) = &sub {
                    params.push(("subscriber_id", s.clone()));
                }
                if let Some(e) = &evt {
                    params.push(("event_id", e.clone()));
                }
                if let Some(o) = outcome {
                    params.push(("outcome", o.to_string()));
                }
                if let Some((raw, _)) = &since {
                    params.push(("since", raw.clone()));
                }
                let filters = vec![
                    sub,
                    evt,
                    outcome.map(str::to_string),
                    since.map(|(_, t)| format_time(t)),
                    None,
                ];
                ("/v1/deliveries", "deliveries", filters, params)
            }),
        prop::option::of("sub_[0-9A-Z]{26}").prop_map(|sub| {
            let params = sub.iter().map(|s| ("subscriber_id", s.clone())).collect();
            ("/v1/dlq", "dead_letters", vec![sub], params)
        }),
        Just(("/v1/audit", "audit", vec![], vec![])),
        Just(("/v1/api-keys", "api_keys", vec![], vec![])),
    ];
    (
        list,
        position(),
        0u8..6,
        any::<prop::sample::Index>(),
        "[A-Za-z0-9_-]{0,60}",
        "\\PC{0,20}",
    )
        .prop_map(|((path, name, filters, params), p, kind, cut, b64, junk)| {
            let tenant = "default";
            let good = binding(tenant, name, &filters);
            let envelope = |b: &str| base64url(json!({"b": b, "p": p}).to_string().as_bytes());
            let (cursor, refused) = match kind {
                // Bound right: decoding gets as far as the position.
                0 | 1 => (envelope(&good), false),
                // Bound to another tenant, or to the same list without its filters.
                2 => (envelope(&binding("acme", name, &filters)), true),
                3 => {
                    let full = envelope(&good);
                    let cut = cut.index(full.len().max(1));
                    let cut_cursor = full[..cut].to_string();
                    // Cut short: sometimes still an envelope (a cut at a whole group of a
                    // JSON text ending in `}` is not), so no exact expectation.
                    (cut_cursor, false)
                }
                4 => (b64, false),
                _ => (
                    junk.clone(),
                    !junk.is_empty()
                        && junk
                            .bytes()
                            .any(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_')),
                ),
            };
            CursorCase {
                path,
                params,
                cursor,
                refused,
            }
        })
}

proptest! {
    #![proptest_config(config(128))]

    /// Every list's cursor as the DynamoDB adapters read it: forged (the binding is made of
    /// nothing secret), bound to another tenant or filter, cut short, random base64url,
    /// anything. Never a panic or a 500: `400 invalid_cursor` before any AWS call, or `503`
    /// from the unreachable AWS behind a cursor that decoded.
    #[test]
    fn fuzz_list_cursors(case in cursor_case(), limit in prop::option::of(prop_oneof![Just("1".to_string()), Just("250".to_string()), "[0-9]{1,3}"])) {
        let mut params = case.params.clone();
        if let Some(l) = &limit {
            params.push(("limit", l.clone()));
        }
        params.push(("cursor", case.cursor.clone()));
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
        let uri = format!("{}?{}", case.path, query.join("&"));
        let answer = send(aws_router(), &Method::GET, &uri, Some(&format!("Bearer {ADMIN_KEY}")), None);
        prop_assert!(answer.is_some(), "{uri} is a valid URI");
        let answer = answer.unwrap();
        check_answer(&uri, &answer, true, None)?;
        if case.refused {
            let v: Value = serde_json::from_slice(&answer.body).unwrap();
            let limit_ok = limit.as_deref().is_none_or(|l| l.parse::<usize>().is_ok_and(|n| (1..=250).contains(&n)));
            if limit_ok {
                prop_assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}: {}", uri, v);
                prop_assert_eq!(v["error"]["code"].as_str(), Some("invalid_cursor"), "{}", uri);
            }
        }
    }
}
