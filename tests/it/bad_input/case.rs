//! One bad-input case and what is done with it: the builders the area modules write cases
//! with, sending a case's bytes as they are, checking the answer against the SPEC error shape,
//! and the footprint of everything a request could have written or sent.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::{Body, Bytes};
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use serde_json::Value;
use skyhook_tests::Stack;
use tower::ServiceExt;

/// Which router a case is sent to: in AWS, API Gateway sends `POST /v1/events` and
/// `GET /v1/health` to ingest-http and every other `/v1/…` route to the api function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum To {
    Ingest,
    Api,
}

/// One bad request and what it must get back.
pub(super) struct Case {
    pub(super) name: String,
    pub(super) to: To,
    pub(super) method: Method,
    pub(super) path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    pub(super) status: u16,
    pub(super) code: &'static str,
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

pub(super) fn api(name: &str, method: Method, path: impl Into<String>) -> Case {
    case(name, To::Api, method, path)
}

pub(super) fn ingest(name: &str, method: Method, path: impl Into<String>) -> Case {
    case(name, To::Ingest, method, path)
}

impl Case {
    pub(super) fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_string(), value.as_ref().to_vec()));
        self
    }

    /// `Authorization: Bearer <key>`; the key is one of the strings the message must not hold.
    pub(super) fn key(self, key: &str) -> Self {
        let mut c = self.header("authorization", format!("Bearer {key}"));
        if key.len() >= 8 {
            c.sensitive.push(key.to_string());
        }
        c
    }

    /// A body sent as it is, labelled JSON.
    pub(super) fn raw(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.header("content-type", "application/json")
    }

    pub(super) fn json(self, body: Value) -> Self {
        let sensitive = secrets_in(&body);
        let mut c = self.raw(body.to_string());
        c.sensitive.extend(sensitive);
        c
    }

    pub(super) fn secret(mut self, s: &str) -> Self {
        self.sensitive.push(s.to_string());
        self
    }

    pub(super) fn expect(mut self, status: u16, code: &'static str) -> Self {
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
pub(super) async fn send(
    router: &Router,
    c: &Case,
) -> Result<(StatusCode, Option<String>, Bytes), String> {
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
pub(super) fn check(
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
pub(super) struct Footprint {
    items: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    pub(super) queue: usize,
    pub(super) dlq: usize,
}

pub(super) async fn footprint(stack: &Stack) -> Footprint {
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
pub(super) fn changes(before: &Footprint, after: &Footprint) -> Vec<String> {
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
pub(super) fn matches_route(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
}
