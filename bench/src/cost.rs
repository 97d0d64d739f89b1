//! What a delivery costs in AWS, counted: the cost runs of `make bench` publish realistic
//! events through the ingest router, deliver them through the SQS poller and fold the stats,
//! while a proxy in front of the emulator counts every AWS call and its billed units.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use skyhook_bench::meter::{AwsMeter, MeterReport, Operation, OperationCount, Service};
use skyhook_bench::prices;
use skyhook_tests::{Receiver, Reply, Stack, StackOptions, sdk_config};

/// A realistic order event of about 1 KiB as published (the whole request body): ids,
/// customer, addresses, line items and amounts, varied by `i`.
pub fn order_event(i: usize) -> Value {
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
pub struct CostLine {
    pub service: String,
    pub operation: String,
    pub calls: Option<f64>,
    pub units: String,
    pub dollars: f64,
    pub note: String,
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

/// The shape of one cost run: `subscribers` endpoints in `groups` groups, each group
/// subscribed to its own event types, and `events` published round the groups, so that each
/// event reaches `subscribers / groups` endpoints and each endpoint gets
/// `events * subscribers / groups / subscribers` of them.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub subscribers: usize,
    pub groups: usize,
    pub events: usize,
}

impl Shape {
    pub fn fan_out(&self) -> usize {
        self.subscribers / self.groups
    }

    pub fn deliveries(&self) -> usize {
        self.events * self.fan_out()
    }

    fn label(&self) -> String {
        format!(
            "{} subscribers x {} events each ({} events, each to {})",
            self.subscribers,
            self.deliveries() / self.subscribers,
            self.events,
            self.fan_out()
        )
    }
}

/// What one cost run measured, per delivery unless named otherwise.
pub struct CostRun {
    pub shape: Shape,
    pub lines: Vec<CostLine>,
    pub report: MeterReport,
    /// Bytes and lines the functions logged at the deployed level (INFO), as JSON.
    pub log_bytes: u64,
    pub log_lines: u64,
    /// Lambda invocations of every function (each adds its platform log lines).
    pub invocations: u64,
    /// Bytes of the requests the receivers got: request line, headers and body.
    pub request_bytes: u64,
    /// Bytes the table and the stats table hold after the run (what it stored).
    pub table_bytes: u64,
    pub stats_bytes: u64,
    /// Seconds the stats consumer took to fold the run's stream (against the emulator).
    pub stats_seconds: f64,
}

impl CostRun {
    pub fn deliveries(&self) -> f64 {
        self.shape.deliveries() as f64
    }

    /// Dollars per million deliveries, all lines.
    pub fn total(&self) -> f64 {
        self.lines.iter().map(|l| l.dollars).sum()
    }

    /// Dollars per million deliveries of the lines `keep` selects.
    pub fn sum(&self, keep: impl Fn(&CostLine) -> bool) -> f64 {
        self.lines
            .iter()
            .filter(|l| keep(l))
            .map(|l| l.dollars)
            .sum()
    }

    pub fn write_units(&self) -> f64 {
        self.report.service_total(&Service::DynamoDb).write_units / self.deliveries()
    }

    /// The stats consumer's write units per delivery (its transactions).
    pub fn stats_write_units(&self) -> f64 {
        self.report
            .operations
            .iter()
            .filter(|(op, _)| op.service == Service::DynamoDb && op.name == "TransactWriteItems")
            .map(|(_, c)| c.write_units)
            .sum::<f64>()
            / self.deliveries()
    }
}

/// The cost runs of `make bench`: the fat shape the table has always shown, then thin
/// traffic, where a stats batch touches a thousand endpoints; and the monthly bill of three
/// workloads built on them.
pub async fn bench_cost() {
    let events: usize = std::env::var("SKYHOOK_BENCH_COST_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let logs = crate::bill::LogMeter::install();
    let fat = cost_run(
        Shape {
            subscribers: 10,
            groups: 1,
            events,
        },
        &logs,
    )
    .await;
    print_run(&fat);
    // Thin traffic: each endpoint gets 10 deliveries, so a stats batch touches every one.
    // 500 endpoints, not the 1,000 planned: moto copies every table for each transaction
    // (each subscriber created is one) and grows past 20 GB before the thousandth.
    let thin = cost_run(
        Shape {
            subscribers: 500,
            groups: 50,
            events: events / 2,
        },
        &logs,
    )
    .await;
    print_run(&thin);
    println!(
        "DynamoDB write units per delivery, all in: {:.2} ({}), {:.2} ({})",
        fat.write_units(),
        fat.shape.label(),
        thin.write_units(),
        thin.shape.label()
    );
    crate::bill::bench_bill(&thin, &fat).await;
}

/// One cost run of `shape`: publishes order events through the ingest router, lets the SQS
/// poller deliver them all, folds the stats, and counts every AWS call they made through a
/// proxy in front of the emulator. Set-up calls are not counted.
async fn cost_run(shape: Shape, logs: &crate::bill::LogMeter) -> CostRun {
    let events = shape.events;
    let deliveries = shape.deliveries();
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
    for i in 0..shape.subscribers {
        let group = i % shape.groups;
        let body = json!({
            "url": receiver.url(&format!("/hooks/{i}")),
            "event_types": [format!("{}.*", group_type(group, shape.groups))],
        });
        // Set-up, not measured: an emulator hiccup is tried again, and said.
        for attempt in 1..=3 {
            let (status, answer) = stack
                .api_call(http::Method::POST, "/v1/subscribers", Some(&body))
                .await;
            if status == http::StatusCode::CREATED {
                break;
            }
            eprintln!("cost         creating subscriber {i}, try {attempt}: {status} {answer}");
            assert!(attempt < 3, "could not create subscriber {i}");
        }
    }
    // What the subscribers take, which is not per delivery.
    let (set_up_bytes, _) = crate::bill::stored(&stack, &stack.resources.table).await;
    meter.reset();
    logs.reset();

    // Deliveries run while events are published, as in AWS: the queue stays shallow (moto
    // slows down with every message waiting in a queue). Batches as the template's event
    // source makes them: up to 10 messages a receive, 20-second long polls, and the
    // template's batch size and batching window.
    let runner = stack.start_batched_delivery(batch_size, Duration::from_secs(batch_window));
    let mut ingest_times = Vec::with_capacity(events);
    let mut body_bytes = 0;
    for i in 0..events {
        let mut event = order_event(i);
        let prefix = group_type(i % shape.groups, shape.groups);
        event["type"] = json!(format!("{prefix}.created"));
        body_bytes += event.to_string().len();
        let started = Instant::now();
        let out = stack.publish(event).await;
        ingest_times.push(started.elapsed());
        assert_eq!(out["subscribers"], shape.fan_out());
    }
    receiver
        .wait_for(deliveries, Duration::from_secs(900))
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
    // What the run stored (read through the meter, after its counts were taken).
    let (table_bytes, _) = crate::bill::stored(&stack, &stack.resources.table).await;
    let (stats_bytes, _) = crate::bill::stored(&stack, &stack.resources.stats_table).await;
    meter.stop().await;
    // moto copies every table for each transaction: the next run must not pay for these.
    drop_tables(&stack).await;
    let (log_bytes, log_lines) = logs.read();
    // At-least-once: a message SQS hands out twice is delivered twice (same webhook-id);
    // every (event, subscriber) pair must have arrived, and the repeats are reported.
    let requests = receiver.requests();
    let distinct: std::collections::HashSet<(String, String)> = requests
        .iter()
        .map(|r| (r.header("webhook-id").to_string(), r.path.clone()))
        .collect();
    assert_eq!(distinct.len(), deliveries, "every delivery should arrive");
    let repeats = requests.len() - distinct.len();
    let request_bytes: u64 = requests
        .iter()
        .map(|r| crate::bill::request_size(r) as u64)
        .sum::<u64>()
        * deliveries as u64
        / requests.len().max(1) as u64;

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
        "cost         {} = {deliveries} first-try deliveries (1 KiB events: {} bytes per \
         publish body on average), prices of {} (bench/src/prices.rs)",
        shape.label(),
        body_bytes / events.max(1),
        prices::RECORDED
    );
    let takes = stack.publisher.gate.as_ref().map_or(0, |g| g.takes());
    let per_publish = takes as f64 / events.max(1) as f64;
    println!(
        "  tenant limit: {takes} bucket writes for {events} publishes = {per_publish:.3} per \
         publish ({:.4} $ per million deliveries; limits {}/s, burst {}: one write per publish \
         while a tenant is quiet, blocks of a tenth of its rate once busy)",
        per_publish * prices::DYNAMODB_PER_MILLION_WRITE_UNITS / shape.fan_out() as f64,
        tenant_limits.events_per_second,
        tenant_limits.burst,
    );
    CostRun {
        shape,
        lines,
        report,
        log_bytes,
        log_lines,
        invocations: (events + invocations.len() + stats_invocations) as u64,
        request_bytes,
        table_bytes: table_bytes - set_up_bytes,
        stats_bytes,
        stats_seconds,
    }
}

/// Deletes a finished run's tables, straight at the emulator.
async fn drop_tables(stack: &Stack) {
    let ddb = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    for table in [&stack.resources.table, &stack.resources.stats_table] {
        if let Err(e) = ddb.delete_table().table_name(table).send().await {
            eprintln!("cost         could not delete {table}: {e}");
        }
    }
}

/// The event type prefix of group `g`: `order` alone when there is one group.
fn group_type(g: usize, groups: usize) -> String {
    if groups == 1 {
        "order".into()
    } else {
        format!("shop{g}.order")
    }
}

/// Prints a run's cost table: per service and operation, per delivery and per million.
fn print_run(run: &CostRun) {
    let lines = &run.lines;
    println!(
        "  {:<16} {:<32} {:>14}   {:<18} {:>20}",
        "service", "operation", "calls/delivery", "units/delivery", "$/million deliveries"
    );
    let mut services: Vec<&str> = Vec::new();
    for l in lines {
        if !services.contains(&l.service.as_str()) {
            services.push(&l.service);
        }
    }
    for service in services {
        let group: Vec<&CostLine> = lines.iter().filter(|l| l.service == service).collect();
        let subtotal: f64 = group.iter().map(|l| l.dollars).sum();
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
    let total = run.total();
    println!(
        "  {:<16} {:<32} {:>14}   {:<18} {:>20.2}",
        "total", "", "", "", total
    );
    let duration = run.sum(|l| l.service == "Lambda" && l.operation.ends_with("duration"));
    println!(
        "  how: calls and units counted by a proxy in front of the emulator \
         (bench/src/meter.rs): DynamoDB units from item sizes, the item a put or delete \
         replaces asked of the write itself (ALL_OLD), other writes' items read from the \
         emulator before (and, for updates, after); SQS sends per started 64 KiB; API \
         Gateway one request per publish; Lambda memory from infra/template.yaml, arm64 \
         prices; the durations are this machine's against moto, not AWS's: without them the \
         total is {:.2}",
        total - duration
    );
    let protocols: Vec<String> = run
        .report
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
