//! `skyhook keyring …` and `skyhook secrets migrate` as an operator runs them, with AWS
//! credentials, against the resources of a running `skyhook local`: the keyring rotates,
//! everything is sealed again under the new key, and deliveries still verify.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{BIN, KEY, Runner, start_local};
use serde_json::{Value, json};
use skyhook_tests::{Receiver, eventually};

/// Runs `skyhook --json <args>` with the runner's AWS settings and resource names, as an
/// operator's shell would have them; it must succeed.
async fn aws_json(runner: &Runner, args: &[&str]) -> Value {
    let endpoint = skyhook_tests::sdk_config()
        .await
        .endpoint_url()
        .unwrap()
        .to_string();
    let table = runner.banner("Table").expect("the banner's table");
    let keyring = runner
        .banner("Keyring")
        .and_then(|v| v.split_whitespace().next().map(str::to_string))
        .expect("the banner's keyring");
    let mut full = vec!["--json".to_string()];
    full.extend(args.iter().map(|s| s.to_string()));
    let prefix = runner.prefix.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(&full)
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("SKYHOOK_TABLE", table)
            .env("SKYHOOK_KEYRING_SECRET", keyring)
            .env("SKYHOOK_SECRET_PREFIX", format!("{prefix}/subscribers/"))
            .env("SKYHOOK_SOURCE_SECRET_PREFIX", format!("{prefix}/sources/"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?}: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.trim()).unwrap_or_else(|_| panic!("{args:?} printed {text}"))
}

async fn api(runner: &Runner, method: reqwest::Method, path: &str, body: Value) -> Value {
    let answer = reqwest::Client::new()
        .request(method, format!("{}{path}", runner.base))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{path}: {}", answer.status());
    answer.json().await.unwrap()
}

#[tokio::test]
async fn the_operator_rotates_the_keyring_and_reseals_while_deliveries_verify() {
    let runner = start_local().await;
    let receiver = Receiver::always(200).await;
    let created = api(
        &runner,
        reqwest::Method::POST,
        "/v1/subscribers",
        json!({"url": receiver.url("/k"), "event_types": ["order.*"]}),
    )
    .await;
    let secret = created["secret"].as_str().unwrap().to_string();

    let status = aws_json(&runner, &["keyring", "status"]).await;
    assert_eq!(status["current"], 1, "{status}");
    assert_eq!(status["sealed"], json!({"1": 1}), "{status}");
    assert_eq!(status["legacy"], 0, "{status}");

    let rotated = aws_json(&runner, &["keyring", "rotate"]).await;
    assert_eq!(rotated["current"], 2);
    let resealed = aws_json(&runner, &["keyring", "reseal"]).await;
    assert_eq!(
        (
            &resealed["checked"],
            &resealed["resealed"],
            &resealed["changed"]
        ),
        (&json!(1), &json!(1), &json!(0)),
        "{resealed}"
    );
    let status = aws_json(&runner, &["keyring", "status"]).await;
    assert_eq!(status["versions"], json!([1, 2]), "{status}");
    assert_eq!(status["sealed"], json!({"2": 1}), "{status}");
    let migrated = aws_json(&runner, &["secrets", "migrate"]).await;
    assert_eq!(
        migrated,
        json!({"subscribers": 0, "sources": 0, "failed": []})
    );

    // The running delivery read the keyring before the rotation: a value of version 2
    // makes it read the keyring again, and the delivery verifies.
    let event = api(
        &runner,
        reqwest::Method::POST,
        "/v1/events",
        json!({"type": "order.created", "data": {"id": 1}}),
    )
    .await;
    let got = eventually(Duration::from_secs(30), "the delivery", || async {
        receiver
            .requests()
            .into_iter()
            .find(|r| r.header("webhook-id") == event["id"].as_str().unwrap())
    })
    .await;
    got.verify(&secret).expect("verifies after the rotation");
}
