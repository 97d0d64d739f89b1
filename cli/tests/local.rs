//! `skyhook local` as a user runs it: a separate process against the emulator, driven only
//! over HTTP (and EventBridge), with real receivers that verify what they get.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{BIN, call, start_local_with};
use serde_json::json;
use skyhook_tests::{Receiver, Reply, eventually, sdk_config};

#[tokio::test]
async fn skyhook_local_delivers_retries_dead_letters_and_reports_over_http() {
    // One consumer: the test counts each delivery's attempts exactly.
    let runner = start_local_with(&[("SKYHOOK_LOCAL_POLLERS", "1")]).await;
    let ok = Receiver::always(200).await;
    let flaky = Receiver::per_id(
        vec![Reply::Status(500), Reply::Status(500)],
        Reply::Status(200),
    )
    .await;
    let down = Receiver::always(500).await;
    let target = Receiver::always(200).await;
    let redirect = Receiver::start(
        vec![],
        Reply::WithHeaders(301, vec![("location", target.url("/new"))]),
    )
    .await;

    let mut subs = Vec::new();
    for (name, receiver) in [
        ("ok", &ok),
        ("flaky", &flaky),
        ("down", &down),
        ("redirect", &redirect),
    ] {
        let (status, body) = call(
            &runner,
            reqwest::Method::POST,
            "/v1/subscribers",
            Some(json!({"url": receiver.url(&format!("/{name}")), "event_types": ["order.*"]})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        subs.push((
            name,
            body["id"].as_str().unwrap().to_string(),
            body["secret"].as_str().unwrap().to_string(),
        ));
    }

    let (status, published) = call(
        &runner,
        reqwest::Method::POST,
        "/v1/events",
        Some(json!({"type": "order.created", "data": {"id": "ord_9"}})),
    )
    .await;
    assert_eq!(status, 202, "{published}");
    assert_eq!(published["subscribers"], 4);
    let event_id = published["id"].as_str().unwrap().to_string();

    // Schedule 1s,1s: three attempts each, about a second apart.
    let got_ok = ok.wait_for_ids(&[&event_id], Duration::from_secs(30)).await[&event_id].clone();
    let got_flaky = flaky.wait_for(3, Duration::from_secs(30)).await;
    down.wait_for(3, Duration::from_secs(30)).await;
    redirect.wait_for(3, Duration::from_secs(30)).await;

    let secret = |name: &str| subs.iter().find(|s| s.0 == name).unwrap().2.clone();
    got_ok[0].verify(&secret("ok")).unwrap();
    for r in &got_flaky {
        r.verify(&secret("flaky")).unwrap();
        assert_eq!(r.header("webhook-id"), event_id);
    }
    assert!(got_flaky[1].at - got_flaky[0].at >= Duration::from_millis(700));

    let status = eventually(
        Duration::from_secs(30),
        "every delivery to finish",
        || async {
            let (_, s) = call(
                &runner,
                reqwest::Method::GET,
                &format!("/v1/events/{event_id}"),
                None,
            )
            .await;
            let done = s["deliveries"].as_array().is_some_and(|d| {
                d.iter()
                    .all(|d| d["status"] == "delivered" || d["status"] == "failed")
            });
            done.then_some(s)
        },
    )
    .await;
    let by_name = |name: &str| {
        let id = subs.iter().find(|s| s.0 == name).unwrap().1.clone();
        status["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["subscriber_id"] == id.as_str())
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("ok")["status"], "delivered");
    assert_eq!(by_name("ok")["attempts"], 1);
    assert_eq!(by_name("flaky")["status"], "delivered");
    assert_eq!(by_name("flaky")["attempts"], 3);
    assert_eq!(by_name("down")["status"], "failed");
    assert_eq!(by_name("down")["attempts"], 3);
    assert_eq!(by_name("down")["last_status_code"], 500);
    assert_eq!(by_name("redirect")["status"], "failed");
    assert_eq!(by_name("redirect")["last_status_code"], 301);
    assert!(target.requests().is_empty(), "redirects are not followed");
    assert_eq!(
        ok.ids(),
        std::collections::BTreeSet::from([event_id.clone()])
    );
    assert_eq!(down.requests().len(), 3);
    assert!(down.requests().iter().all(|r| r.id() == event_id));

    // The two failures are in the runner's DLQ.
    let sdk = sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dlq = sqs
        .get_queue_url()
        .queue_name(format!("{}-deliveries-dlq", runner.prefix))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let dead_subs = |messages: &[aws_sdk_sqs::types::Message]| {
        messages
            .iter()
            .map(|m| {
                m.message_attributes().unwrap()["skyhook_subscriber_id"]
                    .string_value()
                    .unwrap()
                    .to_string()
            })
            .collect::<std::collections::BTreeSet<String>>()
    };
    let mut want = vec![
        by_name("down")["subscriber_id"]
            .as_str()
            .unwrap()
            .to_string(),
        by_name("redirect")["subscriber_id"]
            .as_str()
            .unwrap()
            .to_string(),
    ];
    want.sort();
    let want: std::collections::BTreeSet<String> = want.into_iter().collect();
    // Both dead, each under its subscriber (a duplicate would name one of them again).
    eventually(Duration::from_secs(10), "two dead letters", || async {
        let out = sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        (dead_subs(out.messages()) == want).then_some(())
    })
    .await;

    // Events put on the local EventBridge bus are published too.
    let eb = aws_sdk_eventbridge::Client::new(&sdk);
    eb.put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name(format!("{}-bus", runner.prefix))
                .source("com.example.shop")
                .detail_type("order.shipped")
                .detail(r#"{"id": "ord_9", "carrier": "ups"}"#)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got = ok
        .wait_until(Duration::from_secs(30), "type order.shipped", |r| {
            r.json()["type"] == "order.shipped"
        })
        .await;
    assert_eq!(got.json()["data"], json!({"id": "ord_9", "carrier": "ups"}));
    got.verify(&secret("ok")).unwrap();

    // Ctrl-C stops it cleanly.
    let mut runner = runner;
    let pid = runner.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(status) = runner.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "skyhook local did not stop on SIGINT"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn skyhook_local_refuses_to_start_without_an_emulator_endpoint() {
    let out = Command::new(BIN)
        .arg("local")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AWS_ENDPOINT_URL"));
}
