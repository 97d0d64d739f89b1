//! The bad-input corpus: requests across every route that must be refused with a 4xx in the
//! SPEC error shape, writing and sending nothing.
//!
//! One stack, one subscriber pointing at a receiver, keys of every role, and a second tenant
//! whose subscriber, event, key and cursor the first tenant's calls must not reach. Every case
//! is sent as raw bytes (so malformed JSON, odd headers and oversized bodies go out as they
//! are); after each one the whole table, the subscribers' secrets and both queues are compared
//! with what they were before it, so a refused request that writes anything is named. All
//! mismatches are gathered and reported at once.

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::body::{Body, Bytes};
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};
use skyhook_tests::{ADMIN_KEY, Receiver, Stack};
use tower::ServiceExt;

/// Which router a case is sent to: in AWS, API Gateway sends `POST /v1/events` and
/// `GET /v1/health` to ingest-http and every other `/v1/…` route to the api function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum To {
    Ingest,
    Api,
}

/// One bad request and what it must get back.
struct Case {
    name: String,
    to: To,
    method: Method,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    /// Strings of the request (keys, secrets, header values) the error message must not echo.
    sensitive: Vec<String>,
}

fn case(name: &str, to: To, method: Method, path: impl Into<String>) -> Case {
    Case {
        name: name.to_string(),
        to,
        method,
        path: path.into(),
        headers: Vec::new(),
        body: Vec::new(),
        status: 0,
        code: "",
        sensitive: Vec::new(),
    }
}

fn api(name: &str, method: Method, path: impl Into<String>) -> Case {
    case(name, To::Api, method, path)
}

fn ingest(name: &str, method: Method, path: impl Into<String>) -> Case {
    case(name, To::Ingest, method, path)
}

impl Case {
    fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_string(), value.as_ref().to_vec()));
        self
    }

    /// `Authorization: Bearer <key>`; the key is one of the strings the message must not hold.
    fn key(self, key: &str) -> Self {
        let mut c = self.header("authorization", format!("Bearer {key}"));
        if key.len() >= 8 {
            c.sensitive.push(key.to_string());
        }
        c
    }

    /// A body sent as it is, labelled JSON.
    fn raw(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.header("content-type", "application/json")
    }

    fn json(self, body: Value) -> Self {
        let sensitive = secrets_in(&body);
        let mut c = self.raw(body.to_string());
        c.sensitive.extend(sensitive);
        c
    }

    fn secret(mut self, s: &str) -> Self {
        self.sensitive.push(s.to_string());
        self
    }

    fn expect(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }
}

/// The signing secret and custom header values a JSON body carries.
fn secrets_in(body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = body.get("secret").and_then(Value::as_str)
        && s.len() >= 8
    {
        out.push(s.to_string());
    }
    if let Some(h) = body.get("headers").and_then(Value::as_object) {
        for v in h.values().filter_map(Value::as_str) {
            if v.len() >= 8 && v != "********" {
                out.push(v.to_string());
            }
        }
    }
    out
}

/// A snake_case code: lowercase words of letters and digits joined by single underscores.
fn is_snake_case(code: &str) -> bool {
    code.starts_with(|c: char| c.is_ascii_lowercase())
        && code.split('_').all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// Sends one case's bytes as they are; a handler that panics is reported, not propagated.
async fn send(router: &Router, c: &Case) -> Result<(StatusCode, Option<String>, Bytes), String> {
    let mut req = http::Request::builder()
        .method(c.method.clone())
        .uri(&c.path);
    for (name, value) in &c.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
        let value = HeaderValue::from_bytes(value).map_err(|e| e.to_string())?;
        req = req.header(name, value);
    }
    let req = req
        .body(Body::from(c.body.clone()))
        .map_err(|e| format!("the request could not be built: {e}"))?;
    let router = router.clone();
    let task = tokio::spawn(async move {
        let resp = match router.oneshot(req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        };
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .map_err(|e| format!("the response body could not be read: {e}"))?;
        Ok::<_, String>((status, content_type, bytes))
    });
    match task.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => {
            let panic = e.into_panic();
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("the handler panicked: {what}"))
        }
        Err(e) => Err(format!("the request task failed: {e}")),
    }
}

/// What a case is checked against: the SPEC status and code, the error shape, no echoed
/// secret. Returns every problem found.
fn check(
    c: &Case,
    status: StatusCode,
    content_type: Option<&str>,
    bytes: &[u8],
    never: &[String],
) -> Vec<String> {
    let mut problems = Vec::new();
    let text = String::from_utf8_lossy(bytes);
    let shown: String = text.chars().take(300).collect();
    if status.as_u16() != c.status || !status.is_client_error() {
        problems.push(format!(
            "status {status} (expected {}), body {shown}",
            c.status
        ));
    }
    if !content_type.is_some_and(|t| t.starts_with("application/json")) {
        problems.push(format!(
            "content-type {content_type:?}, not application/json"
        ));
    }
    let body: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(_) => {
            problems.push(format!("body is not JSON: {shown:?}"));
            return problems;
        }
    };
    // A success (or any other body) is already shown with the status; one line says so.
    let error = body
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get("error"))
        .and_then(Value::as_object);
    let Some(error) = error else {
        problems.push("body is not {\"error\": {\"code\", \"message\"}}".to_string());
        return problems;
    };
    let code = error
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !is_snake_case(code) {
        problems.push(format!("error.code {code:?} is not a snake_case string"));
    } else if code != c.code {
        problems.push(format!(
            "error.code {code:?} (expected {:?}), message {message:?}",
            c.code
        ));
    }
    if message.trim().is_empty() {
        problems.push("error.message is missing or empty".to_string());
    }
    for s in never.iter().chain(&c.sensitive) {
        if message.contains(s.as_str()) {
            problems.push(format!(
                "error.message echoes a secret or key of the request ({s:?}): {message:?}"
            ));
        }
    }
    problems
}

/// Everything a request could have written or sent: every item of the table (audit trail
/// and bookkeeping included), the subscribers' secrets with their last change, and both
/// queues' depths.
#[derive(Clone, Debug, PartialEq)]
struct Footprint {
    items: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    queue: usize,
    dlq: usize,
}

async fn footprint(stack: &Stack) -> Footprint {
    let mut items = BTreeMap::new();
    let mut start = None;
    loop {
        let out = stack
            .ddb
            .scan()
            .table_name(&stack.resources.table)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .expect("scanning the table");
        for item in out.items() {
            let key = |k: &str| {
                item.get(k)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            // A tenant's publish bucket counts every publish that reaches the fan-out, one
            // refused for a subscriber it names that does not exist as well: it is checked
            // before the reads that find that out, as a rate limit must be. Accounting,
            // not data, so it is not part of what a request may not change.
            if key("sk") == "#PUBLISH_RATE" {
                continue;
            }
            let sorted: BTreeMap<_, _> = item.iter().collect();
            items.insert(
                format!("{} | {}", key("pk"), key("sk")),
                format!("{sorted:?}"),
            );
        }
        match out.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => break,
        }
    }
    let listed = stack
        .secrets_client
        .list_secrets()
        .filters(
            aws_sdk_secretsmanager::types::Filter::builder()
                .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                .values(&stack.secret_prefix)
                .values(&stack.source_secret_prefix)
                .build(),
        )
        .send()
        .await
        .expect("listing the secrets");
    let secrets = listed
        .secret_list()
        .iter()
        .map(|s| {
            (
                s.name().unwrap_or_default().to_string(),
                format!("{:?} {:?}", s.last_changed_date(), s.deleted_date()),
            )
        })
        .collect();
    Footprint {
        items,
        secrets,
        queue: stack.queue_depth(&stack.resources.queue_url).await,
        dlq: stack.queue_depth(&stack.resources.dlq_url).await,
    }
}

/// What changed between two footprints, in words; empty when nothing did.
fn changes(before: &Footprint, after: &Footprint) -> Vec<String> {
    let mut out = Vec::new();
    for (what, b, a) in [
        ("table item", &before.items, &after.items),
        ("secret", &before.secrets, &after.secrets),
    ] {
        for k in a.keys().filter(|k| !b.contains_key(*k)) {
            out.push(format!("wrote a new {what} {k}"));
        }
        for k in b.keys().filter(|k| !a.contains_key(*k)) {
            out.push(format!("removed the {what} {k}"));
        }
        for (k, v) in a {
            if b.get(k).is_some_and(|old| old != v) {
                out.push(format!("changed the {what} {k}"));
            }
        }
    }
    if before.queue != after.queue {
        out.push(format!(
            "delivery queue depth {} -> {}",
            before.queue, after.queue
        ));
    }
    if before.dlq != after.dlq {
        out.push(format!("DLQ depth {} -> {}", before.dlq, after.dlq));
    }
    out
}

/// Whether `path` (query stripped) is a request for the route `template` (`{id}` matching
/// one non-empty segment).
fn matches_route(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
}

#[tokio::test]
async fn bad_input_on_every_route_is_a_4xx_in_the_error_shape_and_writes_and_sends_nothing() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    let (sub, sub_secret) = stack.subscribe(&receiver.url("/hook"), &["order.*"]).await;
    let (_, reader) = stack.api_key("default", "reader").await;
    let (_, publisher) = stack.api_key("default", "publisher").await;
    let (_, admin) = stack.api_key("default", "admin").await;
    // A second tenant: its subscriber, event, key and cursors must be out of reach.
    let (other_key_id, other_admin) = stack.api_key("other", "admin").await;
    let (_, other_reader) = stack.api_key("other", "reader").await;
    let other_receiver = Receiver::always(200).await;
    let (status, body) = stack
        .api_as(
            &other_admin,
            Method::POST,
            "/v1/subscribers",
            Some(&json!({"url": other_receiver.url("/other"), "event_types": ["order.*"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let other_sub = body["id"].as_str().unwrap().to_string();
    let other_sub_secret = body["secret"].as_str().unwrap().to_string();
    // Matches no subscriber: stored, nothing queued.
    let (status, body) = stack
        .ingest_as(&other_admin, &json!({"type": "misc.nothing", "data": {}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["subscribers"], 0, "{body}");
    let other_event = body["id"].as_str().unwrap().to_string();
    // Real cursors: one of this tenant's key list, one of the other tenant's.
    let (status, page) = stack
        .api_call(Method::GET, "/v1/api-keys?limit=1", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let keys_cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (status, page) = stack
        .api_as(&other_admin, Method::GET, "/v1/api-keys?limit=1", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let other_cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();

    // Inbound sources: one of this tenant's, one of the other tenant's.
    let (status, body) = stack
        .api_call(
            Method::POST,
            "/v1/sources",
            Some(&json!({"name": "gh", "verification": "github", "event_type": {"header": "X-GitHub-Event"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let src = format!("/v1/sources/{}", body["id"].as_str().unwrap());
    let inbound_path = body["inbound_path"].as_str().unwrap().to_string();
    let source_secret = body["secret"].as_str().unwrap().to_string();
    let (status, body) = stack
        .api_as(
            &other_admin,
            Method::POST,
            "/v1/sources",
            Some(&json!({"name": "theirs", "verification": "github", "event_type": {"fixed": "a.b"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let other_src = format!("/v1/sources/{}", body["id"].as_str().unwrap());
    let github_sig = |body: &str| {
        use hmac::{Mac, digest::KeyInit};
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(source_secret.as_bytes())
                .unwrap();
        mac.update(body.as_bytes());
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    let source = |extra: Value| {
        let mut body =
            json!({"name": "n", "verification": "github", "event_type": {"fixed": "a.b"}});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };

    let never: Vec<String> = [
        ADMIN_KEY,
        &reader,
        &publisher,
        &admin,
        &other_admin,
        &other_reader,
        &sub_secret,
        &other_sub_secret,
        &source_secret,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let new_url = receiver.url("/wrongly-created");
    let create = |extra: Value| {
        let mut body = json!({"url": new_url, "event_types": ["order.*"]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let publish = |extra: Value| {
        let mut body = json!({"type": "order.created", "data": {"n": 1}});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let s = format!("/v1/subscribers/{sub}");
    let unknown_sub = "sub_01unknown0000000000000000";
    let big_publish = {
        let filler = 256 * 1024 + 1 - publish(json!({"data": ""})).to_string().len();
        publish(json!({"data": "x".repeat(filler)})).to_string()
    };
    let big_create = create(json!({"description": "x".repeat(64 * 1024)})).to_string();
    let (get, post, patch, delete, put) = (
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
        Method::PUT,
    );

    let cases: Vec<Case> = vec![
        // POST /v1/events: keys and roles.
        ingest("publish without a key", post.clone(), "/v1/events")
            .json(publish(json!({})))
            .expect(401, "unauthorized"),
        ingest("publish with a Basic credential", post.clone(), "/v1/events")
            .header("authorization", format!("Basic {ADMIN_KEY}"))
            .secret(ADMIN_KEY)
            .json(publish(json!({})))
            .expect(401, "unauthorized"),
        ingest("publish with an empty bearer", post.clone(), "/v1/events")
            .header("authorization", "Bearer   ")
            .json(publish(json!({})))
            .expect(401, "unauthorized"),
        ingest("publish with a non-ASCII key", post.clone(), "/v1/events")
            .header("authorization", b"Bearer sk_\xff\xfe")
            .json(publish(json!({})))
            .expect(401, "unauthorized"),
        ingest("publish with an unknown key", post.clone(), "/v1/events")
            .key("sk_unknown_0123456789abcdefghij")
            .json(publish(json!({})))
            .expect(401, "invalid_api_key"),
        ingest("publish with a reader key", post.clone(), "/v1/events")
            .key(&reader)
            .json(publish(json!({})))
            .expect(403, "forbidden"),
        // POST /v1/events: the body.
        ingest("publish an empty body", post.clone(), "/v1/events")
            .key(&publisher)
            .raw("")
            .expect(400, "malformed_json"),
        ingest("publish truncated JSON", post.clone(), "/v1/events")
            .key(&publisher)
            .raw(r#"{"type": "order.created", "data": "#)
            .expect(400, "malformed_json"),
        ingest("publish JSON with trailing garbage", post.clone(), "/v1/events")
            .key(&publisher)
            .raw(r#"{"type": "order.created", "data": {}} x"#)
            .expect(400, "malformed_json"),
        ingest("publish a form body", post.clone(), "/v1/events")
            .key(&publisher)
            .raw("type=order.created&data=1")
            .expect(400, "malformed_json"),
        ingest("publish a JSON array", post.clone(), "/v1/events")
            .key(&publisher)
            .raw(r#"["order.created", {"n": 1}]"#)
            .expect(422, "invalid_body"),
        ingest("publish a JSON string", post.clone(), "/v1/events")
            .key(&publisher)
            .raw(r#""order.created""#)
            .expect(422, "invalid_body"),
        ingest("publish JSON null", post.clone(), "/v1/events")
            .key(&publisher)
            .raw("null")
            .expect(422, "invalid_body"),
        ingest("publish without type", post.clone(), "/v1/events")
            .key(&publisher)
            .json(json!({"data": {}}))
            .expect(422, "invalid_body"),
        ingest("publish without data", post.clone(), "/v1/events")
            .key(&publisher)
            .json(json!({"type": "order.created"}))
            .expect(422, "invalid_body"),
        ingest("publish a numeric type", post.clone(), "/v1/events")
            .key(&publisher)
            .json(publish(json!({"type": 42})))
            .expect(422, "invalid_body"),
        ingest("publish with an unknown field", post.clone(), "/v1/events")
            .key(&publisher)
            .json(publish(json!({"priority": "high"})))
            .expect(422, "invalid_body"),
        ingest("publish with type given twice", post.clone(), "/v1/events")
            .key(&publisher)
            .raw(r#"{"type": "order.created", "type": "order.paid", "data": {}}"#)
            .expect(422, "invalid_body"),
        ingest("publish an empty type", post.clone(), "/v1/events")
            .key(&publisher)
            .json(publish(json!({"type": ""})))
            .expect(422, "invalid_event_type"),
        ingest("publish a type with a space", post.clone(), "/v1/events")
            .key(&publisher)
            .json(publish(json!({"type": "order created"})))
            .expect(422, "invalid_event_type"),
        ingest("publish a wildcard type", post.clone(), "/v1/events")
            .key(&publisher)
            .json(publish(json!({"type": "order.*"})))
            .expect(422, "invalid_event_type"),
        ingest("publish a type with an empty segment", post.clone(), "/v1/events")
            .key(&publisher)
            .json(publish(json!({"type": "order..created"})))
            .expect(422, "invalid_event_type"),
        ingest("publish a 129-character type", post.clone(), "/v1/events")
            .key(&publisher)
            .json(publish(json!({"type": "a".repeat(129)})))
            .expect(422, "invalid_event_type"),
        ingest("publish subscriber_ids as a string", post.clone(), "/v1/events")
            .key(&publisher)
            .json(publish(json!({"subscriber_ids": sub})))
            .expect(422, "invalid_body"),
        ingest("publish a malformed subscriber id", post.clone(), "/v1/events")
            .key(&publisher)
            .json(publish(json!({"subscriber_ids": ["nope"]})))
            .expect(422, "invalid_subscriber_id"),
        ingest("publish to 101 subscribers", post.clone(), "/v1/events")
            .key(&publisher)
            .json(publish(json!({
                "subscriber_ids": (0..101).map(|i| format!("sub_x{i}")).collect::<Vec<_>>()
            })))
            .expect(422, "too_many_subscriber_ids"),
        ingest("publish to an unknown subscriber", post.clone(), "/v1/events")
            .key(&publisher)
            .json(publish(json!({"subscriber_ids": [sub, unknown_sub]})))
            .expect(422, "unknown_subscriber"),
        ingest("publish to another tenant's subscriber", post.clone(), "/v1/events")
            .key(&publisher)
            .json(publish(json!({"subscriber_ids": [other_sub]})))
            .expect(422, "unknown_subscriber"),
        ingest(
            "publish with an Idempotency-Key to an unknown subscriber",
            post.clone(),
            "/v1/events",
        )
        .key(&publisher)
        .header("idempotency-key", "bad-input-corpus-1")
        .json(publish(json!({"subscriber_ids": [unknown_sub]})))
        .expect(422, "unknown_subscriber"),
        ingest("publish with a 256-character Idempotency-Key", post.clone(), "/v1/events")
            .key(&publisher)
            .header("idempotency-key", "k".repeat(256))
            .json(publish(json!({})))
            .expect(400, "invalid_request"),
        ingest("publish with a spaced Idempotency-Key", post.clone(), "/v1/events")
            .key(&publisher)
            .header("idempotency-key", "two words")
            .json(publish(json!({})))
            .expect(400, "invalid_request"),
        ingest("publish with a non-ASCII Idempotency-Key", post.clone(), "/v1/events")
            .key(&publisher)
            .header("idempotency-key", b"caf\xc3\xa9")
            .json(publish(json!({})))
            .expect(400, "invalid_header"),
        ingest("publish with an inbound source's key prefix", post.clone(), "/v1/events")
            .key(&publisher)
            .header("idempotency-key", "inbound:src_01JD0000000000000000000000:msg_1")
            .json(publish(json!({})))
            .expect(400, "invalid_request"),
        ingest("publish with an EventBridge key prefix as its id", post.clone(), "/v1/events")
            .key(&publisher)
            .json(publish(json!({"id": "eventbridge:0f3a"})))
            .expect(400, "invalid_request"),
        ingest("publish with an empty id", post.clone(), "/v1/events")
            .key(&publisher)
            .json(publish(json!({"id": ""})))
            .expect(400, "invalid_request"),
        ingest("publish with a 129-character correlation id", post.clone(), "/v1/events")
            .key(&publisher)
            .header("x-correlation-id", "c".repeat(129))
            .json(publish(json!({})))
            .expect(400, "invalid_request"),
        ingest("publish announcing 1 MiB", post.clone(), "/v1/events")
            .key(&publisher)
            .json(publish(json!({})))
            .header("content-length", "1048576")
            .expect(413, "payload_too_large"),
        ingest("publish 256 KiB + 1 byte", post.clone(), "/v1/events")
            .key(&publisher)
            .raw(big_publish.clone())
            .expect(413, "payload_too_large"),
        ingest("GET /v1/events", get.clone(), "/v1/events")
            .key(&publisher)
            .expect(405, "method_not_allowed"),
        ingest("PUT /v1/events", put.clone(), "/v1/events")
            .key(&publisher)
            .json(publish(json!({})))
            .expect(405, "method_not_allowed"),
        // GET /v1/health and unknown ingest routes.
        ingest("POST /v1/health", post.clone(), "/v1/health").expect(405, "method_not_allowed"),
        ingest("DELETE /v1/health", delete.clone(), "/v1/health")
            .expect(405, "method_not_allowed"),
        ingest("GET / on ingest", get.clone(), "/").expect(404, "not_found"),
        ingest("POST /v2/events", post.clone(), "/v2/events")
            .key(&publisher)
            .json(publish(json!({})))
            .expect(404, "not_found"),
        // GET /v1/events/{id}
        api("event without a key", get.clone(), format!("/v1/events/{other_event}"))
            .expect(401, "unauthorized"),
        api("event with a malformed id", get.clone(), "/v1/events/not-an-id")
            .key(&reader)
            .expect(404, "not_found"),
        api("event unknown", get.clone(), "/v1/events/evt_01unknown000000000000000")
            .key(&reader)
            .expect(404, "not_found"),
        api("event of another tenant", get.clone(), format!("/v1/events/{other_event}"))
            .key(ADMIN_KEY)
            .expect(404, "not_found"),
        api("event id not UTF-8", get.clone(), "/v1/events/%FF%FE")
            .key(&reader)
            .expect(400, "invalid_path"),
        api("event id not UTF-8, without a key", get.clone(), "/v1/events/%FF%FE")
            .expect(401, "unauthorized"),
        api("DELETE an event", delete.clone(), format!("/v1/events/{other_event}"))
            .key(ADMIN_KEY)
            .expect(405, "method_not_allowed"),
        // POST /v1/events/{id}/resend
        api("resend without a key", post.clone(), format!("/v1/events/{other_event}/resend"))
            .json(json!({"subscriber_id": sub}))
            .expect(401, "unauthorized"),
        api("resend as publisher", post.clone(), format!("/v1/events/{other_event}/resend"))
            .key(&publisher)
            .json(json!({"subscriber_id": sub}))
            .expect(403, "forbidden"),
        api("resend another tenant's event", post.clone(), format!("/v1/events/{other_event}/resend"))
            .key(&admin)
            .json(json!({"subscriber_id": sub}))
            .expect(404, "not_found"),
        api("resend without a subscriber", post.clone(), format!("/v1/events/{other_event}/resend"))
            .key(&admin)
            .json(json!({}))
            .expect(422, "invalid_body"),
        api("resend to a malformed subscriber id", post.clone(), "/v1/events/evt_01unknown000000000000000/resend")
            .key(&admin)
            .json(json!({"subscriber_id": "nope"}))
            .expect(422, "invalid_subscriber_id"),
        // GET /v1/whoami
        api("whoami without a key", get.clone(), "/v1/whoami").expect(401, "unauthorized"),
        api("whoami with an unknown key", get.clone(), "/v1/whoami")
            .key("sk_unknown_0123456789abcdefghij")
            .expect(401, "invalid_api_key"),
        api("POST /v1/whoami", post.clone(), "/v1/whoami")
            .key(&reader)
            .expect(405, "method_not_allowed"),
        // POST /v1/subscribers
        api("create subscriber as reader", post.clone(), "/v1/subscribers")
            .key(&reader)
            .json(create(json!({})))
            .expect(403, "forbidden"),
        api("create subscriber as publisher", post.clone(), "/v1/subscribers")
            .key(&publisher)
            .json(create(json!({})))
            .expect(403, "forbidden"),
        api("create subscriber, empty body", post.clone(), "/v1/subscribers")
            .key(&admin)
            .raw("")
            .expect(400, "malformed_json"),
        api("create subscriber, malformed JSON", post.clone(), "/v1/subscribers")
            .key(&admin)
            .raw(r#"{"url": "http://127.0.0.1/", "event_types": ["#)
            .expect(400, "malformed_json"),
        api("create subscriber, JSON array", post.clone(), "/v1/subscribers")
            .key(&admin)
            .raw(json!([new_url, ["order.*"]]).to_string())
            .expect(422, "invalid_body"),
        api("create subscriber without url", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(json!({"event_types": ["order.*"]}))
            .expect(422, "invalid_body"),
        api("create subscriber without event_types", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(json!({"url": new_url}))
            .expect(422, "invalid_body"),
        api("create subscriber, numeric url", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"url": 8080})))
            .expect(422, "invalid_body"),
        api("create subscriber, event_types a string", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"event_types": "order.*"})))
            .expect(422, "invalid_body"),
        api("create subscriber with an unknown field", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"active": false})))
            .expect(422, "invalid_body"),
        api("create subscriber, ftp url", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"url": "ftp://127.0.0.1/hook"})))
            .expect(422, "unsupported_scheme"),
        api("create subscriber, url without host", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"url": "https://"})))
            .expect(422, "invalid_url"),
        api("create subscriber, url not a url", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"url": "not a url"})))
            .expect(422, "invalid_url"),
        api("create subscriber, url with credentials", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"url": "http://hook:hunter2-pass@127.0.0.1/x"})))
            .secret("hunter2-pass")
            .expect(422, "url_has_credentials"),
        api("create subscriber, url with a fragment", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"url": "http://127.0.0.1/x#frag"})))
            .expect(422, "url_has_fragment"),
        api("create subscriber, url too long", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"url": format!("http://127.0.0.1/{}", "a".repeat(2100))})))
            .expect(422, "url_too_long"),
        api("create subscriber, no event types", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"event_types": []})))
            .expect(422, "invalid_event_types"),
        api("create subscriber, misplaced wildcard", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"event_types": ["order.*.x"]})))
            .expect(422, "invalid_event_types"),
        api("create subscriber, 49 filters", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({
                "event_types": (0..49).map(|i| format!("t{i}.x")).collect::<Vec<_>>()
            })))
            .expect(422, "invalid_event_types"),
        api("create subscriber, secret without whsec_", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"secret": "sk_not_a_signing_secret_123"})))
            .expect(422, "invalid_secret"),
        api("create subscriber, secret not base64", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"secret": "whsec_!!!not-base64!!!"})))
            .expect(422, "invalid_secret"),
        api("create subscriber, secret too short", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"secret": "whsec_AAAAAAAAAAAAAA=="})))
            .expect(422, "invalid_secret"),
        api("create subscriber, unknown signature_scheme", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"signature_scheme": "md5"})))
            .expect(422, "invalid_signature_scheme"),
        api("create subscriber, reserved header", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"headers": {"webhook-signature": "v1,forged-signature"}})))
            .expect(422, "invalid_headers"),
        api("create subscriber, Content-Type header", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"headers": {"Content-Type": "text/plain"}})))
            .expect(422, "invalid_headers"),
        api("create subscriber, 21 headers", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({
                "headers": (0..21).map(|i| (format!("x-h{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()
            })))
            .expect(422, "invalid_headers"),
        api("create subscriber, header value with a newline", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"headers": {"x-api-key": "token-line\nbreak-value"}})))
            .expect(422, "invalid_headers"),
        api("create subscriber, header name with a space", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"headers": {"x api key": "token-value-123"}})))
            .expect(422, "invalid_headers"),
        api("create subscriber, header value masked", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"headers": {"x-api-key": "********"}})))
            .expect(422, "invalid_headers"),
        api("create subscriber, headers as a string", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"headers": "x-api-key: s3cr3t-token-0xDEADBEEF"})))
            .secret("s3cr3t-token-0xDEADBEEF")
            .expect(422, "invalid_body"),
        api("create subscriber, max_concurrency 0", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"max_concurrency": 0})))
            .expect(422, "invalid_max_concurrency"),
        api("create subscriber, max_concurrency 101", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"max_concurrency": 101})))
            .expect(422, "invalid_max_concurrency"),
        api("create subscriber, max_concurrency -1", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"max_concurrency": -1})))
            .expect(422, "invalid_body"),
        api("create subscriber, rate_limit 0", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"rate_limit": 0})))
            .expect(422, "invalid_rate_limit"),
        api("create subscriber, rate_limit 10001", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"rate_limit": 10001})))
            .expect(422, "invalid_rate_limit"),
        api("create subscriber, description too long", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"description": "d".repeat(1025)})))
            .expect(422, "invalid_description"),
        api("create subscriber, body over 64 KiB", post.clone(), "/v1/subscribers")
            .key(&admin)
            .raw(big_create)
            .expect(413, "payload_too_large"),
        api("PUT /v1/subscribers", put.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({})))
            .expect(405, "method_not_allowed"),
        api("DELETE /v1/subscribers", delete.clone(), "/v1/subscribers")
            .key(&admin)
            .expect(405, "method_not_allowed"),
        // GET /v1/subscribers
        api("list subscribers without a key", get.clone(), "/v1/subscribers")
            .expect(401, "unauthorized"),
        api("list subscribers, limit=0", get.clone(), "/v1/subscribers?limit=0")
            .key(&reader)
            .expect(400, "invalid_limit"),
        api("list subscribers, limit=abc", get.clone(), "/v1/subscribers?limit=abc")
            .key(&reader)
            .expect(400, "invalid_limit"),
        api("list subscribers, limit=251", get.clone(), "/v1/subscribers?limit=251")
            .key(&reader)
            .expect(400, "invalid_limit"),
        api("list subscribers, limit twice", get.clone(), "/v1/subscribers?limit=1&limit=2")
            .key(&reader)
            .expect(400, "invalid_query"),
        api("list subscribers, active=maybe", get.clone(), "/v1/subscribers?active=maybe")
            .key(&reader)
            .expect(400, "invalid_active"),
        api("list subscribers, garbage cursor", get.clone(), "/v1/subscribers?cursor=garbage")
            .key(&reader)
            .expect(400, "invalid_cursor"),
        api(
            "list subscribers, cursor of the key list",
            get.clone(),
            format!("/v1/subscribers?cursor={keys_cursor}"),
        )
        .key(ADMIN_KEY)
        .expect(400, "invalid_cursor"),
        api(
            "list subscribers, limit twice, without a key",
            get.clone(),
            "/v1/subscribers?limit=1&limit=2",
        )
        .expect(401, "unauthorized"),
        // GET /v1/subscribers/{id}
        api("get subscriber, malformed id", get.clone(), "/v1/subscribers/nope")
            .key(&reader)
            .expect(404, "not_found"),
        api("get subscriber, unknown", get.clone(), format!("/v1/subscribers/{unknown_sub}"))
            .key(&reader)
            .expect(404, "not_found"),
        api(
            "get subscriber of another tenant",
            get.clone(),
            format!("/v1/subscribers/{other_sub}"),
        )
        .key(&reader)
        .expect(404, "not_found"),
        api("get subscriber with an unknown key", get.clone(), s.clone())
            .key("sk_unknown_0123456789abcdefghij")
            .expect(401, "invalid_api_key"),
        api("get subscriber with an empty id", get.clone(), "/v1/subscribers/")
            .key(&reader)
            .expect(404, "not_found"),
        api("PUT a subscriber", put.clone(), s.clone())
            .key(&admin)
            .json(create(json!({})))
            .expect(405, "method_not_allowed"),
        // PATCH /v1/subscribers/{id}
        api("patch with {}", patch.clone(), s.clone())
            .key(&admin)
            .json(json!({}))
            .expect(422, "empty_update"),
        api("patch with only nulls", patch.clone(), s.clone())
            .key(&admin)
            .json(json!({"active": null, "url": null}))
            .expect(422, "empty_update"),
        api("patch as reader", patch.clone(), s.clone())
            .key(&reader)
            .json(json!({"active": false}))
            .expect(403, "forbidden"),
        api("patch as publisher", patch.clone(), s.clone())
            .key(&publisher)
            .json(json!({"active": false}))
            .expect(403, "forbidden"),
        api("patch, malformed JSON", patch.clone(), s.clone())
            .key(&admin)
            .raw("{active: false}")
            .expect(400, "malformed_json"),
        api("patch, JSON array", patch.clone(), s.clone())
            .key(&admin)
            .raw(json!([null, ["order.*"]]).to_string())
            .expect(422, "invalid_body"),
        api("patch, active a string", patch.clone(), s.clone())
            .key(&admin)
            .json(json!({"active": "yes"}))
            .expect(422, "invalid_body"),
        api("patch, secret is not a field", patch.clone(), s.clone())
            .key(&admin)
            .json(json!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}))
            .expect(422, "invalid_body"),
        api("patch, ftp url", patch.clone(), s.clone())
            .key(&admin)
            .json(json!({"url": "ftp://127.0.0.1/"}))
            .expect(422, "unsupported_scheme"),
        api("patch, no event types", patch.clone(), s.clone())
            .key(&admin)
            .json(json!({"event_types": []}))
            .expect(422, "invalid_event_types"),
        api("patch, masked header with no stored value", patch.clone(), s.clone())
            .key(&admin)
            .json(json!({"headers": {"x-api-key": "********"}}))
            .expect(422, "invalid_headers"),
        api("patch, reserved header", patch.clone(), s.clone())
            .key(&admin)
            .json(json!({"headers": {"User-Agent": "evil-agent/1.0"}}))
            .expect(422, "invalid_headers"),
        api("patch, max_concurrency 0", patch.clone(), s.clone())
            .key(&admin)
            .json(json!({"max_concurrency": 0}))
            .expect(422, "invalid_max_concurrency"),
        api("patch, rate_limit 0", patch.clone(), s.clone())
            .key(&admin)
            .json(json!({"rate_limit": 0}))
            .expect(422, "invalid_rate_limit"),
        api("patch, unknown signature_scheme", patch.clone(), s.clone())
            .key(&admin)
            .json(json!({"signature_scheme": "hex-md5"}))
            .expect(422, "invalid_signature_scheme"),
        api("patch, description too long", patch.clone(), s.clone())
            .key(&admin)
            .json(json!({"description": "d".repeat(1025)}))
            .expect(422, "invalid_description"),
        api(
            "patch an unknown subscriber",
            patch.clone(),
            format!("/v1/subscribers/{unknown_sub}"),
        )
        .key(&admin)
        .json(json!({"active": false}))
        .expect(404, "not_found"),
        api("patch a malformed id", patch.clone(), "/v1/subscribers/nope")
            .key(&admin)
            .json(json!({"active": false}))
            .expect(404, "not_found"),
        api(
            "patch another tenant's subscriber",
            patch.clone(),
            format!("/v1/subscribers/{other_sub}"),
        )
        .key(&admin)
        .json(json!({"active": false}))
        .expect(404, "not_found"),
        // DELETE /v1/subscribers/{id}
        api("delete subscriber as reader", delete.clone(), s.clone())
            .key(&reader)
            .expect(403, "forbidden"),
        api("delete subscriber as publisher", delete.clone(), s.clone())
            .key(&publisher)
            .expect(403, "forbidden"),
        api("delete subscriber without a key", delete.clone(), s.clone())
            .expect(401, "unauthorized"),
        api("delete subscriber, malformed id", delete.clone(), "/v1/subscribers/nope")
            .key(&admin)
            .expect(404, "not_found"),
        api(
            "delete subscriber, unknown",
            delete.clone(),
            format!("/v1/subscribers/{unknown_sub}"),
        )
        .key(&admin)
        .expect(404, "not_found"),
        api(
            "delete another tenant's subscriber",
            delete.clone(),
            format!("/v1/subscribers/{other_sub}"),
        )
        .key(&admin)
        .expect(404, "not_found"),
        // POST /v1/subscribers/{id}/transform/preview
        api("preview without a key", post.clone(), format!("{s}/transform/preview"))
            .json(json!({"type": "a.b", "data": {}}))
            .expect(401, "unauthorized"),
        api("preview as a reader", post.clone(), format!("{s}/transform/preview"))
            .key(&reader)
            .json(json!({"type": "a.b", "data": {}}))
            .expect(403, "forbidden"),
        api("preview without a type", post.clone(), format!("{s}/transform/preview"))
            .key(&admin)
            .json(json!({"data": {}}))
            .expect(422, "invalid_body"),
        api("preview a bad event type", post.clone(), format!("{s}/transform/preview"))
            .key(&admin)
            .json(json!({"type": "a b", "data": {}}))
            .expect(422, "invalid_event_type"),
        api("preview a program that does not compile", post.clone(), format!("{s}/transform/preview"))
            .key(&admin)
            .json(json!({"type": "a.b", "data": {}, "transform": "{"}))
            .expect(422, "invalid_transform"),
        api("preview, malformed JSON", post.clone(), format!("{s}/transform/preview"))
            .key(&admin)
            .raw(r#"{"type": "#)
            .expect(400, "malformed_json"),
        api(
            "preview on another tenant's subscriber",
            post.clone(),
            format!("/v1/subscribers/{other_sub}/transform/preview"),
        )
        .key(&admin)
        .json(json!({"type": "a.b", "data": {}}))
        .expect(404, "not_found"),
        api("create with a transform that does not compile", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"transform": ".a |"})))
            .expect(422, "invalid_transform"),
        api("update to a transform that does not compile", patch.clone(), s.clone())
            .key(&admin)
            .json(json!({"transform": "nosuchfn(1)"}))
            .expect(422, "invalid_transform"),
        api("create with a filter that does not compile", post.clone(), "/v1/subscribers")
            .key(&admin)
            .json(create(json!({"filter": ".total >"})))
            .expect(422, "invalid_filter"),
        api("update to a filter that is too long", patch.clone(), s.clone())
            .key(&admin)
            .json(json!({"filter": "true or ".repeat(3000) + "true"}))
            .expect(422, "invalid_filter"),
        api("update to a filter that is not a string", patch.clone(), s.clone())
            .key(&admin)
            .json(json!({"filter": 5}))
            .expect(422, "invalid_body"),
        // POST /v1/subscribers/{id}/rotate-secret
        api("rotate to a secret without whsec_", post.clone(), format!("{s}/rotate-secret"))
            .key(&admin)
            .json(json!({"secret": "plain-old-password-123"}))
            .expect(422, "invalid_secret"),
        api("rotate to a too-short secret", post.clone(), format!("{s}/rotate-secret"))
            .key(&admin)
            .json(json!({"secret": "whsec_AAAAAAAAAAAAAA=="}))
            .expect(422, "invalid_secret"),
        api("rotate to a numeric secret", post.clone(), format!("{s}/rotate-secret"))
            .key(&admin)
            .json(json!({"secret": 1234567890}))
            .expect(422, "invalid_body"),
        api("rotate with an unknown field", post.clone(), format!("{s}/rotate-secret"))
            .key(&admin)
            .json(json!({"grace": "1h"}))
            .expect(422, "invalid_body"),
        api("rotate, malformed JSON", post.clone(), format!("{s}/rotate-secret"))
            .key(&admin)
            .raw(r#"{"secret": "#)
            .expect(400, "malformed_json"),
        api("rotate, JSON array", post.clone(), format!("{s}/rotate-secret"))
            .key(&admin)
            .raw("[]")
            .expect(422, "invalid_body"),
        api("rotate as reader", post.clone(), format!("{s}/rotate-secret"))
            .key(&reader)
            .expect(403, "forbidden"),
        api("rotate as publisher", post.clone(), format!("{s}/rotate-secret"))
            .key(&publisher)
            .expect(403, "forbidden"),
        api(
            "rotate an unknown subscriber",
            post.clone(),
            format!("/v1/subscribers/{unknown_sub}/rotate-secret"),
        )
        .key(&admin)
        .expect(404, "not_found"),
        api(
            "rotate another tenant's subscriber",
            post.clone(),
            format!("/v1/subscribers/{other_sub}/rotate-secret"),
        )
        .key(&admin)
        .expect(404, "not_found"),
        api("GET rotate-secret", get.clone(), format!("{s}/rotate-secret"))
            .key(&admin)
            .expect(405, "method_not_allowed"),
        // POST /v1/subscribers/{id}/test
        api("test as reader", post.clone(), format!("{s}/test"))
            .key(&reader)
            .expect(403, "forbidden"),
        api("test without a key", post.clone(), format!("{s}/test"))
            .expect(401, "unauthorized"),
        api(
            "test an unknown subscriber",
            post.clone(),
            format!("/v1/subscribers/{unknown_sub}/test"),
        )
        .key(&publisher)
        .expect(404, "not_found"),
        api("test a malformed id", post.clone(), "/v1/subscribers/nope/test")
            .key(&publisher)
            .expect(404, "not_found"),
        api(
            "test another tenant's subscriber",
            post.clone(),
            format!("/v1/subscribers/{other_sub}/test"),
        )
        .key(&publisher)
        .expect(404, "not_found"),
        api("GET test", get.clone(), format!("{s}/test"))
            .key(&publisher)
            .expect(405, "method_not_allowed"),
        // POST /v1/subscribers/{id}/recover
        api("recover without since", post.clone(), format!("{s}/recover"))
            .key(&admin)
            .json(json!({}))
            .expect(422, "invalid_time"),
        api("recover, since not a time", post.clone(), format!("{s}/recover"))
            .key(&admin)
            .json(json!({"since": "yesterday"}))
            .expect(400, "invalid_time"),
        api("recover, since a number", post.clone(), format!("{s}/recover"))
            .key(&admin)
            .json(json!({"since": 1_700_000_000}))
            .expect(422, "invalid_body"),
        api("recover, until before since", post.clone(), format!("{s}/recover"))
            .key(&admin)
            .json(json!({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}))
            .expect(422, "invalid_time"),
        api("recover with an unknown field", post.clone(), format!("{s}/recover"))
            .key(&admin)
            .json(json!({"since": "2026-01-01T00:00:00Z", "outcome": "failure"}))
            .expect(422, "invalid_body"),
        api("recover, empty body", post.clone(), format!("{s}/recover"))
            .key(&admin)
            .raw("")
            .expect(400, "malformed_json"),
        api("recover, JSON array", post.clone(), format!("{s}/recover"))
            .key(&admin)
            .raw(r#"["2020-01-01T00:00:00Z"]"#)
            .expect(422, "invalid_body"),
        api("recover as reader", post.clone(), format!("{s}/recover"))
            .key(&reader)
            .json(json!({"since": "2026-01-01T00:00:00Z"}))
            .expect(403, "forbidden"),
        api("recover as publisher", post.clone(), format!("{s}/recover"))
            .key(&publisher)
            .json(json!({"since": "2026-01-01T00:00:00Z"}))
            .expect(403, "forbidden"),
        api(
            "recover an unknown subscriber",
            post.clone(),
            format!("/v1/subscribers/{unknown_sub}/recover"),
        )
        .key(&admin)
        .json(json!({"since": "2026-01-01T00:00:00Z"}))
        .expect(404, "not_found"),
        // GET /v1/deliveries
        api("deliveries without a key", get.clone(), "/v1/deliveries")
            .expect(401, "unauthorized"),
        api("deliveries, outcome=maybe", get.clone(), "/v1/deliveries?outcome=maybe")
            .key(&reader)
            .expect(400, "invalid_outcome"),
        api(
            "deliveries, since after until",
            get.clone(),
            "/v1/deliveries?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
        )
        .key(&reader)
        .expect(400, "invalid_time"),
        api("deliveries, since=yesterday", get.clone(), "/v1/deliveries?since=yesterday")
            .key(&reader)
            .expect(400, "invalid_time"),
        api("deliveries, malformed event_id", get.clone(), "/v1/deliveries?event_id=nope")
            .key(&reader)
            .expect(400, "invalid_event_id"),
        api(
            "deliveries, malformed subscriber_id",
            get.clone(),
            "/v1/deliveries?subscriber_id=nope",
        )
        .key(&reader)
        .expect(400, "invalid_subscriber_id"),
        api("deliveries, limit=0", get.clone(), "/v1/deliveries?limit=0")
            .key(&reader)
            .expect(400, "invalid_limit"),
        api(
            "deliveries, outcome twice",
            get.clone(),
            "/v1/deliveries?outcome=success&outcome=failure",
        )
        .key(&reader)
        .expect(400, "invalid_query"),
        api("deliveries, garbage cursor", get.clone(), "/v1/deliveries?cursor=garbage")
            .key(&reader)
            .expect(400, "invalid_cursor"),
        api(
            "deliveries, cursor of the key list",
            get.clone(),
            format!("/v1/deliveries?cursor={keys_cursor}"),
        )
        .key(ADMIN_KEY)
        .expect(400, "invalid_cursor"),
        api("POST /v1/deliveries", post.clone(), "/v1/deliveries")
            .key(&admin)
            .json(json!({}))
            .expect(405, "method_not_allowed"),
        // GET /v1/stats
        api("stats without a key", get.clone(), "/v1/stats").expect(401, "unauthorized"),
        api("stats, malformed subscriber_id", get.clone(), "/v1/stats?subscriber_id=nope")
            .key(&reader)
            .expect(400, "invalid_subscriber_id"),
        api(
            "stats, unknown subscriber",
            get.clone(),
            format!("/v1/stats?subscriber_id={unknown_sub}"),
        )
        .key(&reader)
        .expect(404, "not_found"),
        api(
            "stats, another tenant's subscriber",
            get.clone(),
            format!("/v1/stats?subscriber_id={other_sub}"),
        )
        .key(&reader)
        .expect(404, "not_found"),
        api(
            "stats, subscriber_id twice",
            get.clone(),
            format!("/v1/stats?subscriber_id={sub}&subscriber_id={sub}"),
        )
        .key(&reader)
        .expect(400, "invalid_query"),
        api("POST /v1/stats", post.clone(), "/v1/stats")
            .key(&admin)
            .expect(405, "method_not_allowed"),
        // GET /v1/stats/timeseries
        api("timeseries without a key", get.clone(), "/v1/stats/timeseries")
            .expect(401, "unauthorized"),
        api("timeseries by the week", get.clone(), "/v1/stats/timeseries?bucket=week")
            .key(&reader)
            .expect(400, "invalid_bucket"),
        api(
            "timeseries, a day of minutes",
            get.clone(),
            "/v1/stats/timeseries?bucket=minute&since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z",
        )
        .key(&reader)
        .expect(400, "invalid_range"),
        api(
            "timeseries, since after until",
            get.clone(),
            "/v1/stats/timeseries?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
        )
        .key(&reader)
        .expect(400, "invalid_range"),
        api("timeseries, since not a time", get.clone(), "/v1/stats/timeseries?since=yesterday")
            .key(&reader)
            .expect(400, "invalid_time"),
        api(
            "timeseries of another tenant's subscriber",
            get.clone(),
            format!("/v1/stats/timeseries?subscriber_id={other_sub}"),
        )
        .key(&reader)
        .expect(404, "not_found"),
        // GET /v1/dlq
        api("dlq without a key", get.clone(), "/v1/dlq").expect(401, "unauthorized"),
        api("dlq, malformed subscriber_id", get.clone(), "/v1/dlq?subscriber_id=nope")
            .key(&reader)
            .expect(400, "invalid_subscriber_id"),
        api("dlq, limit=abc", get.clone(), "/v1/dlq?limit=abc")
            .key(&reader)
            .expect(400, "invalid_limit"),
        api("dlq, garbage cursor", get.clone(), "/v1/dlq?cursor=garbage")
            .key(&reader)
            .expect(400, "invalid_cursor"),
        api(
            "dlq, cursor of the key list",
            get.clone(),
            format!("/v1/dlq?cursor={keys_cursor}"),
        )
        .key(ADMIN_KEY)
        .expect(400, "invalid_cursor"),
        // POST /v1/dlq/redrive
        api("redrive as reader", post.clone(), "/v1/dlq/redrive")
            .key(&reader)
            .expect(403, "forbidden"),
        api("redrive as publisher", post.clone(), "/v1/dlq/redrive")
            .key(&publisher)
            .expect(403, "forbidden"),
        api("redrive, malformed JSON", post.clone(), "/v1/dlq/redrive")
            .key(&admin)
            .raw("{")
            .expect(400, "malformed_json"),
        api("redrive with an unknown field", post.clone(), "/v1/dlq/redrive")
            .key(&admin)
            .json(json!({"all": true}))
            .expect(422, "invalid_body"),
        api("redrive, malformed subscriber_id", post.clone(), "/v1/dlq/redrive")
            .key(&admin)
            .json(json!({"subscriber_id": "nope"}))
            .expect(422, "invalid_subscriber_id"),
        api("redrive, numeric subscriber_id", post.clone(), "/v1/dlq/redrive")
            .key(&admin)
            .json(json!({"subscriber_id": 7}))
            .expect(422, "invalid_body"),
        api("redrive, JSON array", post.clone(), "/v1/dlq/redrive")
            .key(&admin)
            .raw("[]")
            .expect(422, "invalid_body"),
        api("GET /v1/dlq/redrive", get.clone(), "/v1/dlq/redrive")
            .key(&admin)
            .expect(405, "method_not_allowed"),
        // POST /v1/api-keys
        api("create key as reader", post.clone(), "/v1/api-keys")
            .key(&reader)
            .json(json!({"role": "reader"}))
            .expect(403, "forbidden"),
        api("create key as publisher", post.clone(), "/v1/api-keys")
            .key(&publisher)
            .json(json!({"role": "reader"}))
            .expect(403, "forbidden"),
        api("create key, unknown role", post.clone(), "/v1/api-keys")
            .key(&admin)
            .json(json!({"role": "root"}))
            .expect(422, "invalid_role"),
        api("create key without role", post.clone(), "/v1/api-keys")
            .key(&admin)
            .json(json!({"description": "ci"}))
            .expect(422, "invalid_body"),
        api("create key, bad tenant", post.clone(), "/v1/api-keys")
            .key(ADMIN_KEY)
            .json(json!({"tenant": "Bad Tenant", "role": "reader"}))
            .expect(422, "invalid_tenant"),
        api("create key for another tenant as its admin", post.clone(), "/v1/api-keys")
            .key(&admin)
            .json(json!({"tenant": "other", "role": "admin"}))
            .expect(403, "forbidden"),
        api("create key, description too long", post.clone(), "/v1/api-keys")
            .key(&admin)
            .json(json!({"role": "reader", "description": "d".repeat(257)}))
            .expect(422, "invalid_description"),
        api("create key with an unknown field", post.clone(), "/v1/api-keys")
            .key(&admin)
            .json(json!({"role": "reader", "expires": "never"}))
            .expect(422, "invalid_body"),
        api("create key, JSON array", post.clone(), "/v1/api-keys")
            .key(&admin)
            .raw(r#"[null, "reader"]"#)
            .expect(422, "invalid_body"),
        api("create key, malformed JSON", post.clone(), "/v1/api-keys")
            .key(&admin)
            .raw("role=reader")
            .expect(400, "malformed_json"),
        // GET /v1/tenants, GET/PUT /v1/tenants/{tenant}: the bootstrap key's alone.
        api("list tenants as a tenant's admin", get.clone(), "/v1/tenants")
            .key(&admin)
            .expect(403, "forbidden"),
        api("list tenants, limit=0", get.clone(), "/v1/tenants?limit=0")
            .key(ADMIN_KEY)
            .expect(400, "invalid_limit"),
        api("list tenants, garbage cursor", get.clone(), "/v1/tenants?cursor=garbage")
            .key(ADMIN_KEY)
            .expect(400, "invalid_cursor"),
        api("get a tenant as its own admin", get.clone(), "/v1/tenants/default")
            .key(&admin)
            .expect(403, "forbidden"),
        api("get a tenant never seen", get.clone(), "/v1/tenants/never-seen")
            .key(ADMIN_KEY)
            .expect(404, "not_found"),
        api("set limits as the tenant's admin", put.clone(), "/v1/tenants/default")
            .key(&admin)
            .json(json!({"limits": {"events_per_second": 100000, "burst": 1000000}}))
            .expect(403, "forbidden"),
        api("set limits of zero", put.clone(), "/v1/tenants/default")
            .key(ADMIN_KEY)
            .json(json!({"limits": {"events_per_second": 0, "burst": 10}}))
            .expect(422, "invalid_limits"),
        api("set limits without a burst", put.clone(), "/v1/tenants/default")
            .key(ADMIN_KEY)
            .json(json!({"limits": {"events_per_second": 10}}))
            .expect(422, "invalid_body"),
        api("set limits of a bad tenant id", put.clone(), "/v1/tenants/Bad_Tenant")
            .key(ADMIN_KEY)
            .json(json!({"limits": null}))
            .expect(422, "invalid_tenant"),
        api("set limits, malformed JSON", put.clone(), "/v1/tenants/default")
            .key(ADMIN_KEY)
            .raw("limits=none")
            .expect(400, "malformed_json"),
        api("DELETE /v1/tenants/default", delete.clone(), "/v1/tenants/default")
            .key(ADMIN_KEY)
            .expect(405, "method_not_allowed"),
        // GET /v1/api-keys
        api("list keys as reader", get.clone(), "/v1/api-keys")
            .key(&reader)
            .expect(403, "forbidden"),
        api("list keys, limit=abc", get.clone(), "/v1/api-keys?limit=abc")
            .key(&admin)
            .expect(400, "invalid_limit"),
        api("list keys, garbage cursor", get.clone(), "/v1/api-keys?cursor=garbage")
            .key(&admin)
            .expect(400, "invalid_cursor"),
        api(
            "list keys, cursor of another tenant",
            get.clone(),
            format!("/v1/api-keys?cursor={other_cursor}"),
        )
        .key(ADMIN_KEY)
        .expect(400, "invalid_cursor"),
        api("PATCH /v1/api-keys", patch.clone(), "/v1/api-keys")
            .key(&admin)
            .json(json!({"role": "reader"}))
            .expect(405, "method_not_allowed"),
        // DELETE /v1/api-keys/{id}
        api("delete key as reader", delete.clone(), format!("/v1/api-keys/{other_key_id}"))
            .key(&reader)
            .expect(403, "forbidden"),
        api("delete key, malformed id", delete.clone(), "/v1/api-keys/nope")
            .key(&admin)
            .expect(404, "not_found"),
        api(
            "delete key, unknown",
            delete.clone(),
            "/v1/api-keys/key_01unknown000000000000000",
        )
        .key(&admin)
        .expect(404, "not_found"),
        api(
            "delete another tenant's key",
            delete.clone(),
            format!("/v1/api-keys/{other_key_id}"),
        )
        .key(ADMIN_KEY)
        .expect(404, "not_found"),
        // GET /v1/audit
        api("audit as reader", get.clone(), "/v1/audit")
            .key(&reader)
            .expect(403, "forbidden"),
        api("audit as publisher", get.clone(), "/v1/audit")
            .key(&publisher)
            .expect(403, "forbidden"),
        api("audit without a key", get.clone(), "/v1/audit").expect(401, "unauthorized"),
        api("audit, limit=0", get.clone(), "/v1/audit?limit=0")
            .key(&admin)
            .expect(400, "invalid_limit"),
        api(
            "audit, cursor of the key list",
            get.clone(),
            format!("/v1/audit?cursor={keys_cursor}"),
        )
        .key(ADMIN_KEY)
        .expect(400, "invalid_cursor"),
        api("DELETE /v1/audit", delete.clone(), "/v1/audit")
            .key(&admin)
            .expect(405, "method_not_allowed"),
        // GET /v1/openapi.json
        api("openapi without a key", get.clone(), "/v1/openapi.json")
            .expect(401, "unauthorized"),
        api("openapi with an unknown key", get.clone(), "/v1/openapi.json")
            .key("sk_unknown_0123456789abcdefghij")
            .expect(401, "invalid_api_key"),
        api("POST /v1/openapi.json", post.clone(), "/v1/openapi.json")
            .key(&reader)
            .expect(405, "method_not_allowed"),
        // GET /v1/sources
        api("list sources without a key", get.clone(), "/v1/sources")
            .expect(401, "unauthorized"),
        api("list sources, limit 0", get.clone(), "/v1/sources?limit=0")
            .key(&reader)
            .expect(400, "invalid_limit"),
        api("list sources, a cursor of another list", get.clone(), format!("/v1/sources?cursor={keys_cursor}"))
            .key(&admin)
            .expect(400, "invalid_cursor"),
        // POST /v1/sources
        api("create source as reader", post.clone(), "/v1/sources")
            .key(&reader)
            .json(source(json!({})))
            .expect(403, "forbidden"),
        api("create source, malformed JSON", post.clone(), "/v1/sources")
            .key(&admin)
            .raw("{\"name\": ")
            .expect(400, "malformed_json"),
        api("create source, unknown field", post.clone(), "/v1/sources")
            .key(&admin)
            .json(source(json!({"tenant": "other"})))
            .expect(422, "invalid_body"),
        api("create source, unknown verification", post.clone(), "/v1/sources")
            .key(&admin)
            .json(source(json!({"verification": "gitlab"})))
            .expect(422, "invalid_verification"),
        api("create source, two event type rules", post.clone(), "/v1/sources")
            .key(&admin)
            .json(source(json!({"event_type": {"fixed": "a.b", "pointer": "/t"}})))
            .expect(422, "invalid_event_type_rule"),
        api("create source, a rule with an unknown key", post.clone(), "/v1/sources")
            .key(&admin)
            .json(source(json!({"event_type": {"fixd": "a.b"}})))
            .expect(422, "invalid_body"),
        api("create source, hmac-sha256 without settings", post.clone(), "/v1/sources")
            .key(&admin)
            .json(source(json!({"verification": "hmac-sha256"})))
            .expect(422, "invalid_hmac"),
        api("create source, hmac settings with a bad header", post.clone(), "/v1/sources")
            .key(&admin)
            .json(source(json!({"verification": "hmac-sha256", "hmac": {"header": "X Sig", "encoding": "hex"}})))
            .expect(422, "invalid_hmac"),
        api("create source, standard-webhooks with a plain secret", post.clone(), "/v1/sources")
            .key(&admin)
            .json(source(json!({"verification": "standard-webhooks", "secret": "hunter2-hunter2"})))
            .secret("hunter2-hunter2")
            .expect(422, "invalid_secret"),
        api("create source, an empty name", post.clone(), "/v1/sources")
            .key(&admin)
            .json(source(json!({"name": ""})))
            .expect(422, "invalid_name"),
        // GET/PATCH/DELETE /v1/sources/{id}
        api("get an unknown source", get.clone(), "/v1/sources/src_01unknown0000000000000000")
            .key(&reader)
            .expect(404, "not_found"),
        api("get a source by a malformed id", get.clone(), "/v1/sources/sub_01")
            .key(&reader)
            .expect(404, "not_found"),
        api("get another tenant's source", get.clone(), other_src.clone())
            .key(&admin)
            .expect(404, "not_found"),
        api("update a source with nothing", patch.clone(), src.clone())
            .key(&admin)
            .json(json!({}))
            .expect(422, "empty_update"),
        api("update a source as reader", patch.clone(), src.clone())
            .key(&reader)
            .json(json!({"name": "x"}))
            .expect(403, "forbidden"),
        api("update a source to a scheme its secret does not suit", patch.clone(), src.clone())
            .key(&admin)
            .json(json!({"verification": "standard-webhooks"}))
            .expect(422, "invalid_secret"),
        api("update another tenant's source", patch.clone(), other_src.clone())
            .key(&admin)
            .json(json!({"name": "mine"}))
            .expect(404, "not_found"),
        api("delete a source as publisher", delete.clone(), src.clone())
            .key(&publisher)
            .expect(403, "forbidden"),
        api("delete another tenant's source", delete.clone(), other_src.clone())
            .key(&admin)
            .expect(404, "not_found"),
        // POST /v1/inbound/{source_id}: no key; the signature is the credential.
        ingest("inbound without a signature", post.clone(), inbound_path.clone())
            .header("x-github-event", "push")
            .json(json!({"a": 1}))
            .expect(401, "invalid_signature"),
        ingest("inbound with an API key instead", post.clone(), inbound_path.clone())
            .key(&admin)
            .header("x-github-event", "push")
            .json(json!({"a": 1}))
            .expect(401, "invalid_signature"),
        ingest("inbound signed for another body", post.clone(), inbound_path.clone())
            .header("x-hub-signature-256", github_sig(r#"{"a":2}"#))
            .header("x-github-event", "push")
            .raw(r#"{"a":1}"#)
            .expect(401, "invalid_signature"),
        ingest("inbound signed, not JSON", post.clone(), inbound_path.clone())
            .header("x-hub-signature-256", github_sig("a=1"))
            .header("x-github-event", "push")
            .raw("a=1")
            .expect(400, "malformed_json"),
        ingest("inbound signed, no event type header", post.clone(), inbound_path.clone())
            .header("x-hub-signature-256", github_sig(r#"{"a":1}"#))
            .raw(r#"{"a":1}"#)
            .expect(422, "invalid_event_type"),
        ingest("inbound signed, a bad event type", post.clone(), inbound_path.clone())
            .header("x-hub-signature-256", github_sig(r#"{"a":1}"#))
            .header("x-github-event", "pull request")
            .raw(r#"{"a":1}"#)
            .expect(422, "invalid_event_type"),
        ingest("inbound too large", post.clone(), inbound_path.clone())
            .header("x-github-event", "push")
            .raw(big_publish.clone())
            .expect(413, "payload_too_large"),
        ingest("inbound to an unknown source", post.clone(), "/v1/inbound/src_01unknown0000000000000000")
            .header("x-hub-signature-256", github_sig(r#"{"a":1}"#))
            .raw(r#"{"a":1}"#)
            .expect(404, "not_found"),
        ingest("inbound to a malformed source id", post.clone(), "/v1/inbound/x")
            .raw(r#"{"a":1}"#)
            .expect(404, "not_found"),
        ingest("GET an inbound URL", get.clone(), inbound_path.clone())
            .expect(405, "method_not_allowed"),
        // Routes nobody serves.
        api("GET /v1/nope", get.clone(), "/v1/nope")
            .key(&admin)
            .expect(404, "not_found"),
        api("GET below a subscriber", get.clone(), format!("{s}/nope"))
            .key(&admin)
            .expect(404, "not_found"),
        api("GET /v1/api-keys/{id}/x", get.clone(), format!("/v1/api-keys/{other_key_id}/x"))
            .key(&admin)
            .expect(404, "not_found"),
    ];

    // The corpus itself: big enough, names unique, expectations set, every route reached
    // (`GET /v1/health` takes no input, so only other methods on its path can be wrong).
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let names: BTreeSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
    for c in &cases {
        assert!(
            c.status >= 400 && !c.code.is_empty(),
            "{}: no expectation",
            c.name
        );
    }
    let served = skyhook_api::routes()
        .into_iter()
        .map(|(m, p)| (To::Api, m, p))
        .chain(
            skyhook_ingest::routes()
                .into_iter()
                .map(|(m, p)| (To::Ingest, m, p)),
        );
    for (to, method, template) in served {
        assert!(
            cases.iter().any(|c| c.to == to
                && (c.method == method || c.status == 405)
                && matches_route(&template, &c.path)),
            "no bad-input case for {method} {template}"
        );
    }

    // Snapshot after the set-up, then every case against it.
    let items_before = stack.table_items().await;
    let secrets_before = stack.secret_count().await;
    let start = footprint(&stack).await;
    let mut last = start.clone();
    let mut failures: Vec<String> = Vec::new();
    for c in &cases {
        let router = match c.to {
            To::Ingest => &stack.ingest,
            To::Api => &stack.api,
        };
        let label = format!(
            "{} ({} {})",
            c.name,
            c.method,
            c.path.chars().take(90).collect::<String>()
        );
        match send(router, c).await {
            Ok((status, content_type, bytes)) => {
                for p in check(c, status, content_type.as_deref(), &bytes, &never) {
                    failures.push(format!("{label}: {p}"));
                }
            }
            Err(e) => failures.push(format!("{label}: {e}")),
        }
        let now = footprint(&stack).await;
        for change in changes(&last, &now) {
            failures.push(format!("{label}: {change}"));
        }
        last = now;
    }

    // Nothing written, nothing queued, and (after letting a delivery run) nothing sent.
    let items_after = stack.table_items().await;
    if items_after != items_before {
        failures.push(format!(
            "after the corpus: table items {items_before} -> {items_after}"
        ));
    }
    let secrets_after = stack.secret_count().await;
    if secrets_after != secrets_before {
        failures.push(format!(
            "after the corpus: secrets {secrets_before} -> {secrets_after}"
        ));
    }
    let end = footprint(&stack).await;
    let changed = changes(&start, &end);
    if !changed.is_empty() {
        // Each change is named under the case that made it, above.
        failures.push(format!(
            "after the corpus: {} change(s) to the table and secrets against the snapshot; \
             delivery queue depth {} -> {}, DLQ depth {} -> {}",
            changed.len(),
            start.queue,
            end.queue,
            start.dlq,
            end.dlq
        ));
    }
    let runner = stack.start_delivery();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    runner.stop().await;
    for (name, r) in [
        ("receiver", &receiver),
        ("other tenant's receiver", &other_receiver),
    ] {
        let got = r.requests();
        if !got.is_empty() {
            failures.push(format!(
                "after the corpus: the {name} got {} request(s), first to {}",
                got.len(),
                got[0].path
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s) across {} bad-input cases and the final checks:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
