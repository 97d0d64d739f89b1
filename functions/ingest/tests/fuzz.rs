//! Property-based fuzzing of the ingest: `POST /v1/events` bodies and headers through the
//! real router (from an axum request, and from an API Gateway event as Lambda hands it
//! over), and EventBridge events through the `ingest-events` handler. Every store is an
//! in-memory twin, so no answer may be a 5xx at all; errors are the SPEC shape with a
//! snake_case code, and what is accepted is queued with its `data` byte for byte.
//!
//! Every test is named `fuzz_…` (`make fuzz` selects them). Case counts default low enough
//! for `make test`; `PROPTEST_CASES` raises them, and failures are never persisted to files.

use skyhook_domain::fuzzing::{block_on, config, is_snake_case, json_value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use axum::Router;
use axum::body::Body;
use chrono::Utc;
use http::{HeaderValue, Method, Request, StatusCode};
use lambda_runtime::{Context, LambdaEvent};
use proptest::prelude::*;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tower::ServiceExt;

use skyhook_domain::config::AdminKeySource;
use skyhook_domain::event_type::{EventType, EventTypeFilter};
use skyhook_domain::ids::{ApiKeyId, SourceId, SubscriberId, TenantId};
use skyhook_domain::inbound::{EventTypeRule, Scheme, Source, SourceSecret};
use skyhook_domain::memory::{
    MemoryApiKeyStore, MemoryDeliveryQueue, MemoryEventStore, MemoryIdempotencyStore,
    MemoryReplayGuard, MemorySourceSecrets, MemorySourceStore, MemorySubscriberStore,
};
use skyhook_domain::model::{ApiKey, DeliveryMessage, Role, Subscriber};
use skyhook_domain::ports::{ApiKeyStore, SourceSecrets, SourceStore, SubscriberStore};
use skyhook_domain::publish::{PublishError, Publisher};
use skyhook_domain::signing::SignatureScheme;
use skyhook_domain::url::{SubscriberUrl, UrlPolicy};
use skyhook_http::Authenticator;
use skyhook_ingest::{EventBridgeError, IngestState, event_type_from_detail_type};

const ADMIN_KEY: &str = "sk_fuzz_admin_0123456789";
const READER_KEY: &str = "sk_fuzz_reader_0123456789";
/// The seeded GitHub-style source's secret.
const SOURCE_SECRET: &str = "It's a Secret to Everybody";

/// A fresh ingest per case: memory stores, one active subscriber for `order.*` and one
/// inactive one, and a reader key besides the admin key.
struct World {
    router: Router,
    publisher: Publisher,
    queue: Arc<MemoryDeliveryQueue>,
    active: SubscriberId,
    inactive: SubscriberId,
    /// A GitHub-style source (event type from `X-GitHub-Event`, prefixed `order.`).
    source: Source,
    replays: Arc<MemoryReplayGuard>,
}

fn world(max_payload_bytes: usize) -> World {
    let subscribers = Arc::new(MemorySubscriberStore::default());
    let queue = Arc::new(MemoryDeliveryQueue::default());
    let keys = Arc::new(MemoryApiKeyStore::default());
    let publisher = Publisher {
        subscribers: subscribers.clone(),
        events: Arc::new(MemoryEventStore::default()),
        queue: queue.clone(),
        idempotency: Arc::new(MemoryIdempotencyStore::default()),
        idempotency_ttl: Duration::from_secs(24 * 3600),
        // No subscriber here has a content filter, so no worker ever starts.
        filters: Arc::new(skyhook_domain::memory::NoProgramRunner),
        gate: None,
    };
    let now = Utc::now();
    let subscriber = |active: bool| Subscriber {
        id: SubscriberId::new(),
        tenant: TenantId::default_tenant(),
        url: SubscriberUrl::parse("https://hooks.example.com/in", UrlPolicy::STRICT).unwrap(),
        event_types: vec![EventTypeFilter::parse("order.*").unwrap()],
        active,
        description: None,
        headers: BTreeMap::new(),
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
    let (on, off) = (subscriber(true), subscriber(false));
    block_on(async {
        subscribers.create(&on).await.unwrap();
        subscribers.create(&off).await.unwrap();
        let reader = ApiKey {
            id: ApiKeyId::new(),
            tenant: TenantId::default_tenant(),
            role: Role::Reader,
            description: None,
            created_at: now,
            created_by: "bootstrap".into(),
        };
        keys.create(&reader, &skyhook_http::api_key_digest(READER_KEY))
            .await
            .unwrap();
    });
    let (sources, source_secrets, replays) = (
        Arc::new(MemorySourceStore::default()),
        Arc::new(MemorySourceSecrets::default()),
        Arc::new(MemoryReplayGuard::default()),
    );
    let source = Source {
        id: SourceId::new(),
        tenant: TenantId::default_tenant(),
        name: "fuzz".into(),
        scheme: Scheme::Github,
        hmac: None,
        event_type: serde_json::from_value::<EventTypeRule>(
            json!({"header": "X-GitHub-Event", "prefix": "order."}),
        )
        .unwrap(),
        created_at: now,
        updated_at: now,
        secret_version: 0,
    };
    block_on(async {
        sources.create(&source).await.unwrap();
        source_secrets
            .create(
                &source.tenant,
                &source.id,
                &SourceSecret::parse(Scheme::Github, SOURCE_SECRET).unwrap(),
            )
            .await
            .unwrap();
    });
    let state = IngestState {
        publisher: publisher.clone(),
        inbound: skyhook_ingest::inbound::Inbound::new(sources, source_secrets, replays.clone()),
        auth: Arc::new(
            Authenticator::new(AdminKeySource::Value(ADMIN_KEY.into()), None).with_key_store(keys),
        ),
        max_payload_bytes,
    };
    World {
        router: skyhook_ingest::with_fallbacks(skyhook_ingest::router(Arc::new(state))),
        publisher,
        queue,
        active: on.id,
        inactive: off.id,
        source,
        replays,
    }
}

/// `data` as JSON text, kept as sent: any value, odd spacing, numbers no float holds, deep
/// nesting.
fn data_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => json_value(3, 4).prop_map(|v| v.to_string()),
        1 => json_value(3, 4).prop_map(|v| serde_json::to_string_pretty(&v).unwrap()),
        1 => Just("1e999".to_string()),
        1 => Just("123456789012345678901234567890.50".to_string()),
        1 => Just("{\"a\" :  [1 , 2.50]}".to_string()),
        1 => (100usize..400).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
        1 => Just(format!("\"{}\"", "x".repeat(3000))),
    ]
}

fn event_type_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "order\\.[a-z]{1,8}",
        2 => "[a-z]{1,6}(\\.[a-z_-]{1,6}){0,3}",
        1 => "[a-z.*]{0,10}",
        1 => "\\PC{0,20}",
        1 => (125usize..135).prop_map(|n| "a".repeat(n)),
    ]
}

/// Publish bodies: `type` and `data` with optional `id` and `subscriber_ids`, each right or
/// wrong; unknown fields; bodies that are not objects or not JSON.
fn publish_body() -> impl Strategy<Value = (Vec<u8>, Option<String>)> {
    let ids = prop_oneof![
        Just(vec![Value::String("active".into())]),
        Just(vec![Value::String("inactive".into())]),
        prop::collection::vec(
            prop_oneof![
                Just(Value::String("active".into())),
                "sub_[0-9A-Z]{26}".prop_map(Value::String),
                "\\PC{0,10}".prop_map(Value::String),
                json_value(3, 4),
            ],
            0..4
        ),
        (99usize..103).prop_map(|n| vec![Value::String("active".into()); n]),
    ];
    let structured = (
        prop::option::weighted(0.95, event_type_text().prop_map(Value::String).boxed()),
        prop::option::weighted(0.95, data_text()),
        prop::option::weighted(
            0.2,
            prop_oneof![
                "[!-~]{1,20}",
                "\\PC{0,10}",
                (250usize..260).prop_map(|n| "k".repeat(n))
            ],
        ),
        prop::option::weighted(0.3, ids),
        prop::option::weighted(0.05, ("\\PC{0,6}", json_value(3, 4))),
        prop::option::weighted(0.05, json_value(3, 4)),
    )
        .prop_map(|(ty, data, id, ids, extra, wrong_type)| {
            let mut parts = Vec::new();
            if let Some(t) = wrong_type.or(ty) {
                parts.push(format!("\"type\":{t}"));
            }
            if let Some(d) = &data {
                parts.push(format!("\"data\":{d}"));
            }
            if let Some(i) = id {
                parts.push(format!("\"id\":{}", Value::String(i)));
            }
            if let Some(ids) = ids {
                parts.push(format!("\"subscriber_ids\":{}", Value::Array(ids)));
            }
            if let Some((k, v)) = extra {
                parts.push(format!("{}:{v}", Value::String(k)));
            }
            (format!("{{{}}}", parts.join(",")).into_bytes(), data)
        });
    prop_oneof![
        12 => structured,
        1 => json_value(3, 4).prop_map(|v| (v.to_string().into_bytes(), None)),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| (b, None)),
        1 => Just((Vec::new(), None)),
    ]
}

/// Header values as they can arrive: visible ASCII, blanks and obs-text bytes.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[!-~]{1,30}".prop_map(String::into_bytes),
        1 => prop::collection::vec(prop_oneof![8 => 0x20u8..0x7f, 1 => Just(b'\t'), 1 => 0x80u8..=0xff], 0..40),
        1 => (250usize..260).prop_map(|n| vec![b'k'; n]),
    ]
}

#[derive(Debug, Clone)]
struct Publish {
    body: Vec<u8>,
    /// The `data` text the body carries, when it has one.
    data: Option<String>,
    auth: Option<&'static str>,
    idempotency_key: Option<Vec<u8>>,
    correlation_id: Option<Vec<u8>>,
    content_length: Option<String>,
    limit: usize,
    twice: bool,
}

fn publish() -> impl Strategy<Value = Publish> {
    (
        publish_body(),
        prop_oneof![
            8 => Just(Some(ADMIN_KEY)),
            1 => Just(Some(READER_KEY)),
            1 => Just(None),
            1 => Just(Some("sk_wrong")),
        ],
        prop::option::weighted(0.3, header_value()),
        prop::option::weighted(0.3, header_value()),
        prop::option::weighted(
            0.1,
            prop_oneof!["[0-9]{1,8}", Just("-1".to_string()), Just("x".to_string())],
        ),
        prop_oneof![4 => Just(256 * 1024), 1 => 1usize..4096],
        any::<bool>(),
    )
        .prop_map(
            |(
                (body, data),
                auth,
                idempotency_key,
                correlation_id,
                content_length,
                limit,
                twice,
            )| {
                Publish {
                    body,
                    data,
                    auth,
                    idempotency_key,
                    correlation_id,
                    content_length,
                    limit,
                    twice,
                }
            },
        )
}

struct Answer {
    status: StatusCode,
    body: Value,
}

fn post(w: &World, p: &Publish) -> Option<Answer> {
    // The two seeded subscribers are named by placeholder in the generated body.
    let body = String::from_utf8_lossy(&p.body).into_owned();
    let body = if body.contains("\"subscriber_ids\"") {
        body.replace("\"active\"", &format!("\"{}\"", w.active))
            .replace("\"inactive\"", &format!("\"{}\"", w.inactive))
            .into_bytes()
    } else {
        p.body.clone()
    };
    let mut req = Request::builder().method(Method::POST).uri("/v1/events");
    if let Some(a) = p.auth {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {a}"));
    }
    for (name, value) in [
        ("idempotency-key", &p.idempotency_key),
        ("x-correlation-id", &p.correlation_id),
    ] {
        if let Some(v) = value {
            req = req.header(name, HeaderValue::from_bytes(v).ok()?);
        }
    }
    if let Some(len) = &p.content_length {
        req = req.header(http::header::CONTENT_LENGTH, len.as_str());
    }
    let req = req.body(Body::from(body)).ok()?;
    let router = w.router.clone();
    block_on(async move {
        let res = router.oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        Some(Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    })
}

fn check_error(answer: &Answer) -> Result<(), TestCaseError> {
    prop_assert!(
        answer.status.is_client_error(),
        "only 4xx is possible over memory stores: {} {}",
        answer.status,
        answer.body
    );
    let obj = answer.body.as_object();
    prop_assert_eq!(obj.map(|o| o.len()), Some(1), "{}", answer.body);
    let err = answer.body["error"].as_object();
    prop_assert!(err.is_some_and(|e| e.len() == 2), "{}", answer.body);
    let code = answer.body["error"]["code"].as_str().unwrap_or("");
    prop_assert!(is_snake_case(code), "{code:?}");
    prop_assert!(answer.body["error"]["message"].is_string());
    Ok(())
}

#[derive(Debug, Clone)]
enum Signature {
    Right,
    OtherSecret,
    Junk(Vec<u8>),
    Missing,
}

#[derive(Debug, Clone)]
struct Inbound {
    body: Vec<u8>,
    signature: Signature,
    event: Option<Vec<u8>>,
    /// `None`: the seeded source's path.
    path: Option<String>,
    twice: bool,
}

fn inbound() -> impl Strategy<Value = Inbound> {
    (
        prop_oneof![
            4 => publish_body().prop_map(|(b, _)| b),
            1 => json_value(3, 4).prop_map(|v| v.to_string().into_bytes()),
        ],
        prop_oneof![
            6 => Just(Signature::Right),
            1 => Just(Signature::OtherSecret),
            1 => header_value().prop_map(Signature::Junk),
            1 => Just(Signature::Missing),
        ],
        prop::option::weighted(
            0.9,
            prop_oneof![4 => "[a-z_]{1,12}".prop_map(String::into_bytes), 1 => header_value()],
        ),
        prop::option::weighted(
            0.1,
            prop_oneof![
                "src_[0-9A-Z]{26}".prop_map(|id| format!("/v1/inbound/{id}")),
                "/v1/inbound/\\PC{0,12}".prop_map(|p| p.replace(['?', '#', ' '], "")),
            ],
        ),
        any::<bool>(),
    )
        .prop_map(|(body, signature, event, path, twice)| Inbound {
            body,
            signature,
            event,
            path,
            twice,
        })
}

fn github_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Mac, digest::KeyInit};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn post_inbound(w: &World, i: &Inbound) -> Option<Answer> {
    let path = i
        .path
        .clone()
        .unwrap_or_else(|| format!("/v1/inbound/{}", w.source.id));
    let mut req = Request::builder().method(Method::POST).uri(path.as_str());
    let signature = match &i.signature {
        Signature::Right => Some(github_signature(SOURCE_SECRET, &i.body).into_bytes()),
        Signature::OtherSecret => Some(github_signature("another secret", &i.body).into_bytes()),
        Signature::Junk(v) => Some(v.clone()),
        Signature::Missing => None,
    };
    if let Some(s) = signature {
        req = req.header("x-hub-signature-256", HeaderValue::from_bytes(&s).ok()?);
    }
    if let Some(e) = &i.event {
        req = req.header("x-github-event", HeaderValue::from_bytes(e).ok()?);
    }
    let req = req.body(Body::from(i.body.clone())).ok()?;
    let router = w.router.clone();
    block_on(async move {
        let res = router.oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        Some(Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    })
}

proptest! {
    #![proptest_config(config(256))]

    /// Any publish: `202` with the event's id, type and subscriber count, its `data` queued
    /// byte for byte, and the same answer (nothing queued again) for a repeat with the same
    /// idempotency key; or a 4xx in the SPEC shape. Never a 5xx.
    #[test]
    fn fuzz_publish(p in publish()) {
        let w = world(p.limit);
        let Some(first) = post(&w, &p) else { return Ok(()); };
        if first.status != StatusCode::ACCEPTED {
            check_error(&first)?;
            prop_assert!(w.queue.sent.lock().unwrap().is_empty(), "a refused publish queued something");
            return Ok(());
        }
        prop_assert!(p.auth == Some(ADMIN_KEY));
        let id = first.body["id"].as_str().unwrap_or("").to_string();
        prop_assert!(id.starts_with("evt_"), "{}", first.body);
        let ty = first.body["type"].as_str().unwrap_or("");
        prop_assert!(EventType::parse(ty).is_ok());
        let sent: Vec<DeliveryMessage> = w.queue.sent.lock().unwrap().clone();
        prop_assert_eq!(first.body["subscribers"].as_u64(), Some(sent.len() as u64));
        let data = p.data.clone().unwrap_or_default();
        for m in &sent {
            prop_assert_eq!(m.event_id.as_str(), id.as_str());
            prop_assert_eq!(m.event_type.as_str(), ty);
            prop_assert_eq!(m.data.get(), data.trim());
            prop_assert_ne!(&m.subscriber_id, &w.inactive);
            let back = DeliveryMessage::from_json(&m.to_json());
            prop_assert!(back.is_ok(), "a queued message does not parse: {:?}", back.err());
        }
        if p.twice && p.idempotency_key.is_some() {
            let again = post(&w, &p).unwrap();
            prop_assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.body);
            prop_assert_eq!(again.body["id"].as_str(), Some(id.as_str()));
            prop_assert_eq!(w.queue.sent.lock().unwrap().len(), sent.len(), "a repeat queued again");
        }
    }

    /// Any inbound request to a GitHub-style source: `202` only for a body signed with the
    /// source's secret that is JSON and names a valid event type; otherwise a 4xx in the
    /// SPEC shape that wrote nothing (no replay record, no queued message). A second copy of
    /// an accepted request is `401 replayed`.
    #[test]
    fn fuzz_inbound(i in inbound()) {
        let w = world(256 * 1024);
        let Some(first) = post_inbound(&w, &i) else { return Ok(()); };
        if first.status != StatusCode::ACCEPTED {
            check_error(&first)?;
            prop_assert!(w.replays.is_empty(), "a refused request was remembered");
            prop_assert!(w.queue.sent.lock().unwrap().is_empty(), "a refused request queued something");
            return Ok(());
        }
        prop_assert!(matches!(i.signature, Signature::Right) && i.path.is_none());
        prop_assert!(serde_json::from_slice::<Box<RawValue>>(&i.body).is_ok());
        let ty = first.body["type"].as_str().unwrap_or("");
        prop_assert!(ty.starts_with("order."), "{}", first.body);
        prop_assert_eq!(w.replays.len(), 1);
        let sent = w.queue.sent.lock().unwrap().clone();
        prop_assert_eq!(first.body["subscribers"].as_u64(), Some(sent.len() as u64));
        if i.twice {
            let again = post_inbound(&w, &i).unwrap();
            prop_assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.body);
            prop_assert_eq!(again.body["error"]["code"].as_str(), Some("replayed"));
            prop_assert_eq!(w.queue.sent.lock().unwrap().len(), sent.len(), "a replay queued again");
        }
    }

    /// The same publish as API Gateway hands it to Lambda (payload 2.0, the body plain or
    /// base64, any headers and query string), through `lambda_http`'s conversion and the
    /// router: never a 5xx.
    #[test]
    fn fuzz_publish_from_api_gateway(
        p in publish(),
        base64 in any::<bool>(),
        // As API Gateway passes it: percent-encoded. A raw space, `"`, `<` or `>` makes
        // lambda_http 1.3.2 panic while building the request (request.rs:175, `expect("failed
        // to build request")`; upstream aws-lambda-rust-runtime#461), before Skyhook's code
        // runs: reported, and kept out of this property.
        raw_query in "([A-Za-z0-9&=+._~!$'()*,;:@/?-]|%[0-9A-F]{2}){0,20}",
        extra_headers in prop::collection::vec(("[a-z-]{1,12}", "\\PC{0,20}"), 0..3),
        path in prop_oneof![4 => Just("/v1/events".to_string()), 1 => "/\\PC{0,12}"],
    ) {
        let w = world(p.limit);
        let mut headers = serde_json::Map::new();
        if let Some(a) = p.auth {
            headers.insert("authorization".into(), json!(format!("Bearer {a}")));
        }
        for (k, v) in extra_headers {
            headers.insert(k, json!(v));
        }
        if let Some(k) = &p.idempotency_key {
            headers.insert("idempotency-key".into(), json!(String::from_utf8_lossy(k)));
        }
        let body = String::from_utf8_lossy(&p.body).into_owned();
        let event = json!({
            "version": "2.0",
            "routeKey": "POST /v1/events",
            "rawPath": path,
            "rawQueryString": raw_query,
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "fuzz",
                "domainName": "fuzz.execute-api.us-east-1.amazonaws.com",
                "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10", "userAgent": "fuzz"},
                "requestId": "fuzz",
                "routeKey": "POST /v1/events",
                "stage": "$default",
                "time": "23/Nov/2026:17:01:00 +0000",
                "timeEpoch": 1795453260000u64
            },
            "body": if base64 { base64_encode(body.as_bytes()) } else { body },
            "isBase64Encoded": base64
        });
        let Ok(request) = lambda_http::request::from_str(&event.to_string()) else {
            return Ok(());
        };
        let router = w.router.clone();
        let (status, bytes) = block_on(async move {
            let res = router.oneshot(request).await.unwrap();
            let status = res.status();
            (status, axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap())
        });
        let answer = Answer { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        if status != StatusCode::ACCEPTED {
            check_error(&answer)?;
        }
    }
}

/// A source id that does not percent-decode to UTF-8 names no source: `404` in the error
/// shape, not axum's plain-text `400` (found by `fuzz_inbound`).
#[test]
fn an_undecodable_source_id_is_an_unknown_source() {
    let w = world(64 * 1024);
    for path in ["/v1/inbound/%A0", "/v1/inbound/src_%FF%FE"] {
        let i = Inbound {
            body: b"{}".to_vec(),
            signature: Signature::Right,
            event: None,
            path: Some(path.to_string()),
            twice: false,
        };
        let answer = post_inbound(&w, &i).expect("a request");
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            answer.body
        );
        assert_eq!(
            answer.body["error"]["code"], "not_found",
            "{path}: {}",
            answer.body
        );
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(config(256))]

    /// EventBridge events as Lambda decodes them: any `detail-type`, source, id, time and
    /// detail. Skyhook's own events are ignored; a detail-type with nothing to keep is
    /// `BadDetailType`; a publish refusal is a typed, non-retryable `PublishError`.
    #[test]
    fn fuzz_eventbridge(
        detail_type in prop_oneof![
            4 => "order\\.[a-z]{1,8}",
            2 => "[A-Za-z0-9 .:_-]{0,40}",
            1 => "\\PC{0,40}",
            1 => (125usize..140).prop_map(|n| "b".repeat(n)),
        ],
        source in prop_oneof![4 => Just("com.example.shop".to_string()), 1 => Just("skyhook".to_string()), 1 => "\\PC{0,10}"],
        id in prop::option::of(prop_oneof![
            4 => "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            1 => "\\PC{0,20}",
            1 => (240usize..260).prop_map(|n| "i".repeat(n)),
        ]),
        time in prop::option::of(prop_oneof![
            Just("2026-01-02T03:04:05Z".to_string()),
            "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T[0-1][0-9]:[0-5][0-9]:[0-5][0-9](Z|[+-]0[0-9]:[0-5][0-9])",
        ]),
        detail in data_text(),
    ) {
        let w = world(256 * 1024);
        let raw = json!({
            "version": "0",
            "id": id,
            "detail-type": detail_type,
            "source": source,
            "account": "123456789012",
            "time": time,
            "region": "us-east-1",
            "resources": [],
            "detail": "__DETAIL__",
        })
        .to_string()
        .replace("\"__DETAIL__\"", &detail);
        let event: EventBridgeEvent<Box<RawValue>> = match serde_json::from_str(&raw) {
            Ok(e) => e,
            // Lambda's runtime refuses what does not decode, before any handler.
            Err(_) => return Ok(()),
        };
        let result = block_on(skyhook_ingest::handle_eventbridge(
            &w.publisher,
            &TenantId::default_tenant(),
            LambdaEvent::new(event, Context::default()),
        ));
        let sent = w.queue.sent.lock().unwrap().clone();
        match result {
            Ok(out) => {
                if source == "skyhook" {
                    prop_assert!(out.get("ignored").is_some());
                    prop_assert!(sent.is_empty());
                } else {
                    let ty = event_type_from_detail_type(&detail_type);
                    prop_assert!(ty.is_some());
                    prop_assert_eq!(out["type"].as_str(), ty.as_ref().map(|t| t.as_str()));
                    prop_assert_eq!(out["subscribers"].as_u64(), Some(sent.len() as u64));
                    for m in &sent {
                        prop_assert_eq!(m.data.get(), detail.trim());
                        // A queued message always parses back (an event time RFC 3339
                        // cannot write is refused before anything is queued).
                        let back = DeliveryMessage::from_json(&m.to_json());
                        prop_assert!(back.is_ok(), "a queued message does not parse: {:?}", back.err());
                    }
                }
            }
            Err(EventBridgeError::BadDetailType(d)) => {
                prop_assert_eq!(&d, &detail_type);
                prop_assert!(event_type_from_detail_type(&detail_type).is_none());
                prop_assert!(sent.is_empty());
            }
            Err(EventBridgeError::Publish(e)) => {
                prop_assert!(!e.is_retryable(), "{e}");
                prop_assert!(matches!(e, PublishError::InvalidInput(_) | PublishError::TooLarge { .. }), "{e}");
                prop_assert!(sent.is_empty());
                let diagnostic = lambda_runtime::Diagnostic::from(EventBridgeError::Publish(e));
                prop_assert_eq!(diagnostic.error_type.as_str(), "PublishRejected");
            }
        }
    }

    /// A detail-type always becomes a valid event type or nothing.
    #[test]
    fn fuzz_event_type_from_detail_type(s in prop_oneof!["[A-Za-z0-9 .:_/-]{0,60}", "\\PC{0,60}", any::<String>()]) {
        if let Some(t) = event_type_from_detail_type(&s) {
            prop_assert_eq!(EventType::parse(t.as_str()).ok(), Some(t.clone()));
            prop_assert!(!t.as_str().starts_with('-') && !t.as_str().ends_with('-'));
        }
    }
}
