//! The dead-letter queue and recovery end to end: dead deliveries are listed per tenant and
//! subscriber, redrive (all, or one subscriber's) and recover deliver them again under the
//! same `webhook-id` with a fresh set of attempts, and the log keeps every earlier attempt.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use skyhook_domain::model::DeliveryMessage;
use skyhook_domain::ports::{BatchSendResult, DeadLetter, DeliveryQueue, StoreError};
use skyhook_tests::{Receiver, Reply, Stack, StackOptions, eventually};

fn two_attempts() -> StackOptions {
    StackOptions {
        schedule: "1s".into(),
        ..StackOptions::default()
    }
}

async fn dead_list(stack: &Stack, query: &str) -> Vec<Value> {
    let (status, body) = stack
        .api_call(Method::GET, &format!("/v1/dlq{query}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

async fn attempts_of(stack: &Stack, event: &str, sub: &str) -> Vec<(u64, String)> {
    stack
        .walk(
            skyhook_tests::ADMIN_KEY,
            &format!("/v1/deliveries?event_id={event}&subscriber_id={sub}"),
            10,
        )
        .await
        .iter()
        .map(|a| {
            (
                a["attempt"].as_u64().unwrap(),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn redrive_sends_dead_messages_again_with_the_same_webhook_id_and_fresh_attempts() {
    let stack = Stack::with(two_attempts()).await;
    // a recovers on its third request of the delivery; b never does.
    let a = Receiver::per_id(
        vec![Reply::Status(500), Reply::Status(500)],
        Reply::Status(200),
    )
    .await;
    let b = Receiver::always(500).await;
    let (sub_a, secret_a) = stack.subscribe(&a.url("/a"), &["*"]).await;
    let (sub_b, _) = stack.subscribe(&b.url("/b"), &["*"]).await;
    let published = stack
        .publish(json!({"type": "order.created", "data": {"n": 1}}))
        .await;
    let event = published["id"].as_str().unwrap().to_string();

    let runner = stack.start_delivery();
    let dead = eventually(Duration::from_secs(30), "two dead letters", || async {
        let d = dead_list(&stack, "").await;
        (d.len() == 2).then_some(d)
    })
    .await;
    for d in &dead {
        assert_eq!(d["event_id"], event.as_str());
        assert_eq!(d["event_type"], "order.created");
        assert_eq!(d["attempts"], 2);
        assert!(d["reason"].as_str().unwrap().contains("HTTP 500"), "{d}");
    }
    let only_a = dead_list(&stack, &format!("?subscriber_id={sub_a}")).await;
    assert_eq!(only_a.len(), 1);
    assert_eq!(only_a[0]["subscriber_id"], sub_a.as_str());
    stack.settle_stats().await;
    let (_, stats) = stack.api_call(Method::GET, "/v1/stats", None).await;
    assert_eq!(
        (stats["failure"].as_i64(), stats["attempts"].as_i64()),
        (Some(2), Some(4))
    );

    // Another tenant's redrive touches none of it.
    let (_, acme) = stack.api_key("acme", "admin").await;
    let (status, body) = stack
        .api_as(&acme, Method::POST, "/v1/dlq/redrive", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["redriven"], 0);
    assert_eq!(body["complete"], true);
    // It moved both into this tenant's dead-letter index, where they wait as before.
    assert!(
        stack.dlq_messages().await.is_empty(),
        "moved out of the SQS DLQ"
    );
    assert_eq!(
        dead_list(&stack, "").await.len(),
        2,
        "both still dead, and ours"
    );

    // One subscriber's: a gets its third request, with the same webhook-id, and succeeds.
    let (status, body) = stack
        .api_call(
            Method::POST,
            "/v1/dlq/redrive",
            Some(&json!({"subscriber_id": sub_a})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["redriven"], 1);
    assert_eq!(body["complete"], true);
    let got = a.wait_for(3, Duration::from_secs(20)).await;
    // Every request is this one delivery, the same body each time, and the one that came
    // after the redrive verifies.
    assert!(
        got.iter()
            .all(|r| r.header("webhook-id") == event && r.body == got[0].body)
    );
    got.last().unwrap().verify(&secret_a).unwrap();
    let delivered = eventually(Duration::from_secs(10), "a delivered", || async {
        let s = stack.event_status(&event).await;
        let d = s["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["subscriber_id"] == sub_a.as_str())
            .cloned()
            .unwrap();
        (d["status"] == "delivered").then_some(d)
    })
    .await;
    assert_eq!(
        delivered["attempts"], 3,
        "attempts number on from the first round"
    );
    assert_eq!(
        attempts_of(&stack, &event, &sub_a).await,
        vec![
            (1, "failure".into()),
            (2, "failure".into()),
            (3, "success".into())
        ]
    );
    let left = dead_list(&stack, "").await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["subscriber_id"], sub_b.as_str());

    // All the rest: b fails its two fresh attempts and is dead again, after attempt 4.
    let (_, body) = stack
        .api_call(Method::POST, "/v1/dlq/redrive", Some(&json!({})))
        .await;
    assert_eq!(body["redriven"], 1);
    let again = eventually(Duration::from_secs(30), "b dead again", || async {
        let d = dead_list(&stack, "").await;
        (d.len() == 1 && d[0]["attempts"] == 4).then_some(d)
    })
    .await;
    runner.stop().await;
    assert_eq!(again[0]["subscriber_id"], sub_b.as_str());
    let b_got = b.requests();
    assert_eq!(b_got.len(), 4);
    assert!(b_got.iter().all(|r| r.header("webhook-id") == event));
    assert_eq!(
        attempts_of(&stack, &event, &sub_b).await.len(),
        4,
        "no attempt overwritten"
    );
    // Stats: a counts once as a success with 3 attempts, b once as a failure with 4.
    stack.settle_stats().await;
    let (_, stats) = stack.api_call(Method::GET, "/v1/stats", None).await;
    assert_eq!(
        (
            stats["total"].as_i64(),
            stats["success"].as_i64(),
            stats["failure"].as_i64(),
            stats["attempts"].as_i64()
        ),
        (Some(2), Some(1), Some(1), Some(7))
    );
    assert_eq!(stats["avg_attempts"], 3.5);

    let (status, body) = stack
        .api_call(
            Method::POST,
            "/v1/dlq/redrive",
            Some(&json!({"subscriber_id": "nope"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = stack.api_call(Method::GET, "/v1/dlq?limit=0", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn recover_re_enqueues_failed_deliveries_of_a_window_once() {
    let stack = Stack::with(two_attempts()).await;
    let receiver = Receiver::per_id(
        vec![Reply::Status(503), Reply::Status(500)],
        Reply::Status(200),
    )
    .await;
    let (sub, secret) = stack.subscribe(&receiver.url("/r"), &["*"]).await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let published = stack
        .publish(json!({"type": "invoice.paid", "data": {"id": "in_1"}}))
        .await;
    let event = published["id"].as_str().unwrap().to_string();
    let runner = stack.start_delivery();
    eventually(
        Duration::from_secs(30),
        "the delivery failed for good",
        || async {
            let s = stack.event_status(&event).await;
            (s["deliveries"][0]["status"] == "failed").then_some(())
        },
    )
    .await;
    let path = format!("/v1/subscribers/{sub}/recover");

    // A window after the failure holds nothing to recover.
    let later =
        skyhook_domain::model::format_time(chrono::Utc::now() + chrono::Duration::minutes(1));
    let (status, body) = stack
        .api_call(Method::POST, &path, Some(&json!({"since": later})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recovered"], 0);

    let since = skyhook_domain::model::format_time(before);
    let (status, body) = stack
        .api_call(Method::POST, &path, Some(&json!({"since": since})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recovered"], 1);
    assert_eq!(body["complete"], true);
    let got = receiver.wait_for(3, Duration::from_secs(20)).await;
    for r in &got {
        assert_eq!(r.header("webhook-id"), event);
        assert_eq!(r.json()["data"], json!({"id": "in_1"}));
    }
    got.last().unwrap().verify(&secret).unwrap();
    eventually(Duration::from_secs(10), "delivered", || async {
        let s = stack.event_status(&event).await;
        (s["deliveries"][0]["status"] == "delivered" && s["deliveries"][0]["attempts"] == 3)
            .then_some(())
    })
    .await;
    // Recovered deliveries leave the DLQ listing; recovering again finds nothing failed.
    assert!(dead_list(&stack, "").await.is_empty());
    let (_, body) = stack
        .api_call(Method::POST, &path, Some(&json!({"since": since, "until": skyhook_domain::model::format_time(chrono::Utc::now())})))
        .await;
    assert_eq!(body["recovered"], 0);
    assert_eq!(body["skipped"], 1);
    // The stale copy in the SQS DLQ is dropped by a redrive, not delivered a fourth time.
    let (_, body) = stack.api_call(Method::POST, "/v1/dlq/redrive", None).await;
    assert_eq!(
        (body["redriven"].as_i64(), body["dropped"].as_i64()),
        (Some(0), Some(1))
    );
    // Nothing left anywhere that could bring a fourth request: the queue is empty with the
    // runner stopped, and the log has no attempt 4.
    runner.stop().await;
    assert_eq!(stack.queue_depth(&stack.resources.queue_url).await, 0);
    assert!(stack.dlq_messages().await.is_empty());
    assert_eq!(receiver.requests().len(), 3);
    assert_eq!(
        attempts_of(&stack, &event, &sub).await.len(),
        3,
        "no attempt after the recovered one"
    );

    for (body, status) in [
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"since": "last week"}), StatusCode::BAD_REQUEST),
        (
            json!({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"since": "2026-01-02T00:00:00Z", "extra": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (got, answer) = stack.api_call(Method::POST, &path, Some(&body)).await;
        assert_eq!(got, status, "{body}: {answer}");
    }
    let (status, _) = stack
        .api_call(
            Method::POST,
            "/v1/subscribers/sub_0000000000000000000000000A/recover",
            Some(&json!({"since": since})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A delivery queue that refuses every send, as SQS does when it is unreachable.
struct UnreachableQueue;

#[async_trait::async_trait]
impl DeliveryQueue for UnreachableQueue {
    async fn send_batch(&self, _: &[DeliveryMessage]) -> Result<BatchSendResult, StoreError> {
        Err(StoreError::unavailable("SQS", "unreachable in this test"))
    }
    async fn retry_after(&self, _: &str, _: Duration) -> Result<(), StoreError> {
        Err(StoreError::unavailable("SQS", "unreachable in this test"))
    }
    async fn send_later(&self, _: &DeliveryMessage, _: Duration) -> Result<(), StoreError> {
        Err(StoreError::unavailable("SQS", "unreachable in this test"))
    }
    async fn dead_letter(&self, _: &str, _: &DeadLetter) -> Result<(), StoreError> {
        Err(StoreError::unavailable("SQS", "unreachable in this test"))
    }
}

/// The delivery of `event` to `sub`, from `GET /v1/events/{id}`.
async fn delivery_of(stack: &Stack, event: &str, sub: &str) -> Value {
    let s = stack.event_status(event).await;
    s["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["subscriber_id"] == sub)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Review finding: a redrive reopened a dead delivery that had no status as `pending`, and
/// when its send failed the `pending` stayed; the next redrive took `pending` for "sent
/// again" and deleted the dead message. Now a failed send leaves the delivery `failed`, and
/// the next redrive sends it.
#[tokio::test]
async fn a_redrive_whose_send_fails_loses_nothing_and_the_next_one_sends_it() {
    let stack = Stack::with(two_attempts()).await;
    let receiver = Receiver::always(200).await;
    let (sub, secret) = stack.subscribe(&receiver.url("/r"), &["*"]).await;
    let event = stack
        .publish(json!({"type": "order.created", "data": {"n": 7}}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // It dies before any attempt (the queue's redrive policy after crashes): no status.
    assert_eq!(stack.move_queued_to_dlq().await.len(), 1);

    let mut broken = stack.adapters.clone();
    broken.queue = Arc::new(UnreachableQueue);
    let broken_api = stack.api_with(&broken);
    let (status, body) = stack
        .api_via(
            &broken_api,
            skyhook_tests::ADMIN_KEY,
            Method::POST,
            "/v1/dlq/redrive",
            None,
        )
        .await;
    assert!(status.is_server_error(), "{status} {body}");
    assert_eq!(body["error"]["code"], "service_unavailable", "{body}");
    let d = delivery_of(&stack, &event, &sub).await;
    assert_eq!(
        d["status"], "failed",
        "not pending: it was not sent again; {d}"
    );
    assert_eq!(dead_list(&stack, "").await.len(), 1, "still listed as dead");

    let (status, body) = stack.api_call(Method::POST, "/v1/dlq/redrive", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["redriven"].as_i64(), body["dropped"].as_i64()),
        (Some(1), Some(0))
    );
    let runner = stack.start_delivery();
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    runner.stop().await;
    assert!(got.iter().all(|r| r.header("webhook-id") == event));
    got[0].verify(&secret).unwrap();
    assert!(dead_list(&stack, "").await.is_empty());
}

/// Review finding: a redrive held every other tenant's dead message for 30 s, so a redrive
/// by another tenant at the same time saw an empty queue and said `complete: true` with its
/// own messages left behind. Now both move all of their own.
#[tokio::test]
async fn concurrent_redrives_of_two_tenants_each_move_all_of_their_own() {
    let stack = Stack::with(two_attempts()).await;
    let receiver = Receiver::always(200).await;
    let (_, acme) = stack.api_key("acme", "admin").await;
    let (ours, _) = stack.subscribe(&receiver.url("/ours"), &["*"]).await;
    let (status, body) = stack
        .api_as(
            &acme,
            Method::POST,
            "/v1/subscribers",
            Some(&json!({"url": receiver.url("/acme"), "event_types": ["*"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let theirs = body["id"].as_str().unwrap().to_string();
    const EACH: usize = 12;
    for n in 0..EACH {
        stack
            .publish(json!({"type": "order.created", "data": {"n": n}}))
            .await;
        let (status, body) = stack
            .ingest_as(&acme, &json!({"type": "order.created", "data": {"n": n}}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    assert_eq!(stack.move_queued_to_dlq().await.len(), 2 * EACH);

    let (a, b) = tokio::join!(
        stack.api_call(Method::POST, "/v1/dlq/redrive", None),
        stack.api_as(&acme, Method::POST, "/v1/dlq/redrive", None),
    );
    for (status, body) in [&a, &b] {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["complete"], true, "{body}");
        assert_eq!(body["redriven"].as_u64(), Some(EACH as u64), "{body}");
    }
    // All of both tenants' deliveries are back in the delivery queue, none left dead.
    let back = stack.take_queued().await;
    let mut per_subscriber: HashMap<String, HashSet<String>> = HashMap::new();
    for body in &back {
        let m: Value = serde_json::from_str(body).unwrap();
        per_subscriber
            .entry(m["subscriber_id"].as_str().unwrap().to_string())
            .or_default()
            .insert(m["event_id"].as_str().unwrap().to_string());
    }
    assert_eq!(per_subscriber[&ours].len(), EACH);
    assert_eq!(per_subscriber[&theirs].len(), EACH);
}

/// A message in the DLQ that is no delivery message at all (put there by hand, say) is
/// nobody's to redrive: it is left where it is, visible, and the redrive still completes.
#[tokio::test]
async fn an_unreadable_dead_message_is_left_in_the_queue_and_the_redrive_completes() {
    let stack = Stack::new().await;
    stack
        .sqs
        .send_message()
        .queue_url(&stack.resources.dlq_url)
        .message_body("not a delivery message")
        .send()
        .await
        .unwrap();
    let (status, body) = stack.api_call(Method::POST, "/v1/dlq/redrive", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["redriven"].as_i64(),
            body["dropped"].as_i64(),
            body["complete"].as_bool()
        ),
        (Some(0), Some(0), Some(true))
    );
    // Released at once, not held: the next reader sees it straight away.
    let left = stack.dlq_messages().await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].body(), Some("not a delivery message"));
}
