//! Which AWS operations each function performs on which resources, recorded across the
//! whole suite so that `make test` can hold the template's IAM roles to the code
//! (`skyhook-iam-check`, [`crate::iam`]).
//!
//! With `SKYHOOK_IAM_RECORD` set to a directory, every test stack puts this endpoint in
//! front of the emulator and gives each function's clients credentials of their own (the
//! access key names the function: [`FUNCTION_KEYS`]). The endpoint forwards each request
//! unchanged, and notes once per stack each (function, IAM action, resource) it sees, the
//! resource named as the template names it (`Table`, `Table/index/gsi1`, `DeliveryQueue`,
//! …). The emulator does not enforce IAM; this is how a missing grant still shows.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::call::{Call, Service, is_hop_header};

/// The environment variable naming the directory records go to.
pub const RECORD_DIR: &str = "SKYHOOK_IAM_RECORD";

/// The access key each function's clients sign with, and the function's binary name (as
/// `infra/template.yaml` and `tests/it/template.rs` know it).
pub const FUNCTION_KEYS: &[(&str, &str)] = &[
    ("AKIDSKYHOOKINGESTHTTP", "ingest-http"),
    ("AKIDSKYHOOKINGESTEVENTS", "ingest-events"),
    ("AKIDSKYHOOKAPI", "api"),
    ("AKIDSKYHOOKDELIVERY", "delivery"),
    ("AKIDSKYHOOKSTATS", "stats"),
];

/// The access key of a function's clients.
pub fn access_key(function: &str) -> &'static str {
    FUNCTION_KEYS
        .iter()
        .find(|(_, f)| *f == function)
        .map(|(k, _)| *k)
        .unwrap_or_else(|| panic!("no access key for function {function}"))
}

/// One thing a function did: an IAM action on a resource of the template.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Use {
    /// The function's binary name (`delivery`).
    pub function: String,
    /// The IAM action (`sqs:SendMessage` for `SendMessageBatch`, …).
    pub action: String,
    /// The resource as the template names it (`Table`, `Table/index/gsi1`, `Table/stream`,
    /// `DeliveryQueue`, `SubscriberSecret`, `SourceSecret`, `AdminKeySecret`, `EventBus`), or
    /// `unknown:<name>` for one the stack does not own.
    pub resource: String,
}

/// The stack's own resource names, to name what a request touched as the template does.
#[derive(Clone, Debug)]
pub struct StackNames {
    pub table: String,
    pub stats_table: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub stream_arn: String,
    pub secret_prefix: String,
    pub source_secret_prefix: String,
    pub admin_key_secret: Option<String>,
    pub keyring_secret: String,
    pub event_bus: Option<String>,
}

impl StackNames {
    fn table(&self, name: &str) -> String {
        if name == self.table || name.ends_with(&format!("/{}", self.table)) {
            "Table".into()
        } else if name == self.stats_table || name.ends_with(&format!("/{}", self.stats_table)) {
            "StatsTable".into()
        } else {
            format!("unknown:{name}")
        }
    }

    fn queue(&self, url: &str) -> String {
        let last = |u: &str| u.rsplit('/').next().unwrap_or_default().to_string();
        if last(url) == last(&self.queue_url) {
            "DeliveryQueue".into()
        } else if last(url) == last(&self.dlq_url) {
            "DeadLetterQueue".into()
        } else {
            format!("unknown:{url}")
        }
    }

    fn secret(&self, id: &str) -> String {
        if self.admin_key_secret.as_deref() == Some(id) {
            "AdminKeySecret".into()
        } else if id == self.keyring_secret {
            "KeyringSecret".into()
        } else if id.starts_with(&self.secret_prefix) {
            "SubscriberSecret".into()
        } else if id.starts_with(&self.source_secret_prefix) {
            "SourceSecret".into()
        } else {
            format!("unknown:{id}")
        }
    }

    fn bus(&self, name: &str) -> String {
        if self.event_bus.as_deref() == Some(name) || name.ends_with("/default") {
            "EventBus".into()
        } else {
            format!("unknown:{name}")
        }
    }
}

/// What [`uses`] appends to an action on the stack's table to note the partition keys it
/// touches, as `("dynamodb:GetItem@keys", class)`: what IAM's `dynamodb:LeadingKeys`
/// condition sees, for that action. A key's class is the key up to its first `#`,
/// inclusive (`T#`, `R#`, `SRC#`), or the whole key when it has none (`TENANTS`).
pub const KEYS_OF: &str = "@keys";

/// The class of a partition key (see [`KEYS_OF`]).
pub fn key_class(pk: &str) -> String {
    match pk.find('#') {
        Some(i) => pk[..=i].to_string(),
        None => pk.to_string(),
    }
}

/// The partition keys one request to DynamoDB touches on the tables `ours` says yes to.
fn partition_keys(op: &str, request: &Value, ours: impl Fn(&str) -> bool) -> Vec<String> {
    if matches!(
        op,
        "GetItem" | "UpdateItem" | "DeleteItem" | "PutItem" | "Query"
    ) && !ours(request["TableName"].as_str().unwrap_or_default())
    {
        return Vec::new();
    }
    let pk = |v: &Value| v["pk"]["S"].as_str().map(str::to_string);
    match op {
        "GetItem" | "UpdateItem" | "DeleteItem" => pk(&request["Key"]).into_iter().collect(),
        "PutItem" => pk(&request["Item"]).into_iter().collect(),
        "Query" => {
            // `pk = :p` (or `#pk = :p`) in the key condition, and the value of `:p`.
            let condition = request["KeyConditionExpression"]
                .as_str()
                .unwrap_or_default();
            let names = &request["ExpressionAttributeNames"];
            condition
                .split(" AND ")
                .filter_map(|part| {
                    let (left, right) = part.split_once('=')?;
                    let left = left.trim();
                    let name = names[left].as_str().unwrap_or(left);
                    (name == "pk")
                        .then(|| request["ExpressionAttributeValues"][right.trim()]["S"].as_str())?
                })
                .map(str::to_string)
                .collect()
        }
        "BatchGetItem" => request["RequestItems"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(name, _)| ours(name))
            .flat_map(|(_, t)| t["Keys"].as_array().cloned().unwrap_or_default())
            .filter_map(|k| pk(&k))
            .collect(),
        "BatchWriteItem" => request["RequestItems"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(name, _)| ours(name))
            .flat_map(|(_, t)| t.as_array().cloned().unwrap_or_default())
            .filter_map(|w| pk(&w["PutRequest"]["Item"]).or_else(|| pk(&w["DeleteRequest"]["Key"])))
            .collect(),
        "TransactWriteItems" => request["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| {
                ["Put", "Update", "Delete", "ConditionCheck"]
                    .iter()
                    .any(|k| i[*k]["TableName"].as_str().is_some_and(&ours))
            })
            .filter_map(|i| {
                pk(&i["Put"]["Item"])
                    .or_else(|| pk(&i["Update"]["Key"]))
                    .or_else(|| pk(&i["Delete"]["Key"]))
                    .or_else(|| pk(&i["ConditionCheck"]["Key"]))
            })
            .collect(),
        "TransactGetItems" => request["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["Get"]["TableName"].as_str().is_some_and(&ours))
            .filter_map(|i| pk(&i["Get"]["Key"]))
            .collect(),
        _ => Vec::new(),
    }
}

/// The IAM actions and resources one request needs, and on the stack's table the classes
/// of the partition keys it touches (see [`KEYS_OF`]).
pub fn uses(call: &Call, request: &Value, names: &StackNames) -> Vec<(String, String)> {
    let mut out = actions(call, request, names);
    if matches!(call.service, Service::DynamoDb) {
        let ours = |name: &str| names.table(name) == "Table";
        let classes: BTreeSet<String> = partition_keys(call.operation.as_str(), request, ours)
            .iter()
            .map(|k| key_class(k))
            .collect();
        // Every action of the request on the table, with every class it touched (a
        // transaction's parts are not told apart: more than each part touched, never less).
        let on_table: Vec<String> = out
            .iter()
            .filter(|(_, resource)| resource == "Table")
            .map(|(action, _)| action.clone())
            .collect();
        for action in on_table {
            out.extend(
                classes
                    .iter()
                    .map(|c| (format!("{action}{KEYS_OF}"), c.clone())),
            );
        }
    }
    out
}

/// The IAM actions and resources one request needs.
fn actions(call: &Call, request: &Value, names: &StackNames) -> Vec<(String, String)> {
    let op = call.operation.as_str();
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    match call.service {
        Service::DynamoDb => match op {
            "TransactWriteItems" => request["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| {
                    // IAM authorises each part of a transaction as its own operation.
                    let (kind, action) = [
                        ("Put", "PutItem"),
                        ("Update", "UpdateItem"),
                        ("Delete", "DeleteItem"),
                        ("ConditionCheck", "ConditionCheckItem"),
                    ]
                    .into_iter()
                    .find(|(k, _)| item.get(*k).is_some())?;
                    Some((
                        format!("dynamodb:{action}"),
                        names.table(&s(&item[kind]["TableName"])),
                    ))
                })
                .collect(),
            "TransactGetItems" => request["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|item| {
                    (
                        "dynamodb:GetItem".to_string(),
                        names.table(&s(&item["Get"]["TableName"])),
                    )
                })
                .collect(),
            "BatchGetItem" | "BatchWriteItem" => request["RequestItems"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(table, _)| (format!("dynamodb:{op}"), names.table(table)))
                .collect(),
            _ => {
                let table = names.table(&s(&request["TableName"]));
                let resource = match request["IndexName"].as_str() {
                    Some(index) => format!("{table}/index/{index}"),
                    None => table,
                };
                vec![(format!("dynamodb:{op}"), resource)]
            }
        },
        Service::DynamoDbStreams => {
            let arn = request["StreamArn"].as_str().unwrap_or_default();
            // GetRecords names only a shard iterator, which one of the stack's streams gave.
            let resource = if arn.is_empty() || arn == names.stream_arn {
                "Table/stream".to_string()
            } else {
                format!("unknown:{arn}")
            };
            vec![(format!("dynamodb:{op}"), resource)]
        }
        Service::Sqs => {
            // A batch is authorised by the action of one.
            let action = op.strip_suffix("Batch").unwrap_or(op);
            let queue = match request["QueueUrl"].as_str() {
                Some(url) => names.queue(url),
                None => format!("unknown:{}", s(&request["QueueName"])),
            };
            vec![(format!("sqs:{action}"), queue)]
        }
        Service::SecretsManager => {
            let id = request["SecretId"]
                .as_str()
                .or(request["Name"].as_str())
                .unwrap_or_default();
            let mut out = vec![(format!("secretsmanager:{op}"), names.secret(id))];
            // Tags given at creation are authorised as tagging too.
            if op == "CreateSecret" && request["Tags"].as_array().is_some_and(|t| !t.is_empty()) {
                out.push(("secretsmanager:TagResource".to_string(), names.secret(id)));
            }
            out
        }
        Service::EventBridge => {
            let buses: BTreeSet<String> = request["Entries"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["EventBusName"].as_str().unwrap_or("default").to_string())
                .collect();
            buses
                .into_iter()
                .map(|b| (format!("events:{op}"), names.bus(&b)))
                .collect()
        }
        Service::Other(ref name) => vec![(format!("{name}:{op}"), "unknown:".to_string())],
    }
}

/// The access key a request was signed with.
fn access_key_of(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .split("Credential=")
        .nth(1)?
        .split('/')
        .next()
        .map(str::to_string)
}

struct State {
    upstream: String,
    http: reqwest::Client,
    names: StackNames,
    file: PathBuf,
    seen: Mutex<BTreeSet<Use>>,
}

impl State {
    fn note(&self, function: &str, call: &Call, request: &Value) {
        let mut fresh = Vec::new();
        {
            let mut seen = self.seen.lock().unwrap();
            for (action, resource) in uses(call, request, &self.names) {
                let u = Use {
                    function: function.to_string(),
                    action,
                    resource,
                };
                if seen.insert(u.clone()) {
                    fresh.push(u);
                }
            }
        }
        if fresh.is_empty() {
            return;
        }
        let mut text = String::new();
        for u in fresh {
            text.push_str(&serde_json::to_string(&u).expect("a use as JSON"));
            text.push('\n');
        }
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.file)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        if let Err(e) = written {
            panic!("cannot record AWS calls in {}: {e}", self.file.display());
        }
    }

    async fn handle(self: Arc<Self>, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let body = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(b) => b,
            Err(e) => {
                return (StatusCode::BAD_REQUEST, format!("recorder: body: {e}")).into_response();
            }
        };
        if let Some(function) = access_key_of(&parts.headers).and_then(|k| {
            FUNCTION_KEYS
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, f)| *f)
        }) {
            let call = Call::identify(&parts.headers, parts.uri.query(), &body);
            let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            self.note(function, &call, &request);
        }
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let mut upstream = self
            .http
            .request(parts.method.clone(), format!("{}{path}", self.upstream))
            .body(body);
        for (name, value) in &parts.headers {
            if !is_hop_header(name) {
                upstream = upstream.header(name.clone(), value.clone());
            }
        }
        let resp = match upstream.send().await {
            Ok(r) => r,
            Err(e) => {
                return (StatusCode::BAD_GATEWAY, format!("recorder: upstream: {e}"))
                    .into_response();
            }
        };
        let mut response = Response::builder().status(resp.status());
        for (name, value) in resp.headers() {
            if !is_hop_header(name) {
                response = response.header(name, value);
            }
        }
        match resp.bytes().await {
            Ok(bytes) => response.body(Body::from(bytes)).unwrap_or_else(|e| {
                (StatusCode::BAD_GATEWAY, format!("recorder: {e}")).into_response()
            }),
            Err(e) => (
                StatusCode::BAD_GATEWAY,
                format!("recorder: upstream body: {e}"),
            )
                .into_response(),
        }
    }
}

/// The recording endpoint of one stack; stopped when dropped.
pub struct CallRecorder {
    pub url: String,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl CallRecorder {
    /// Starts on `127.0.0.1:0` in front of `upstream`, writing to a file of its own in `dir`.
    pub async fn start(upstream: &str, dir: &std::path::Path, names: StackNames) -> Self {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let file = dir.join(format!(
            "{}-{}.jsonl",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("the recorder's HTTP client"),
            names,
            file,
            seen: Mutex::default(),
        });
        let app_state = state.clone();
        let app = Router::new().fallback(move |req: Request| {
            let state = app_state.clone();
            async move { state.handle(req).await }
        });
        let (port, tx, _) = crate::serve_on_loopback(app, "recorder").await;
        CallRecorder {
            url: format!("http://127.0.0.1:{port}"),
            state,
            shutdown: Some(tx),
        }
    }

    /// What this stack's functions did so far.
    pub fn uses(&self) -> BTreeSet<Use> {
        self.state.seen.lock().unwrap().clone()
    }
}

impl Drop for CallRecorder {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Every use recorded in `dir` (all stacks of all test processes).
pub fn read_all(dir: &std::path::Path) -> std::io::Result<BTreeSet<Use>> {
    let mut all = BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(&path)?.lines() {
            if line.trim().is_empty() {
                continue;
            }
            let u: Use = serde_json::from_str(line)
                .map_err(|e| std::io::Error::other(format!("{}: {e}: {line}", path.display())))?;
            all.insert(u);
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn partition_keys_of_every_kind_of_request_on_the_table_only() {
        let ours = |t: &str| t == "tbl";
        let query = json!({
            "TableName": "tbl",
            "KeyConditionExpression": "#p = :pk AND sk BETWEEN :a AND :b",
            "ExpressionAttributeNames": {"#p": "pk"},
            "ExpressionAttributeValues": {":pk": {"S": "R#acme#order.*"}, ":a": {"S": "a"}, ":b": {"S": "b"}},
        });
        assert_eq!(
            partition_keys("Query", &query, ours),
            vec!["R#acme#order.*"]
        );
        let plain = json!({"TableName": "tbl", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "TENANTS"}}});
        assert_eq!(partition_keys("Query", &plain, ours), vec!["TENANTS"]);
        let batch = json!({"RequestItems": {
            "tbl": [{"PutRequest": {"Item": {"pk": {"S": "EC#acme#1"}}}}, {"DeleteRequest": {"Key": {"pk": {"S": "I#acme#k"}}}}],
            "stats": [{"PutRequest": {"Item": {"pk": {"S": "TS#acme"}}}}],
        }});
        assert_eq!(
            partition_keys("BatchWriteItem", &batch, ours),
            vec!["EC#acme#1", "I#acme#k"]
        );
        let get = json!({"TableName": "stats", "Key": {"pk": {"S": "T#acme"}}});
        assert!(partition_keys("GetItem", &get, ours).is_empty());
        assert_eq!(key_class("SRC#src_1"), "SRC#");
        assert_eq!(key_class("TENANTS"), "TENANTS");
    }
}
