//! The sample Lambda events of `events/`, deserialized with the Lambda event types and fed
//! to the real handlers against the emulator. `make smoke` sends the same files through the
//! Lambda runtime; these tests pin down what each file must produce.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::SqsEvent;
use http::{Method, StatusCode};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use serde_json::value::RawValue;
use tower::ServiceExt;

use skyhook_domain::config::AdminKeySource;
use skyhook_domain::ids::TenantId;
use skyhook_domain::model::DeliveryMessage;
use skyhook_http::Authenticator;
use skyhook_ingest::IngestState;
use skyhook_tests::samples::{
    SAMPLE_ADMIN_KEY, SAMPLE_DEAD_MESSAGE_ID, SAMPLE_FAILING_MESSAGE_ID, SAMPLE_FAILING_SUBSCRIBER,
    SAMPLE_OK_SUBSCRIBER, read_event_file, seed_sample_source, seed_sample_subscribers,
};
use skyhook_tests::{Receiver, Stack};

/// A stack with the sample subscribers, their endpoints answering 200 and 500.
async fn sample_stack() -> (Stack, Receiver, Receiver) {
    let stack = Stack::new().await;
    let ok = Receiver::always(200).await;
    let failing = Receiver::always(500).await;
    seed_sample_subscribers(
        &stack.sdk,
        &stack.resources,
        &stack.secret_prefix,
        &ok.url("/hook"),
        &failing.url("/hook"),
    )
    .await;
    seed_sample_source(&stack.sdk, &stack.resources, &stack.source_secret_prefix).await;
    (stack, ok, failing)
}

#[tokio::test]
async fn the_api_gateway_sample_publishes_through_the_ingest_router() {
    let (stack, _ok, _failing) = sample_stack().await;
    let raw = read_event_file("apigw-post-event.json");
    // It is a payload 2.0 HTTP API request for the ingest route ...
    let typed: ApiGatewayV2httpRequest =
        serde_json::from_str(&raw).expect("an API Gateway v2 request");
    assert_eq!(typed.route_key.as_deref(), Some("POST /v1/events"));
    assert_eq!(typed.request_context.http.method, Method::POST);

    // ... which lambda_http turns into the request the router sees in Lambda. The file's
    // bearer key is the admin key here, as in the smoke check.
    let request = lambda_http::request::from_str(&raw).expect("lambda_http reads the file");
    let router = skyhook_http::with_fallbacks(skyhook_ingest::router(Arc::new(IngestState {
        publisher: stack.publisher.clone(),
        inbound: skyhook_ingest::inbound::Inbound::of(&stack.ingest_adapters),
        auth: Arc::new(Authenticator::new(
            AdminKeySource::Value(SAMPLE_ADMIN_KEY.to_string()),
            None,
        )),
        max_payload_bytes: 256 * 1024,
    })));
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = serde_json::from_slice(
        &axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["type"], "order.created");
    assert_eq!(body["subscribers"], 2);
    assert!(body["id"].as_str().unwrap().starts_with("evt_"), "{body}");
    assert_eq!(
        stack.queue_depth(&stack.resources.queue_url).await,
        2,
        "one message per sample subscriber"
    );
    let status = stack.event_status(body["id"].as_str().unwrap()).await;
    assert_eq!(status["correlation_id"], "sample-correlation-1");
}

#[tokio::test]
async fn the_github_style_inbound_sample_is_verified_and_published_once() {
    let (stack, _ok, _failing) = sample_stack().await;
    let raw = read_event_file("apigw-inbound-github.json");
    let typed: ApiGatewayV2httpRequest =
        serde_json::from_str(&raw).expect("an API Gateway v2 request");
    assert_eq!(
        typed.route_key.as_deref(),
        Some("POST /v1/inbound/{source_id}")
    );
    let router = stack.ingest.clone();
    let mut answers = Vec::new();
    for _ in 0..2 {
        let request = lambda_http::request::from_str(&raw).expect("lambda_http reads the file");
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body: Value = serde_json::from_slice(
            &axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap(),
        )
        .unwrap();
        answers.push((status, body));
    }
    let (status, body) = &answers[0];
    assert_eq!(*status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["type"], "github.push");
    assert_eq!(
        body["subscribers"], 2,
        "both sample subscribers take every type"
    );
    let event = stack.event_status(body["id"].as_str().unwrap()).await;
    assert_eq!(
        event["correlation_id"],
        "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    );
    assert_eq!(event["data"]["repository"]["full_name"], "octo-org/shop");
    let (status, body) = &answers[1];
    assert_eq!(*status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "replayed");
}

#[tokio::test]
async fn the_eventbridge_sample_publishes_once_however_often_it_arrives() {
    let (stack, _ok, _failing) = sample_stack().await;
    let raw = read_event_file("eventbridge.json");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let event: EventBridgeEvent<Box<RawValue>> =
            serde_json::from_str(&raw).expect("an EventBridge event");
        let out = skyhook_ingest::handle_eventbridge(
            &stack.events_publisher,
            &TenantId::default_tenant(),
            LambdaEvent::new(event, Context::default()),
        )
        .await
        .unwrap();
        assert_eq!(out["type"], "order.shipped");
        assert_eq!(out["subscribers"], 2);
        ids.push(out["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids[0], ids[1], "EventBridge retries reuse the event id");
    assert_eq!(stack.queue_depth(&stack.resources.queue_url).await, 2);
}

#[tokio::test]
async fn the_sqs_sample_delivers_one_retries_one_and_dead_letters_one() {
    let (stack, ok, failing) = sample_stack().await;
    let event: SqsEvent =
        serde_json::from_str(&read_event_file("sqs-batch.json")).expect("an SQS event");
    assert_eq!(event.records.len(), 3);
    for (record, subscriber) in event.records[..2]
        .iter()
        .zip([SAMPLE_OK_SUBSCRIBER, SAMPLE_FAILING_SUBSCRIBER])
    {
        let message = DeliveryMessage::from_json(record.body.as_deref().unwrap())
            .expect("Skyhook's current message format");
        assert_eq!(message.subscriber_id.as_str(), subscriber);
    }

    let response = skyhook_delivery::handle(
        &stack.deliverer,
        LambdaEvent::new(event, Context::default()),
    )
    .await
    .unwrap();
    // What Lambda reads back: only the record to retry.
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": SAMPLE_FAILING_MESSAGE_ID}]})
    );

    let delivered = ok.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(delivered.len(), 1, "the format-99 record is never sent");
    assert_eq!(delivered[0].header("webhook-id"), "evt_sample1");
    assert_eq!(delivered[0].json()["type"], "order.created");
    assert_eq!(failing.wait_for(1, Duration::from_secs(5)).await.len(), 1);

    let dead = stack.queue.dead_letters.lock().unwrap().clone();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.starts_with("malformed_message"), "{dead:?}");
    let in_dlq = stack.dlq_messages().await;
    assert_eq!(in_dlq.len(), 1);
    assert!(
        in_dlq[0].body().unwrap().contains("\"v\":99"),
        "the dead letter keeps the original body (record {SAMPLE_DEAD_MESSAGE_ID})"
    );
}

#[tokio::test]
async fn the_stream_sample_counts_its_one_delivery_and_ignores_the_rest() {
    let stack = Stack::new().await;
    let raw = read_event_file("dynamodb-stream.json");
    let event: aws_lambda_events::dynamodb::Event =
        serde_json::from_str(&raw).expect("a DynamoDB stream event");
    assert_eq!(event.records.len(), 2);
    skyhook_delivery::stats::handle(
        &stack.adapters.stats,
        LambdaEvent::new(event, Context::default()),
    )
    .await
    .unwrap();
    let (status, stats) = stack
        .api_call(
            Method::GET,
            &format!("/v1/stats?subscriber_id={SAMPLE_OK_SUBSCRIBER}"),
            None,
        )
        .await;
    // The sample subscriber does not exist in this stack, so the per-subscriber route is
    // 404; the tenant's totals hold the delivery.
    assert_eq!(status, StatusCode::NOT_FOUND, "{stats}");
    let (_, totals) = stack.api_call(Method::GET, "/v1/stats", None).await;
    assert_eq!(
        (
            totals["success"].as_i64(),
            totals["failure"].as_i64(),
            totals["attempts"].as_i64()
        ),
        (Some(1), Some(0), Some(1)),
        "{totals}"
    );
}

#[tokio::test]
async fn an_event_is_resent_to_one_subscriber_with_the_same_webhook_id() {
    let stack = skyhook_tests::Stack::new().await;
    let receiver = Receiver::always(200).await;
    let (sub, secret) = stack.subscribe(&receiver.url("/r"), &["order.*"]).await;
    let (other, _) = stack.subscribe(&receiver.url("/other"), &["order.*"]).await;
    let published = stack
        .publish(serde_json::json!({"type": "order.created", "data": {"n": 1}}))
        .await;
    let event = published["id"].as_str().unwrap().to_string();
    let resend = |sub: String| {
        let (stack, event) = (&stack, event.clone());
        async move {
            stack
                .api_call(
                    Method::POST,
                    &format!("/v1/events/{event}/resend"),
                    Some(&serde_json::json!({"subscriber_id": sub})),
                )
                .await
        }
    };
    // Not attempted yet: queued, so still under way.
    let (status, body) = resend(sub.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("delivery_in_progress")),
        "{body}"
    );

    let runner = stack.start_delivery();
    receiver
        .wait_for(2, std::time::Duration::from_secs(20))
        .await;
    skyhook_tests::eventually(
        std::time::Duration::from_secs(20),
        "both delivered",
        || async {
            let s = stack.event_status(&event).await;
            s["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["status"] == "delivered")
                .then_some(())
        },
    )
    .await;
    let (status, body) = resend(sub.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["attempts"].as_u64()),
        (Some("pending"), Some(1))
    );
    let got = receiver
        .wait_for(3, std::time::Duration::from_secs(20))
        .await;
    runner.stop().await;
    let again: Vec<_> = got.iter().filter(|r| r.path == "/r").collect();
    assert_eq!(
        again.len(),
        2,
        "the subscriber got it twice; the other once"
    );
    assert!(again.iter().all(|r| r.id() == event), "the same webhook-id");
    again[1].verify(&secret).expect("signed as ever");
    assert_eq!(got.iter().filter(|r| r.path == "/other").count(), 1);
    let s = stack.event_status(&event).await;
    let d = s["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["subscriber_id"] == sub.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (d["status"].as_str(), d["attempts"].as_u64()),
        (Some("delivered"), Some(2)),
        "{d}"
    );

    let (status, _) = stack
        .api_call(
            Method::PATCH,
            &format!("/v1/subscribers/{other}"),
            Some(&serde_json::json!({"active": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = resend(other).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("subscriber_inactive"))
    );
    let (status, body) = stack.api_call(Method::GET, "/v1/whoami", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["tenant"].as_str(), body["role"].as_str()),
        (Some("default"), Some("admin"))
    );
    assert!(body["key_id"].is_null(), "the bootstrap key has no id");
    let (_, reader) = stack.api_key("default", "reader").await;
    let (_, me) = stack.api_as(&reader, Method::GET, "/v1/whoami", None).await;
    assert_eq!(me["role"], "reader");
    assert!(me["key_id"].as_str().unwrap().starts_with("key_"));
}
