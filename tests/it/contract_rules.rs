//! Contract rules of SPEC.md that had no test: retention, expiry, Retry-After on a 500,
//! cursors bound to their list, strict URLs through the API, provisioning twice, and logs
//! that never carry a secret.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use base64::Engine as _;
use chrono::{SecondsFormat, Utc};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;

use skyhook_aws::dynamodb::keys;
use skyhook_aws::{Adapters, ResourceNames, provision};
use skyhook_domain::config;
use skyhook_domain::event_type::EventType;
use skyhook_domain::ids::{EventId, SubscriberId, TenantId};
use skyhook_domain::model::{
    AttemptRecord, DeadLetterEntry, DeliveryState, DeliveryStatus, EventRecord, Outcome,
};
use skyhook_domain::ports::{IdempotencyClaim, PublishReceipt};
use skyhook_domain::publish::PublishRequest;
use skyhook_tests::{ADMIN_KEY, Receiver, Reply, Stack, StackOptions, eventually, unique};

type Item = HashMap<String, AttributeValue>;

const DAY: i64 = 24 * 3600;

/// The numeric `expires_at` of a raw item; panics, naming the item, when it is missing or
/// not a number (DynamoDB's TTL only acts on a number of epoch seconds).
fn expires_at(item: &Item) -> i64 {
    match item.get("expires_at") {
        Some(AttributeValue::N(n)) => n
            .parse()
            .unwrap_or_else(|_| panic!("expires_at is not an integer: {item:?}")),
        other => panic!("expires_at missing or not a number ({other:?}): {item:?}"),
    }
}

fn text<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map_or("", String::as_str)
}

/// Checks that every item's `expires_at` is `retention` after a moment in `[from, to]`.
fn assert_expiry(what: &str, items: &[Item], from: i64, to: i64, retention: i64) {
    assert!(!items.is_empty(), "{what}: no items");
    for item in items {
        let at = expires_at(item);
        assert!(
            (from + retention..=to + retention).contains(&at),
            "{what}: expires_at {at} is not {retention} s after [{from}, {to}] \
             ({} s after the write): pk={} sk={}",
            at - to,
            text(item, "pk"),
            text(item, "sk"),
        );
    }
}

/// Every item of one partition whose sort key starts with `prefix`, read as stored.
async fn raw_partition(stack: &Stack, pk: &str, prefix: &str) -> Vec<Item> {
    let out = stack
        .ddb
        .query()
        .table_name(&stack.resources.table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
        .expression_attribute_values(":pk", AttributeValue::S(pk.to_string()))
        .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_string()))
        .consistent_read(true)
        .send()
        .await
        .expect("querying the table");
    out.items().to_vec()
}

async fn raw_item(stack: &Stack, pk: &str, sk: &str) -> Option<Item> {
    stack
        .ddb
        .get_item()
        .table_name(&stack.resources.table)
        .key("pk", AttributeValue::S(pk.to_string()))
        .key("sk", AttributeValue::S(sk.to_string()))
        .consistent_read(true)
        .send()
        .await
        .expect("reading the table")
        .item
}

/// The status of each of an event's deliveries, once every one has reached `want`.
async fn wait_for_status(stack: &Stack, event: &str, subscribers: usize, want: &str) {
    eventually(
        Duration::from_secs(40),
        &format!("{event}: {subscribers} deliveries {want}"),
        || async {
            let status = stack.event_status(event).await;
            let deliveries = status["deliveries"].as_array()?;
            (deliveries.len() == subscribers && deliveries.iter().all(|d| d["status"] == want))
                .then_some(())
        },
    )
    .await;
}

/// Log items (the event, its delivery ledger, the idempotency record) carry a numeric
/// `expires_at`, which the table's TTL is set on: 30 days after the write with the
/// configuration's defaults, and the configured retention otherwise.
#[tokio::test]
async fn log_items_carry_expires_at_thirty_days_out_by_default_and_the_table_expires_on_it() {
    let stack = Stack::new().await;

    // The table's TTL attribute is `expires_at`, as provisioning set it.
    let ttl = stack
        .ddb
        .describe_time_to_live()
        .table_name(&stack.resources.table)
        .send()
        .await
        .expect("DescribeTimeToLive");
    let ttl = ttl.time_to_live_description().expect("a TTL description");
    assert_eq!(ttl.attribute_name(), Some("expires_at"), "{ttl:?}");
    assert_eq!(
        ttl.time_to_live_status(),
        Some(&TimeToLiveStatus::Enabled),
        "{ttl:?}"
    );

    // The ingest and delivery functions as their configuration builds them when
    // SKYHOOK_LOG_RETENTION is not set, over this stack's resources.
    let env: HashMap<String, String> = [
        (config::TABLE, stack.resources.table.clone()),
        (config::QUEUE_URL, stack.resources.queue_url.clone()),
        (config::DLQ_URL, stack.resources.dlq_url.clone()),
        (config::SECRET_PREFIX, stack.secret_prefix.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let ingest_config = skyhook_ingest::Config::from_env(&env, false).expect("ingest settings");
    let delivery_config = skyhook_delivery::Config::from_env(&env).expect("delivery settings");
    assert_eq!(
        config::DEFAULT_LOG_RETENTION,
        Duration::from_secs(30 * 86_400)
    );
    assert_eq!(ingest_config.log_retention, config::DEFAULT_LOG_RETENTION);
    assert_eq!(delivery_config.log_retention, config::DEFAULT_LOG_RETENTION);
    let publisher = ingest_config.adapters(&stack.sdk).publisher(
        Arc::new(skyhook_tests::jq_sandbox().sandbox()),
        skyhook_tests::generous_limits(),
    );
    let (resources, retention) = delivery_config.resources();
    assert_eq!(retention.log, config::DEFAULT_LOG_RETENTION);
    let delivery_adapters = Adapters::from_sdk(&stack.sdk, &resources, &retention);
    let mut deliverer = stack.deliverer.clone();
    deliverer.log = delivery_adapters.log.clone();

    // One failed attempt then a success: a delivery item and one earlier attempt.
    let defaults_home = Receiver::per_id(vec![Reply::Status(500)], Reply::Status(200)).await;
    let stack_home = Receiver::per_id(vec![Reply::Status(500)], Reply::Status(200)).await;
    let (sub_defaults, _) = stack
        .subscribe(&defaults_home.url("/d"), &["ttl.defaults"])
        .await;
    let (sub_stack, _) = stack.subscribe(&stack_home.url("/s"), &["ttl.stack"]).await;
    let tenant = TenantId::default_tenant();
    let idempotency_key = unique("ttl-key");

    let from = Utc::now().timestamp();
    let receipt = publisher
        .publish(PublishRequest {
            tenant: tenant.clone(),
            event_type: EventType::parse("ttl.defaults").unwrap(),
            data: serde_json::value::RawValue::from_string(r#"{"n":1}"#.into()).unwrap(),
            idempotency_key: Some(idempotency_key.clone()),
            subscriber_ids: None,
            correlation_id: None,
            timestamp: None,
        })
        .await
        .expect("publishing with the default retention");
    assert_eq!(receipt.subscribers, 1);
    let event = receipt.id.clone();

    // The delivery function with the default retention, polling like the event source.
    let poller = stack.poller();
    let (stop, stopped) = watch::channel(false);
    let handler = {
        let deliverer = deliverer.clone();
        skyhook_cli::sqs_poller::handler(move |event| {
            let deliverer = deliverer.clone();
            async move { skyhook_delivery::handle(&deliverer, event).await }
        })
    };
    let task = tokio::spawn(async move { poller.run(handler, 1, stopped).await });
    wait_for_status(&stack, event.as_str(), 1, "delivered").await;
    // Nothing of it left to redeliver to the stack's own delivery function below.
    eventually(Duration::from_secs(30), "the queue drained", || async {
        (stack.queue_depth(&stack.resources.queue_url).await == 0).then_some(())
    })
    .await;
    let _ = stop.send(true);
    task.await.expect("the delivery loop");
    let to = Utc::now().timestamp();

    let retention = 30 * DAY;
    let event_item = raw_item(&stack, &keys::event_pk(&tenant, &event), event.as_str())
        .await
        .expect("the event item");
    assert_expiry("event", &[event_item], from, to, retention);
    let sub = SubscriberId::parse(&sub_defaults).unwrap();
    let ledger = raw_partition(
        &stack,
        &keys::ledger_pk(&tenant, &sub),
        &format!("{}{event}", keys::LEDGER_PREFIX),
    )
    .await;
    assert!(
        ledger.len() >= 2,
        "the delivery item and the failed attempt before it: {ledger:?}"
    );
    assert_expiry("delivery ledger", &ledger, from, to, retention);
    let idempotency = raw_item(
        &stack,
        &keys::idempotency_pk(&tenant, &idempotency_key),
        keys::IDEMPOTENCY_SK,
    )
    .await
    .expect("the idempotency record");
    assert_expiry("idempotency record", &[idempotency], from, to, DAY);

    // The same items written by the stack's functions follow its one-hour retention: the
    // value comes from the setting, not from a constant.
    let from = Utc::now().timestamp();
    let published = stack
        .publish(json!({"type": "ttl.stack", "data": {"n": 2}}))
        .await;
    let stack_event = EventId::parse(published["id"].as_str().unwrap()).unwrap();
    let runner = stack.start_delivery();
    wait_for_status(&stack, stack_event.as_str(), 1, "delivered").await;
    runner.stop().await;
    let to = Utc::now().timestamp();
    let event_item = raw_item(
        &stack,
        &keys::event_pk(&tenant, &stack_event),
        stack_event.as_str(),
    )
    .await
    .expect("the event item");
    assert_expiry("event (1 h)", &[event_item], from, to, 3600);
    let ledger = raw_partition(
        &stack,
        &keys::ledger_pk(&tenant, &SubscriberId::parse(&sub_stack).unwrap()),
        &format!("{}{stack_event}", keys::LEDGER_PREFIX),
    )
    .await;
    assert!(ledger.len() >= 2, "{ledger:?}");
    assert_expiry("delivery ledger (1 h)", &ledger, from, to, 3600);
}

/// An idempotency key dedupes for 24 hours and no longer, by the clock its caller passes:
/// a completed key is answered from its record until then, and is free again after.
#[tokio::test]
async fn an_idempotency_key_is_answered_from_its_record_for_24_hours_then_claimable_again() {
    let stack = Stack::new().await;
    let store = stack.adapters.idempotency.clone();
    let ttl = stack.adapters.idempotency_ttl;
    assert_eq!(ttl, config::IDEMPOTENCY_TTL);
    assert_eq!(config::IDEMPOTENCY_TTL, Duration::from_secs(24 * 3600));
    let tenant = TenantId::default_tenant();
    let hours = |h: i64| chrono::Duration::hours(h);
    let secs = chrono::Duration::seconds;
    let t0 = Utc::now();

    // A completed publish.
    let key = unique("idem-done");
    let first = EventId::new();
    assert_eq!(
        store.claim(&tenant, &key, &first, t0, ttl).await.unwrap(),
        IdempotencyClaim::Claimed
    );
    let receipt = PublishReceipt {
        id: first.clone(),
        event_type: EventType::parse("order.created").unwrap(),
        subscribers: 3,
    };
    store
        .complete(&tenant, &key, &receipt, t0, ttl)
        .await
        .unwrap();
    for at in [t0 + secs(1), t0 + hours(12), t0 + hours(24) - secs(1)] {
        assert_eq!(
            store
                .claim(&tenant, &key, &EventId::new(), at, ttl)
                .await
                .unwrap(),
            IdempotencyClaim::Completed(receipt.clone()),
            "{} s after the publish the key still answers with its record",
            (at - t0).num_seconds()
        );
    }
    let second = EventId::new();
    assert_eq!(
        store
            .claim(&tenant, &key, &second, t0 + hours(24) + secs(1), ttl)
            .await
            .unwrap(),
        IdempotencyClaim::Claimed,
        "24 h and 1 s after the publish the key is free"
    );
    // The new claim holds the key now, for its own 24 hours.
    assert_eq!(
        store
            .claim(
                &tenant,
                &key,
                &EventId::new(),
                t0 + hours(24) + secs(2),
                ttl
            )
            .await
            .unwrap(),
        IdempotencyClaim::Busy(second.clone())
    );

    // An unfinished publish: busy within its lease, resumed after it, and free after 24 h.
    let key = unique("idem-pending");
    let stuck = EventId::new();
    assert_eq!(
        store.claim(&tenant, &key, &stuck, t0, ttl).await.unwrap(),
        IdempotencyClaim::Claimed
    );
    assert_eq!(
        store
            .claim(&tenant, &key, &EventId::new(), t0 + secs(1), ttl)
            .await
            .unwrap(),
        IdempotencyClaim::Busy(stuck.clone())
    );
    assert_eq!(
        store
            .claim(&tenant, &key, &EventId::new(), t0 + hours(1), ttl)
            .await
            .unwrap(),
        IdempotencyClaim::Resume(stuck.clone())
    );
    assert_eq!(
        store
            .claim(&tenant, &key, &EventId::new(), t0 + hours(25), ttl)
            .await
            .unwrap(),
        IdempotencyClaim::Claimed,
        "an unfinished publish's key is free after 24 h too"
    );
}

/// `Retry-After` is honoured on 429 and 503 only: on a 500 the next attempt follows the
/// schedule (within its jitter), whether the header asks for longer or for no wait at all.
#[tokio::test]
async fn retry_after_on_a_500_is_ignored_and_the_schedule_decides() {
    let stack = Stack::with(StackOptions {
        schedule: "1s,1s".into(),
        jitter: 0.2,
        ..StackOptions::default()
    })
    .await;
    let later = Receiver::per_id(
        vec![Reply::WithHeaders(
            500,
            vec![("retry-after", "3600".to_string())],
        )],
        Reply::Status(200),
    )
    .await;
    let now = Receiver::per_id(
        vec![Reply::WithHeaders(
            500,
            vec![("retry-after", "0".to_string())],
        )],
        Reply::Status(200),
    )
    .await;
    stack.subscribe(&later.url("/later"), &["*"]).await;
    stack.subscribe(&now.url("/now"), &["*"]).await;
    let published = stack.publish(json!({"type": "a.b", "data": {}})).await;
    let id = published["id"].as_str().unwrap();
    let runner = stack.start_delivery();
    wait_for_status(&stack, id, 2, "delivered").await;
    runner.stop().await;
    for receiver in [&later, &now] {
        assert!(
            receiver.by_id().get(id).is_some_and(|r| r.len() >= 2),
            "each subscriber got its retry"
        );
    }
    let delays = stack.queue.delays.lock().unwrap().clone();
    assert!(delays.len() >= 2, "one retry per subscriber: {delays:?}");
    // The schedule's 1 s with ±20 % jitter (a millisecond either side for rounding); the
    // 3600 s asked for would have been capped at 2 s, and 0 s would have been 0.
    for d in &delays {
        assert!(
            (Duration::from_millis(799)..=Duration::from_millis(1201)).contains(d),
            "a 500's Retry-After decided the delay: {delays:?}"
        );
    }
}

/// The first page's cursor (with `limit=1`) of a list, which must have a second page.
async fn first_cursor(stack: &Stack, key: &str, path: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    let url = format!("{path}{sep}limit=1");
    let (status, body) = stack.api_as(key, Method::GET, &url, None).await;
    assert_eq!(status, StatusCode::OK, "{url}: {body}");
    body["next_cursor"]
        .as_str()
        .unwrap_or_else(|| panic!("{url}: no second page: {body}"))
        .to_string()
}

async fn with_cursor(stack: &Stack, key: &str, path: &str, cursor: &str) -> (StatusCode, Value) {
    let sep = if path.contains('?') { '&' } else { '?' };
    stack
        .api_as(
            key,
            Method::GET,
            &format!("{path}{sep}limit=1&cursor={cursor}"),
            None,
        )
        .await
}

/// A cursor works only on the list, with the filters, and for the tenant it came from: on
/// every list route and with each filter, one from another filter and one used by another
/// tenant are refused with `400 invalid_cursor`.
#[tokio::test]
async fn every_list_refuses_a_cursor_from_another_filter_or_another_tenant() {
    let stack = Stack::new().await;
    let tenant = TenantId::default_tenant();
    let (_, other_admin) = stack.api_key("other", "admin").await;
    // Keys of tenant default, for two pages of /v1/api-keys.
    stack.api_key("default", "reader").await;
    stack.api_key("default", "publisher").await;
    // Three active subscribers and two disabled ones.
    let mut subs = Vec::new();
    for i in 0..5 {
        let (id, _) = stack
            .subscribe(&format!("https://example.com/{i}"), &["order.*"])
            .await;
        subs.push(SubscriberId::parse(&id).unwrap());
    }
    for sub in &subs[3..] {
        let (status, body) = stack
            .api_call(
                Method::PATCH,
                &format!("/v1/subscribers/{sub}"),
                Some(&json!({"active": false})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (s1, s2, s3) = (&subs[0], &subs[1], &subs[2]);
    // Two events, each failing once then succeeding for s1 and s2: eight attempts, four of
    // each outcome, four per subscriber and per event.
    let base = Utc::now() - chrono::Duration::minutes(10);
    let mut events = Vec::new();
    for i in 0..2 {
        let at = base + chrono::Duration::minutes(i);
        let event = EventId::minted_at(u128::try_from(at.timestamp_millis()).unwrap());
        stack
            .adapters
            .events
            .put_event(&EventRecord {
                id: event.clone(),
                tenant: tenant.clone(),
                event_type: EventType::parse("order.created").unwrap(),
                timestamp: at,
                data: Some(serde_json::value::RawValue::from_string("{}".into()).unwrap()),
                correlation_id: event.to_string(),
                subscriber_ids: vec![s1.clone(), s2.clone()],
            })
            .await
            .unwrap();
        for sub in [s1, s2] {
            for (n, outcome) in [(1, Outcome::Failure), (2, Outcome::Success)] {
                let started = at + chrono::Duration::seconds(i64::from(n));
                let attempt = AttemptRecord {
                    event_id: event.clone(),
                    tenant: tenant.clone(),
                    subscriber_id: sub.clone(),
                    event_type: EventType::parse("order.created").unwrap(),
                    attempt: n,
                    outcome,
                    status_code: Some(if n == 1 { 500 } else { 200 }),
                    latency_ms: 5,
                    error: (n == 1).then(|| "HTTP 500".to_string()),
                    response_body: None,
                    url: "https://example.com/hook".into(),
                    started_at: started,
                    finished_at: started + chrono::Duration::milliseconds(5),
                };
                let state = if n == 1 {
                    DeliveryState::Retrying
                } else {
                    DeliveryState::Delivered
                };
                stack
                    .adapters
                    .log
                    .record(
                        &attempt,
                        &DeliveryStatus {
                            subscriber_id: sub.clone(),
                            status: state,
                            attempts: n,
                            last_status_code: attempt.status_code,
                            last_error: attempt.error.clone(),
                            updated_at: Some(attempt.finished_at),
                        },
                    )
                    .await
                    .unwrap();
            }
        }
        // And a dead letter of s3 for each event.
        stack
            .adapters
            .dead_letters
            .put(&DeadLetterEntry {
                tenant: tenant.clone(),
                event_id: event.clone(),
                subscriber_id: s3.clone(),
                event_type: EventType::parse("order.created").unwrap(),
                reason: "attempts_exhausted: HTTP 500".into(),
                attempts: 3,
                dead_at: at + chrono::Duration::seconds(30),
                message: None,
            })
            .await
            .unwrap();
        events.push(event);
    }
    let (e1, e2) = (&events[0], &events[1]);
    let time = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let since = time(base - chrono::Duration::hours(1));
    let since_other = time(base - chrono::Duration::hours(2));
    let until = time(Utc::now() + chrono::Duration::hours(1));
    let until_other = time(Utc::now() + chrono::Duration::hours(2));

    // Each list with a filter, and the same list with other filters (or another list).
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            "/v1/subscribers".into(),
            vec![
                "/v1/subscribers?active=true".into(),
                "/v1/subscribers?active=false".into(),
            ],
        ),
        (
            "/v1/subscribers?active=true".into(),
            vec![
                "/v1/subscribers".into(),
                "/v1/subscribers?active=false".into(),
            ],
        ),
        (
            "/v1/subscribers?active=false".into(),
            vec![
                "/v1/subscribers".into(),
                "/v1/subscribers?active=true".into(),
            ],
        ),
        (
            "/v1/deliveries".into(),
            vec![
                format!("/v1/deliveries?subscriber_id={s1}"),
                format!("/v1/deliveries?event_id={e1}"),
                "/v1/deliveries?outcome=failure".into(),
                format!("/v1/deliveries?since={since}"),
                format!("/v1/deliveries?until={until}"),
                "/v1/subscribers".into(),
            ],
        ),
        (
            format!("/v1/deliveries?subscriber_id={s1}"),
            vec![
                format!("/v1/deliveries?subscriber_id={s2}"),
                "/v1/deliveries".into(),
                format!("/v1/deliveries?subscriber_id={s1}&outcome=failure"),
                format!("/v1/deliveries?subscriber_id={s1}&since={since}"),
            ],
        ),
        (
            format!("/v1/deliveries?event_id={e1}"),
            vec![
                format!("/v1/deliveries?event_id={e2}"),
                "/v1/deliveries".into(),
                format!("/v1/deliveries?event_id={e1}&subscriber_id={s1}"),
                format!("/v1/deliveries?event_id={e1}&outcome=success"),
            ],
        ),
        (
            "/v1/deliveries?outcome=failure".into(),
            vec![
                "/v1/deliveries?outcome=success".into(),
                "/v1/deliveries".into(),
                format!("/v1/deliveries?outcome=failure&subscriber_id={s1}"),
            ],
        ),
        (
            format!("/v1/deliveries?since={since}"),
            vec![
                format!("/v1/deliveries?since={since_other}"),
                "/v1/deliveries".into(),
                format!("/v1/deliveries?since={since}&until={until}"),
            ],
        ),
        (
            format!("/v1/deliveries?until={until}"),
            vec![
                format!("/v1/deliveries?until={until_other}"),
                "/v1/deliveries".into(),
            ],
        ),
        (
            format!("/v1/deliveries?subscriber_id={s1}&outcome=failure"),
            vec![
                format!("/v1/deliveries?subscriber_id={s1}&outcome=success"),
                format!("/v1/deliveries?subscriber_id={s1}"),
                "/v1/deliveries?outcome=failure".into(),
            ],
        ),
        (
            "/v1/dlq".into(),
            vec![
                format!("/v1/dlq?subscriber_id={s3}"),
                format!("/v1/dlq?subscriber_id={s1}"),
                "/v1/deliveries".into(),
            ],
        ),
        (
            format!("/v1/dlq?subscriber_id={s3}"),
            vec![
                "/v1/dlq".into(),
                format!("/v1/dlq?subscriber_id={s1}"),
                format!("/v1/deliveries?subscriber_id={s3}"),
            ],
        ),
        (
            "/v1/audit".into(),
            vec!["/v1/api-keys".into(), "/v1/subscribers".into()],
        ),
        (
            "/v1/api-keys".into(),
            vec!["/v1/audit".into(), "/v1/subscribers".into()],
        ),
    ];
    let mut wrong = Vec::new();
    for (path, others) in &cases {
        let cursor = first_cursor(&stack, ADMIN_KEY, path).await;
        // Its own list takes it.
        let (status, body) = with_cursor(&stack, ADMIN_KEY, path, &cursor).await;
        if status != StatusCode::OK {
            wrong.push(format!("{path}: its own cursor got {status} {body}"));
        }
        let mut refusals = vec![(other_admin.as_str(), path.clone(), "another tenant")];
        refusals.extend(
            others
                .iter()
                .map(|o| (ADMIN_KEY, o.clone(), "another filter or list")),
        );
        for (key, target, why) in refusals {
            let (status, body) = with_cursor(&stack, key, &target, &cursor).await;
            if status != StatusCode::BAD_REQUEST || body["error"]["code"] != "invalid_cursor" {
                wrong.push(format!(
                    "cursor of {path} on {target} ({why}): {status} {body}"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "cursors not bound to their list:\n{}",
        wrong.join("\n")
    );
}

/// Outside local mode the API itself refuses `http://` and non-public targets, on create
/// and on update, with a 422 and the URL error's code, writing nothing.
#[tokio::test]
async fn outside_local_mode_the_api_refuses_http_and_private_subscriber_urls() {
    let stack = Stack::new().await;
    let mut strict_config = stack.api_config.clone();
    strict_config.local_mode = false;
    let strict = skyhook_http::with_fallbacks(skyhook_api::router(Arc::new(
        skyhook_api::ApiState::new(&stack.adapters, &strict_config),
    )));
    let receiver = Receiver::always(200).await;
    let refused = [
        ("http://example.com/hook".to_string(), "insecure_url"),
        (receiver.url("/hook"), "insecure_url"),
        ("https://127.0.0.1/hook".into(), "forbidden_target"),
        ("https://localhost/hook".into(), "forbidden_target"),
        ("https://10.1.2.3/hook".into(), "forbidden_target"),
        ("https://192.168.1.20/hook".into(), "forbidden_target"),
        (
            "https://169.254.169.254/latest/meta-data".into(),
            "forbidden_target",
        ),
        ("https://[::1]/hook".into(), "forbidden_target"),
        ("https://[fd00::1]/hook".into(), "forbidden_target"),
    ];

    // A public https URL is taken: the router refuses by the policy, not wholesale.
    let (status, body) = stack
        .api_via(
            &strict,
            ADMIN_KEY,
            Method::POST,
            "/v1/subscribers",
            Some(&json!({"url": "https://hooks.example.com/a", "event_types": ["*"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_string();

    let (items, secrets) = (stack.table_items().await, stack.secret_count().await);
    for (url, code) in &refused {
        let (status, body) = stack
            .api_via(
                &strict,
                ADMIN_KEY,
                Method::POST,
                "/v1/subscribers",
                Some(&json!({"url": url, "event_types": ["*"]})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "create {url}: {body}"
        );
        assert_eq!(body["error"]["code"], *code, "create {url}: {body}");
        let (status, body) = stack
            .api_via(
                &strict,
                ADMIN_KEY,
                Method::PATCH,
                &format!("/v1/subscribers/{id}"),
                Some(&json!({"url": url})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "update {url}: {body}"
        );
        assert_eq!(body["error"]["code"], *code, "update {url}: {body}");
    }
    assert_eq!(
        stack.table_items().await,
        items,
        "a refused URL wrote nothing"
    );
    assert_eq!(stack.secret_count().await, secrets, "nor made a secret");
    let (status, body) = stack
        .api_via(
            &strict,
            ADMIN_KEY,
            Method::GET,
            &format!("/v1/subscribers/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["url"], "https://hooks.example.com/a");
    let (status, body) = stack
        .api_via(&strict, ADMIN_KEY, Method::GET, "/v1/subscribers", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "{body}");

    // The same URLs in local mode are taken: the refusals above were strict mode's.
    for (url, _) in &refused {
        let (status, body) = stack
            .api_call(
                Method::POST,
                "/v1/subscribers",
                Some(&json!({"url": url, "event_types": ["*"]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "local mode, {url}: {body}");
    }
}

/// Provisioning twice with the same names succeeds, returns the same resources, and keeps
/// what the first made (and what was written to it) rather than making anything again.
#[tokio::test]
async fn provisioning_twice_returns_the_same_resources_and_duplicates_nothing() {
    let sdk = skyhook_tests::sdk_config().await;
    let prefix = unique("skyhook-prov");
    let names = ResourceNames::with_prefix(&prefix);
    let first = provision(&sdk, &names, 3)
        .await
        .expect("first provisioning");
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    // Something in the table and in the queue, which provisioning again must keep.
    ddb.put_item()
        .table_name(&first.table)
        .item("pk", AttributeValue::S("MARK".into()))
        .item("sk", AttributeValue::S("MARK".into()))
        .send()
        .await
        .unwrap();
    sqs.send_message()
        .queue_url(&first.queue_url)
        .message_body("marker")
        .send()
        .await
        .unwrap();

    let second = provision(&sdk, &names, 3)
        .await
        .expect("provisioning again");
    assert_eq!(
        format!("{first:?}"),
        format!("{second:?}"),
        "the same table, stats table, stream, queues"
    );

    let mut tables = BTreeSet::new();
    let mut pages = ddb.list_tables().into_paginator().items().send();
    while let Some(name) = pages.next().await {
        let name = name.expect("listing tables");
        if name.starts_with(&prefix) {
            tables.insert(name);
        }
    }
    assert_eq!(
        tables,
        BTreeSet::from([first.table.clone(), first.stats_table.clone()])
    );
    let queues = sqs
        .list_queues()
        .queue_name_prefix(&prefix)
        .send()
        .await
        .unwrap()
        .queue_urls()
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>();
    assert_eq!(
        queues,
        BTreeSet::from([first.queue_url.clone(), first.dlq_url.clone()])
    );
    let table = ddb
        .describe_table()
        .table_name(&first.table)
        .send()
        .await
        .unwrap();
    let table = table.table().unwrap();
    let indexes: Vec<_> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name())
        .collect();
    assert_eq!(indexes, vec!["gsi1"], "one index, not two");
    assert_eq!(table.latest_stream_arn(), Some(first.stream_arn.as_str()));
    let ttl = ddb
        .describe_time_to_live()
        .table_name(&first.table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&first.queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attrs = attrs.attributes().cloned().unwrap_or_default();
    let redrive: Value = serde_json::from_str(
        attrs
            .get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
            .expect("a redrive policy"),
    )
    .unwrap();
    assert_eq!(redrive["deadLetterTargetArn"], first.dlq_arn.as_str());
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "3"
    );

    let kept = ddb
        .get_item()
        .table_name(&first.table)
        .key("pk", AttributeValue::S("MARK".into()))
        .key("sk", AttributeValue::S("MARK".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert!(kept.item().is_some(), "the table was kept, not made again");
    let got = sqs
        .receive_message()
        .queue_url(&first.queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.messages()
            .iter()
            .filter_map(|m| m.body())
            .collect::<Vec<_>>(),
        vec!["marker"],
        "the queue was kept, not made again"
    );
}

/// Every log line, as a subscriber at DEBUG (TRACE for Skyhook's own crates) would write it:
/// each event's and each span's fields, values as the code gave them.
#[derive(Clone, Default)]
struct Capture {
    lines: Arc<Mutex<Vec<String>>>,
    next_span: Arc<AtomicU64>,
}

impl Capture {
    fn wants(meta: &tracing::Metadata<'_>) -> bool {
        *meta.level() != tracing::Level::TRACE || meta.target().starts_with("skyhook")
    }

    fn push(&self, line: String) {
        self.lines.lock().unwrap().push(line);
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

#[derive(Default)]
struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }

    fn record_error(
        &mut self,
        field: &tracing::field::Field,
        value: &(dyn std::error::Error + 'static),
    ) {
        let _ = write!(self.0, " {}={value}", field.name());
        let mut source = value.source();
        while let Some(s) = source {
            let _ = write!(self.0, ": {s}");
            source = s.source();
        }
    }
}

impl tracing::Subscriber for Capture {
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if Self::wants(meta) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        Self::wants(meta)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = Fields::default();
        span.record(&mut fields);
        let meta = span.metadata();
        self.push(format!(
            "{} {} span {}:{}",
            meta.level(),
            meta.target(),
            meta.name(),
            fields.0
        ));
        tracing::span::Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _span: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        self.push(format!("span record:{}", fields.0));
    }

    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        self.push(format!("{} {}:{}", meta.level(), meta.target(), fields.0));
    }

    fn enter(&self, _span: &tracing::span::Id) {}

    fn exit(&self, _span: &tracing::span::Id) {}
}

/// With every log line captured at DEBUG (TRACE for Skyhook's crates), a day of work —
/// subscribers with a given secret and a custom header, keys issued and used, deliveries
/// (one failing first), a rotation, a test send, refused keys — logs no signing secret
/// (whole or its base64 key), no API key and no custom header value.
#[tokio::test]
async fn no_secret_api_key_or_header_value_reaches_a_log_line_even_at_debug() {
    let capture = Capture::default();
    // The global default reaches any thread; the scoped one this test's own, should a
    // global one have been installed before (when not run one test per process).
    let _ = tracing::subscriber::set_global_default(capture.clone());
    let _scoped = tracing::subscriber::set_default(capture.clone());

    let stack = Stack::new().await;
    let receiver = Receiver::per_id(vec![Reply::Status(500)], Reply::Status(200)).await;
    let random_key = || {
        let mut bytes = uuid::Uuid::new_v4().as_bytes().to_vec();
        bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let secret = format!("whsec_{}", random_key());
    let header_value = format!("hdr-VALUE-{}", uuid::Uuid::new_v4().simple());
    let header_value_2 = format!("hdr-VALUE-{}", uuid::Uuid::new_v4().simple());
    let wrong_key = format!("sk_live_{}", uuid::Uuid::new_v4().simple());

    let (status, body) = stack
        .api_call(
            Method::POST,
            "/v1/subscribers",
            Some(&json!({
                "url": receiver.url("/hook"),
                "event_types": ["order.*"],
                "secret": secret,
                "headers": {"x-receiver-token": header_value},
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let sub = body["id"].as_str().unwrap().to_string();
    let (_, issued) = stack.api_key("default", "publisher").await;
    let (_, issued_admin) = stack.api_key("default", "admin").await;

    let runner = stack.start_delivery();
    let (status, body) = stack
        .ingest_as(&issued, &json!({"type": "order.created", "data": {"n": 1}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let first = body["id"].as_str().unwrap().to_string();
    let got = receiver
        .wait_for_ids(&[&first], Duration::from_secs(30))
        .await;
    let first_request = &got[&first][0];
    first_request
        .verify(&secret)
        .expect("signed with the secret");
    assert_eq!(first_request.header("x-receiver-token"), header_value);
    wait_for_status(&stack, &first, 1, "delivered").await;

    // A rotation (the old secret signs alongside) and a new header value.
    let (status, body) = stack
        .api_as(
            &issued_admin,
            Method::POST,
            &format!("/v1/subscribers/{sub}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rotated = body["secret"].as_str().unwrap().to_string();
    let (status, body) = stack
        .api_as(
            &issued_admin,
            Method::PATCH,
            &format!("/v1/subscribers/{sub}"),
            Some(&json!({"headers": {"x-receiver-token": header_value_2}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = stack
        .ingest_as(&issued, &json!({"type": "order.paid", "data": {"n": 2}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let second = body["id"].as_str().unwrap().to_string();
    let (status, body) = stack
        .api_as(
            &issued_admin,
            Method::POST,
            &format!("/v1/subscribers/{sub}/test"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let test = body["id"].as_str().unwrap().to_string();
    let got = receiver
        .wait_for_ids(&[&second, &test], Duration::from_secs(30))
        .await;
    let second_request = got[&second].last().unwrap();
    second_request.verify(&rotated).expect("the new secret");
    second_request.verify(&secret).expect("and the old one");
    assert_eq!(second_request.header("x-receiver-token"), header_value_2);
    wait_for_status(&stack, &second, 1, "delivered").await;

    // Refused keys.
    let (status, _) = stack
        .api_as(&wrong_key, Method::GET, "/v1/subscribers", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = stack
        .ingest_as(&wrong_key, &json!({"type": "order.created", "data": {}}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = stack
        .api_as(&issued, Method::GET, "/v1/api-keys", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    runner.stop().await;

    let lines = capture.lines();
    // The capture saw the work: a line of Skyhook's own (the delivery function's span)
    // names the event.
    let ours = |l: &String| {
        l.split_whitespace()
            .nth(1)
            .is_some_and(|target| target.starts_with("skyhook_"))
    };
    assert!(
        lines.iter().any(|l| ours(l) && l.contains(&first)),
        "the capture holds no line of Skyhook's about {first} ({} lines)",
        lines.len()
    );
    let b64 = |s: &str| s.strip_prefix("whsec_").unwrap().to_string();
    let never = [
        ("the signing secret", secret.clone()),
        ("the signing secret's key", b64(&secret)),
        ("the rotated secret", rotated.clone()),
        ("the rotated secret's key", b64(&rotated)),
        ("the bootstrap admin key", ADMIN_KEY.to_string()),
        ("an issued publisher key", issued.clone()),
        ("an issued admin key", issued_admin.clone()),
        ("a custom header value", header_value.clone()),
        ("a changed custom header value", header_value_2.clone()),
        ("a refused key", wrong_key.clone()),
    ];
    let mut leaks = Vec::new();
    for (what, value) in &never {
        for line in lines.iter().filter(|l| l.contains(value.as_str())) {
            let mut shown = line.clone();
            shown.truncate(400);
            leaks.push(format!("{what}: {shown}"));
        }
    }
    assert!(
        leaks.is_empty(),
        "{} log lines carry a secret:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}
