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

mod bill;
mod cost;
mod local;
mod noisy;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;

use skyhook_domain::directory::Directory;
use skyhook_domain::ids::{SubscriberId, TenantId};
use skyhook_domain::ports::{SecretStore, StoreError, SubscriberSecrets};
use skyhook_domain::secret::SigningSecret;
use skyhook_domain::signing::{sign, verify};
use skyhook_tests::{Receiver, Reply, Stack, StackOptions};

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
        cost::bench_cost().await;
    }
    if run("local") {
        local::bench_local_speed().await;
    }
    if run("noisy") {
        noisy::bench_noisy_tenant().await;
    }
}
