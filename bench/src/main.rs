//! `make bench`: prints the figures Skyhook's speed goals are judged by, measured on this
//! machine against the emulator the Makefile starts. Every loop is bounded in count.
//!
//! - signing: cost of one Standard Webhooks signature and verification;
//! - fan-out: time to publish to 100 subscribers, and `SendMessageBatch` calls per event;
//! - batch delivery: a batch of 10 to receivers that take 200 ms each, against the 2 s a
//!   sequential delivery would take;
//! - secret cache: Secrets Manager reads for 500 deliveries to 10 subscribers;
//! - end to end: deliveries per second through the SQS poller (moto bounds this figure);
//! - cost: AWS calls and billed units per delivery, counted by a proxy in front of the
//!   emulator, priced at the list prices of `bench/src/prices.rs`.

mod local;
mod noisy;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

use skyhook_bench::meter::{AwsMeter, MeterReport, Operation, OperationCount, Service};
use skyhook_bench::prices;
use skyhook_domain::directory::Directory;
use skyhook_domain::ids::{SubscriberId, TenantId};
use skyhook_domain::ports::{SecretStore, StoreError, SubscriberSecrets};
use skyhook_domain::secret::SigningSecret;
use skyhook_domain::signing::{sign, verify};
use skyhook_tests::{Receiver, Reply, Stack, StackOptions, sdk_config};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn bench_signing() {
    let secret = SigningSecret::generate();
    let body = vec![b'x'; 1024];
    const N: u32 = 100_000;
    let started = Instant::now();
    let mut last = String::new();
    for i in 0..N {
        last = sign(&secret, "evt_bench", 1_700_000_000 + i64::from(i), &body);
    }
    let per_sign = started.elapsed() / N;
    let started = Instant::now();
    for _ in 0..N {
        let ok = verify(
            &secret,
            "evt_bench",
            &(1_700_000_000 + i64::from(N) - 1).to_string(),
            &last,
            &body,
            1_700_000_000 + i64::from(N),
        );
        assert!(ok.is_ok());
    }
    let per_verify = started.elapsed() / N;
    println!("signing      sign 1 KiB: {per_sign:?}/op   verify: {per_verify:?}/op   ({N} each)");
}

/// A typical transform: a 10-line program over a 1 KiB event. The CPU cost of the run
/// itself (compiled once, as a worker keeps it), and the round trip through a sandbox
/// worker process, which is what a delivery pays.
async fn bench_transform() {
    const PROGRAM: &str = r#"{
  event: .type,
  at: .timestamp,
  order_id: .data.order.id,
  customer: (.data.customer.first + " " + .data.customer.last),
  email: .data.customer.email | ascii_downcase,
  total_cents: ([.data.order.lines[] | .qty * .unit_cents] | add),
  skus: [.data.order.lines[].sku],
  express: (.data.order.shipping == "express"),
  note: (.data.order.note // "")
}"#;
    let lines: Vec<serde_json::Value> = (0..8)
        .map(|i| serde_json::json!({"sku": format!("SKU-{i:04}"), "qty": i + 1, "unit_cents": 1299 + i}))
        .collect();
    let mut event = serde_json::json!({
        "type": "order.created",
        "timestamp": "2026-11-30T00:00:00.000Z",
        "data": {
            "order": {"id": "ord_0001", "lines": lines, "shipping": "express", "note": null},
            "customer": {"first": "Ada", "last": "Lovelace", "email": "ADA@EXAMPLE.COM"},
        }
    });
    // Pad to 1 KiB with a field the program does not read.
    let size = event.to_string().len();
    event["data"]["padding"] = serde_json::json!("x".repeat(1024usize.saturating_sub(size + 14)));
    let input = event.to_string();
    let program =
        skyhook_domain::jq::Program::compile(PROGRAM).expect("the bench program compiles");
    const N: u32 = 20_000;
    let started = Instant::now();
    for _ in 0..N {
        program
            .run(input.as_bytes(), 256 * 1024)
            .expect("the bench program runs");
    }
    let per_run = started.elapsed() / N;
    let worker = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("skyhook-jq-worker")))
        .filter(|p| p.exists());
    let Some(worker) = worker else {
        println!(
            "transform    10-line program, {} B event: {per_run:?}/run in process (build skyhook-jq-worker for the sandbox figure)",
            input.len()
        );
        return;
    };
    let sandbox =
        skyhook_process::Sandbox::with_command(worker, skyhook_process::SandboxLimits::default());
    sandbox
        .run(PROGRAM, &input)
        .await
        .expect("the sandbox runs");
    const M: u32 = 2_000;
    let started = Instant::now();
    for _ in 0..M {
        sandbox
            .run(PROGRAM, &input)
            .await
            .expect("the sandbox runs");
    }
    let per_sandboxed = started.elapsed() / M;
    println!(
        "transform    10-line program, {} B event: {per_run:?}/run in process, {per_sandboxed:?}/run through a sandbox worker ({N} and {M} runs)",
        input.len()
    );
}

async fn bench_fan_out() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    for i in 0..100 {
        stack
            .subscribe(&receiver.url(&format!("/s/{i}")), &["order.*"])
            .await;
    }
    let mut times = Vec::new();
    const EVENTS: usize = 20;
    for i in 0..EVENTS {
        let started = Instant::now();
        let out = stack
            .publish(json!({"type": "order.created", "data": {"n": i, "pad": "x".repeat(512)}}))
            .await;
        times.push(started.elapsed());
        assert_eq!(out["subscribers"], 100);
    }
    times.sort();
    let calls = stack.queue.batch_sizes.lock().unwrap().len();
    println!(
        "fan-out      100 subscribers: p50 {}  p95 {}  max {}   SendMessageBatch calls/event: {}",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.95)),
        ms(*times.last().unwrap()),
        calls / EVENTS
    );
}

async fn bench_batch_delivery() {
    let stack = Stack::new().await;
    let slow = Receiver::start(vec![], Reply::Slow(Duration::from_millis(200), 200)).await;
    for i in 0..10 {
        stack
            .subscribe(&slow.url(&format!("/slow/{i}")), &["*"])
            .await;
    }
    let mut runs = Vec::new();
    for _ in 0..5 {
        stack.publish(json!({"type": "a.b", "data": {}})).await;
        let event = receive(&stack, 10).await;
        let started = Instant::now();
        let out = skyhook_delivery::handle(
            &stack.deliverer,
            LambdaEvent::new(event, Context::default()),
        )
        .await
        .unwrap();
        runs.push(started.elapsed());
        assert!(out.batch_item_failures.is_empty());
    }
    runs.sort();
    println!(
        "batch        10 records × 200 ms receivers: p50 {}  max {}   (sequential would be ≥ 2000 ms)",
        ms(percentile(&runs, 0.5)),
        ms(*runs.last().unwrap())
    );
}

/// Counts reads that reach the real secret store.
struct Counting {
    inner: Arc<dyn SecretStore>,
    reads: AtomicUsize,
}

#[async_trait]
impl SecretStore for Counting {
    async fn create(
        &self,
        t: &TenantId,
        id: &SubscriberId,
        s: &SigningSecret,
        h: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        self.inner.create(t, id, s, h).await
    }
    async fn set_headers(
        &self,
        t: &TenantId,
        id: &SubscriberId,
        h: &BTreeMap<String, String>,
    ) -> Result<bool, StoreError> {
        self.inner.set_headers(t, id, h).await
    }
    async fn get(
        &self,
        t: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<SubscriberSecrets>, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.get(t, id).await
    }
    async fn delete(&self, t: &TenantId, id: &SubscriberId) -> Result<(), StoreError> {
        self.inner.delete(t, id).await
    }
    async fn rotate(
        &self,
        t: &TenantId,
        id: &SubscriberId,
        s: &SigningSecret,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
        self.inner.rotate(t, id, s).await
    }
}

async fn bench_secret_cache_and_throughput() {
    let mut stack = Stack::with(StackOptions::default()).await;
    let receiver = Receiver::always(200).await;
    for i in 0..10 {
        stack
            .subscribe(&receiver.url(&format!("/r/{i}")), &["*"])
            .await;
    }
    let counting = Arc::new(Counting {
        inner: Arc::new(skyhook_aws::SecretsManagerSecrets::new(
            stack.secrets_client.clone(),
            &stack.secret_prefix,
        )),
        reads: AtomicUsize::new(0),
    });
    stack.deliverer.directory = Arc::new(Directory::new(
        stack.adapters.subscribers.clone(),
        counting.clone(),
        Duration::from_secs(60),
    ));
    const EVENTS: usize = 50;
    for i in 0..EVENTS {
        stack
            .publish(json!({"type": "a.b", "data": {"i": i}}))
            .await;
    }
    let started = Instant::now();
    let runner = stack.start_delivery();
    receiver
        .wait_for(EVENTS * 10, Duration::from_secs(300))
        .await;
    let took = started.elapsed();
    runner.stop().await;
    println!(
        "secrets      {} deliveries to 10 subscribers: {} Secrets Manager reads",
        EVENTS * 10,
        counting.reads.load(Ordering::Relaxed)
    );
    println!(
        "end to end   {} deliveries through the SQS poller (2 pollers, moto): {:.0}/s",
        EVENTS * 10,
        (EVENTS * 10) as f64 / took.as_secs_f64()
    );
}

async fn receive(stack: &Stack, n: usize) -> aws_lambda_events::sqs::SqsEvent {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut event = aws_lambda_events::sqs::SqsEvent::default();
    while event.records.len() < n {
        assert!(Instant::now() < deadline, "messages did not arrive");
        let out = stack
            .sqs
            .receive_message()
            .queue_url(&stack.resources.queue_url)
            .max_number_of_messages(i32::try_from(n - event.records.len()).unwrap_or(10).min(10))
            .wait_time_seconds(1)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            let mut r = aws_lambda_events::sqs::SqsMessage::default();
            r.message_id = m.message_id().map(str::to_string);
            r.receipt_handle = m.receipt_handle().map(str::to_string);
            r.body = m.body().map(str::to_string);
            event.records.push(r);
        }
    }
    event
}

#[tokio::main]
async fn main() {
    println!(
        "Skyhook benchmarks (release build; AWS calls go to the emulator at AWS_ENDPOINT_URL)"
    );
    // `SKYHOOK_BENCH=cost,local` runs only those sections (all when unset).
    let only = std::env::var("SKYHOOK_BENCH").unwrap_or_default();
    let run = |name: &str| only.is_empty() || only.split(',').any(|s| s.trim() == name);
    if run("signing") {
        bench_signing();
    }
    if run("transform") {
        bench_transform().await;
    }
    if run("fan-out") {
        bench_fan_out().await;
    }
    if run("batch") {
        bench_batch_delivery().await;
    }
    if run("throughput") {
        bench_secret_cache_and_throughput().await;
    }
    if run("cost") {
        bench_cost().await;
    }
    if run("local") {
        local::bench_local_speed().await;
    }
    if run("noisy") {
        noisy::bench_noisy_tenant().await;
    }
}

/// A realistic order event of about 1 KiB as published (the whole request body): ids,
/// customer, addresses, line items and amounts, varied by `i`.
fn order_event(i: usize) -> Value {
    const FIRST: [&str; 8] = [
        "Amelia",
        "Jonas",
        "Priya",
        "Mateo",
        "Sofia",
        "Kenji",
        "Chloé",
        "Oluwaseun",
    ];
    const LAST: [&str; 8] = [
        "Hartmann",
        "Okafor",
        "Lindqvist",
        "García",
        "Nakamura",
        "Dubois",
        "Kowalski",
        "Rossi",
    ];
    const ADDRESSES: [(&str, &str, &str, &str); 4] = [
        ("Friedrichstraße 123", "Berlin", "10117", "DE"),
        ("221B Baker Street", "London", "NW1 6XE", "GB"),
        ("75 Rue de Rivoli", "Paris", "75001", "FR"),
        ("Keizersgracht 452", "Amsterdam", "1016 GD", "NL"),
    ];
    const PRODUCTS: [(&str, &str, u64); 6] = [
        ("TSHIRT-ORG-BLK-M", "Organic cotton T-shirt, black, M", 2495),
        ("MUG-CER-350", "Ceramic mug 350 ml, speckled white", 1450),
        ("SOCK-MER-3PK", "Merino hiking socks, 3-pack", 1995),
        ("BAG-CNV-TOTE", "Heavy canvas tote bag", 2200),
        ("CAP-WOOL-NVY", "Wool baseball cap, navy", 2900),
        ("BTL-STL-750", "Insulated steel bottle 750 ml", 3400),
    ];
    let (first, last) = (FIRST[i % 8], LAST[(i * 3 + 1) % 8]);
    let (street, city, postal, country) = ADDRESSES[i % 4];
    let items: Vec<Value> = (0..3)
        .map(|k| {
            let (sku, name, price) = PRODUCTS[(i + k * 2) % 6];
            let quantity = 1 + (i + k) % 3;
            json!({"sku": sku, "name": name, "quantity": quantity, "unit_price": price,
                   "total": price * quantity as u64})
        })
        .collect();
    let subtotal: u64 = items.iter().filter_map(|l| l["total"].as_u64()).sum();
    let shipping = if subtotal > 10_000 { 0 } else { 495 };
    let tax = (subtotal + shipping) * 19 / 119;
    let brand = ["visa", "mastercard", "amex"][i % 3];
    let channel = ["web", "ios", "android"][i % 3];
    let carrier = ["DHL", "UPS", "DPD"][i % 3];
    let address = json!({"name": format!("{first} {last}"), "line1": street, "city": city,
                         "postal_code": postal, "country": country});
    json!({
        "type": "order.created",
        "data": {
            "id": format!("ord_{:08x}", 0x5eed_0000 + i * 7919),
            "number": format!("SO-2026-{:06}", 4217 + i),
            "created_at": format!("2026-11-29T{:02}:{:02}:{:02}Z", 8 + i % 12, (i * 7) % 60, (i * 13) % 60),
            "customer": {
                "id": format!("cus_{:010x}", 0x00c0_ffee_u64 + i as u64 * 104_729),
                "email": format!("{}.{}@example.com", first.to_lowercase(), last.to_lowercase()),
                "phone": format!("+49 30 555{:04}", (i * 37) % 10_000),
            },
            "shipping_address": address.clone(),
            "billing_address": address,
            "fulfilment": {"carrier": carrier, "service": "standard",
                           "estimated_delivery": format!("2026-12-{:02}", 1 + i % 5)},
            "items": items,
            "currency": "EUR",
            "subtotal": subtotal,
            "shipping": shipping,
            "tax": tax,
            "total": subtotal + shipping,
            "payment": {"method": "card", "brand": brand,
                        "last4": format!("{:04}", (i * 4241) % 10_000), "captured": true},
            "channel": channel,
        }
    })
}

/// Visible plus in-flight messages, asked of the emulator directly so that the question is
/// not counted as a cost of the deliveries.
async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes");
    let attrs = out.attributes().cloned().unwrap_or_default();
    [
        A::ApproximateNumberOfMessages,
        A::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .filter_map(|k| attrs.get(k).and_then(|v| v.parse::<usize>().ok()))
    .sum()
}

/// Lambda bills each invocation's duration rounded up to the millisecond.
fn billed_seconds(durations: &[Duration]) -> f64 {
    durations
        .iter()
        .map(|d| (d.as_micros().div_ceil(1000)) as f64 / 1000.0)
        .sum()
}

/// One line of the cost table, all figures per delivery except the dollars, which are per
/// million deliveries.
struct CostLine {
    service: String,
    operation: String,
    calls: Option<f64>,
    units: String,
    dollars: f64,
    note: String,
}

impl CostLine {
    fn new(
        service: &str,
        operation: &str,
        calls: Option<f64>,
        units: String,
        dollars: f64,
    ) -> Self {
        Self {
            service: service.to_string(),
            operation: operation.to_string(),
            calls,
            units,
            dollars,
            note: String::new(),
        }
    }

    fn note(mut self, note: impl Into<String>) -> Self {
        self.add_note(&note.into());
        self
    }

    fn add_note(&mut self, note: &str) {
        if !note.is_empty() {
            if !self.note.is_empty() {
                self.note.push_str("; ");
            }
            self.note.push_str(note);
        }
    }
}

/// DynamoDB calls that manage tables rather than items; AWS does not bill them.
const DYNAMODB_CONTROL_PLANE: &[&str] = &[
    "CreateTable",
    "DescribeTable",
    "UpdateTable",
    "DeleteTable",
    "ListTables",
    "UpdateTimeToLive",
    "DescribeTimeToLive",
];

/// The lines of the AWS calls the meter counted.
fn aws_lines(report: &MeterReport, deliveries: f64) -> Vec<CostLine> {
    let per = |n: f64| n / deliveries;
    let mut lines = Vec::new();
    for (Operation { service, name }, c) in &report.operations {
        let OperationCount {
            calls,
            write_units,
            index_write_units,
            read_units,
            condition_failures,
            condition_failure_units,
            billed_requests,
            errors_by_kind,
            ..
        } = c.clone();
        let label = service.label();
        // Refused conditions have their own line; other errors are shown where they fell.
        let errors = errors_by_kind
            .iter()
            .filter(|(kind, _)| kind.as_str() != "ConditionalCheckFailedException")
            .map(|(kind, n)| format!("{kind} {:.3}", per(*n as f64)))
            .collect::<Vec<_>>();
        let errors = if errors.is_empty() {
            String::new()
        } else {
            format!("errors/delivery: {}", errors.join(", "))
        };
        let first = lines.len();
        match service {
            Service::DynamoDb if DYNAMODB_CONTROL_PLANE.contains(&name.as_str()) => lines.push(
                CostLine::new(label, name, Some(per(calls as f64)), "-".into(), 0.0)
                    .note("control plane, not billed"),
            ),
            Service::DynamoDb => {
                let applied = write_units - condition_failure_units;
                let mut line = if write_units > 0.0 {
                    CostLine::new(
                        label,
                        name,
                        Some(per((calls - condition_failures) as f64)),
                        format!("{:.2} WRU", per(applied)),
                        per(applied) * prices::DYNAMODB_PER_MILLION_WRITE_UNITS,
                    )
                } else {
                    CostLine::new(
                        label,
                        name,
                        Some(per(calls as f64)),
                        format!("{:.2} RRU", per(read_units)),
                        per(read_units) * prices::DYNAMODB_PER_MILLION_READ_UNITS,
                    )
                };
                if index_write_units > 0.0 {
                    line = line.note(format!(
                        "{:.2} WRU of it to secondary indexes",
                        per(index_write_units)
                    ));
                }
                lines.push(line);
                if condition_failures > 0 {
                    lines.push(
                        CostLine::new(
                            label,
                            &format!("{name}, condition failed"),
                            Some(per(condition_failures as f64)),
                            format!("{:.2} WRU", per(condition_failure_units)),
                            per(condition_failure_units) * prices::DYNAMODB_PER_MILLION_WRITE_UNITS,
                        )
                        .note("refused writes are billed too"),
                    );
                }
            }
            Service::DynamoDbStreams => lines.push(
                CostLine::new(
                    label,
                    name,
                    Some(per(calls as f64)),
                    "-".into(),
                    per(calls as f64) * prices::DYNAMODB_STREAMS_READ_BY_LAMBDA_PER_MILLION,
                )
                .note("free when Lambda reads the stream"),
            ),
            Service::Sqs => {
                let mut line = CostLine::new(
                    label,
                    name,
                    Some(per(calls as f64)),
                    format!("{:.3} requests", per(billed_requests as f64)),
                    per(billed_requests as f64) * prices::SQS_STANDARD_PER_MILLION_REQUESTS,
                );
                if name.ends_with("(empty)") {
                    line = line.note("pollers idling while the bench waits; not per delivery");
                } else if name.starts_with("SendMessage") {
                    line = line.note("billed per started 64 KiB");
                }
                lines.push(line);
            }
            Service::SecretsManager => lines.push(CostLine::new(
                label,
                name,
                Some(per(calls as f64)),
                format!("{:.3} calls", per(calls as f64)),
                per(calls as f64) * prices::SECRETS_MANAGER_PER_10K_CALLS * 100.0,
            )),
            Service::EventBridge if name == "PutEvents" => lines.push(CostLine::new(
                label,
                name,
                Some(per(calls as f64)),
                format!("{:.3} events", per(billed_requests as f64)),
                per(billed_requests as f64) * prices::EVENTBRIDGE_CUSTOM_EVENTS_PER_MILLION,
            )),
            _ => lines.push(
                CostLine::new(label, name, Some(per(calls as f64)), "-".into(), 0.0)
                    .note("not priced"),
            ),
        }
        if let Some(line) = lines.get_mut(first) {
            line.add_note(&errors);
        }
    }
    lines
}

/// The Lambda lines of one function: invocations and GB-seconds.
fn lambda_lines(
    function: &str,
    invocations: f64,
    billed_seconds: f64,
    memory_mb: u64,
    deliveries: f64,
    how: &str,
) -> [CostLine; 2] {
    let gb_seconds = billed_seconds * memory_mb as f64 / 1024.0 / deliveries;
    let per_invocation_ms = billed_seconds * 1000.0 / invocations.max(1.0);
    [
        CostLine::new(
            "Lambda",
            &format!("{function} invocations"),
            Some(invocations / deliveries),
            format!("{:.3} requests", invocations / deliveries),
            invocations / deliveries * prices::LAMBDA_ARM64_PER_MILLION_REQUESTS,
        ),
        CostLine::new(
            "Lambda",
            &format!("{function} duration"),
            None,
            format!("{gb_seconds:.5} GB-s"),
            gb_seconds * 1e6 * prices::LAMBDA_ARM64_PER_GB_SECOND,
        )
        .note(format!(
            "{memory_mb} MB, {per_invocation_ms:.1} ms per invocation ({how})"
        )),
    ]
}

/// What a delivery costs in AWS: publishes `EVENTS` order events to 10 subscribers through
/// the ingest router, lets the SQS poller deliver them all, and counts every AWS call both
/// made, through a proxy in front of the emulator. Set-up calls are not counted.
async fn bench_cost() {
    const SUBSCRIBERS: usize = 10;
    let events: usize = std::env::var("SKYHOOK_BENCH_COST_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let deliveries = events * SUBSCRIBERS;
    let template =
        std::fs::read_to_string(prices::template_path()).expect("reading infra/template.yaml");
    let ingest_mb = prices::lambda_memory_mb(&template, "IngestHttpFunction").expect("memory");
    let delivery_mb = prices::lambda_memory_mb(&template, "DeliveryFunction").expect("memory");
    let stats_mb = prices::lambda_memory_mb(&template, "StatsFunction").expect("memory");
    let (batch_size, batch_window) =
        prices::sqs_batching(&template, "DeliveryFunction").expect("the delivery event source");

    let emulator = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let meter = AwsMeter::start(&emulator).await;
    // Tenant limits as deployed too: the template's defaults, the same as the code's.
    let tenant_limits = skyhook_domain::tenants::TenantLimits::from_env(
        &std::collections::HashMap::<&str, &str>::new(),
    )
    .expect("the default tenant limits");
    let stack = Stack::with(StackOptions {
        endpoint: Some(meter.url().to_string()),
        // As deployed (the template's default), not the tests' short one.
        secret_cache_ttl: skyhook_domain::config::DEFAULT_SECRET_CACHE_TTL,
        tenant_limits,
        ..StackOptions::default()
    })
    .await;
    let direct_sqs = aws_sdk_sqs::Client::new(&sdk_config().await);
    let receiver = Receiver::start(vec![], Reply::Body(200, r#"{"received":true}"#)).await;
    for i in 0..SUBSCRIBERS {
        stack
            .subscribe(&receiver.url(&format!("/hooks/{i}")), &["order.*"])
            .await;
    }
    meter.reset();

    // Deliveries run while events are published, as in AWS: the queue stays shallow (moto
    // slows down with every message waiting in a queue). Batches as the template's event
    // source makes them: up to 10 messages a receive, 20-second long polls, and the
    // template's batch size and batching window.
    let runner = stack.start_batched_delivery(batch_size, Duration::from_secs(batch_window));
    let mut ingest_times = Vec::with_capacity(events);
    let mut body_bytes = 0;
    for i in 0..events {
        let event = order_event(i);
        body_bytes += event.to_string().len();
        let started = Instant::now();
        let out = stack.publish(event).await;
        ingest_times.push(started.elapsed());
        assert_eq!(out["subscribers"], SUBSCRIBERS);
    }
    receiver
        .wait_for(deliveries, Duration::from_secs(600))
        .await;
    // The poller deletes a batch after the handler returns: wait for the last deletes.
    let deadline = Instant::now() + Duration::from_secs(60);
    while queue_depth(&direct_sqs, &stack.resources.queue_url).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the delivery queue did not drain"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    runner.stop().await;
    // The stats consumer folds the stream as Lambda's event source would hand it over: in
    // batches of up to 10,000 records (the template's batch size).
    let stats_started = Instant::now();
    let stream_records = stack.settle_stats().await;
    let stats_seconds = stats_started.elapsed().as_secs_f64();
    let stats_invocations = stream_records.div_ceil(10_000);
    let report = meter.report();
    meter.stop().await;
    // At-least-once: a message SQS hands out twice is delivered twice (same webhook-id);
    // every (event, subscriber) pair must have arrived, and the repeats are reported.
    let requests = receiver.requests();
    let distinct: std::collections::HashSet<(String, String)> = requests
        .iter()
        .map(|r| (r.header("webhook-id").to_string(), r.path.clone()))
        .collect();
    assert_eq!(distinct.len(), deliveries, "every delivery should arrive");
    let repeats = requests.len() - distinct.len();

    let d = deliveries as f64;
    let mut lines = vec![
        CostLine::new(
            "API Gateway",
            "HTTP API requests",
            Some(events as f64 / d),
            format!("{:.3} requests", events as f64 / d),
            events as f64 / d * prices::API_GATEWAY_HTTP_PER_MILLION_REQUESTS,
        )
        .note("one per publish"),
    ];
    lines.extend(lambda_lines(
        "ingest-http",
        events as f64,
        billed_seconds(&ingest_times),
        ingest_mb,
        d,
        "timed around the ingest router",
    ));
    let invocations = stack.invocations.lock().unwrap().clone();
    lines.extend(lambda_lines(
        "delivery",
        invocations.len() as f64,
        billed_seconds(&invocations),
        delivery_mb,
        d,
        &format!(
            "batches of up to {batch_size} gathered for up to {batch_window} s, timed around the handler"
        ),
    ));
    if stats_invocations > 0 {
        lines.extend(lambda_lines(
            "stats",
            stats_invocations as f64,
            stats_seconds,
            stats_mb,
            d,
            "one per 10,000 stream records; timed around reading and folding them",
        ));
    }
    lines.extend(aws_lines(&report, d));

    if repeats > 0 {
        println!(
            "cost         ({repeats} repeated deliveries of a message SQS handed out twice are in the counts)"
        );
    }
    println!(
        "cost         {events} events × {SUBSCRIBERS} subscribers = {deliveries} first-try deliveries \
         (1 KiB events: {} bytes per publish body on average), prices of {} (bench/src/prices.rs)",
        body_bytes / events.max(1),
        prices::RECORDED
    );
    println!(
        "  {:<16} {:<32} {:>14}   {:<18} {:>20}",
        "service", "operation", "calls/delivery", "units/delivery", "$/million deliveries"
    );
    let mut services: Vec<&str> = Vec::new();
    for l in &lines {
        if !services.contains(&l.service.as_str()) {
            services.push(&l.service);
        }
    }
    let mut total = 0.0;
    for service in services {
        let group: Vec<&CostLine> = lines.iter().filter(|l| l.service == service).collect();
        let subtotal: f64 = group.iter().map(|l| l.dollars).sum();
        total += subtotal;
        for l in &group {
            let calls = l.calls.map(|c| format!("{c:.3}")).unwrap_or_default();
            let note = if l.note.is_empty() {
                String::new()
            } else {
                format!("   {}", l.note)
            };
            println!(
                "  {:<16} {:<32} {:>14}   {:<18} {:>20.3}{note}",
                l.service, l.operation, calls, l.units, l.dollars
            );
        }
        if group.len() > 1 {
            println!(
                "  {:<16} {:<32} {:>14}   {:<18} {:>20.3}",
                service, "subtotal", "", "", subtotal
            );
        }
    }
    println!(
        "  {:<16} {:<32} {:>14}   {:<18} {:>20.2}",
        "total", "", "", "", total
    );
    let ddb = report.service_total(&Service::DynamoDb);
    println!(
        "DynamoDB write units per delivery: {:.2}",
        ddb.write_units / d
    );
    // What the tenant's publish limit costs: its bucket's takes (one small conditional write
    // each), counted by the publisher's gate; they are in the DynamoDB figures above.
    let takes = stack.publisher.gate.as_ref().map_or(0, |g| g.takes());
    let per_publish = takes as f64 / events.max(1) as f64;
    println!(
        "tenant limit: {takes} bucket writes for {events} publishes = {per_publish:.3} per publish \
         ({:.3} $ per million publishes, {:.4} $ per million deliveries; limits {}/s, burst {}: \
         one write per publish while a tenant is quiet, blocks of a tenth of its rate once busy)",
        per_publish * prices::DYNAMODB_PER_MILLION_WRITE_UNITS,
        per_publish * prices::DYNAMODB_PER_MILLION_WRITE_UNITS / SUBSCRIBERS as f64,
        tenant_limits.events_per_second,
        tenant_limits.burst,
    );
    let duration: f64 = lines
        .iter()
        .filter(|l| l.service == "Lambda" && l.operation.ends_with("duration"))
        .map(|l| l.dollars)
        .sum();
    println!(
        "  how: calls and units counted by a proxy in front of the emulator \
         (bench/src/meter.rs): DynamoDB units from item sizes, the item a put or delete \
         replaces asked of the write itself (ALL_OLD), other writes' items read from the \
         emulator before (and, for updates, after); SQS sends per started 64 KiB; API \
         Gateway one request per publish"
    );
    println!(
        "       Lambda: ingest one invocation per publish, timed around the ingest router; \
         delivery one per handler call (batches as the template's event source makes \
         them: up to {batch_size} within {batch_window} s), timed around the handler; memory \
         from infra/template.yaml, arm64 prices"
    );
    println!(
        "       the durations are this machine's against moto, not AWS's: without them the \
         total is {:.2}",
        total - duration
    );
    let protocols: Vec<String> = report
        .protocols
        .iter()
        .map(|(service, how)| format!("{service}: {how}"))
        .collect();
    println!("  requests seen: {}", protocols.join("; "));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_events_are_about_one_kib_and_vary() {
        let sizes: Vec<usize> = (0..100).map(|i| order_event(i).to_string().len()).collect();
        let mean = sizes.iter().sum::<usize>() / sizes.len();
        assert!(
            (990..=1060).contains(&mean),
            "mean publish body {mean} bytes"
        );
        assert!(sizes.iter().all(|s| (900..=1150).contains(s)), "{sizes:?}");
        assert_ne!(order_event(0), order_event(1));
    }
}
