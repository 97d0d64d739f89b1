//! Endpoint health end to end: nothing queued for a subscriber is lost when it is disabled
//! or deleted.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use skyhook_tests::{ADMIN_KEY, Receiver, Stack, eventually};

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
        let ids: BTreeSet<String> = receiver
            .requests()
            .iter()
            .map(|r| r.header("webhook-id").to_string())
            .collect();
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
