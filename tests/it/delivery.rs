//! Delivery end to end: SQS → the delivery handler → a real receiver, with retries by
//! visibility timeout, the dead-letter queue, and the attempt log.

use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use axum::body::Body;
use http::{Method, StatusCode};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;
use skyhook_tests::{ADMIN_KEY, Receiver, Reply, Stack, StackOptions, eventually};

#[tokio::test]
async fn happy_path_delivers_a_signed_standard_webhook_once_per_matching_subscriber() {
    let stack = Stack::new().await;
    let a = Receiver::always(200).await;
    let b = Receiver::always(202).await;
    let never = Receiver::always(200).await;
    let (sub_a, secret_a) = stack.subscribe(&a.url("/hooks/a"), &["order.*"]).await;
    let (_, secret_b) = stack
        .subscribe(&b.url("/hooks/b"), &["order.created"])
        .await;
    stack.subscribe(&never.url("/"), &["invoice.*"]).await;

    let (status, published) = Stack::send(
        &stack.ingest,
        Method::POST,
        "/v1/events",
        Some(Body::from(
            json!({"type": "order.created", "data": {"id": "ord_1", "total": 1250}}).to_string(),
        )),
        &[
            ("authorization", &format!("Bearer {ADMIN_KEY}")),
            ("x-correlation-id", "req-abc-123"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(published["type"], "order.created");
    assert_eq!(published["subscribers"], 2);
    let event_id = published["id"].as_str().unwrap().to_string();
    assert!(event_id.starts_with("evt_"));

    let runner = stack.start_delivery();
    a.wait_for_ids(&[&event_id], Duration::from_secs(20)).await;
    b.wait_for_ids(&[&event_id], Duration::from_secs(20)).await;
    // Both deliveries final: nothing more is on its way to anyone.
    eventually(Duration::from_secs(20), "both delivered", || async {
        let s = stack.event_status(&event_id).await;
        s["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "delivered")
            .then_some(())
    })
    .await;
    runner.stop().await;
    let want = std::collections::BTreeSet::from([event_id.clone()]);
    assert_eq!(a.ids(), want);
    assert_eq!(b.ids(), want);
    assert!(never.requests().is_empty());

    let (got_a, got_b) = (a.requests(), b.requests());
    let signed: Vec<(&skyhook_tests::Received, &String)> = got_a
        .iter()
        .map(|r| (r, &secret_a))
        .chain(got_b.iter().map(|r| (r, &secret_b)))
        .collect();
    for (req, secret) in signed {
        req.verify(secret).expect("signature verifies");
        assert_eq!(req.header("webhook-id"), event_id);
        assert_eq!(req.header("content-type"), "application/json");
        assert_eq!(
            req.header("user-agent"),
            format!("Skyhook/{}", skyhook_domain::VERSION)
        );
        assert_eq!(req.header("x-correlation-id"), "req-abc-123");
        let ts: i64 = req.header("webhook-timestamp").parse().unwrap();
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
        let body = req.json();
        assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
        assert_eq!(body["type"], "order.created");
        assert_eq!(body["data"], json!({"id": "ord_1", "total": 1250}));
        assert!(skyhook_domain::model::parse_time(body["timestamp"].as_str().unwrap()).is_some());
    }
    // A signature made with another subscriber's secret does not verify.
    assert!(got_a[0].verify(&secret_b).is_err());

    let status = stack.event_status(&event_id).await;
    assert_eq!(status["correlation_id"], "req-abc-123");
    let deliveries = status["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2);
    let for_a = deliveries
        .iter()
        .find(|d| d["subscriber_id"] == sub_a.as_str())
        .unwrap();
    assert_eq!(for_a["status"], "delivered");
    assert_eq!(
        for_a["attempts"], 1,
        "one consumer: the first attempt succeeded"
    );
    assert_eq!(for_a["last_status_code"], 200);
    assert_eq!(stack.queue_depth(&stack.resources.queue_url).await, 0);
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_the_event_on_attempt_3_after_the_scheduled_waits() {
    let stack = Stack::with(StackOptions {
        schedule: "1s,2s,30s".into(),
        ..StackOptions::default()
    })
    .await;
    // Each delivery's first request gets 500, its second 503, then 200.
    let receiver = Receiver::per_id(
        vec![Reply::Status(500), Reply::Status(503)],
        Reply::Status(200),
    )
    .await;
    let (sub, secret) = stack.subscribe(&receiver.url("/flaky"), &["*"]).await;
    let published = stack
        .publish(json!({"type": "a.b", "data": {"k": "v"}}))
        .await;
    let event_id = published["id"].as_str().unwrap().to_string();

    let runner = stack.start_delivery();
    eventually(Duration::from_secs(30), "delivered", || async {
        let s = stack.event_status(&event_id).await;
        (s["deliveries"][0]["status"] == "delivered").then_some(())
    })
    .await;
    runner.stop().await;
    let got = receiver.requests();
    assert_eq!(got.len(), 3, "one consumer: three attempts, each once");
    // Every attempt carries the same id and body, freshly timestamped and signed.
    for r in &got {
        r.verify(&secret).unwrap();
        assert_eq!(r.header("webhook-id"), event_id);
        assert_eq!(r.body, got[0].body);
    }
    // Delays handed to SQS follow the schedule within the ±20 % jitter...
    let delays = stack.queue.delays.lock().unwrap().clone();
    assert_eq!(delays.len(), 2, "{delays:?}");
    assert!(delays[0] >= Duration::from_millis(800) && delays[0] <= Duration::from_millis(1200));
    assert!(delays[1] >= Duration::from_millis(1600) && delays[1] <= Duration::from_millis(2400));
    // ...and the receiver saw the waits (visibility timeouts are whole seconds). No upper
    // bound: a loaded machine may only be later.
    let gap1 = got[1].at - got[0].at;
    let gap2 = got[2].at - got[1].at;
    assert!(gap1 >= Duration::from_millis(900), "{gap1:?}");
    assert!(gap2 >= Duration::from_millis(1900), "{gap2:?}");

    let status = stack.event_status(&event_id).await;
    let d = &status["deliveries"][0];
    assert_eq!(d["subscriber_id"], sub.as_str());
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["attempts"], 3);
    // The attempt log holds all three, with outcomes and status codes.
    let attempts = stack
        .adapters
        .log
        .attempts(
            &skyhook_domain::ids::TenantId::default_tenant(),
            &skyhook_domain::ids::EventId::parse(&event_id).unwrap(),
            &skyhook_domain::ids::SubscriberId::parse(&sub).unwrap(),
        )
        .await
        .unwrap();
    let mut summary: Vec<(u32, Option<u16>, &str)> = attempts
        .iter()
        .map(|a| (a.attempt, a.status_code, a.outcome.as_str()))
        .collect();
    summary.sort();
    assert_eq!(
        summary,
        vec![
            (1, Some(500), "failure"),
            (2, Some(503), "failure"),
            (3, Some(200), "success")
        ]
    );
}

#[tokio::test]
async fn a_receiver_that_always_fails_ends_in_the_dlq_with_status_failed() {
    let stack = Stack::with(StackOptions {
        schedule: "1s".into(),
        ..StackOptions::default()
    })
    .await;
    let receiver = Receiver::start(vec![], Reply::Status(500)).await;
    let (sub, _) = stack.subscribe(&receiver.url("/down"), &["*"]).await;
    let published = stack
        .publish(json!({"type": "a.b", "data": {"n": 1}}))
        .await;
    let event_id = published["id"].as_str().unwrap().to_string();

    let runner = stack.start_delivery();
    let dead = eventually(Duration::from_secs(30), "a message in the DLQ", || async {
        let m = stack.dlq_messages().await;
        (!m.is_empty()).then_some(m)
    })
    .await;
    eventually(Duration::from_secs(10), "status failed", || async {
        let s = stack.event_status(&event_id).await;
        (s["deliveries"][0]["status"] == "failed").then_some(())
    })
    .await;
    runner.stop().await;
    // Two attempts (schedule of one entry), then no more; all of them this one delivery.
    assert_eq!(receiver.requests().len(), 2);
    assert_eq!(
        receiver.ids(),
        std::collections::BTreeSet::from([event_id.clone()])
    );
    assert_eq!(dead.len(), 1);
    let attrs = dead[0].message_attributes().unwrap();
    assert_eq!(
        attrs["skyhook_event_id"].string_value(),
        Some(event_id.as_str())
    );
    assert_eq!(
        attrs["skyhook_subscriber_id"].string_value(),
        Some(sub.as_str())
    );
    assert!(
        attrs["skyhook_reason"]
            .string_value()
            .unwrap()
            .contains("HTTP 500")
    );
    // The dead message is the original, so it can be redriven as is.
    let body = skyhook_domain::model::DeliveryMessage::from_json(dead[0].body().unwrap()).unwrap();
    assert_eq!(body.event_id.as_str(), event_id);
    assert_eq!(stack.queue_depth(&stack.resources.queue_url).await, 0);

    let status = stack.event_status(&event_id).await;
    let d = &status["deliveries"][0];
    assert_eq!(d["status"], "failed");
    assert_eq!(d["attempts"], 2);
    assert_eq!(d["last_status_code"], 500);
}

#[tokio::test]
async fn a_redirect_is_a_failure_and_is_not_followed() {
    let stack = Stack::new().await;
    let target = Receiver::always(200).await;
    let redirecting = Receiver::start(
        vec![],
        Reply::WithHeaders(302, vec![("location", target.url("/elsewhere"))]),
    )
    .await;
    stack.subscribe(&redirecting.url("/moved"), &["*"]).await;
    let published = stack.publish(json!({"type": "a.b", "data": {}})).await;
    let runner = stack.start_delivery();
    redirecting.wait_for(1, Duration::from_secs(20)).await;
    // Retrying after the 302 (or failed already, on a slow machine).
    let status = eventually(Duration::from_secs(20), "a failed attempt", || async {
        let s = stack.event_status(published["id"].as_str().unwrap()).await;
        let st = &s["deliveries"][0]["status"];
        (st == "retrying" || st == "failed").then_some(s)
    })
    .await;
    runner.stop().await;
    assert!(target.requests().is_empty(), "the redirect was followed");
    let d = &status["deliveries"][0];
    assert_eq!(d["last_status_code"], 302);
    assert!(d["last_error"].as_str().unwrap().contains("redirect"));
}

#[tokio::test]
async fn a_timeout_is_a_failure() {
    let stack = Stack::with(StackOptions {
        http_timeout: Duration::from_millis(500),
        schedule: "1s,1s,1s".into(),
        ..StackOptions::default()
    })
    .await;
    let receiver = Receiver::per_id(
        vec![Reply::Slow(Duration::from_secs(3), 200)],
        Reply::Status(200),
    )
    .await;
    let (sub, _) = stack.subscribe(&receiver.url("/slow"), &["*"]).await;
    let published = stack.publish(json!({"type": "a.b", "data": {}})).await;
    let event_id = published["id"].as_str().unwrap().to_string();
    let runner = stack.start_delivery();
    let status = eventually(Duration::from_secs(30), "delivery on attempt 2", || async {
        let s = stack.event_status(&event_id).await;
        (s["deliveries"][0]["status"] == "delivered").then_some(s)
    })
    .await;
    runner.stop().await;
    assert_eq!(status["deliveries"][0]["attempts"], 2);
    let attempts = stack
        .adapters
        .log
        .attempts(
            &skyhook_domain::ids::TenantId::default_tenant(),
            &skyhook_domain::ids::EventId::parse(&event_id).unwrap(),
            &skyhook_domain::ids::SubscriberId::parse(&sub).unwrap(),
        )
        .await
        .unwrap();
    let first = attempts.iter().find(|a| a.attempt == 1).unwrap();
    assert_eq!(first.status_code, None);
    assert!(
        first.error.as_deref().unwrap().contains("timed out"),
        "{first:?}"
    );
    // Cut at the timeout, not after the receiver's 3 s.
    assert!(
        first.latency_ms >= 450 && first.latency_ms < 2900,
        "{}",
        first.latency_ms
    );
}

#[tokio::test]
async fn retry_after_on_429_is_honoured_instead_of_the_schedule() {
    let stack = Stack::with(StackOptions {
        schedule: "20s,20s".into(),
        ..StackOptions::default()
    })
    .await;
    let receiver = Receiver::per_id(
        vec![Reply::WithHeaders(
            429,
            vec![("retry-after", "1".to_string())],
        )],
        Reply::Status(200),
    )
    .await;
    stack.subscribe(&receiver.url("/busy"), &["*"]).await;
    stack.publish(json!({"type": "a.b", "data": {}})).await;
    let runner = stack.start_delivery();
    // The schedule alone would wait 16–24 s; Retry-After asks SQS for 1 s instead.
    let got = receiver.wait_for(2, Duration::from_secs(60)).await;
    runner.stop().await;
    assert_eq!(
        stack.queue.delays.lock().unwrap().clone(),
        vec![Duration::from_secs(1)]
    );
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(900), "{gap:?}");
}

#[tokio::test]
async fn retry_after_is_capped_at_twice_the_scheduled_delay() {
    let stack = Stack::with(StackOptions {
        schedule: "1s,1s".into(),
        ..StackOptions::default()
    })
    .await;
    let receiver = Receiver::per_id(
        vec![Reply::WithHeaders(
            503,
            vec![("retry-after", "3600".to_string())],
        )],
        Reply::Status(200),
    )
    .await;
    stack.subscribe(&receiver.url("/maint"), &["*"]).await;
    stack.publish(json!({"type": "a.b", "data": {}})).await;
    let runner = stack.start_delivery();
    receiver.wait_for(2, Duration::from_secs(15)).await;
    runner.stop().await;
    assert_eq!(
        stack.queue.delays.lock().unwrap().clone(),
        vec![Duration::from_secs(2)]
    );
}

/// Receives messages until `n` are in hand (SQS may return fewer per call) and shapes
/// them as the event source mapping would.
async fn receive_exactly(stack: &Stack, n: usize) -> SqsEvent {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut all: Vec<aws_sdk_sqs::types::Message> = Vec::new();
    while all.len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {n} messages arrived",
            all.len()
        );
        for m in receive_some(stack).await {
            // A message handed out twice is one message.
            if !all.iter().any(|a| a.message_id() == m.message_id()) {
                all.push(m);
            }
        }
    }
    let mut event = SqsEvent::default();
    for m in all {
        let mut r = aws_lambda_events::sqs::SqsMessage::default();
        r.message_id = m.message_id().map(str::to_string);
        r.receipt_handle = m.receipt_handle().map(str::to_string);
        r.body = m.body().map(str::to_string);
        if let Some(attrs) = m.attributes() {
            for (k, v) in attrs {
                r.attributes.insert(k.as_str().to_string(), v.clone());
            }
        }
        event.records.push(r);
    }
    event
}

async fn receive_some(stack: &Stack) -> Vec<aws_sdk_sqs::types::Message> {
    stack
        .sqs
        .receive_message()
        .queue_url(&stack.resources.queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .visibility_timeout(60)
        .send()
        .await
        .unwrap()
        .messages()
        .to_vec()
}

#[tokio::test]
async fn a_batch_of_10_with_one_failing_record_reports_exactly_that_one() {
    let stack = Stack::new().await;
    let good = Receiver::always(200).await;
    let bad = Receiver::always(500).await;
    for i in 0..9 {
        stack
            .subscribe(&good.url(&format!("/ok/{i}")), &["*"])
            .await;
    }
    let (bad_sub, _) = stack.subscribe(&bad.url("/broken"), &["*"]).await;
    stack.publish(json!({"type": "a.b", "data": {}})).await;
    let event = receive_exactly(&stack, 10).await;
    assert_eq!(event.records.len(), 10);
    let bad_message_id = event
        .records
        .iter()
        .find(|r| r.body.as_deref().unwrap().contains(&bad_sub))
        .and_then(|r| r.message_id.clone())
        .unwrap();
    let response = skyhook_delivery::handle(
        &stack.deliverer,
        LambdaEvent::new(event, Context::default()),
    )
    .await
    .unwrap();
    let ids: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(ids, vec![bad_message_id]);
    assert_eq!(good.requests().len(), 9);
    assert_eq!(bad.requests().len(), 1);
}

#[tokio::test]
async fn a_batch_takes_about_as_long_as_its_slowest_delivery() {
    let stack = Stack::new().await;
    let slow = Receiver::start(vec![], Reply::Slow(Duration::from_millis(700), 200)).await;
    for i in 0..5 {
        stack
            .subscribe(&slow.url(&format!("/slow/{i}")), &["*"])
            .await;
    }
    stack.publish(json!({"type": "a.b", "data": {}})).await;
    let event = receive_exactly(&stack, 5).await;
    let response = skyhook_delivery::handle(
        &stack.deliverer,
        LambdaEvent::new(event, Context::default()),
    )
    .await
    .unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(slow.requests().len(), 5);
    // All five were waiting on the receiver at once: sequential delivery would have kept
    // one in flight at a time.
    assert_eq!(slow.peak_in_flight(), 5);
}

#[tokio::test]
async fn a_malformed_record_is_dead_lettered_not_retried() {
    let stack = Stack::new().await;
    stack
        .sqs
        .send_message()
        .queue_url(&stack.resources.queue_url)
        .message_body("{\"not\": \"a delivery message\"}")
        .send()
        .await
        .unwrap();
    let event = receive_exactly(&stack, 1).await;
    let response = skyhook_delivery::handle(
        &stack.deliverer,
        LambdaEvent::new(event, Context::default()),
    )
    .await
    .unwrap();
    assert!(
        response.batch_item_failures.is_empty(),
        "not reported for retry"
    );
    let dead = stack.dlq_messages().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body(), Some("{\"not\": \"a delivery message\"}"));
    let reason = dead[0].message_attributes().unwrap()["skyhook_reason"]
        .string_value()
        .unwrap()
        .to_string();
    assert!(reason.starts_with("malformed_message"), "{reason}");
}

#[tokio::test]
async fn messages_for_a_deleted_subscriber_end_with_status_subscriber_deleted() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    let (sub, _) = stack.subscribe(&receiver.url("/gone"), &["*"]).await;
    let published = stack.publish(json!({"type": "a.b", "data": {}})).await;
    let (status, _) = stack
        .api_call(Method::DELETE, &format!("/v1/subscribers/{sub}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let event = receive_exactly(&stack, 1).await;
    let response = skyhook_delivery::handle(
        &stack.deliverer,
        LambdaEvent::new(event, Context::default()),
    )
    .await
    .unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert!(receiver.requests().is_empty());
    let status = stack.event_status(published["id"].as_str().unwrap()).await;
    // SPEC, "Endpoint health": deleting a subscriber ends its messages with final status
    // `subscriber_deleted` (before, they ended `failed`).
    assert_eq!(status["deliveries"][0]["status"], "subscriber_deleted");
    assert_eq!(status["deliveries"][0]["attempts"], 0);
    assert!(
        status["deliveries"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("deleted")
    );
}

#[tokio::test]
async fn custom_headers_are_sent_and_response_bodies_are_logged_truncated() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    let (status, created) = stack
        .api_call(
            Method::POST,
            "/v1/subscribers",
            Some(&json!({
                "url": receiver.url("/h"),
                "event_types": ["*"],
                "headers": {"X-Tenant": "acme", "Authorization": "Bearer downstream-token"},
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let published = stack.publish(json!({"type": "a.b", "data": {}})).await;
    let runner = stack.start_delivery();
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    runner.stop().await;
    assert_eq!(got[0].header("x-tenant"), "acme");
    assert_eq!(got[0].header("authorization"), "Bearer downstream-token");
    got[0].verify(created["secret"].as_str().unwrap()).unwrap();
    let status = stack.event_status(published["id"].as_str().unwrap()).await;
    assert_eq!(status["deliveries"][0]["status"], "delivered");
}

#[tokio::test]
async fn a_long_error_body_is_truncated_to_4_kib_in_the_attempt_log() {
    let stack = Stack::new().await;
    // A receiver whose error page is 10 KiB of text.
    let app = axum::Router::new()
        .fallback(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "e".repeat(10 * 1024)) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (sub, _) = stack
        .subscribe(&format!("http://127.0.0.1:{port}/big"), &["*"])
        .await;
    let published = stack.publish(json!({"type": "a.b", "data": {}})).await;
    let event = receive_exactly(&stack, 1).await;
    skyhook_delivery::handle(
        &stack.deliverer,
        LambdaEvent::new(event, Context::default()),
    )
    .await
    .unwrap();
    let attempts = stack
        .adapters
        .log
        .attempts(
            &skyhook_domain::ids::TenantId::default_tenant(),
            &skyhook_domain::ids::EventId::parse(published["id"].as_str().unwrap()).unwrap(),
            &skyhook_domain::ids::SubscriberId::parse(&sub).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        attempts[0].response_body.as_deref().map(str::len),
        Some(4096)
    );
    assert_eq!(attempts[0].status_code, Some(500));
}

#[tokio::test]
async fn a_backing_service_failing_retries_and_on_the_last_round_fails_and_dead_letters() {
    let stack = Stack::with(StackOptions {
        schedule: "1s".into(),
        ..StackOptions::default()
    })
    .await;
    let receiver = Receiver::always(200).await;
    let (sub, _) = stack.subscribe(&receiver.url("/x"), &["*"]).await;
    let published = stack.publish(json!({"type": "a.b", "data": {}})).await;
    // The subscriber table is out of reach for this deliverer.
    let mut broken = stack.deliverer.clone();
    broken.directory = std::sync::Arc::new(skyhook_domain::directory::Directory::new(
        std::sync::Arc::new(skyhook_aws::DynamoDbSubscriberStore::new(
            stack.ddb.clone(),
            "skyhook-no-such-table",
        )),
        stack.adapters.secrets.clone(),
        Duration::from_secs(60),
    ));

    // First round: reported for retry, with the schedule's delay.
    let event = receive_exactly(&stack, 1).await;
    let response = skyhook_delivery::handle(&broken, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(stack.queue.delays.lock().unwrap().len(), 1);

    // Last round: not left to the redrive policy, but failed and dead-lettered now.
    let mut event = receive_exactly(&stack, 1).await;
    event.records[0]
        .attributes
        .insert("ApproximateReceiveCount".into(), "2".into());
    let response = skyhook_delivery::handle(&broken, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert!(receiver.requests().is_empty());
    let dead = stack.dlq_messages().await;
    assert_eq!(dead.len(), 1);
    let reason = dead[0].message_attributes().unwrap()["skyhook_reason"]
        .string_value()
        .unwrap()
        .to_string();
    assert!(reason.contains("could not load the subscriber"), "{reason}");
    let status = stack.event_status(published["id"].as_str().unwrap()).await;
    assert_eq!(status["deliveries"][0]["subscriber_id"], sub.as_str());
    assert_eq!(status["deliveries"][0]["status"], "failed");
    let (_, listed) = stack.api_call(Method::GET, "/v1/dlq", None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}

/// Review finding: the delivery client's resolver sees host names only, so an IP-literal
/// host never met it, and a URL saved in local mode (or written past the API) was sent as
/// it was. Outside local mode every delivery is held to the strict URL rules first: no
/// `http://`, no non-public IP literal, and no connection is even opened.
#[tokio::test]
async fn outside_local_mode_http_and_private_ip_literals_are_refused_without_a_connection() {
    let stack = Stack::new().await;
    // A bare TCP listener: it counts connections, whatever they carry.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    let accepting = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    // Local mode lets the API save all three.
    let urls = [
        (format!("http://127.0.0.1:{port}/plain"), "insecure_url"),
        (
            format!("https://127.0.0.1:{port}/loopback"),
            "forbidden_target",
        ),
        (
            format!("https://[::ffff:0:7f00:1]:{port}/translated"),
            "forbidden_target",
        ),
    ];
    let mut subscribers = Vec::new();
    for (url, code) in &urls {
        let (id, _) = stack.subscribe(url, &["*"]).await;
        subscribers.push((id, *code));
    }
    stack.publish(json!({"type": "a.b", "data": {}})).await;
    let event = receive_exactly(&stack, urls.len()).await;

    let mut strict = stack.deliverer.clone();
    strict.url_policy = skyhook_domain::url::UrlPolicy::STRICT;
    let response = skyhook_delivery::handle(&strict, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert_eq!(response.batch_item_failures.len(), urls.len());
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no connection was opened"
    );
    for (id, code) in &subscribers {
        let attempts = stack
            .walk(ADMIN_KEY, &format!("/v1/deliveries?subscriber_id={id}"), 10)
            .await;
        assert!(!attempts.is_empty(), "{id}: an attempt is logged");
        for a in &attempts {
            assert_eq!(a["outcome"], "failure", "{a}");
            assert!(a["status_code"].is_null(), "{a}");
            assert!(
                a["error"].as_str().unwrap_or_default().starts_with(code),
                "{id}: {a}"
            );
        }
    }
    // The same messages in local mode do connect: the refusal above was the policy's.
    let again = receive_exactly(&stack, urls.len()).await;
    skyhook_delivery::handle(
        &stack.deliverer,
        LambdaEvent::new(again, Context::default()),
    )
    .await
    .unwrap();
    assert!(connections.load(std::sync::atomic::Ordering::SeqCst) > 0);
    accepting.abort();
}
