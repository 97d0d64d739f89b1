//! Endpoint health end to end: nothing queued for a subscriber is lost when it is disabled
//! or deleted; fairness (in-flight cap, rate limit, fair-queue groups); the circuit breaker,
//! 410 Gone and auto-disable.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use skyhook_domain::breaker::BreakerPolicy;
use skyhook_tests::{ADMIN_KEY, Receiver, Reply, Stack, StackOptions, eventually};

/// Each event's delivery status for `subscriber` (state, attempts), where it has one.
async fn statuses(stack: &Stack, events: &[String], subscriber: &str) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    for id in events {
        let status = stack.event_status(id).await;
        if let Some(d) = status["deliveries"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["subscriber_id"] == subscriber)
        {
            out.insert(id.clone(), d.clone());
        }
    }
    out
}

/// The distinct `webhook-id`s a receiver got (a duplicate delivery shares its id).
fn webhook_ids(receiver: &Receiver) -> BTreeSet<String> {
    receiver
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect()
}

/// The subscriber's entries in `GET /v1/dlq`.
async fn dead_letters(stack: &Stack, subscriber: &str) -> Vec<Value> {
    stack
        .walk(
            ADMIN_KEY,
            &format!("/v1/dlq?subscriber_id={subscriber}"),
            50,
        )
        .await
}

/// Publishes `n` events of type `a.b`; their ids.
async fn publish_many(stack: &Stack, n: usize) -> Vec<String> {
    let mut events = Vec::new();
    for i in 0..n {
        let published = stack
            .publish(json!({"type": "a.b", "data": {"n": i}}))
            .await;
        events.push(published["id"].as_str().unwrap().to_string());
    }
    events
}

/// Waits until every one of `events` is delivered to `subscriber`; their statuses.
async fn all_delivered(
    stack: &Stack,
    events: &[String],
    subscriber: &str,
    timeout: Duration,
) -> HashMap<String, Value> {
    eventually(timeout, "every delivery", || async {
        let s = statuses(stack, events, subscriber).await;
        (s.len() == events.len() && s.values().all(|d| d["status"] == "delivered")).then_some(s)
    })
    .await
}

/// Creates a subscriber from this body; its view.
async fn create(stack: &Stack, body: Value) -> Value {
    let (status, created) = stack
        .api_call(Method::POST, "/v1/subscribers", Some(&body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

async fn set_active(stack: &Stack, id: &str, active: bool) {
    let (status, body) = stack
        .api_call(
            Method::PATCH,
            &format!("/v1/subscribers/{id}"),
            Some(&json!({ "active": active })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn delete(stack: &Stack, id: &str) {
    let (status, body) = stack
        .api_call(Method::DELETE, &format!("/v1/subscribers/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

#[tokio::test]
async fn disabled_subscribers_park_their_deliveries_until_enabled_and_deleted_ones_end_them() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    let (paused, paused_secret) = stack
        .subscribe(&receiver.url("/paused"), &["order.*"])
        .await;
    let (gone, _) = stack.subscribe(&receiver.url("/gone"), &["order.*"]).await;
    let (parked_then_gone, _) = stack
        .subscribe(&receiver.url("/parked-then-gone"), &["order.*"])
        .await;

    // Three events queued for all three subscribers before any delivery runs.
    let mut events = Vec::new();
    for n in 0..3 {
        let published = stack
            .publish(json!({"type": "order.created", "data": {"n": n}}))
            .await;
        assert_eq!(published["subscribers"], 3, "{published}");
        events.push(published["id"].as_str().unwrap().to_string());
    }
    set_active(&stack, &paused, false).await;
    set_active(&stack, &parked_then_gone, false).await;
    delete(&stack, &gone).await;

    let runner = stack.start_delivery();
    // Disabled: parked, listed in the DLQ with their reason, no attempt spent.
    for sub in [&paused, &parked_then_gone] {
        let parked = eventually(Duration::from_secs(30), "parked deliveries", || async {
            let entries = dead_letters(&stack, sub).await;
            (entries.len() == events.len()).then_some(entries)
        })
        .await;
        let parked_events: BTreeSet<&str> = parked
            .iter()
            .map(|e| e["event_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            parked_events,
            events.iter().map(String::as_str).collect::<BTreeSet<_>>()
        );
        for entry in &parked {
            assert_eq!(entry["reason"], "subscriber_disabled", "{entry}");
            assert_eq!(entry["attempts"], 0, "{entry}");
        }
    }
    // Deleted: each delivery ends with status `subscriber_deleted`, not sent.
    let ended = eventually(Duration::from_secs(30), "subscriber_deleted", || async {
        let s = statuses(&stack, &events, &gone).await;
        (s.len() == events.len() && s.values().all(|d| d["status"] == "subscriber_deleted"))
            .then_some(s)
    })
    .await;
    assert!(ended.values().all(|d| d["attempts"] == 0), "{ended:?}");
    // Parked ones are not failed: they wait.
    for d in statuses(&stack, &events, &paused).await.values() {
        assert_ne!(d["status"], "failed", "{d}");
    }
    assert!(
        receiver.requests().is_empty(),
        "nothing is sent to a disabled or deleted subscriber"
    );

    // Deleting a subscriber whose deliveries are parked ends them too.
    delete(&stack, &parked_then_gone).await;
    let ended = statuses(&stack, &events, &parked_then_gone).await;
    assert_eq!(ended.len(), events.len(), "{ended:?}");
    assert!(
        ended.values().all(|d| d["status"] == "subscriber_deleted"),
        "{ended:?}"
    );
    assert!(dead_letters(&stack, &parked_then_gone).await.is_empty());

    // Enabling sends what was parked, on its first attempt.
    set_active(&stack, &paused, true).await;
    eventually(Duration::from_secs(30), "the parked deliveries", || async {
        let ids: BTreeSet<String> = webhook_ids(&receiver);
        (ids.len() == events.len()).then_some(())
    })
    .await;
    let delivered = eventually(Duration::from_secs(30), "delivered statuses", || async {
        let s = statuses(&stack, &events, &paused).await;
        (s.len() == events.len() && s.values().all(|d| d["status"] == "delivered")).then_some(s)
    })
    .await;
    runner.stop().await;
    assert!(
        delivered.values().all(|d| d["attempts"] == 1),
        "{delivered:?}"
    );
    let requests = receiver.requests();
    let ids: BTreeSet<&str> = requests.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(
        ids,
        events.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    for r in &requests {
        assert_eq!(
            r.path, "/paused",
            "only the enabled subscriber gets anything"
        );
        r.verify(&paused_secret).expect("signed with its secret");
    }
    assert!(dead_letters(&stack, &paused).await.is_empty());
}

#[tokio::test]
async fn every_delivery_message_is_grouped_by_its_subscriber_for_fair_queues() {
    let stack = Stack::new().await;
    let (a, _) = stack.subscribe("https://example.com/a", &["*"]).await;
    let (b, _) = stack.subscribe("https://example.com/b", &["*"]).await;
    stack.publish(json!({"type": "x.y", "data": {}})).await;
    let sqs = aws_sdk_sqs::Client::new(&skyhook_tests::sdk_config().await);
    let mut groups = BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while groups.len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "both messages: {groups:?}"
        );
        let out = sqs
            .receive_message()
            .queue_url(&stack.resources.queue_url)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            let group = m
                .attributes()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
                })
                .cloned()
                .unwrap_or_default();
            assert_eq!(group, body["subscriber_id"].as_str().unwrap(), "{body}");
            groups.insert(group);
        }
    }
    let got = groups;
    assert_eq!(got, BTreeSet::from([a, b]));
}

#[tokio::test]
async fn a_subscriber_never_has_more_deliveries_in_flight_than_its_max_concurrency() {
    let stack = Stack::new().await;
    // Each request takes 1.5 s to answer.
    let receiver = Receiver::start(vec![], Reply::Slow(Duration::from_millis(1500), 200)).await;
    let created = create(
        &stack,
        json!({"url": receiver.url("/slow"), "event_types": ["*"], "max_concurrency": 2}),
    )
    .await;
    assert_eq!(created["max_concurrency"], 2);
    let sub = created["id"].as_str().unwrap().to_string();
    let events = publish_many(&stack, 6).await;
    let runner = stack.start_delivery();
    let delivered = all_delivered(&stack, &events, &sub, Duration::from_secs(60)).await;
    runner.stop().await;
    // Waiting for a place spent no attempt.
    assert!(
        delivered.values().all(|d| d["attempts"] == 1),
        "{delivered:?}"
    );
    assert!(
        !stack.queue.deferred.lock().unwrap().is_empty(),
        "the deliveries over the cap were put off"
    );
    // With two in flight at most, a third request can only arrive once one of the first two
    // has been answered, 1.5 s after it arrived.
    let mut arrivals: Vec<_> = receiver.requests().iter().map(|r| r.at).collect();
    arrivals.sort();
    for w in arrivals.windows(3) {
        assert!(
            w[2] - w[0] >= Duration::from_millis(1500),
            "three requests in flight at once: {arrivals:?}"
        );
    }
    let ids: BTreeSet<String> = webhook_ids(&receiver);
    assert_eq!(ids, events.iter().cloned().collect::<BTreeSet<_>>());
}

#[tokio::test]
async fn delivery_limits_are_validated_and_a_manual_disable_says_so() {
    let stack = Stack::new().await;
    for (field, value, code) in [
        ("max_concurrency", json!(0), "invalid_max_concurrency"),
        ("max_concurrency", json!(101), "invalid_max_concurrency"),
        ("rate_limit", json!(0), "invalid_rate_limit"),
        ("rate_limit", json!(10_001), "invalid_rate_limit"),
    ] {
        let mut body = json!({"url": "https://example.com/h", "event_types": ["*"]});
        body[field] = value;
        let (status, answer) = stack
            .api_call(Method::POST, "/v1/subscribers", Some(&body))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
    }
    let (id, _) = stack.subscribe("https://example.com/h", &["*"]).await;
    let path = format!("/v1/subscribers/{id}");
    let (_, fresh) = stack.api_call(Method::GET, &path, None).await;
    assert_eq!(fresh["max_concurrency"], 10, "{fresh}");
    assert_eq!(fresh["rate_limit"], Value::Null, "{fresh}");
    assert_eq!(fresh["disabled_reason"], Value::Null, "{fresh}");
    let (status, limited) = stack
        .api_call(
            Method::PATCH,
            &path,
            Some(&json!({"rate_limit": 50, "max_concurrency": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{limited}");
    assert_eq!(
        (
            limited["rate_limit"].clone(),
            limited["max_concurrency"].clone()
        ),
        (json!(50), json!(3))
    );
    let (_, unlimited) = stack
        .api_call(Method::PATCH, &path, Some(&json!({"rate_limit": null})))
        .await;
    assert_eq!(unlimited["rate_limit"], Value::Null, "{unlimited}");
    assert_eq!(unlimited["max_concurrency"], 3, "{unlimited}");
    set_active(&stack, &id, false).await;
    let (_, off) = stack.api_call(Method::GET, &path, None).await;
    assert_eq!(off["disabled_reason"], "manual", "{off}");
    set_active(&stack, &id, true).await;
    let (_, on) = stack.api_call(Method::GET, &path, None).await;
    assert_eq!(on["disabled_reason"], Value::Null, "{on}");
}

#[tokio::test]
async fn a_rate_limited_subscriber_gets_no_more_than_its_limit_a_second_and_waiting_spends_no_attempt()
 {
    let mut stack = Stack::new().await;
    // Every take from the shared budget, as the delivery side asked for it.
    let budget = Arc::new(RecordingBudget {
        inner: stack.adapters.rates.clone(),
        granted: Mutex::default(),
    });
    stack.deliverer.rates = Arc::new(skyhook_delivery::limits::RateLimiter::new(budget.clone()));
    let receiver = Receiver::always(200).await;
    let created = create(
        &stack,
        json!({"url": receiver.url("/limited"), "event_types": ["*"], "rate_limit": 5}),
    )
    .await;
    let sub = created["id"].as_str().unwrap().to_string();
    let events = publish_many(&stack, 20).await;
    let runner = stack.start_delivery();
    let delivered = all_delivered(&stack, &events, &sub, Duration::from_secs(90)).await;
    runner.stop().await;
    assert!(
        delivered.values().all(|d| d["attempts"] == 1),
        "{delivered:?}"
    );
    assert!(!stack.queue.deferred.lock().unwrap().is_empty());
    // No wall-clock second was granted more than the limit, and every request sent was
    // granted: 20 deliveries took at least 4 seconds' budgets.
    let granted = budget.granted.lock().unwrap().clone();
    assert!(granted.values().all(|n| *n <= 5), "{granted:?}");
    assert!(granted.len() >= 4, "{granted:?}");
    let total: u32 = granted.values().sum();
    assert!(
        receiver.requests().len() <= total as usize,
        "{} requests, {total} granted",
        receiver.requests().len()
    );
}

/// The shared rate-limit budget, with what it granted per second.
struct RecordingBudget {
    inner: Arc<dyn skyhook_domain::ports::RateBudget>,
    granted: Mutex<std::collections::BTreeMap<i64, u32>>,
}

#[async_trait::async_trait]
impl skyhook_domain::ports::RateBudget for RecordingBudget {
    async fn take(
        &self,
        tenant: &skyhook_domain::ids::TenantId,
        subscriber: &skyhook_domain::ids::SubscriberId,
        second: i64,
        want: u32,
        limit: u32,
    ) -> Result<bool, skyhook_domain::ports::StoreError> {
        let took = self
            .inner
            .take(tenant, subscriber, second, want, limit)
            .await?;
        if took {
            *self.granted.lock().unwrap().entry(second).or_default() += want;
        }
        Ok(took)
    }
}

async fn subscriber(stack: &Stack, id: &str) -> Value {
    let (status, body) = stack
        .api_call(Method::GET, &format!("/v1/subscribers/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn breaker_stack(failures: u32) -> StackOptions {
    StackOptions {
        schedule: "1s,1s,1s,1s,1s".into(),
        jitter: 0.0,
        breaker: BreakerPolicy {
            failures,
            // Long enough that a test polling for the open state cannot miss it.
            cooldown: Duration::from_secs(6),
            max_cooldown: Duration::from_secs(24),
            ..BreakerPolicy::default()
        },
        ops_bus: true,
        ..StackOptions::default()
    }
}

#[tokio::test]
async fn the_breaker_opens_after_consecutive_failures_holds_deliveries_without_attempts_and_a_probe_closes_it()
 {
    let stack = Stack::with(breaker_stack(3)).await;
    // The first three requests fail, every later one succeeds.
    let receiver = Receiver::start(
        vec![Reply::Status(500), Reply::Status(500), Reply::Status(500)],
        Reply::Status(200),
    )
    .await;
    // One at a time, so the failures are consecutive.
    let created = create(
        &stack,
        json!({"url": receiver.url("/flaky"), "event_types": ["*"], "max_concurrency": 1}),
    )
    .await;
    let sub = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["health"]["state"], "closed", "{created}");
    let events = publish_many(&stack, 5).await;
    let runner = stack.start_delivery();
    let open = eventually(Duration::from_secs(30), "the breaker to open", || async {
        let s = subscriber(&stack, &sub).await;
        (s["health"]["state"] == "open").then_some(s)
    })
    .await;
    assert!(
        open["health"]["consecutive_failures"].as_u64().unwrap() >= 3,
        "{open}"
    );
    assert!(open["health"]["opened_at"].is_string(), "{open}");
    assert_eq!(open["health"]["last_error"], "HTTP 500", "{open}");
    let delivered = all_delivered(&stack, &events, &sub, Duration::from_secs(60)).await;
    runner.stop().await;
    // Three attempts failed; while the breaker was open nothing was sent and no attempt
    // spent: the five deliveries took 5 + 3 attempts in all.
    let attempts: u64 = delivered
        .values()
        .map(|d| d["attempts"].as_u64().unwrap())
        .sum();
    assert_eq!(attempts, 8, "{delivered:?}");
    let closed = subscriber(&stack, &sub).await;
    assert_eq!(closed["health"]["state"], "closed", "{closed}");
    assert_eq!(closed["health"]["consecutive_failures"], 0, "{closed}");
    assert_eq!(closed["active"], true);
    // Operators hear of both on the stack's bus.
    let ops = stack.ops_events().await;
    for kind in ["subscriber.breaker_opened", "subscriber.breaker_closed"] {
        let e = ops
            .iter()
            .find(|e| e["detail-type"] == kind)
            .unwrap_or_else(|| panic!("{kind} on the bus: {ops:?}"));
        assert_eq!(e["source"], "skyhook", "{e}");
        assert_eq!(e["detail"]["subscriber_id"], sub.as_str(), "{e}");
        assert_eq!(e["detail"]["tenant"], "default", "{e}");
        assert!(e["detail"]["reason"].is_string(), "{e}");
    }
    // The requests the receiver saw: 3 failures, then one success per event (and no more
    // than the at-least-once duplicates, which share a webhook-id).
    let ids: BTreeSet<String> = webhook_ids(&receiver);
    assert_eq!(ids, events.iter().cloned().collect::<BTreeSet<_>>());
}

#[tokio::test]
async fn a_410_gone_disables_the_subscriber_at_once_with_an_audit_record_and_keeps_its_delivery() {
    let stack = Stack::with(StackOptions {
        ops_bus: true,
        ..StackOptions::default()
    })
    .await;
    let receiver = Receiver::always(410).await;
    let (sub, _) = stack.subscribe(&receiver.url("/gone"), &["*"]).await;
    let published = stack.publish(json!({"type": "a.b", "data": {}})).await;
    let event = published["id"].as_str().unwrap().to_string();
    let runner = stack.start_delivery();
    let off = eventually(
        Duration::from_secs(30),
        "the subscriber disabled",
        || async {
            let s = subscriber(&stack, &sub).await;
            (s["active"] == false).then_some(s)
        },
    )
    .await;
    assert_eq!(off["disabled_reason"], "gone", "{off}");
    let parked = eventually(Duration::from_secs(30), "the delivery parked", || async {
        let d = dead_letters(&stack, &sub).await;
        (!d.is_empty()).then_some(d)
    })
    .await;
    runner.stop().await;
    assert_eq!(parked[0]["event_id"], event.as_str());
    assert_eq!(parked[0]["reason"], "subscriber_disabled");
    assert_eq!(
        parked[0]["attempts"], 1,
        "the 410 attempt counts: {parked:?}"
    );
    let audit = stack.walk(ADMIN_KEY, "/v1/audit", 50).await;
    let disable = audit
        .iter()
        .find(|a| a["action"] == "subscriber.disable" && a["resource"] == sub.as_str())
        .unwrap_or_else(|| panic!("an audit record of the disable: {audit:?}"));
    assert_eq!(disable["detail"]["reason"], "gone", "{disable}");
    assert_eq!(disable["actor"], "skyhook:delivery", "{disable}");
    let ops = stack.ops_events().await;
    let disabled = ops
        .iter()
        .find(|e| e["detail-type"] == "subscriber.disabled")
        .unwrap_or_else(|| panic!("subscriber.disabled on the bus: {ops:?}"));
    assert_eq!(disabled["detail"]["reason"], "gone", "{disabled}");
    assert_eq!(
        disabled["detail"]["subscriber_id"],
        sub.as_str(),
        "{disabled}"
    );
    // Exactly one request: a 410 is not retried.
    let ids: BTreeSet<String> = webhook_ids(&receiver);
    assert_eq!(ids, BTreeSet::from([event]));
}

#[tokio::test]
async fn a_subscriber_failing_with_no_success_for_the_whole_period_is_disabled() {
    // Twenty retries a second apart: attempts are left to see the clock moved, however
    // slow the machine.
    let mut stack = Stack::with(StackOptions {
        schedule: vec!["1s"; 20].join(","),
        ..breaker_stack(1000)
    })
    .await;
    // The delivery function's clock, moved on by the test.
    let offset = Arc::new(Mutex::new(chrono::Duration::zero()));
    let shifted = offset.clone();
    stack.deliverer.clock = Arc::new(move || chrono::Utc::now() + *shifted.lock().unwrap());
    let receiver = Receiver::always(500).await;
    let (sub, _) = stack.subscribe(&receiver.url("/down"), &["*"]).await;
    stack.publish(json!({"type": "a.b", "data": {}})).await;
    let runner = stack.start_delivery();
    eventually(Duration::from_secs(30), "a first failure", || async {
        let s = subscriber(&stack, &sub).await;
        (s["health"]["consecutive_failures"].as_u64() >= Some(1)).then_some(())
    })
    .await;
    assert_eq!(subscriber(&stack, &sub).await["active"], true);
    // Five days and more later, it still fails.
    *offset.lock().unwrap() = chrono::Duration::days(5) + chrono::Duration::hours(1);
    let off = eventually(
        Duration::from_secs(30),
        "the subscriber disabled",
        || async {
            let s = subscriber(&stack, &sub).await;
            (s["active"] == false).then_some(s)
        },
    )
    .await;
    assert_eq!(off["disabled_reason"], "failing", "{off}");
    // Its delivery is parked, not lost.
    eventually(Duration::from_secs(30), "the delivery parked", || async {
        (!dead_letters(&stack, &sub).await.is_empty()).then_some(())
    })
    .await;
    runner.stop().await;
    let audit = stack.walk(ADMIN_KEY, "/v1/audit", 50).await;
    assert!(
        audit.iter().any(|a| a["action"] == "subscriber.disable"
            && a["resource"] == sub.as_str()
            && a["detail"]["reason"] == "failing"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn an_exhausted_delivery_is_announced_on_the_bus_with_its_event() {
    let stack = Stack::with(StackOptions {
        schedule: "1s".into(),
        ops_bus: true,
        breaker: BreakerPolicy {
            failures: 1000,
            ..BreakerPolicy::default()
        },
        ..StackOptions::default()
    })
    .await;
    let receiver = Receiver::always(500).await;
    let (sub, _) = stack.subscribe(&receiver.url("/down"), &["*"]).await;
    let published = stack.publish(json!({"type": "a.b", "data": {}})).await;
    let event = published["id"].as_str().unwrap().to_string();
    let runner = stack.start_delivery();
    let seen = Arc::new(Mutex::new(Vec::<Value>::new()));
    let exhausted = eventually(Duration::from_secs(30), "delivery.exhausted", || {
        let (stack, seen) = (&stack, seen.clone());
        async move {
            let more = stack.ops_events().await;
            let mut seen = seen.lock().unwrap();
            seen.extend(more);
            seen.iter()
                .find(|e| e["detail-type"] == "delivery.exhausted")
                .cloned()
        }
    })
    .await;
    runner.stop().await;
    assert_eq!(
        exhausted["detail"]["event_id"],
        event.as_str(),
        "{exhausted}"
    );
    assert_eq!(
        exhausted["detail"]["subscriber_id"],
        sub.as_str(),
        "{exhausted}"
    );
    assert!(
        exhausted["detail"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("attempts_exhausted"),
        "{exhausted}"
    );
}

/// A person disabling a subscriber is told to operators too: `subscriber.disabled` with
/// reason `manual` on the stack's bus, put there by the API.
#[tokio::test]
async fn disabling_a_subscriber_by_hand_puts_subscriber_disabled_on_the_bus() {
    let stack = Stack::with(StackOptions {
        ops_bus: true,
        ..StackOptions::default()
    })
    .await;
    let (sub, _) = stack.subscribe("https://example.com/h", &["*"]).await;
    let (status, body) = stack
        .api_call(
            Method::PATCH,
            &format!("/v1/subscribers/{sub}"),
            Some(&json!({"active": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let event = eventually(Duration::from_secs(10), "subscriber.disabled", || async {
        stack
            .ops_events()
            .await
            .into_iter()
            .find(|e| e["detail-type"] == "subscriber.disabled")
    })
    .await;
    assert_eq!(event["source"], "skyhook", "{event}");
    assert_eq!(event["detail"]["reason"], "manual", "{event}");
    assert_eq!(event["detail"]["subscriber_id"], sub.as_str(), "{event}");
}
