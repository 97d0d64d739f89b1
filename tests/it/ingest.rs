//! Publishing: fan-out, batching, idempotency, EventBridge, and bad input.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use axum::body::Body;
use http::{Method, StatusCode};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use skyhook_domain::ids::TenantId;
use skyhook_tests::{ADMIN_KEY, Receiver, Stack, eventually};

#[tokio::test]
async fn fan_out_to_25_subscribers_with_mixed_filters_reaches_exactly_the_matching_ones_in_3_batches()
 {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    let matching_filters: [&[&str]; 4] = [
        &["order.*"],
        &["*"],
        &["order.created"],
        &["invoice.paid", "order.created"],
    ];
    let other_filters: [&[&str]; 3] = [
        &["invoice.paid"],
        &["order.created.v2", "user.*"],
        &["orders.*"],
    ];
    let mut matching = Vec::new();
    for i in 0..25 {
        let path = format!("/s/{i:02}");
        if i % 8 == 7 {
            stack
                .subscribe(&receiver.url(&path), other_filters[i / 8])
                .await;
        } else {
            stack
                .subscribe(&receiver.url(&path), matching_filters[i % 4])
                .await;
            matching.push(path);
        }
    }
    assert_eq!(matching.len(), 22);
    let published = stack
        .publish(json!({"type": "order.created", "data": {"n": 1}}))
        .await;
    assert_eq!(published["subscribers"], 22);
    let mut batches = stack.queue.batch_sizes.lock().unwrap().clone();
    batches.sort_unstable();
    assert_eq!(batches, vec![2, 10, 10], "SendMessageBatch calls");

    let event_id = published["id"].as_str().unwrap().to_string();
    let runner = stack.start_delivery();
    // All 22 final, and nothing left in the queue: nothing more can arrive for anyone.
    let status = eventually(Duration::from_secs(30), "22 deliveries", || async {
        let s = stack.event_status(&event_id).await;
        let d = s["deliveries"].as_array().unwrap();
        (d.len() == 22 && d.iter().all(|d| d["status"] == "delivered")).then_some(s)
    })
    .await;
    runner.stop().await;
    assert_eq!(stack.queue_depth(&stack.resources.queue_url).await, 0);
    assert_eq!(status["deliveries"].as_array().unwrap().len(), 22);
    // Every matching subscriber got the event (a duplicate would carry the same id), and
    // no other subscriber got anything.
    let got = receiver.requests();
    let paths: BTreeSet<String> = got.iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, matching.iter().cloned().collect::<BTreeSet<_>>());
    assert!(got.iter().all(|r| r.header("webhook-id") == event_id));
}

#[tokio::test]
async fn publishing_with_the_same_idempotency_key_delivers_once() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(204).await;
    stack.subscribe(&receiver.url("/hook"), &["*"]).await;
    let event = json!({"type": "order.created", "data": {"n": 1}});
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, body) = Stack::send(
            &stack.ingest,
            Method::POST,
            "/v1/events",
            Some(Body::from(event.to_string())),
            &[
                ("authorization", &format!("Bearer {ADMIN_KEY}")),
                ("idempotency-key", "order-42-created"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    assert!(ids.iter().all(|id| id == &ids[0]));
    // The body's `id` is an idempotency key as well.
    let with_id = json!({"type": "order.created", "data": {}, "id": "client-7"});
    let a = stack.publish(with_id.clone()).await;
    let b = stack.publish(with_id).await;
    assert_eq!(a["id"], b["id"]);
    assert_ne!(a["id"], ids[0].as_str());

    assert_eq!(stack.queue_depth(&stack.resources.queue_url).await, 2);
    let runner = stack.start_delivery();
    receiver
        .wait_for_ids(
            &[&ids[0], a["id"].as_str().unwrap()],
            Duration::from_secs(20),
        )
        .await;
    runner.stop().await;
    // Two events, not five: every request is one of the two.
    assert_eq!(
        receiver.ids(),
        BTreeSet::from([ids[0].clone(), a["id"].as_str().unwrap().to_string()])
    );
}

fn eventbridge_event(id: &str, detail_type: &str, detail: &str) -> EventBridgeEvent<Box<RawValue>> {
    serde_json::from_value(json!({
        "version": "0",
        "id": id,
        "detail-type": detail_type,
        "source": "com.example.orders",
        "account": "000000000000",
        "time": "2026-11-23T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": serde_json::from_str::<Value>(detail).unwrap(),
    }))
    .unwrap()
}

#[tokio::test]
async fn eventbridge_events_fan_out_through_the_same_code() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    let (_, secret) = stack.subscribe(&receiver.url("/eb"), &["order.*"]).await;
    stack
        .subscribe(&receiver.url("/other"), &["invoice.*"])
        .await;
    let tenant = TenantId::default_tenant();
    let event = eventbridge_event("eb-1", "order.shipped", r#"{"order": 9}"#);
    let out = skyhook_ingest::handle_eventbridge(
        &stack.events_publisher,
        &tenant,
        LambdaEvent::new(event.clone(), Context::default()),
    )
    .await
    .unwrap();
    assert_eq!(out["subscribers"], 1);
    assert_eq!(out["type"], "order.shipped");
    // Redelivery of the same EventBridge event is deduplicated by its id.
    let again = skyhook_ingest::handle_eventbridge(
        &stack.events_publisher,
        &tenant,
        LambdaEvent::new(event, Context::default()),
    )
    .await
    .unwrap();
    assert_eq!(again["id"], out["id"]);

    let id = out["id"].as_str().unwrap().to_string();
    let runner = stack.start_delivery();
    settled(&stack, &id).await;
    runner.stop().await;
    // One event however often EventBridge sent it: every request carries its id.
    assert_eq!(receiver.ids(), BTreeSet::from([id.clone()]));
    let got = receiver.requests();
    assert!(got.iter().all(|r| r.path == "/eb"));
    got[0].verify(&secret).unwrap();
    let body = got[0].json();
    assert_eq!(body["type"], "order.shipped");
    assert_eq!(body["data"], json!({"order": 9}));
    assert_eq!(body["timestamp"], "2026-11-23T10:00:00.000Z");
}

#[tokio::test]
async fn eventbridge_detail_types_that_are_not_event_types_are_rejected_clearly() {
    let stack = Stack::new().await;
    let err = skyhook_ingest::handle_eventbridge(
        &stack.events_publisher,
        &TenantId::default_tenant(),
        LambdaEvent::new(eventbridge_event("eb-2", " ** ", "{}"), Context::default()),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("detail-type"), "{err}");
    assert_eq!(stack.queue_depth(&stack.resources.queue_url).await, 0);
}

/// Asserts a rejected publish wrote nothing anywhere.
async fn assert_nothing_written(stack: &Stack) {
    assert_eq!(stack.queue_depth(&stack.resources.queue_url).await, 0);
    // Only the subscriber itself is in the table: no event, status or idempotency record.
    assert_eq!(stack.table_items().await, 1);
}

#[tokio::test]
async fn malformed_json_is_400_and_writes_nothing() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    stack.subscribe(&receiver.url("/"), &["*"]).await;
    let (status, body) = Stack::send(
        &stack.ingest,
        Method::POST,
        "/v1/events",
        Some(Body::from(r#"{"type": "order.created", "data": "#)),
        &[("authorization", &format!("Bearer {ADMIN_KEY}"))],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "malformed_json");
    assert!(body["error"]["message"].as_str().unwrap().contains("JSON"));
    assert_nothing_written(&stack).await;
}

#[tokio::test]
async fn missing_type_bad_type_and_unknown_fields_are_422() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    stack.subscribe(&receiver.url("/"), &["*"]).await;
    for (event, code) in [
        (json!({"data": {}}), "invalid_body"),
        (
            json!({"type": "order created", "data": {}}),
            "invalid_event_type",
        ),
        (json!({"type": 7, "data": {}}), "invalid_body"),
        (
            json!({"type": "a.b", "data": {}, "extra": 1}),
            "invalid_body",
        ),
        (
            json!({"type": "a.b", "data": {}, "subscriber_ids": ["nope"]}),
            "invalid_subscriber_id",
        ),
    ] {
        let (status, body) = stack.ingest_json(Method::POST, "/v1/events", &event).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{event}: {body}");
        assert_eq!(body["error"]["code"], code, "{event}");
    }
    assert_nothing_written(&stack).await;
}

#[tokio::test]
async fn a_body_over_256_kib_is_413_and_writes_nothing() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    stack.subscribe(&receiver.url("/"), &["*"]).await;
    let big = "x".repeat(256 * 1024);
    let event = json!({"type": "a.b", "data": {"blob": big}});
    let (status, body) = stack.ingest_json(Method::POST, "/v1/events", &event).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    // Without a Content-Length (chunked), the limit still holds.
    let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(event.to_string())]);
    let (status, _) = Stack::send(
        &stack.ingest,
        Method::POST,
        "/v1/events",
        Some(Body::from_stream(stream)),
        &[("authorization", &format!("Bearer {ADMIN_KEY}"))],
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Just under the limit is accepted.
    let fits = json!({"type": "a.b", "data": {"blob": "x".repeat(200 * 1024)}});
    let (status, _) = stack.ingest_json(Method::POST, "/v1/events", &fits).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn no_key_or_a_wrong_key_is_401_and_writes_nothing() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    stack.subscribe(&receiver.url("/"), &["*"]).await;
    let event = json!({"type": "a.b", "data": {}}).to_string();
    for headers in [
        vec![],
        vec![("authorization", "Bearer sk_wrong_key_000000000000")],
    ] {
        let (status, body) = Stack::send(
            &stack.ingest,
            Method::POST,
            "/v1/events",
            Some(Body::from(event.clone())),
            &headers,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            body["error"]["code"]
                .as_str()
                .unwrap()
                .contains("unauthorized")
                || body["error"]["code"] == "invalid_api_key"
        );
    }
    let (status, _) = Stack::send(&stack.api, Method::GET, "/v1/subscribers", None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_nothing_written(&stack).await;
}

#[tokio::test]
async fn health_needs_no_key_and_unknown_routes_are_json_404() {
    let stack = Stack::new().await;
    let (status, body) = Stack::send(&stack.ingest, Method::GET, "/v1/health", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], skyhook_domain::VERSION);
    let (status, body) = Stack::send(&stack.ingest, Method::GET, "/v2/nothing", None, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = Stack::send(&stack.ingest, Method::DELETE, "/v1/events", None, &[]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn explicit_subscriber_ids_target_only_those_subscribers() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    let (a, _) = stack.subscribe(&receiver.url("/a"), &["invoice.*"]).await;
    stack.subscribe(&receiver.url("/b"), &["*"]).await;
    let out = stack
        .publish(json!({"type": "skyhook.test", "data": {}, "subscriber_ids": [a]}))
        .await;
    assert_eq!(out["subscribers"], 1);
    let (status, body) = stack
        .ingest_json(
            Method::POST,
            "/v1/events",
            &json!({"type": "a.b", "data": {}, "subscriber_ids": ["sub_doesnotexist"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "unknown_subscriber");
    let id = out["id"].as_str().unwrap().to_string();
    let runner = stack.start_delivery();
    settled(&stack, &id).await;
    runner.stop().await;
    assert_eq!(receiver.ids(), BTreeSet::from([id]));
    assert!(receiver.requests().iter().all(|r| r.path == "/a"));
}

/// Waits until every delivery of the event is delivered and the queue is empty: nothing
/// more of it can arrive anywhere.
async fn settled(stack: &Stack, event_id: &str) {
    eventually(Duration::from_secs(30), "every delivery done", || async {
        let s = stack.event_status(event_id).await;
        let d = s["deliveries"].as_array()?;
        (!d.is_empty() && d.iter().all(|d| d["status"] == "delivered")).then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), "an empty queue", || async {
        (stack.queue_depth(&stack.resources.queue_url).await == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_second_publish_while_the_first_holds_the_key_is_409_and_resumes_later() {
    use skyhook_domain::ports::{IdempotencyClaim, IdempotencyStore};
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    stack.subscribe(&receiver.url("/"), &["*"]).await;
    let store =
        skyhook_aws::DynamoDbIdempotencyStore::new(stack.ddb.clone(), &stack.resources.table);
    let tenant = TenantId::default_tenant();
    let first = skyhook_domain::ids::EventId::new();
    // A publish with this key is under way elsewhere.
    let claim = store
        .claim(
            &tenant,
            "order-7",
            &first,
            chrono::Utc::now(),
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    assert_eq!(claim, IdempotencyClaim::Claimed);
    let auth = format!("Bearer {ADMIN_KEY}");
    let headers = [
        ("authorization", auth.as_str()),
        ("idempotency-key", "order-7"),
    ];
    let send = || {
        Stack::send(
            &stack.ingest,
            Method::POST,
            "/v1/events",
            Some(Body::from(json!({"type": "a.b", "data": {}}).to_string())),
            &headers,
        )
    };
    let (status, body) = send().await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_in_progress");
    assert_eq!(stack.queue_depth(&stack.resources.queue_url).await, 0);
    // The first publish failed and gave its lease up: the retry carries on under its id.
    store.abandon(&tenant, "order-7").await.unwrap();
    let (status, body) = send().await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["id"], first.as_str());
    assert_eq!(stack.queue_depth(&stack.resources.queue_url).await, 1);
}

/// Review finding: the ingest roles could not take over or give up an idempotency lease, so
/// after a failed publish with a key, every retry would be refused for 24 h in AWS. A retry
/// resumes under the same event id and the event is delivered, by HTTP and by EventBridge.
#[tokio::test]
async fn a_publish_that_failed_is_retried_under_the_same_key_and_delivered_once() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    stack.subscribe(&receiver.url("/r"), &["*"]).await;

    // HTTP: the queue refuses the first try.
    let mut failing = stack.ingest_adapters.clone();
    failing.queue = std::sync::Arc::new(Unreachable);
    let failing_ingest = skyhook_http::with_fallbacks(skyhook_ingest::router(std::sync::Arc::new(
        skyhook_ingest::IngestState {
            publisher: failing.publisher(
                std::sync::Arc::new(skyhook_tests::jq_sandbox().sandbox()),
                skyhook_tests::generous_limits(),
            ),
            inbound: skyhook_ingest::inbound::Inbound::of(&failing),
            auth: std::sync::Arc::new(
                skyhook_http::Authenticator::new(
                    skyhook_domain::config::AdminKeySource::Value(ADMIN_KEY.to_string()),
                    None,
                )
                .with_key_store(stack.ingest_adapters.keys.clone()),
            ),
            max_payload_bytes: 256 * 1024,
        },
    )));
    let auth = format!("Bearer {ADMIN_KEY}");
    let headers = [
        ("authorization", auth.as_str()),
        ("idempotency-key", "retry-me"),
    ];
    let body = json!({"type": "a.b", "data": {"n": 1}}).to_string();
    let publish = async |router: &axum::Router| {
        Stack::send(
            router,
            Method::POST,
            "/v1/events",
            Some(Body::from(body.clone())),
            &headers,
        )
        .await
    };
    let (status, body) = publish(&failing_ingest).await;
    assert!(status.is_server_error(), "{status} {body}");
    let (status, body) = publish(&stack.ingest).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let http_id = body["id"].as_str().unwrap().to_string();

    // EventBridge: the same, through the events function's publisher.
    let tenant = TenantId::default_tenant();
    let event = eventbridge_event("eb-retry", "a.b", r#"{"n": 2}"#);
    let mut failing_events = stack.events_publisher.clone();
    failing_events.queue = std::sync::Arc::new(Unreachable);
    assert!(
        skyhook_ingest::handle_eventbridge(
            &failing_events,
            &tenant,
            LambdaEvent::new(event.clone(), Context::default()),
        )
        .await
        .is_err()
    );
    let out = skyhook_ingest::handle_eventbridge(
        &stack.events_publisher,
        &tenant,
        LambdaEvent::new(event, Context::default()),
    )
    .await
    .unwrap();
    let eb_id = out["id"].as_str().unwrap().to_string();

    let runner = stack.start_delivery();
    receiver
        .wait_for_ids(&[&http_id, &eb_id], Duration::from_secs(20))
        .await;
    settled(&stack, &http_id).await;
    settled(&stack, &eb_id).await;
    runner.stop().await;
    assert_eq!(receiver.ids(), BTreeSet::from([http_id, eb_id]));
}

/// A delivery queue that refuses every send.
struct Unreachable;

#[async_trait::async_trait]
impl skyhook_domain::ports::DeliveryQueue for Unreachable {
    async fn send_batch(
        &self,
        _: &[skyhook_domain::model::DeliveryMessage],
    ) -> Result<skyhook_domain::ports::BatchSendResult, skyhook_domain::ports::StoreError> {
        Err(skyhook_domain::ports::StoreError::unavailable(
            "SQS",
            "unreachable in this test",
        ))
    }
    async fn retry_after(
        &self,
        _: &str,
        _: Duration,
    ) -> Result<(), skyhook_domain::ports::StoreError> {
        Err(skyhook_domain::ports::StoreError::unavailable(
            "SQS",
            "unreachable in this test",
        ))
    }
    async fn send_later(
        &self,
        _: &skyhook_domain::model::DeliveryMessage,
        _: Duration,
    ) -> Result<(), skyhook_domain::ports::StoreError> {
        Err(skyhook_domain::ports::StoreError::unavailable(
            "SQS",
            "unreachable in this test",
        ))
    }
    async fn dead_letter(
        &self,
        _: &str,
        _: &skyhook_domain::ports::DeadLetter,
    ) -> Result<(), skyhook_domain::ports::StoreError> {
        Err(skyhook_domain::ports::StoreError::unavailable(
            "SQS",
            "unreachable in this test",
        ))
    }
}
