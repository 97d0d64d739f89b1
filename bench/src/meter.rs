//! A counting endpoint for the AWS API emulator: a reverse proxy on `127.0.0.1` that forwards
//! every request unchanged and counts, per service and operation, the calls and what AWS
//! would bill for them (DynamoDB request units, SQS 64 KiB chunks), so that `make bench` can
//! price a delivery from the traffic of the real adapters rather than from a hand tally.
//!
//! The emulator does not report capacity the way AWS bills it, so DynamoDB units are worked
//! out here from item sizes, following the AWS Developer Guide ("DynamoDB item sizes and
//! formats", "DynamoDB read and write operations", the GSI write rules and transactions).
//! To see the item a write replaces, the meter asks the write itself: a `PutItem` or
//! `DeleteItem` goes upstream with `ReturnValues` and `ReturnValuesOnConditionCheckFailure`
//! set to `ALL_OLD`, and what the caller did not ask for is taken out of the answer again.
//! This adds no round trip to the calls a bench times. For other writes (updates,
//! transactions, batches) it reads the items from the emulator before, and for updates after;
//! those look-ups, and the table descriptions it caches, are not counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

// How a request names its service and operation, as the IAM check's recorder names it.
pub use skyhook_tests::call::Service;
use skyhook_tests::call::{Call, header, is_hop_header};

/// A DynamoDB item (or key) in the wire format: attribute name → `{"S": "…"}` and so on.
pub type Item = Map<String, Value>;

/// DynamoDB bills writes per started KB and reads per started 4 KB.
const WRITE_UNIT_BYTES: u64 = 1024;
const READ_UNIT_BYTES: u64 = 4 * 1024;
/// SQS bills a send, and EventBridge an event, per started 64 KiB of payload.
pub const CHUNK_BYTES: u64 = 64 * 1024;

/// A service and one of its operations, as the table lists them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Operation {
    pub service: Service,
    pub name: String,
}

/// What the calls of one operation cost.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OperationCount {
    pub calls: u64,
    /// Calls answered with an error status (condition failures included).
    pub errors: u64,
    /// DynamoDB write request units: table and index writes, condition failures included.
    pub write_units: f64,
    /// The part of `write_units` spent on secondary indexes.
    pub index_write_units: f64,
    /// DynamoDB read request units.
    pub read_units: f64,
    /// Writes refused because their condition did not hold; they are billed all the same.
    pub condition_failures: u64,
    /// The part of `write_units` those refused writes consumed.
    pub condition_failure_units: f64,
    /// Requests as billed: SQS sends per started 64 KiB, EventBridge per entry, else calls.
    pub billed_requests: u64,
    /// Error answers by kind (the error type, or the HTTP status when there is none).
    pub errors_by_kind: BTreeMap<String, u64>,
}

impl OperationCount {
    fn add(&mut self, other: &OperationCount) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.write_units += other.write_units;
        self.index_write_units += other.index_write_units;
        self.read_units += other.read_units;
        self.condition_failures += other.condition_failures;
        self.condition_failure_units += other.condition_failure_units;
        self.billed_requests += other.billed_requests;
        for (kind, n) in &other.errors_by_kind {
            *self.errors_by_kind.entry(kind.clone()).or_default() += n;
        }
    }
}

/// SQS batches handed out by `ReceiveMessage`: what a Lambda event source mapping would
/// turn into one invocation each.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReceivedBatches {
    /// `ReceiveMessage` calls that returned at least one message.
    pub batches: u64,
    pub messages: u64,
    /// For each batch whose messages were deleted: the time from the `ReceiveMessage`
    /// answer to the first `DeleteMessageBatch` naming one of its receipt handles, which is
    /// how long the handler held the batch.
    pub held: Vec<Duration>,
}

/// A snapshot of the counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeterReport {
    pub operations: BTreeMap<Operation, OperationCount>,
    pub received: ReceivedBatches,
    /// `GetRecords` calls that returned at least one stream record (a stream consumer's
    /// invocations).
    pub stream_batches: u64,
    /// How each service's requests looked (content type, and how the operation was named),
    /// the first time one was seen.
    pub protocols: BTreeMap<String, String>,
}

impl MeterReport {
    /// The counts of every operation of `service`, summed.
    pub fn service_total(&self, service: &Service) -> OperationCount {
        let mut total = OperationCount::default();
        for (op, count) in &self.operations {
            if &op.service == service {
                total.add(count);
            }
        }
        total
    }
}

/// The counting endpoint. Stops when dropped or [`AwsMeter::stop`]ped.
pub struct AwsMeter {
    url: String,
    meter: Arc<Meter>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl AwsMeter {
    /// Starts the endpoint on `127.0.0.1:0` in front of `upstream` (the emulator's URL).
    pub async fn start(upstream: &str) -> AwsMeter {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("the meter's HTTP client");
        let meter = Arc::new(Meter {
            upstream: upstream.trim_end_matches('/').to_string(),
            http,
            tables: Mutex::default(),
            tally: Mutex::default(),
        });
        let app_meter = meter.clone();
        let app = Router::new().fallback(move |req: Request| {
            let meter = app_meter.clone();
            async move { meter.handle(req).await }
        });
        let (port, tx, task) = skyhook_tests::serve_on_loopback(app, "meter").await;
        AwsMeter {
            url: format!("http://127.0.0.1:{port}"),
            meter,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// The endpoint to give the SDK in place of the emulator's.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Forgets everything counted so far (the set-up calls).
    pub fn reset(&self) {
        *self.meter.tally.lock().unwrap() = Tally::default();
    }

    pub fn report(&self) -> MeterReport {
        self.meter.tally.lock().unwrap().report.clone()
    }

    /// Stops accepting requests and waits (a bounded time) for the server to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            // Idle keep-alive connections of SDK clients still alive end with the server;
            // a wedged one must not hang the bench.
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("the AWS meter did not stop within 5 s");
            }
        }
    }
}

impl Drop for AwsMeter {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

struct Meter {
    upstream: String,
    http: reqwest::Client,
    tables: Mutex<HashMap<String, Arc<TableShape>>>,
    tally: Mutex<Tally>,
}

#[derive(Default)]
struct Tally {
    report: MeterReport,
    /// Receipt handle → the batch it came in.
    receipts: HashMap<String, u64>,
    /// Batches not yet settled → when they were handed out.
    open_batches: HashMap<u64, Instant>,
    next_batch: u64,
}

/// Writes of one request, with the items as they were before it.
struct PendingWrites {
    targets: Vec<WriteTarget>,
    transactional: bool,
    /// A single `PutItem`/`DeleteItem` sent with `ALL_OLD` return values: the old item comes
    /// in the answer.
    old_in_answer: Option<AskedOld>,
}

/// Which of the old-item answers the caller asked for itself (and so keeps).
#[derive(Clone, Copy)]
struct AskedOld {
    on_success: bool,
    on_condition_failure: bool,
}

impl AskedOld {
    /// Sets both return-value options to `ALL_OLD` in `request`, noting what it had.
    fn request(request: &mut Value) -> AskedOld {
        let asked = AskedOld {
            on_success: request["ReturnValues"].as_str() == Some("ALL_OLD"),
            on_condition_failure: request["ReturnValuesOnConditionCheckFailure"].as_str()
                == Some("ALL_OLD"),
        };
        if let Some(obj) = request.as_object_mut() {
            obj.insert("ReturnValues".into(), json!("ALL_OLD"));
            obj.insert(
                "ReturnValuesOnConditionCheckFailure".into(),
                json!("ALL_OLD"),
            );
        }
        asked
    }

    /// The old item from `response`, and the response as the caller asked for it.
    fn answer(self, ok: bool, response: &mut Value) -> (Option<Item>, bool) {
        let (field, keep) = if ok {
            ("Attributes", self.on_success)
        } else {
            ("Item", self.on_condition_failure)
        };
        let old = response[field].as_object().cloned();
        let changed = !keep && old.is_some();
        if changed && let Some(obj) = response.as_object_mut() {
            obj.remove(field);
        }
        (old, changed)
    }
}

struct WriteTarget {
    table: String,
    shape: Arc<TableShape>,
    key: Item,
    action: WriteAction,
    old: Option<Item>,
}

enum WriteAction {
    Put(Item),
    Update,
    Delete,
    Check,
}

impl PendingWrites {
    /// With the old item asked of the write itself: takes it from the answer, and gives the
    /// answer back as the caller asked for it.
    fn take_old(&mut self, answer: Answer) -> Answer {
        let Some(asked) = self.old_in_answer else {
            return answer;
        };
        let Ok(mut response) = serde_json::from_slice::<Value>(&answer.body) else {
            return answer;
        };
        let (old, changed) = asked.answer(answer.status.is_success(), &mut response);
        if let Some(target) = self.targets.first_mut() {
            target.old = old;
        }
        if !changed {
            return answer;
        }
        let mut headers = answer.headers;
        // The checksum was of the body as the emulator sent it.
        headers.remove("x-amz-crc32");
        Answer {
            status: answer.status,
            headers,
            body: Bytes::from(response.to_string()),
        }
    }
}

/// What the upstream answered.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Meter {
    async fn handle(self: Arc<Self>, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let body = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(b) => b,
            Err(e) => {
                return (StatusCode::BAD_REQUEST, format!("meter: reading body: {e}"))
                    .into_response();
            }
        };
        let call = Call::identify(&parts.headers, parts.uri.query(), &body);
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        self.note_protocol(&call, &parts.headers);
        let mut body = body;
        let mut pending = match (&call.service, call.operation.as_str()) {
            (Service::DynamoDb, _) => {
                let mut pending = self.writes_before(&call, &parts.headers, &request).await;
                if let Some(p) = pending.as_mut()
                    && matches!(call.operation.as_str(), "PutItem" | "DeleteItem")
                {
                    let mut asking = request.clone();
                    p.old_in_answer = Some(AskedOld::request(&mut asking));
                    body = Bytes::from(asking.to_string());
                }
                pending
            }
            (Service::Sqs, "DeleteMessageBatch") => {
                self.settle(&request);
                None
            }
            _ => None,
        };
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let mut upstream = self
            .http
            .request(parts.method.clone(), format!("{}{path}", self.upstream))
            .body(body.clone());
        for (name, value) in &parts.headers {
            if !is_hop_header(name) {
                upstream = upstream.header(name.clone(), value.clone());
            }
        }
        let answer = match upstream.send().await {
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                match resp.bytes().await {
                    Ok(body) => Answer {
                        status,
                        headers,
                        body,
                    },
                    Err(e) => {
                        return (
                            StatusCode::BAD_GATEWAY,
                            format!("meter: upstream body: {e}"),
                        )
                            .into_response();
                    }
                }
            }
            Err(e) => {
                return (StatusCode::BAD_GATEWAY, format!("meter: upstream: {e}")).into_response();
            }
        };
        let answer = match pending.as_mut() {
            Some(p) => p.take_old(answer),
            None => answer,
        };
        self.account(&call, &parts.headers, &request, &answer, pending)
            .await;
        let mut response = Response::builder().status(answer.status);
        for (name, value) in &answer.headers {
            if !is_hop_header(name) {
                response = response.header(name, value);
            }
        }
        response.body(Body::from(answer.body)).unwrap_or_else(|e| {
            (StatusCode::BAD_GATEWAY, format!("meter: response: {e}")).into_response()
        })
    }

    fn note_protocol(&self, call: &Call, headers: &HeaderMap) {
        let mut tally = self.tally.lock().unwrap();
        tally
            .report
            .protocols
            .entry(call.service.label().to_string())
            .or_insert_with(|| {
                format!(
                    "{}, operation from {}",
                    header(headers, "content-type").unwrap_or("no content type"),
                    call.how
                )
            });
    }

    /// Closes the batches whose messages a `DeleteMessageBatch` settles.
    fn settle(&self, request: &Value) {
        let now = Instant::now();
        let mut tally = self.tally.lock().unwrap();
        for entry in request["Entries"].as_array().into_iter().flatten() {
            let Some(handle) = entry["ReceiptHandle"].as_str() else {
                continue;
            };
            let Some(batch) = tally.receipts.remove(handle) else {
                continue;
            };
            if let Some(at) = tally.open_batches.remove(&batch) {
                tally.report.received.held.push(now - at);
            }
        }
    }

    async fn account(
        &self,
        call: &Call,
        headers: &HeaderMap,
        request: &Value,
        answer: &Answer,
        pending: Option<PendingWrites>,
    ) {
        let response: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        let ok = answer.status.is_success();
        let mut count = OperationCount {
            calls: 1,
            errors: u64::from(!ok),
            billed_requests: 1,
            ..OperationCount::default()
        };
        if !ok {
            // `com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException` → the name.
            let kind = response["__type"]
                .as_str()
                .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
                .unwrap_or_else(|| format!("HTTP {}", answer.status.as_u16()));
            count.errors_by_kind.insert(kind, 1);
        }
        let mut name = call.operation.clone();
        match call.service {
            Service::DynamoDb => {
                if let Some(pending) = pending {
                    self.write_cost(headers, pending, ok, &response, &mut count)
                        .await;
                } else if ok {
                    count.read_units = read_cost(&call.operation, request, &response);
                }
            }
            Service::Sqs => match call.operation.as_str() {
                "SendMessage" | "SendMessageBatch" => {
                    count.billed_requests = billed_chunks(&sqs_payload_bytes(request));
                }
                "ReceiveMessage" if ok => {
                    let messages = response["Messages"].as_array().cloned().unwrap_or_default();
                    if messages.is_empty() {
                        // Empty polls depend on how long the pollers idled, not on the
                        // deliveries, so the table shows them apart.
                        name = "ReceiveMessage (empty)".to_string();
                    } else {
                        let mut tally = self.tally.lock().unwrap();
                        let batch = tally.next_batch;
                        tally.next_batch += 1;
                        tally.open_batches.insert(batch, Instant::now());
                        for m in &messages {
                            if let Some(h) = m["ReceiptHandle"].as_str() {
                                tally.receipts.insert(h.to_string(), batch);
                            }
                        }
                        tally.report.received.batches += 1;
                        tally.report.received.messages += messages.len() as u64;
                    }
                }
                _ => {}
            },
            Service::EventBridge if call.operation == "PutEvents" => {
                // Custom events are billed per entry, each per started 64 KB.
                count.billed_requests = request["Entries"]
                    .as_array()
                    .map(|entries| {
                        entries
                            .iter()
                            .map(|e| billed_chunks(&[e.to_string().len() as u64]))
                            .sum()
                    })
                    .unwrap_or(1);
            }
            Service::DynamoDbStreams
                if call.operation == "GetRecords"
                    && ok
                    && response["Records"]
                        .as_array()
                        .is_some_and(|r| !r.is_empty()) =>
            {
                self.tally.lock().unwrap().report.stream_batches += 1;
            }
            _ => {}
        }
        let op = Operation {
            service: call.service.clone(),
            name,
        };
        let mut tally = self.tally.lock().unwrap();
        tally.report.operations.entry(op).or_default().add(&count);
    }

    /// A DynamoDB call made by the meter itself (not counted), signed like `headers`.
    async fn dynamodb(&self, headers: &HeaderMap, operation: &str, body: Value) -> Option<Value> {
        let mut req = self
            .http
            .post(format!("{}/", self.upstream))
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("DynamoDB_20120810.{operation}"))
            .body(body.to_string());
        // The emulator takes region and account from the credential scope; it does not
        // check the signature, which no longer matches this body.
        for name in ["authorization", "x-amz-date", "x-amz-security-token"] {
            if let Some(v) = headers.get(name) {
                req = req.header(name, v.clone());
            }
        }
        let resp = req.send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        serde_json::from_slice(&resp.bytes().await.ok()?).ok()
    }

    async fn table_shape(&self, headers: &HeaderMap, table: &str) -> Arc<TableShape> {
        if let Some(shape) = self.tables.lock().unwrap().get(table) {
            return shape.clone();
        }
        let shape = Arc::new(
            self.dynamodb(headers, "DescribeTable", json!({ "TableName": table }))
                .await
                .map(|d| TableShape::from_description(&d["Table"]))
                .unwrap_or_default(),
        );
        // An unknown table is not cached: it may be created next.
        if !shape.keys.is_empty() {
            self.tables
                .lock()
                .unwrap()
                .insert(table.to_string(), shape.clone());
        }
        shape
    }

    async fn get_item(&self, headers: &HeaderMap, table: &str, key: &Item) -> Option<Item> {
        let out = self
            .dynamodb(
                headers,
                "GetItem",
                json!({ "TableName": table, "Key": key, "ConsistentRead": true }),
            )
            .await?;
        out["Item"].as_object().cloned()
    }

    /// Reads the items a write request will change, before it reaches the emulator.
    async fn writes_before(
        &self,
        call: &Call,
        headers: &HeaderMap,
        request: &Value,
    ) -> Option<PendingWrites> {
        let mut raw: Vec<(String, WriteAction, Option<Item>)> = Vec::new();
        let transactional = call.operation == "TransactWriteItems";
        match call.operation.as_str() {
            "PutItem" => raw.push((
                request["TableName"].as_str()?.to_string(),
                WriteAction::Put(request["Item"].as_object()?.clone()),
                None,
            )),
            "UpdateItem" | "DeleteItem" => raw.push((
                request["TableName"].as_str()?.to_string(),
                if call.operation == "UpdateItem" {
                    WriteAction::Update
                } else {
                    WriteAction::Delete
                },
                Some(request["Key"].as_object()?.clone()),
            )),
            "TransactWriteItems" => {
                for entry in request["TransactItems"].as_array()? {
                    let (kind, inner) = entry.as_object()?.iter().next()?;
                    let table = inner["TableName"].as_str()?.to_string();
                    let key = inner["Key"].as_object().cloned();
                    let action = match kind.as_str() {
                        "Put" => WriteAction::Put(inner["Item"].as_object()?.clone()),
                        "Update" => WriteAction::Update,
                        "Delete" => WriteAction::Delete,
                        _ => WriteAction::Check,
                    };
                    raw.push((table, action, key));
                }
            }
            "BatchWriteItem" => {
                for (table, requests) in request["RequestItems"].as_object()? {
                    for r in requests.as_array()? {
                        if let Some(item) = r["PutRequest"]["Item"].as_object() {
                            raw.push((table.clone(), WriteAction::Put(item.clone()), None));
                        } else if let Some(key) = r["DeleteRequest"]["Key"].as_object() {
                            raw.push((table.clone(), WriteAction::Delete, Some(key.clone())));
                        }
                    }
                }
            }
            _ => return None,
        }
        let mut targets = Vec::with_capacity(raw.len());
        for (table, action, key) in raw {
            let shape = self.table_shape(headers, &table).await;
            let key = match (key, &action) {
                (Some(key), _) => key,
                (None, WriteAction::Put(item)) => shape.key_of(item),
                (None, _) => Item::new(),
            };
            let in_answer = matches!(call.operation.as_str(), "PutItem" | "DeleteItem");
            let old = if key.is_empty() || in_answer {
                None
            } else {
                self.get_item(headers, &table, &key).await
            };
            targets.push(WriteTarget {
                table,
                shape,
                key,
                action,
                old,
            });
        }
        Some(PendingWrites {
            targets,
            transactional,
            old_in_answer: None,
        })
    }

    /// Units of a write request, once the emulator has answered it.
    async fn write_cost(
        &self,
        headers: &HeaderMap,
        pending: PendingWrites,
        ok: bool,
        response: &Value,
        count: &mut OperationCount,
    ) {
        let factor = if pending.transactional { 2.0 } else { 1.0 };
        if !ok {
            let error = response["__type"].as_str().unwrap_or("");
            let condition_failed = error.ends_with("ConditionalCheckFailedException")
                || (error.ends_with("TransactionCanceledException")
                    && response.to_string().contains("ConditionalCheckFailed"));
            if condition_failed {
                // A refused conditional write still consumes the size of the item that is
                // there (at least one unit); nothing reaches the indexes.
                let units: f64 = pending
                    .targets
                    .iter()
                    .map(|t| factor * write_units(size_of(t.old.as_ref())))
                    .sum();
                count.condition_failures += 1;
                count.condition_failure_units += units;
                count.write_units += units;
            }
            return;
        }
        let unprocessed = &response["UnprocessedItems"];
        for t in &pending.targets {
            if is_unprocessed(unprocessed, &t.table, &t.key) {
                continue;
            }
            let new = match &t.action {
                WriteAction::Put(item) => Some(item.clone()),
                WriteAction::Update => self.get_item(headers, &t.table, &t.key).await,
                WriteAction::Delete => None,
                WriteAction::Check => t.old.clone(),
            };
            let cost = match t.action {
                WriteAction::Check => WriteCost {
                    table: write_units(size_of(t.old.as_ref())),
                    index: 0.0,
                },
                _ => write_cost(&t.shape, t.old.as_ref(), new.as_ref()),
            };
            // Transactions double the table writes; the index copies are propagated after
            // the commit as ordinary writes.
            count.write_units += factor * cost.table + cost.index;
            count.index_write_units += cost.index;
        }
    }
}

fn is_unprocessed(unprocessed: &Value, table: &str, key: &Item) -> bool {
    unprocessed[table].as_array().is_some_and(|requests| {
        requests.iter().any(|r| {
            let item = r["PutRequest"]["Item"]
                .as_object()
                .or_else(|| r["DeleteRequest"]["Key"].as_object());
            item.is_some_and(|i| key.iter().all(|(k, v)| i.get(k) == Some(v)))
        })
    })
}

/// Read units of a read request, from the items it returned.
fn read_cost(operation: &str, request: &Value, response: &Value) -> f64 {
    let consistent = request["ConsistentRead"].as_bool().unwrap_or(false);
    match operation {
        "GetItem" => read_units(size_of(response["Item"].as_object()), consistent),
        "Query" | "Scan" => {
            let returned: u64 = response["Items"]
                .as_array()
                .map(|items| items.iter().map(|i| size_of(i.as_object())).sum())
                .unwrap_or(0);
            let count = response["Count"].as_u64().unwrap_or(0);
            let scanned = response["ScannedCount"].as_u64().unwrap_or(count);
            // A filter drops items after they were read and billed; the items dropped are
            // assumed to be the size of those kept.
            let read = if count > 0 && scanned > count {
                returned * scanned / count
            } else {
                returned
            };
            read_units(read, consistent)
        }
        "BatchGetItem" => response["Responses"]
            .as_object()
            .map(|tables| {
                tables
                    .iter()
                    .map(|(table, items)| {
                        let consistent = request["RequestItems"][table]["ConsistentRead"]
                            .as_bool()
                            .unwrap_or(false);
                        items
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|i| read_units(size_of(i.as_object()), consistent))
                            .sum::<f64>()
                    })
                    .sum()
            })
            .unwrap_or(0.0),
        "TransactGetItems" => response["Responses"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|r| 2.0 * read_units(size_of(r["Item"].as_object()), true))
                    .sum()
            })
            .unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Payload bytes of an SQS send: message bodies plus message attributes (name, type, value).
fn sqs_payload_bytes(request: &Value) -> Vec<u64> {
    let one = |m: &Value| -> u64 {
        let body = m["MessageBody"].as_str().map_or(0, str::len);
        let attributes: usize = m["MessageAttributes"]
            .as_object()
            .map(|attrs| {
                attrs
                    .iter()
                    .map(|(name, a)| {
                        name.len()
                            + a["DataType"].as_str().map_or(0, str::len)
                            + a["StringValue"].as_str().map_or(0, str::len)
                            + a["BinaryValue"].as_str().map_or(0, |b| b.len() * 3 / 4)
                    })
                    .sum()
            })
            .unwrap_or(0);
        (body + attributes) as u64
    };
    match request["Entries"].as_array() {
        Some(entries) => vec![entries.iter().map(one).sum()],
        None => vec![one(request)],
    }
}

/// SQS bills a send, and EventBridge an event, per started 64 KiB of payload, at least one.
pub fn billed_chunks(payloads: &[u64]) -> u64 {
    payloads
        .iter()
        .map(|bytes| bytes.div_ceil(CHUNK_BYTES).max(1))
        .sum()
}

/// Key attributes and indexes of a table, from `DescribeTable`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableShape {
    pub keys: Vec<String>,
    pub indexes: Vec<IndexShape>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IndexShape {
    pub name: String,
    pub keys: Vec<String>,
    pub projection: Projection,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Projection {
    All,
    KeysOnly,
    /// The keys and these attributes.
    Include(Vec<String>),
}

fn key_names(schema: &Value) -> Vec<String> {
    schema
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["AttributeName"].as_str().map(str::to_string))
        .collect()
}

impl TableShape {
    fn from_description(table: &Value) -> TableShape {
        let indexes = ["GlobalSecondaryIndexes", "LocalSecondaryIndexes"]
            .iter()
            .flat_map(|kind| table[*kind].as_array().cloned().unwrap_or_default())
            .map(|index| IndexShape {
                name: index["IndexName"].as_str().unwrap_or("").to_string(),
                keys: key_names(&index["KeySchema"]),
                projection: match index["Projection"]["ProjectionType"].as_str() {
                    Some("KEYS_ONLY") => Projection::KeysOnly,
                    Some("INCLUDE") => Projection::Include(
                        index["Projection"]["NonKeyAttributes"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|a| a.as_str().map(str::to_string))
                            .collect(),
                    ),
                    _ => Projection::All,
                },
            })
            .collect();
        TableShape {
            keys: key_names(&table["KeySchema"]),
            indexes,
        }
    }

    /// The table key of an item.
    fn key_of(&self, item: &Item) -> Item {
        self.keys
            .iter()
            .filter_map(|k| item.get(k).map(|v| (k.clone(), v.clone())))
            .collect()
    }

    /// The copy of `item` an index holds, `None` when the item lacks the index's keys.
    fn projected(&self, index: &IndexShape, item: &Item) -> Option<Item> {
        if !index.keys.iter().all(|k| item.contains_key(k)) {
            return None;
        }
        let keep = |name: &str| {
            self.keys.iter().any(|k| k == name)
                || index.keys.iter().any(|k| k == name)
                || match &index.projection {
                    Projection::All => true,
                    Projection::KeysOnly => false,
                    Projection::Include(extra) => extra.iter().any(|k| k == name),
                }
        };
        Some(
            item.iter()
                .filter(|(name, _)| keep(name))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }
}

/// Write units of one write, split into the table's and the indexes'.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WriteCost {
    pub table: f64,
    pub index: f64,
}

/// One write (put, update or delete: `new` is `None`) of an item that was `old` before it.
/// The table pays for the larger of the two images; each index pays by the AWS rules for
/// global secondary indexes:
/// - the item enters the index (it gains the index keys): one write of the new copy;
/// - it leaves the index (it loses them, or is deleted): one delete of the old copy;
/// - an index key changes: both;
/// - it stays under the same keys: one write, unless no projected attribute changed;
/// - it is in the index neither before nor after (a sparse index): nothing.
pub fn write_cost(shape: &TableShape, old: Option<&Item>, new: Option<&Item>) -> WriteCost {
    let table = write_units(size_of(old).max(size_of(new)));
    let mut index = 0.0;
    for ix in &shape.indexes {
        let before = old.and_then(|i| shape.projected(ix, i));
        let after = new.and_then(|i| shape.projected(ix, i));
        index += match (&before, &after) {
            (None, None) => 0.0,
            (Some(b), None) => write_units(item_size(b)),
            (None, Some(a)) => write_units(item_size(a)),
            (Some(b), Some(a)) => {
                let same_keys = ix.keys.iter().all(|k| b.get(k) == a.get(k));
                if !same_keys {
                    write_units(item_size(b)) + write_units(item_size(a))
                } else if b == a {
                    0.0
                } else {
                    write_units(item_size(b).max(item_size(a)))
                }
            }
        };
    }
    WriteCost { table, index }
}

/// Write request units for an item of `bytes`: one per started KB, at least one.
pub fn write_units(bytes: u64) -> f64 {
    bytes.div_ceil(WRITE_UNIT_BYTES).max(1) as f64
}

/// Read request units for `bytes` read: one per started 4 KB when strongly consistent, half
/// that when eventually consistent; at least one (or a half).
pub fn read_units(bytes: u64, consistent: bool) -> f64 {
    let units = bytes.div_ceil(READ_UNIT_BYTES).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

fn size_of(item: Option<&Item>) -> u64 {
    item.map_or(0, item_size)
}

/// The size DynamoDB bills an item at: every attribute's name plus its value.
pub fn item_size(item: &Item) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + value_size(value))
        .sum()
}

/// The size of one attribute value in the wire format (`{"S": "abc"}` and so on).
pub fn value_size(value: &Value) -> u64 {
    let Some((kind, v)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    match kind.as_str() {
        "S" => v.as_str().map_or(0, |s| s.len() as u64),
        "N" => v.as_str().map_or(0, number_size),
        "B" => v.as_str().map_or(0, binary_size),
        "BOOL" | "NULL" => 1,
        "SS" => strings(v).iter().map(|s| s.len() as u64).sum(),
        "NS" => strings(v).iter().map(|s| number_size(s)).sum(),
        "BS" => strings(v).iter().map(|s| binary_size(s)).sum(),
        // A list or map takes 3 bytes, and each element 1 byte more than its own size.
        "L" => {
            3 + v
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| 1 + value_size(e))
                .sum::<u64>()
        }
        "M" => {
            3 + v
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, e)| 1 + name.len() as u64 + value_size(e))
                .sum::<u64>()
        }
        _ => 0,
    }
}

/// About one byte per two significant digits, plus one; leading and trailing zeros do not
/// count.
fn number_size(n: &str) -> u64 {
    let mantissa = n
        .trim_start_matches(['-', '+'])
        .split(['e', 'E'])
        .next()
        .unwrap_or("");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len() as u64;
    significant.div_ceil(2) + 1
}

/// Binary values travel as base64; their raw length is what counts.
fn binary_size(b64: &str) -> u64 {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_or(b64.len() as u64 * 3 / 4, |raw| raw.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(v: Value) -> Item {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn strings_cost_their_name_and_their_utf8_bytes() {
        // The AWS guide's example: attribute "id" holding "abc" is 2 + 3 bytes.
        assert_eq!(item_size(&item(json!({"id": {"S": "abc"}}))), 5);
        // UTF-8 bytes, not characters: "é" is two bytes.
        assert_eq!(item_size(&item(json!({"n": {"S": "café"}}))), 1 + 5);
    }

    #[test]
    fn numbers_cost_a_byte_per_two_significant_digits_plus_one() {
        assert_eq!(number_size("1"), 2);
        assert_eq!(number_size("12"), 2);
        assert_eq!(number_size("123"), 3);
        // Leading and trailing zeros are trimmed, sign and exponent do not count.
        assert_eq!(number_size("1000000"), 2);
        assert_eq!(number_size("-0.00125"), 3);
        assert_eq!(number_size("1.5E+10"), 2);
        assert_eq!(number_size("1764000000"), 3);
        assert_eq!(item_size(&item(json!({"age": {"N": "42"}}))), 3 + 2);
    }

    #[test]
    fn binaries_booleans_nulls_and_sets() {
        // "aGVsbG8=" is "hello": its five raw bytes count, not the eight of base64.
        assert_eq!(value_size(&json!({"B": "aGVsbG8="})), 5);
        assert_eq!(value_size(&json!({"BOOL": true})), 1);
        assert_eq!(value_size(&json!({"NULL": true})), 1);
        assert_eq!(value_size(&json!({"SS": ["ab", "cde"]})), 5);
        assert_eq!(value_size(&json!({"NS": ["1", "123"]})), 2 + 3);
        assert_eq!(value_size(&json!({"BS": ["aGVsbG8=", "aQ=="]})), 5 + 1);
    }

    #[test]
    fn lists_and_maps_take_three_bytes_and_one_per_element() {
        assert_eq!(value_size(&json!({"L": []})), 3);
        assert_eq!(value_size(&json!({"M": {}})), 3);
        // ["ab", "c"]: 3 + (1 + 2) + (1 + 1).
        assert_eq!(value_size(&json!({"L": [{"S": "ab"}, {"S": "c"}]})), 8);
        // {"a": 1, "bb": {"c": true}}: 3 + (1 + 1 + 2) + (1 + 2 + (3 + (1 + 1 + 1))).
        let nested = json!({"M": {"a": {"N": "1"}, "bb": {"M": {"c": {"BOOL": true}}}}});
        assert_eq!(value_size(&nested), 3 + 4 + 9);
        assert_eq!(item_size(&item(json!({"m": nested}))), 1 + 16);
    }

    #[test]
    fn write_units_round_up_per_kb_with_a_minimum_of_one() {
        assert_eq!(write_units(0), 1.0);
        assert_eq!(write_units(1), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(write_units(3 * 1024 + 500), 4.0);
    }

    #[test]
    fn read_units_round_up_per_4_kb_and_halve_when_eventually_consistent() {
        assert_eq!(read_units(0, true), 1.0);
        assert_eq!(read_units(0, false), 0.5);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(9000, false), 1.5);
    }

    #[test]
    fn sqs_sends_are_billed_per_started_64_kib() {
        assert_eq!(billed_chunks(&[0]), 1);
        assert_eq!(billed_chunks(&[65_536]), 1);
        assert_eq!(billed_chunks(&[65_537]), 2);
        let batch = json!({"Entries": [
            {"Id": "0", "MessageBody": "x".repeat(40_000)},
            {"Id": "1", "MessageBody": "y".repeat(40_000),
             "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}}
        ]});
        let bytes = sqs_payload_bytes(&batch);
        assert_eq!(bytes, vec![80_000 + 1 + 6 + 1]);
        assert_eq!(billed_chunks(&bytes), 2);
    }

    /// A table keyed on pk/sk with one ALL index, one KEYS_ONLY index and one INCLUDE index.
    fn shape() -> TableShape {
        TableShape::from_description(&json!({
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                          {"AttributeName": "sk", "KeyType": "RANGE"}],
            "GlobalSecondaryIndexes": [
                {"IndexName": "all", "KeySchema": [{"AttributeName": "apk", "KeyType": "HASH"}],
                 "Projection": {"ProjectionType": "ALL"}},
                {"IndexName": "keys", "KeySchema": [{"AttributeName": "kpk", "KeyType": "HASH"}],
                 "Projection": {"ProjectionType": "KEYS_ONLY"}},
                {"IndexName": "some", "KeySchema": [{"AttributeName": "ipk", "KeyType": "HASH"}],
                 "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["small"]}}
            ]
        }))
    }

    #[test]
    fn a_sparse_index_costs_nothing_when_the_item_has_none_of_its_keys() {
        let shape = shape();
        let new = item(json!({"pk": {"S": "p"}, "sk": {"S": "s"}, "big": {"S": "x".repeat(1500)}}));
        let cost = write_cost(&shape, None, Some(&new));
        assert_eq!(
            cost,
            WriteCost {
                table: 2.0,
                index: 0.0
            }
        );
        // An update that leaves the item outside every index costs the indexes nothing.
        let mut later = new.clone();
        later.insert("big".into(), json!({"S": "y".repeat(10)}));
        assert_eq!(
            write_cost(&shape, Some(&new), Some(&later)),
            WriteCost {
                table: 2.0,
                index: 0.0
            }
        );
    }

    #[test]
    fn index_writes_follow_the_projection() {
        let shape = shape();
        let new = item(json!({
            "pk": {"S": "p"}, "sk": {"S": "s"},
            "apk": {"S": "a"}, "kpk": {"S": "k"}, "ipk": {"S": "i"},
            "small": {"S": "tiny"}, "big": {"S": "x".repeat(2000)}
        }));
        let cost = write_cost(&shape, None, Some(&new));
        // Table: ~2 KB → 2. ALL copies the 2 KB item → 2; KEYS_ONLY and INCLUDE copy only
        // keys (and `small`) → 1 each.
        assert_eq!(
            cost,
            WriteCost {
                table: 2.0,
                index: 4.0
            }
        );
        // Deleting the item removes every copy: the same units again.
        assert_eq!(
            write_cost(&shape, Some(&new), None),
            WriteCost {
                table: 2.0,
                index: 4.0
            }
        );
    }

    #[test]
    fn index_key_changes_cost_a_delete_and_a_put_and_untouched_copies_nothing() {
        let shape = TableShape {
            indexes: vec![shape().indexes[1].clone()],
            ..shape()
        };
        let old = item(
            json!({"pk": {"S": "p"}, "sk": {"S": "s"}, "kpk": {"S": "one"},
                              "other": {"S": "a"}}),
        );
        let mut moved = old.clone();
        moved.insert("kpk".into(), json!({"S": "two"}));
        assert_eq!(write_cost(&shape, Some(&old), Some(&moved)).index, 2.0);
        // Only an unprojected attribute changed: the KEYS_ONLY copy is not rewritten.
        let mut touched = old.clone();
        touched.insert("other".into(), json!({"S": "b"}));
        assert_eq!(write_cost(&shape, Some(&old), Some(&touched)).index, 0.0);
        // The index key is removed: one delete of the old copy.
        let mut gone = old.clone();
        gone.remove("kpk");
        assert_eq!(write_cost(&shape, Some(&old), Some(&gone)).index, 1.0);
    }
}
