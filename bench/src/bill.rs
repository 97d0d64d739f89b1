//! The monthly bill of three workloads, from what the cost runs counted and measured (calls,
//! units, log bytes, bytes stored, bytes sent) plus the template's fixed resources, at the
//! list prices of `prices.rs`; beside it what Svix, Hookdeck and EventBridge API
//! destinations would charge for the same deliveries.
//!
//! The stats fold is measured per workload: one stats batch of the workload's own shape
//! (as many deliveries as the template's batching window gathers at its rate, spread over
//! its endpoints and tenants) is folded and written through the metered emulator.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use skyhook_bench::meter::{AwsMeter, Service};
use skyhook_bench::prices;
use skyhook_domain::ids::{SubscriberId, TenantId};
use skyhook_domain::model::DeliveryState;
use skyhook_domain::series::AttemptSample;
use skyhook_domain::stats_fold::{LedgerChange, attempts, fold};
use skyhook_tests::{Received, Stack, StackOptions};

use crate::cost::CostRun;

/// Counts the bytes and lines the functions log, as JSON lines at the deployed level.
#[derive(Clone, Default)]
pub struct LogMeter {
    bytes: Arc<AtomicU64>,
    lines: Arc<AtomicU64>,
}

impl LogMeter {
    /// Installs the functions' JSON log format, at INFO, as this process's subscriber,
    /// writing into the meter instead of stdout.
    pub fn install() -> Self {
        let meter = LogMeter::default();
        let filter = tracing_subscriber::EnvFilter::new(skyhook_process::telemetry::DEFAULT_FILTER);
        let subscriber = skyhook_process::telemetry::json_subscriber(filter, meter.clone());
        let _ = tracing::subscriber::set_global_default(subscriber);
        meter
    }

    pub fn reset(&self) {
        self.bytes.store(0, Ordering::SeqCst);
        self.lines.store(0, Ordering::SeqCst);
    }

    /// Bytes and lines logged since the last reset.
    pub fn read(&self) -> (u64, u64) {
        (
            self.bytes.load(Ordering::SeqCst),
            self.lines.load(Ordering::SeqCst),
        )
    }
}

impl io::Write for LogMeter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Counted, not shown; but an error still reaches the bench's own output.
        const ERROR: &[u8] = br#""level":"ERROR""#;
        if buf.windows(ERROR.len()).any(|w| w == ERROR) {
            eprintln!("log          {}", String::from_utf8_lossy(buf).trim_end());
        }
        self.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        let lines = buf.iter().filter(|b| **b == b'\n').count() as u64;
        self.lines.fetch_add(lines, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogMeter {
    type Writer = LogMeter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The bytes of one delivered request on the wire: request line, headers and body (TLS
/// and TCP framing aside).
pub fn request_size(r: &Received) -> usize {
    let line = "POST ".len() + r.path.len() + " HTTP/1.1\r\n".len();
    let headers: usize = r
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    line + headers + 2 + r.body.len()
}

/// DynamoDB's size of an attribute value: strings and binaries by length, numbers by
/// digits, documents by their parts plus a few bytes each.
fn value_size(v: &AttributeValue) -> u64 {
    match v {
        AttributeValue::S(s) => s.len() as u64,
        AttributeValue::N(n) => (n.trim_start_matches('-').len() as u64).div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len() as u64,
        AttributeValue::Ss(l) => l.iter().map(|s| s.len() as u64).sum(),
        AttributeValue::Ns(l) => l.iter().map(|n| (n.len() as u64).div_ceil(2) + 1).sum(),
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<u64>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| 1 + k.len() as u64 + value_size(v))
                .sum::<u64>()
        }
        _ => 1,
    }
}

/// DynamoDB bills storage with 100 bytes of overhead per item.
const ITEM_OVERHEAD_BYTES: u64 = 100;

/// What `table` holds now: billed bytes (overhead included) and items.
pub async fn stored(stack: &Stack, table: &str) -> (u64, u64) {
    let items = stack.scan(table).await;
    let bytes = items
        .iter()
        .map(|item| {
            ITEM_OVERHEAD_BYTES
                + item
                    .iter()
                    .map(|(k, v)| k.len() as u64 + value_size(v))
                    .sum::<u64>()
        })
        .sum();
    (bytes, items.len() as u64)
}

/// One of the three workloads the bill is drawn up for.
pub struct Workload {
    pub name: &'static str,
    pub tenants: u64,
    pub endpoints: u64,
    pub deliveries: u64,
    /// The issue's goal for its monthly bill, in dollars.
    pub goal: f64,
}

pub const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "small",
        tenants: 1,
        endpoints: 50,
        deliveries: 1_000_000,
        goal: 5.0,
    },
    Workload {
        name: "SaaS",
        tenants: 1_000,
        endpoints: 10_000,
        deliveries: 100_000_000,
        goal: 150.0,
    },
    Workload {
        name: "large",
        tenants: 10_000,
        endpoints: 100_000,
        deliveries: 1_000_000_000,
        goal: 1_200.0,
    },
];

const MONTH_SECS: f64 = 30.0 * 86_400.0;
/// The stats function's event source: `BatchSize` and `MaximumBatchingWindowInSeconds`.
const STATS_BATCH: f64 = 10_000.0;
const STATS_WINDOW_SECS: f64 = 30.0;
/// Delivery function instances warm at once, for the cache-miss model below.
const INSTANCES: f64 = 2.0;
/// Cache periods a month: the secret cache's TTL is 15 minutes.
const CACHE_PERIODS: f64 = MONTH_SECS / (15.0 * 60.0);
/// Lambda's platform lines per invocation (START, END, REPORT), in bytes.
const PLATFORM_LOG_BYTES: f64 = 330.0;
/// One API Gateway access log line (the template's format, filled in).
const ACCESS_LOG_BYTES: f64 = 190.0;
/// CloudWatch Logs bills each event's bytes plus 26.
const LOG_EVENT_OVERHEAD: f64 = 26.0;

impl Workload {
    fn rate(&self) -> f64 {
        self.deliveries as f64 / MONTH_SECS
    }

    /// Deliveries in one stats batch: what the window gathers at this rate, capped.
    fn stats_batch(&self) -> usize {
        (self.rate() * STATS_WINDOW_SECS)
            .clamp(1.0, STATS_BATCH)
            .ceil() as usize
    }

    /// How many deliveries find their subscriber and secret out of a function's cache:
    /// each endpoint is read at most once per instance and cache period.
    fn misses_per_delivery(&self) -> f64 {
        (self.endpoints as f64 * INSTANCES * CACHE_PERIODS / self.deliveries as f64).min(1.0)
    }
}

/// A deterministic spread of records over endpoints (an LCG: the same batch every run).
struct Spread(u64);

impl Spread {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Folds one stats batch of `w`'s shape and writes it through the metered stack: the
/// write units per delivery. A batch bigger than 1,000 is scaled down with its endpoints
/// and tenants, which keeps the share of distinct endpoints (and so the units per delivery).
async fn stats_units(stack: &Stack, meter: &AwsMeter, w: &Workload) -> (f64, String) {
    let full = w.stats_batch();
    let scale = (full as f64 / 1_000.0).max(1.0);
    let records = (full as f64 / scale).round() as usize;
    let endpoints = ((w.endpoints as f64 / scale).round() as u64).max(1);
    let tenants = ((w.tenants as f64 / scale).round() as u64).clamp(1, endpoints);
    let tenant_ids: Vec<TenantId> = (0..tenants)
        .map(|t| TenantId::parse(&format!("bench-{}-{t}", w.name.to_lowercase())).unwrap())
        .collect();
    let mut subscribers: std::collections::HashMap<u64, SubscriberId> = Default::default();
    let mut spread = Spread(w.endpoints);
    let now = Utc::now();
    let changes: Vec<LedgerChange> = (0..records)
        .map(|i| {
            let e = spread.next(endpoints);
            let sub = subscribers
                .entry(e)
                .or_insert_with(SubscriberId::new)
                .clone();
            LedgerChange {
                tenant: tenant_ids[(e % tenants) as usize].clone(),
                subscriber: sub,
                before: None,
                after: Some((DeliveryState::Delivered, 1)),
                attempt: Some(AttemptSample {
                    started_at: now
                        + chrono::Duration::milliseconds(
                            (i as f64 * STATS_WINDOW_SECS * 1000.0 / records as f64) as i64,
                        ),
                    success: true,
                    latency_ms: Some(40 + spread.next(400)),
                }),
            }
        })
        .collect();
    let counters = fold(&changes);
    let series = skyhook_domain::series::fold(&attempts(&changes));
    meter.reset();
    stack
        .stats_counters
        .apply(&format!("bench-{}", w.name), &counters, &series)
        .await
        .expect("applying a stats batch");
    let units = meter.report().service_total(&Service::DynamoDb).write_units;
    let how = format!(
        "a batch of {full} over {} endpoints{}: {} distinct, {} counters and buckets",
        w.endpoints,
        if scale > 1.0 {
            format!(" (measured at 1/{scale:.0} scale)")
        } else {
            String::new()
        },
        subscribers.len(),
        counters.len() + series.len()
    );
    (units / records as f64, how)
}

/// One line of a bill: what, how much a month, and how it was reckoned.
struct BillLine {
    part: &'static str,
    dollars: f64,
    how: String,
}

/// The peers' prices for `deliveries` a month, as their public price lists give them
/// (recorded in `prices.rs` with their date).
fn peers(deliveries: f64) -> [(&'static str, f64); 3] {
    let m = deliveries / 1e6;
    [
        (
            "Svix (Professional)",
            prices::SVIX_PRO_MONTHLY
                + (deliveries - prices::SVIX_PRO_INCLUDED).max(0.0) / 1e6
                    * prices::SVIX_PER_MILLION,
        ),
        (
            "Hookdeck (Team)",
            prices::HOOKDECK_TEAM_MONTHLY + m * prices::HOOKDECK_PER_MILLION,
        ),
        (
            "EventBridge API destinations",
            m * (prices::EVENTBRIDGE_CUSTOM_EVENTS_PER_MILLION
                + prices::EVENTBRIDGE_API_DESTINATION_PER_MILLION),
        ),
    ]
}

/// The bill of `w` from the thin run's per-delivery costs, the workload's own stats batch,
/// storage, egress, logs and the fixed resources.
fn bill(
    w: &Workload,
    run: &CostRun,
    stats_wru: f64,
    stats_how: &str,
    sizes: &Sizes,
) -> Vec<BillLine> {
    let d = w.deliveries as f64;
    let m = d / 1e6;
    let is_stats = |l: &crate::cost::CostLine| {
        l.operation.starts_with("stats ") || l.operation.starts_with("TransactWriteItems")
    };
    let is_read = |l: &crate::cost::CostLine| l.units.ends_with("RRU");
    let mut lines = Vec::new();
    for (part, service) in [
        ("API Gateway", "API Gateway"),
        ("Lambda", "Lambda"),
        ("SQS", "SQS"),
    ] {
        lines.push(BillLine {
            part,
            dollars: run.sum(|l| l.service == service && !is_stats(l)) * m,
            how: format!(
                "{:.3} $ per million deliveries, as counted",
                run.sum(|l| l.service == service && !is_stats(l))
            ),
        });
    }
    let stats_invocations = d / w.stats_batch() as f64;
    // Billed at least a millisecond each, and the fat run's time per record (moto's; the
    // thin run's is moto copying every table for each transaction, not the function).
    let stats_seconds = stats_invocations * 0.001 + d * sizes.stats_seconds_per_record;
    lines.push(BillLine {
        part: "Lambda (stats)",
        dollars: stats_invocations / 1e6 * prices::LAMBDA_ARM64_PER_MILLION_REQUESTS
            + stats_seconds * 0.125 * prices::LAMBDA_ARM64_PER_GB_SECOND,
        how: format!(
            "{stats_invocations:.0} invocations (one per stats batch), {:.1} ms a record",
            sizes.stats_seconds_per_record * 1e3
        ),
    });
    let writes = run.sum(|l| l.service == "DynamoDB" && !is_stats(l) && !is_read(l));
    lines.push(BillLine {
        part: "DynamoDB writes",
        dollars: writes * m,
        how: format!(
            "{:.2} WRU per delivery (ledger, events, tenant buckets), as counted",
            writes / prices::DYNAMODB_PER_MILLION_WRITE_UNITS
        ),
    });
    lines.push(BillLine {
        part: "DynamoDB writes (stats)",
        dollars: stats_wru * prices::DYNAMODB_PER_MILLION_WRITE_UNITS * m,
        how: format!("{stats_wru:.2} WRU per delivery: {stats_how}"),
    });
    let thin_misses = run.shape.subscribers as f64 / run.deliveries();
    let read_scale = w.misses_per_delivery() / thin_misses;
    let reads = run.sum(|l| l.service == "DynamoDB" && is_read(l)) * read_scale.max(1.0);
    lines.push(BillLine {
        part: "DynamoDB reads",
        dollars: reads * m,
        how: format!(
            "as counted, scaled for cache misses: {:.2} per delivery here, {thin_misses:.2} in the run",
            w.misses_per_delivery()
        ),
    });
    let stored = sizes.table_per_delivery * d + sizes.stats_per_endpoint * w.endpoints as f64;
    lines.push(BillLine {
        part: "DynamoDB storage",
        dollars: stored / 1e9 * prices::DYNAMODB_PER_GB_MONTH,
        how: format!(
            "{:.0} bytes per delivery kept 30 days, {:.0} KB of series per endpoint",
            sizes.table_per_delivery,
            sizes.stats_per_endpoint / 1e3
        ),
    });
    lines.push(BillLine {
        part: "Secrets Manager",
        dollars: 2.0 * prices::SECRETS_MANAGER_PER_SECRET_MONTH
            + 3.0 * INSTANCES * 12.0 * 720.0 / 1e4 * prices::SECRETS_MANAGER_PER_10K_CALLS,
        how: "the admin key and the keyring; the keyring read every 5 minutes per instance".into(),
    });
    lines.push(BillLine {
        part: "CloudWatch metrics",
        dollars: prices::CLOUDWATCH_METRICS as f64 * prices::CLOUDWATCH_PER_METRIC_MONTH
            + sizes.alarms as f64 * prices::CLOUDWATCH_PER_ALARM_MONTH,
        how: format!(
            "{} stack-wide custom metrics, the template's {} alarms; none per tenant",
            prices::CLOUDWATCH_METRICS,
            sizes.alarms
        ),
    });
    let log_bytes = sizes.log_per_delivery * d;
    lines.push(BillLine {
        part: "CloudWatch logs",
        dollars: log_bytes / 1e9
            * (prices::CLOUDWATCH_LOGS_PER_GB_INGESTED + prices::CLOUDWATCH_LOGS_PER_GB_MONTH),
        how: format!(
            "{:.0} bytes per delivery (function lines, Lambda's, access logs), kept 30 days",
            sizes.log_per_delivery
        ),
    });
    lines.push(BillLine {
        part: "Data transfer out",
        dollars: sizes.request_per_delivery * d / 1e9 * prices::DATA_TRANSFER_OUT_PER_GB,
        how: format!(
            "{:.0} bytes per delivered request",
            sizes.request_per_delivery
        ),
    });
    lines
}

/// Bytes per delivery the thin run measured.
struct Sizes {
    table_per_delivery: f64,
    stats_per_endpoint: f64,
    log_per_delivery: f64,
    request_per_delivery: f64,
    alarms: usize,
    stats_seconds_per_record: f64,
}

impl Sizes {
    fn of(run: &CostRun, fat: &CostRun) -> Self {
        let d = run.deliveries();
        let own = run.log_bytes as f64 + run.log_lines as f64 * LOG_EVENT_OVERHEAD;
        let platform = run.invocations as f64 * (PLATFORM_LOG_BYTES + 3.0 * LOG_EVENT_OVERHEAD);
        let access = run.shape.events as f64 * (ACCESS_LOG_BYTES + LOG_EVENT_OVERHEAD);
        Sizes {
            table_per_delivery: run.table_bytes as f64 / d,
            // The run's series: each endpoint's buckets of one minute, hour and day. A month
            // keeps a day of minutes, 30 hours… per endpoint at most; charged as measured
            // times the buckets a month keeps of an endpoint with a delivery every 20 minutes.
            stats_per_endpoint: run.stats_bytes as f64 / run.shape.subscribers as f64 * 48.0,
            log_per_delivery: (own + platform + access) / d,
            request_per_delivery: run.request_bytes as f64 / d,
            alarms: std::fs::read_to_string(prices::template_path())
                .map_err(|e| e.to_string())
                .and_then(|t| prices::count_resources(&t, "AWS::CloudWatch::Alarm"))
                .expect("the template's alarms"),
            stats_seconds_per_record: fat.stats_seconds / fat.deliveries(),
        }
    }
}

/// Prints the three workloads' bills, with the peers' prices beside them.
pub async fn bench_bill(run: &CostRun, fat: &CostRun) {
    let emulator = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let meter = AwsMeter::start(&emulator).await;
    let stack = Stack::with(StackOptions {
        endpoint: Some(meter.url().to_string()),
        ..StackOptions::default()
    })
    .await;
    let sizes = Sizes::of(run, fat);
    println!(
        "bill         a month of three workloads (each event to {} endpoints, as the runs), prices of {}",
        run.shape.fan_out(),
        prices::RECORDED
    );
    for w in &WORKLOADS {
        let (stats_wru, stats_how) = stats_units(&stack, &meter, w).await;
        let lines = bill(w, run, stats_wru, &stats_how, &sizes);
        let total: f64 = lines.iter().map(|l| l.dollars).sum();
        println!(
            "  {}: {} tenants, {} endpoints, {} deliveries a month (goal ≤ ${:.0})",
            w.name, w.tenants, w.endpoints, w.deliveries, w.goal
        );
        for l in &lines {
            println!("    {:<26} {:>12.2}   {}", l.part, l.dollars, l.how);
        }
        println!(
            "    {:<26} {:>12.2}   {}",
            "total",
            total,
            if total <= w.goal {
                "within the goal"
            } else {
                "OVER the goal"
            }
        );
        let per_endpoint = sizes.stats_per_endpoint / 1e9 * prices::DYNAMODB_PER_GB_MONTH;
        println!(
            "    per endpoint {per_endpoint:.5} $ a month (its series), per tenant {:.4} $; \
             DynamoDB writes per delivery, all in: {:.2}",
            per_endpoint * w.endpoints as f64 / w.tenants as f64,
            run.write_units() - run.stats_write_units() + stats_wru
        );
        let beside: Vec<String> = peers(w.deliveries as f64)
            .iter()
            .map(|(name, dollars)| format!("{name} ${dollars:.0}"))
            .collect();
        println!("    beside it: {}", beside.join(", "));
    }
    meter.stop().await;
    let _ = Duration::ZERO;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peers_price_lists_give_the_figures_the_issue_quotes() {
        let at = |d: f64| peers(d).map(|(_, dollars)| dollars.round());
        // 100 million a month: Svix about $10,500, Hookdeck about $1,000, EventBridge $120.
        assert_eq!(at(100e6), [10_485.0, 1_039.0, 120.0]);
        assert_eq!(at(1e6), [585.0, 49.0, 1.0]);
    }

    #[test]
    fn stats_batches_fill_the_window_up_to_the_batch_size() {
        let [small, saas, large] = &WORKLOADS;
        assert_eq!(small.stats_batch(), 12);
        assert_eq!(saas.stats_batch(), 1_158);
        assert_eq!(large.stats_batch(), 10_000);
        // Thin traffic misses the caches: each endpoint's few deliveries an hour.
        assert!((saas.misses_per_delivery() - 0.576).abs() < 0.001);
        assert!(small.misses_per_delivery() < saas.misses_per_delivery());
    }

    #[test]
    fn item_sizes_follow_dynamodb_rules() {
        assert_eq!(value_size(&AttributeValue::S("abc".into())), 3);
        assert_eq!(value_size(&AttributeValue::N("12345".into())), 4);
        assert_eq!(value_size(&AttributeValue::N("-1".into())), 2);
        let map = AttributeValue::M([("ab".to_string(), AttributeValue::S("x".into()))].into());
        assert_eq!(value_size(&map), 3 + 1 + 2 + 1);
    }

    #[test]
    fn the_log_meter_counts_bytes_and_lines() {
        use std::io::Write;
        let meter = LogMeter::default();
        let mut w = meter.clone();
        w.write_all(b"{\"a\":1}\n{\"b\":2}\n").unwrap();
        assert_eq!(meter.read(), (16, 2));
        meter.reset();
        assert_eq!(meter.read(), (0, 0));
    }
}
