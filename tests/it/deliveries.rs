//! The attempt log (`GET /v1/deliveries`) and stats (`GET /v1/stats`), over attempts written
//! through the real DynamoDB attempt log with chosen times, tenants and outcomes.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use http::{Method, StatusCode};
use serde_json::Value;
use skyhook_domain::event_type::EventType;
use skyhook_domain::ids::{EventId, SubscriberId, TenantId};
use skyhook_domain::model::{
    AttemptRecord, DeliveryState, DeliveryStatus, EventRecord, Outcome, format_time,
};
use skyhook_tests::Stack;

fn attempt(
    tenant: &TenantId,
    event: &EventId,
    sub: &SubscriberId,
    n: u32,
    outcome: Outcome,
    at: DateTime<Utc>,
) -> AttemptRecord {
    AttemptRecord {
        event_id: event.clone(),
        tenant: tenant.clone(),
        subscriber_id: sub.clone(),
        event_type: EventType::parse("order.created").unwrap(),
        attempt: n,
        outcome,
        status_code: Some(if outcome == Outcome::Success {
            200
        } else {
            500
        }),
        latency_ms: 12,
        error: (outcome == Outcome::Failure).then(|| "HTTP 500".to_string()),
        response_body: None,
        url: "https://example.com/hook".into(),
        started_at: at,
        finished_at: at + Duration::milliseconds(12),
    }
}

fn status(sub: &SubscriberId, state: DeliveryState, attempts: u32) -> DeliveryStatus {
    DeliveryStatus {
        subscriber_id: sub.clone(),
        status: state,
        attempts,
        last_status_code: None,
        last_error: None,
        updated_at: Some(Utc::now()),
    }
}

/// Stores an event accepted at `at` and fanned out to `subs`; returns its id.
async fn stored_event(
    stack: &Stack,
    tenant: &TenantId,
    at: DateTime<Utc>,
    subs: &[&SubscriberId],
) -> EventId {
    let id = EventId::minted_at(u128::try_from(at.timestamp_millis()).unwrap());
    stack
        .adapters
        .events
        .put_event(&EventRecord {
            id: id.clone(),
            tenant: tenant.clone(),
            event_type: EventType::parse("order.created").unwrap(),
            timestamp: at,
            data: Some(serde_json::value::RawValue::from_string("{}".into()).unwrap()),
            correlation_id: id.to_string(),
            subscriber_ids: subs.iter().map(|s| (*s).clone()).collect(),
        })
        .await
        .unwrap();
    id
}

/// The attempts a page walk returned, as (event, subscriber, attempt).
fn keys(items: &[Value]) -> Vec<(String, String, u64)> {
    items
        .iter()
        .map(|a| {
            (
                a["event_id"].as_str().unwrap().to_string(),
                a["subscriber_id"].as_str().unwrap().to_string(),
                a["attempt"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn assert_unique(items: &[(String, String, u64)]) {
    let set: HashSet<_> = items.iter().collect();
    assert_eq!(set.len(), items.len(), "an attempt was repeated");
}

#[tokio::test]
async fn the_attempt_log_filters_and_pages_without_losing_or_repeating_anything() {
    let stack = Stack::new().await;
    let log = stack.adapters.log.clone();
    let default = TenantId::default_tenant();
    let acme = TenantId::parse("acme").unwrap();
    let (s1, _) = stack.subscribe("https://example.com/1", &["*"]).await;
    let (s2, _) = stack.subscribe("https://example.com/2", &["*"]).await;
    let (s1, s2) = (
        SubscriberId::parse(&s1).unwrap(),
        SubscriberId::parse(&s2).unwrap(),
    );
    // Inside the stack's one-hour log retention: moto drops expired items on read.
    let base = Utc::now() - Duration::minutes(20);
    // Nine events a minute apart; each gets a failed then a successful attempt for s1 and
    // one successful attempt for s2: 27 attempts of tenant default.
    let mut events = Vec::new();
    let mut all = Vec::new();
    for i in 0..9 {
        let t = base + Duration::minutes(i);
        // An event accepted at `t` (its attempts start after it), fanned out to both.
        let event = stored_event(&stack, &default, t, &[&s1, &s2]).await;
        for a in [
            attempt(&default, &event, &s1, 1, Outcome::Failure, t),
            attempt(
                &default,
                &event,
                &s1,
                2,
                Outcome::Success,
                t + Duration::seconds(5),
            ),
            attempt(
                &default,
                &event,
                &s2,
                1,
                Outcome::Success,
                t + Duration::seconds(1),
            ),
        ] {
            let st = status(&a.subscriber_id, DeliveryState::Delivered, a.attempt);
            log.record(&a, &st).await.unwrap();
            all.push(a);
        }
        events.push(event);
    }
    // Tenant acme's attempts must never show up for tenant default, nor the other way.
    let acme_sub = SubscriberId::new();
    let acme_event = stored_event(&stack, &acme, base, &[&acme_sub]).await;
    for n in 1..=3 {
        let a = attempt(
            &acme,
            &acme_event,
            &acme_sub,
            n,
            Outcome::Failure,
            base + Duration::minutes(n.into()),
        );
        log.record(&a, &status(&acme_sub, DeliveryState::Retrying, n))
            .await
            .unwrap();
    }

    let walked = keys(
        &stack
            .walk(skyhook_tests::ADMIN_KEY, "/v1/deliveries", 4)
            .await,
    );
    assert_unique(&walked);
    assert_eq!(walked.len(), 27);
    let mut want: Vec<_> = all
        .iter()
        .map(|a| {
            (
                a.event_id.to_string(),
                a.subscriber_id.to_string(),
                u64::from(a.attempt),
            )
        })
        .collect();
    // Newest first.
    all.sort_by_key(|a| std::cmp::Reverse(a.started_at));
    let newest_first: Vec<_> = all
        .iter()
        .map(|a| {
            (
                a.event_id.to_string(),
                a.subscriber_id.to_string(),
                u64::from(a.attempt),
            )
        })
        .collect();
    assert_eq!(walked, newest_first);

    let by_sub = keys(
        &stack
            .walk(
                skyhook_tests::ADMIN_KEY,
                &format!("/v1/deliveries?subscriber_id={s1}"),
                5,
            )
            .await,
    );
    assert_unique(&by_sub);
    assert_eq!(by_sub.len(), 18);
    assert!(by_sub.iter().all(|k| k.1 == s1.as_str()));

    let by_event = keys(
        &stack
            .walk(
                skyhook_tests::ADMIN_KEY,
                &format!("/v1/deliveries?event_id={}", events[4]),
                2,
            )
            .await,
    );
    assert_eq!(by_event, {
        let mut v = vec![
            (events[4].to_string(), s1.to_string(), 1),
            (events[4].to_string(), s1.to_string(), 2),
            (events[4].to_string(), s2.to_string(), 1),
        ];
        v.sort_by(|a, b| (&a.1, a.2).cmp(&(&b.1, b.2)));
        v
    });

    // Filtered pages are still full pages, and the walk still ends.
    let failures = stack
        .walk(
            skyhook_tests::ADMIN_KEY,
            "/v1/deliveries?outcome=failure",
            2,
        )
        .await;
    assert_eq!(failures.len(), 9);
    assert!(
        failures
            .iter()
            .all(|a| a["outcome"] == "failure" && a["status_code"] == 500)
    );
    let successes = keys(
        &stack
            .walk(
                skyhook_tests::ADMIN_KEY,
                &format!("/v1/deliveries?outcome=success&subscriber_id={s2}"),
                4,
            )
            .await,
    );
    assert_eq!(successes.len(), 9);

    // A window: events 2 to 4 inclusive (their attempts start at +0 s, +1 s and +5 s).
    let since = format_time(base + Duration::minutes(2));
    let until = format_time(base + Duration::minutes(4) + Duration::seconds(5));
    let window = keys(
        &stack
            .walk(
                skyhook_tests::ADMIN_KEY,
                &format!("/v1/deliveries?since={since}&until={until}"),
                4,
            )
            .await,
    );
    let mut expected: Vec<_> = want
        .drain(..)
        .filter(|k| events[2..=4].iter().any(|e| e.as_str() == k.0))
        .collect();
    let mut got = window.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    let since_only = stack
        .walk(
            skyhook_tests::ADMIN_KEY,
            &format!(
                "/v1/deliveries?since={}",
                format_time(base + Duration::minutes(8))
            ),
            10,
        )
        .await;
    assert_eq!(since_only.len(), 3);
    let with_event_and_window = stack
        .walk(
            skyhook_tests::ADMIN_KEY,
            &format!(
                "/v1/deliveries?event_id={}&since={}",
                events[0],
                format_time(base + Duration::seconds(3))
            ),
            10,
        )
        .await;
    assert_eq!(
        with_event_and_window.len(),
        1,
        "only attempt 2 starts after +3 s"
    );

    // Tenant acme sees only its own three, and its cursor is refused by tenant default.
    let (_, acme_key) = stack.api_key("acme", "reader").await;
    let acme_seen = stack.walk(&acme_key, "/v1/deliveries", 2).await;
    assert_eq!(acme_seen.len(), 3);
    assert!(
        acme_seen
            .iter()
            .all(|a| a["subscriber_id"] == acme_sub.as_str())
    );
    let (_, page) = stack
        .api_as(&acme_key, Method::GET, "/v1/deliveries?limit=1", None)
        .await;
    let acme_cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (status, body) = stack
        .api_call(
            Method::GET,
            &format!("/v1/deliveries?cursor={acme_cursor}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_cursor");

    for bad in [
        "/v1/deliveries?outcome=maybe",
        "/v1/deliveries?since=yesterday",
        "/v1/deliveries?subscriber_id=nope",
        "/v1/deliveries?event_id=sub_123",
        "/v1/deliveries?limit=0",
        "/v1/deliveries?cursor=%21%21",
        "/v1/deliveries?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
    ] {
        let (status, body) = stack.api_call(Method::GET, bad, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[tokio::test]
async fn stats_count_each_finished_delivery_once_and_average_its_attempts() {
    let stack = Stack::new().await;
    let log = stack.adapters.log.clone();
    let tenant = TenantId::default_tenant();
    let (s1, _) = stack.subscribe("https://example.com/1", &["*"]).await;
    let (s2, _) = stack.subscribe("https://example.com/2", &["*"]).await;
    let (s1, s2) = (
        SubscriberId::parse(&s1).unwrap(),
        SubscriberId::parse(&s2).unwrap(),
    );
    let now = Utc::now();
    let (e1, e2, e3, e4) = (
        EventId::new(),
        EventId::new(),
        EventId::new(),
        EventId::new(),
    );
    // e1 → s1: fails once, then delivered on attempt 2.
    log.record(
        &attempt(&tenant, &e1, &s1, 1, Outcome::Failure, now),
        &status(&s1, DeliveryState::Retrying, 1),
    )
    .await
    .unwrap();
    let delivered = attempt(&tenant, &e1, &s1, 2, Outcome::Success, now);
    log.record(&delivered, &status(&s1, DeliveryState::Delivered, 2))
        .await
        .unwrap();
    // SQS delivers the same message again: counted once all the same.
    log.record(&delivered, &status(&s1, DeliveryState::Delivered, 2))
        .await
        .unwrap();
    // e2 → s1: delivered at once.
    log.record(
        &attempt(&tenant, &e2, &s1, 1, Outcome::Success, now),
        &status(&s1, DeliveryState::Delivered, 1),
    )
    .await
    .unwrap();
    // e3 → s2: fails twice for good.
    log.record(
        &attempt(&tenant, &e3, &s2, 1, Outcome::Failure, now),
        &status(&s2, DeliveryState::Retrying, 1),
    )
    .await
    .unwrap();
    log.record(
        &attempt(&tenant, &e3, &s2, 2, Outcome::Failure, now),
        &status(&s2, DeliveryState::Failed, 2),
    )
    .await
    .unwrap();
    // e4 → s2: still retrying, so not finished and not counted.
    log.record(
        &attempt(&tenant, &e4, &s2, 1, Outcome::Failure, now),
        &status(&s2, DeliveryState::Retrying, 1),
    )
    .await
    .unwrap();

    stack.settle_stats().await;
    let (code, all) = stack.api_call(Method::GET, "/v1/stats", None).await;
    assert_eq!(code, StatusCode::OK, "{all}");
    assert_eq!(all["total"], 3);
    assert_eq!(all["success"], 2);
    assert_eq!(all["failure"], 1);
    assert_eq!(all["attempts"], 5);
    assert_eq!(all["avg_attempts"], 1.67);
    let (_, one) = stack
        .api_call(Method::GET, &format!("/v1/stats?subscriber_id={s1}"), None)
        .await;
    assert_eq!(one["subscriber_id"], s1.as_str());
    assert_eq!(one["total"], 2);
    assert_eq!(one["success"], 2);
    assert_eq!(one["attempts"], 3);
    assert_eq!(one["avg_attempts"], 1.5);
    let (_, two) = stack
        .api_call(Method::GET, &format!("/v1/stats?subscriber_id={s2}"), None)
        .await;
    assert_eq!(two["failure"], 1);
    assert_eq!(two["avg_attempts"], 2.0);

    // A failed delivery that is reopened and then delivered counts once, as a success.
    let failed = status(&s2, DeliveryState::Failed, 2);
    let reopened = status(&s2, DeliveryState::Pending, 2);
    assert!(
        log.replace_status(&tenant, &e3, Some(&failed), &reopened)
            .await
            .unwrap()
    );
    assert!(
        !log.replace_status(&tenant, &e3, Some(&failed), &reopened)
            .await
            .unwrap(),
        "only once"
    );
    log.record(
        &attempt(&tenant, &e3, &s2, 3, Outcome::Success, now),
        &status(&s2, DeliveryState::Delivered, 3),
    )
    .await
    .unwrap();
    stack.settle_stats().await;
    let (_, all) = stack.api_call(Method::GET, "/v1/stats", None).await;
    assert_eq!(
        (
            all["total"].as_i64(),
            all["success"].as_i64(),
            all["failure"].as_i64(),
            all["attempts"].as_i64()
        ),
        (Some(3), Some(3), Some(0), Some(6))
    );

    let (code, body) = stack
        .api_call(
            Method::GET,
            &format!("/v1/stats?subscriber_id={}", SubscriberId::new()),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    let (code, _) = stack
        .api_call(Method::GET, "/v1/stats?subscriber_id=bad", None)
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
}

/// A delivery reaches its final state through one conditional write, and only that write's
/// change is folded into the counters, so a delivery reported twice (SQS is at-least-once)
/// is counted once. The finishes run one after another: DynamoDB's conditions hold under
/// concurrency, but the emulator's do not, so a concurrent version would test moto.
#[tokio::test]
async fn every_finished_delivery_is_counted_once_even_when_reported_twice() {
    let stack = Stack::new().await;
    let tenant = TenantId::default_tenant();
    let (sub, _) = stack.subscribe("https://example.com/1", &["*"]).await;
    let sub = SubscriberId::parse(&sub).unwrap();
    for i in 0..24 {
        let (outcome, state) = if i % 3 == 0 {
            (Outcome::Failure, DeliveryState::Failed)
        } else {
            (Outcome::Success, DeliveryState::Delivered)
        };
        let a = attempt(&tenant, &EventId::new(), &sub, 1, outcome, Utc::now());
        for _ in 0..2 {
            stack
                .adapters
                .log
                .record(&a, &status(&sub, state, 1))
                .await
                .unwrap();
        }
    }
    stack.settle_stats().await;
    let (_, stats) = stack
        .api_call(Method::GET, &format!("/v1/stats?subscriber_id={sub}"), None)
        .await;
    assert_eq!(stats["total"], 24);
    assert_eq!(stats["failure"], 8);
    assert_eq!(stats["success"], 16);
    assert_eq!(stats["avg_attempts"], 1.0);
}

#[tokio::test]
async fn attempts_over_time_come_per_bucket_with_their_latency() {
    let stack = Stack::new().await;
    let log = stack.adapters.log.clone();
    let tenant = TenantId::default_tenant();
    let (s1, _) = stack.subscribe("https://example.com/1", &["*"]).await;
    let (s2, _) = stack.subscribe("https://example.com/2", &["*"]).await;
    let (s1, s2) = (
        SubscriberId::parse(&s1).unwrap(),
        SubscriberId::parse(&s2).unwrap(),
    );
    // Three minutes ago, on a minute's start, and two minutes later.
    let minute = (Utc::now().timestamp() / 60 - 3) * 60;
    let t0 = DateTime::from_timestamp(minute, 0).unwrap();
    let t2 = t0 + Duration::minutes(2);
    let (e1, e2, e3) = (EventId::new(), EventId::new(), EventId::new());
    log.record(
        &attempt(&tenant, &e1, &s1, 1, Outcome::Failure, t0),
        &status(&s1, DeliveryState::Retrying, 1),
    )
    .await
    .unwrap();
    let second = attempt(
        &tenant,
        &e1,
        &s1,
        2,
        Outcome::Success,
        t0 + Duration::seconds(5),
    );
    log.record(&second, &status(&s1, DeliveryState::Delivered, 2))
        .await
        .unwrap();
    // The same attempt again (SQS handing the message out twice) is not another attempt.
    log.record(&second, &status(&s1, DeliveryState::Delivered, 2))
        .await
        .unwrap();
    log.record(
        &attempt(&tenant, &e2, &s1, 1, Outcome::Success, t2),
        &status(&s1, DeliveryState::Delivered, 1),
    )
    .await
    .unwrap();
    log.record(
        &attempt(&tenant, &e3, &s2, 1, Outcome::Failure, t2),
        &status(&s2, DeliveryState::Retrying, 1),
    )
    .await
    .unwrap();
    stack.settle_stats().await;

    let since = skyhook_domain::model::format_time(t0 - Duration::minutes(1));
    let until = skyhook_domain::model::format_time(t2 + Duration::seconds(30));
    let path =
        |who: &str| format!("/v1/stats/timeseries?bucket=minute&since={since}&until={until}{who}");
    let (code, one) = stack
        .api_call(Method::GET, &path(&format!("&subscriber_id={s1}")), None)
        .await;
    assert_eq!(code, StatusCode::OK, "{one}");
    assert_eq!(one["bucket"], "minute");
    let points = one["points"].as_array().unwrap();
    assert_eq!(
        points.len(),
        4,
        "every minute from since's to until's: {one}"
    );
    let counts: Vec<(u64, u64)> = points
        .iter()
        .map(|p| {
            (
                p["success"].as_u64().unwrap(),
                p["failure"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, vec![(0, 0), (1, 1), (0, 0), (1, 0)]);
    assert_eq!(points[1]["start"], skyhook_domain::model::format_time(t0));
    let p50 = points[1]["p50_ms"].as_u64().unwrap();
    assert!(
        (10..=20).contains(&p50),
        "12 ms attempts fall in the 10-20 ms bin: {p50}"
    );
    assert!(points[0]["p50_ms"].is_null(), "no attempts, no latency");

    let (_, all) = stack.api_call(Method::GET, &path(""), None).await;
    let counts: Vec<(u64, u64)> = all["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["success"].as_u64().unwrap(),
                p["failure"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        vec![(0, 0), (1, 1), (0, 0), (1, 1)],
        "the tenant's: {all}"
    );
    let (_, hourly) = stack
        .api_call(Method::GET, "/v1/stats/timeseries?bucket=hour", None)
        .await;
    let hourly = hourly["points"].as_array().unwrap();
    assert_eq!(hourly.len(), 60, "59 buckets before now's by default");
    let total: u64 = hourly
        .iter()
        .map(|p| p["success"].as_u64().unwrap() + p["failure"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 4);

    for (bad, status, code) in [
        (
            "/v1/stats/timeseries?bucket=week",
            StatusCode::BAD_REQUEST,
            "invalid_bucket",
        ),
        (
            "/v1/stats/timeseries?bucket=minute&since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z",
            StatusCode::BAD_REQUEST,
            "invalid_range",
        ),
        (
            "/v1/stats/timeseries?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            StatusCode::BAD_REQUEST,
            "invalid_range",
        ),
        (
            "/v1/stats/timeseries?subscriber_id=sub_01unknown0000000000000000",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ] {
        let (got, body) = stack.api_call(Method::GET, bad, None).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{bad}: {body}"
        );
    }
}
