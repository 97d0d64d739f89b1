//! Subscriber management end to end: PATCH and its validation, activation, custom headers,
//! the legacy signature schemes (checked here with independent HMAC code), test events,
//! secret rotation with its grace period, and the connect-time refusal of private targets.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::{Method, StatusCode};
use serde_json::json;
use sha2::{Sha256, Sha512};
use skyhook_tests::{Received, Receiver, Stack, StackOptions, eventually};

#[tokio::test]
async fn patch_updates_each_field_validates_like_create_and_404s_unknown_ids() {
    let stack = Stack::new().await;
    let (id, _) = stack
        .subscribe("https://example.com/old", &["order.*"])
        .await;
    let path = format!("/v1/subscribers/{id}");
    let (_, before) = stack.api_call(Method::GET, &path, None).await;
    let (status, body) = stack
        .api_call(
            Method::PATCH,
            &path,
            Some(&json!({
                "url": "https://example.com/new",
                "event_types": ["invoice.paid", "order.*"],
                "description": "billing",
                "headers": {"X-Team": "billing"},
                "signature_scheme": "hex-sha512",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["url"], "https://example.com/new");
    assert_eq!(body["event_types"], json!(["invoice.paid", "order.*"]));
    assert_eq!(body["description"], "billing");
    assert_eq!(
        body["headers"],
        json!({"x-team": "********"}),
        "values are shown masked"
    );
    assert_eq!(body["signature_scheme"], "hex-sha512");
    assert_eq!(body["created_at"], before["created_at"]);
    assert!(body["updated_at"].as_str().unwrap() > before["updated_at"].as_str().unwrap());
    assert!(body.get("secret").is_none());
    let (_, read) = stack.api_call(Method::GET, &path, None).await;
    assert_eq!(read, body, "the change is stored");
    // null clears, absent leaves alone.
    let (_, cleared) = stack
        .api_call(
            Method::PATCH,
            &path,
            Some(&json!({"description": null, "headers": null})),
        )
        .await;
    assert_eq!(cleared["description"], json!(null));
    assert_eq!(cleared["headers"], json!({}));
    assert_eq!(cleared["url"], "https://example.com/new");

    for (patch, code) in [
        (json!({"url": "ftp://example.com"}), "unsupported_scheme"),
        (json!({"url": "not a url"}), "invalid_url"),
        (json!({"event_types": []}), "invalid_event_types"),
        (json!({"event_types": ["order.*.x"]}), "invalid_event_types"),
        (json!({"headers": {"webhook-id": "x"}}), "invalid_headers"),
        (
            json!({"description": "x".repeat(1025)}),
            "invalid_description",
        ),
        (
            json!({"signature_scheme": "md5"}),
            "invalid_signature_scheme",
        ),
        (
            json!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
            "invalid_body",
        ),
        (json!({"active": "yes"}), "invalid_body"),
        (json!({}), "empty_update"),
    ] {
        let (status, body) = stack.api_call(Method::PATCH, &path, Some(&patch)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{patch}: {body}");
        assert_eq!(body["error"]["code"], code, "{patch}");
    }
    let (status, body) = Stack::send(
        &stack.api,
        Method::PATCH,
        &path,
        Some(axum::body::Body::from("{")),
        &[(
            "authorization",
            &format!("Bearer {}", skyhook_tests::ADMIN_KEY),
        )],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, unchanged) = stack.api_call(Method::GET, &path, None).await;
    assert_eq!(unchanged, cleared, "refused patches change nothing");
    for missing in [
        "/v1/subscribers/sub_0000000000000000000000000A",
        "/v1/subscribers/nope",
    ] {
        let (status, body) = stack
            .api_call(Method::PATCH, missing, Some(&json!({"active": false})))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
}

#[tokio::test]
async fn a_deactivated_subscriber_gets_no_events_until_activated_again() {
    let stack = Stack::new().await;
    let (id, _) = stack.subscribe("https://example.com/x", &["*"]).await;
    let path = format!("/v1/subscribers/{id}");
    let (_, body) = stack
        .api_call(Method::PATCH, &path, Some(&json!({"active": false})))
        .await;
    assert_eq!(body["active"], false);
    let published = stack.publish(json!({"type": "a.b", "data": {}})).await;
    assert_eq!(published["subscribers"], 0);
    let (_, inactive) = stack
        .api_call(Method::GET, "/v1/subscribers?active=false", None)
        .await;
    assert_eq!(inactive["data"][0]["id"], id.as_str());
    let (_, active) = stack
        .api_call(Method::GET, "/v1/subscribers?active=true", None)
        .await;
    assert_eq!(active["data"], json!([]));
    let (status, body) = stack
        .api_call(Method::POST, &format!("{path}/test"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "subscriber_inactive");
    stack
        .api_call(Method::PATCH, &path, Some(&json!({"active": true})))
        .await;
    let published = stack.publish(json!({"type": "a.b", "data": {}})).await;
    assert_eq!(published["subscribers"], 1);
}

/// The test's own HMAC of `"{timestamp}.{body}"`, hex, as an older receiver would compute it.
fn legacy_hex<M: Mac + hmac::digest::KeyInit>(
    secret: &str,
    timestamp: &str,
    body: &[u8],
) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(&key).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn legacy_ok<M: Mac + hmac::digest::KeyInit>(r: &Received, secret: &str, prefix: &str) -> bool {
    let want = format!(
        "{prefix}={}",
        legacy_hex::<M>(secret, r.header("x-webhook-timestamp"), &r.body)
    );
    r.header("x-webhook-signature")
        .split(' ')
        .any(|s| s == want)
}

#[tokio::test]
async fn legacy_schemes_and_custom_headers_reach_the_receiver_as_promised() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    let mut secrets = Vec::new();
    for (path, scheme) in [("/sha256", "hex-sha256"), ("/sha512", "hex-sha512")] {
        let (status, body) = stack
            .api_call(
                Method::POST,
                "/v1/subscribers",
                Some(&json!({
                    "url": receiver.url(path),
                    "event_types": ["*"],
                    "signature_scheme": scheme,
                    "headers": {"X-Tenant": "acme", "Authorization": "Bearer receiver-token"},
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        secrets.push(body["secret"].as_str().unwrap().to_string());
    }
    let published = stack
        .publish(json!({"type": "order.created", "data": {"n": 1}}))
        .await;
    let event_id = published["id"].as_str().unwrap();
    let runner = stack.start_delivery();
    // Both subscribers' deliveries (a duplicate of one must not stand in for the other).
    receiver
        .wait_until(Duration::from_secs(20), "/sha256", |r| r.path == "/sha256")
        .await;
    receiver
        .wait_until(Duration::from_secs(20), "/sha512", |r| r.path == "/sha512")
        .await;
    runner.stop().await;
    let got = receiver.requests();
    for r in &got {
        assert_eq!(r.header("x-webhook-id"), event_id);
        assert!(r.header("x-webhook-timestamp").parse::<i64>().is_ok());
        assert_eq!(
            r.header("webhook-signature"),
            "",
            "no Standard Webhooks header"
        );
        assert_eq!(r.header("x-tenant"), "acme");
        assert_eq!(r.header("authorization"), "Bearer receiver-token");
        match r.path.as_str() {
            "/sha256" => {
                assert!(r.header("x-webhook-signature").starts_with("sha256="));
                assert!(legacy_ok::<Hmac<Sha256>>(r, &secrets[0], "sha256"));
                assert!(!legacy_ok::<Hmac<Sha256>>(r, &secrets[1], "sha256"));
            }
            "/sha512" => {
                assert!(r.header("x-webhook-signature").starts_with("sha512="));
                assert!(legacy_ok::<Hmac<Sha512>>(r, &secrets[1], "sha512"));
            }
            other => panic!("unexpected path {other}"),
        }
    }
}

#[tokio::test]
async fn a_test_event_goes_to_that_subscriber_only() {
    let stack = Stack::new().await;
    let target = Receiver::always(200).await;
    let other = Receiver::always(200).await;
    let (id, secret) = stack.subscribe(&target.url("/t"), &["order.*"]).await;
    stack.subscribe(&other.url("/o"), &["*"]).await;
    let (status, body) = stack
        .api_call(Method::POST, &format!("/v1/subscribers/{id}/test"), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["type"], "skyhook.test");
    assert_eq!(body["subscribers"], 1);
    let runner = stack.start_delivery();
    let got = target.wait_for(1, Duration::from_secs(20)).await;
    let event = stack.event_status(body["id"].as_str().unwrap()).await;
    assert_eq!(event["deliveries"].as_array().unwrap().len(), 1);
    eventually(Duration::from_secs(10), "an empty queue", || async {
        (stack.queue_depth(&stack.resources.queue_url).await == 0).then_some(())
    })
    .await;
    runner.stop().await;
    // Its one message is gone from the queue: nothing can reach the other subscriber.
    assert!(other.requests().is_empty());
    got[0].verify(&secret).unwrap();
    assert_eq!(got[0].header("webhook-id"), body["id"].as_str().unwrap());
    assert_eq!(got[0].json()["type"], "skyhook.test");
    assert_eq!(got[0].json()["data"]["subscriber_id"], id.as_str());
    let (status, _) = stack
        .api_call(
            Method::POST,
            "/v1/subscribers/sub_0000000000000000000000000A/test",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The first request whose body's `data.n` is `n` (a duplicate of another is skipped).
async fn wait_for_n(receiver: &Receiver, n: u64) -> Received {
    receiver
        .wait_until(Duration::from_secs(20), &format!("data.n = {n}"), |r| {
            r.json()["data"]["n"] == n
        })
        .await
}

#[tokio::test]
async fn after_a_rotation_both_secrets_sign_during_the_grace_period_then_only_the_new_one() {
    let grace = Duration::from_secs(6);
    // A secret cache that would keep the old secret for an hour if a TTL were all it had.
    let stack = Stack::with(StackOptions {
        rotation_grace: grace,
        secret_cache_ttl: Duration::from_secs(3600),
        ..StackOptions::default()
    })
    .await;
    let receiver = Receiver::always(200).await;
    let (id, old) = stack.subscribe(&receiver.url("/r"), &["*"]).await;
    let runner = stack.start_delivery();
    stack
        .publish(json!({"type": "a.b", "data": {"n": 1}}))
        .await;
    let first = wait_for_n(&receiver, 1).await;
    first.verify(&old).unwrap();
    assert_eq!(first.header("webhook-signature").split(' ').count(), 1);

    // Rotate to a chosen secret; the answer shows it once, with the end of the grace period.
    let new = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (status, body) = stack
        .api_call(
            Method::POST,
            &format!("/v1/subscribers/{id}/rotate-secret"),
            Some(&json!({"secret": new})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["secret"], new);
    let expires =
        chrono::DateTime::parse_from_rfc3339(body["previous_secret_expires_at"].as_str().unwrap())
            .unwrap()
            .timestamp();
    let document = stack.secret_document("default", &id).await;
    assert_eq!(document["secret"], new);
    assert_eq!(
        document["previous"],
        old.as_str(),
        "the old secret is kept beside it"
    );

    // The very next delivery is signed with both: the cache checks the secret's version.
    // Whether a delivery falls in the grace period is judged by its own timestamp.
    stack
        .publish(json!({"type": "a.b", "data": {"n": 2}}))
        .await;
    let during = wait_for_n(&receiver, 2).await;
    let signed_at: i64 = during.header("webhook-timestamp").parse().unwrap();
    assert!(signed_at < expires, "delivered inside the grace period");
    let entries: Vec<&str> = during.header("webhook-signature").split(' ').collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries.iter().all(|e| e.starts_with("v1,")));
    during
        .verify(&old)
        .expect("the previous secret still verifies");
    during.verify(new).expect("the new secret verifies");

    // After the grace period only the new secret signs.
    eventually(Duration::from_secs(30), "the grace period over", || async {
        (chrono::Utc::now().timestamp() > expires).then_some(())
    })
    .await;
    stack
        .publish(json!({"type": "a.b", "data": {"n": 3}}))
        .await;
    let after = wait_for_n(&receiver, 3).await;
    runner.stop().await;
    assert_eq!(after.header("webhook-signature").split(' ').count(), 1);
    after.verify(new).expect("the new secret verifies");
    assert!(
        after.verify(&old).is_err(),
        "the old secret no longer verifies"
    );

    // A generated secret, a bad one, and an unknown subscriber.
    let (status, body) = stack
        .api_call(
            Method::POST,
            &format!("/v1/subscribers/{id}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_ne!(body["secret"], new);
    let (status, body) = stack
        .api_call(
            Method::POST,
            &format!("/v1/subscribers/{id}/rotate-secret"),
            Some(&json!({"secret": "whsec_short"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "invalid_secret");
    let (status, _) = stack
        .api_call(
            Method::POST,
            "/v1/subscribers/sub_0000000000000000000000000A/rotate-secret",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn outside_local_mode_a_name_resolving_to_loopback_is_refused_at_connect_time() {
    let receiver = Receiver::always(200).await;
    // `localhost` passes no URL check here: the client itself must refuse it after DNS.
    let url = format!("http://localhost:{}/hook", receiver.port);
    let strict = skyhook_delivery::http_client_for(Duration::from_secs(5), false).unwrap();
    let err = strict.post(&url).body("{}").send().await.unwrap_err();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    assert!(text.contains("non-public addresses"), "{text}");
    assert!(
        receiver.requests().is_empty(),
        "nothing reached the receiver"
    );
    let local = skyhook_delivery::http_client_for(Duration::from_secs(5), true).unwrap();
    assert_eq!(
        local.post(&url).body("{}").send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn an_edit_reaches_the_very_next_delivery_even_with_the_subscriber_cached() {
    let stack = Stack::with(StackOptions {
        secret_cache_ttl: Duration::from_secs(3600),
        ..StackOptions::default()
    })
    .await;
    let (old_home, new_home) = (Receiver::always(200).await, Receiver::always(200).await);
    let (id, _) = stack.subscribe(&old_home.url("/a"), &["*"]).await;
    let runner = stack.start_delivery();
    // Warm the delivery function's cache with the subscriber as it is now.
    let first = stack
        .publish(json!({"type": "a.b", "data": {"n": 1}}))
        .await;
    let got = old_home.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got[0].header("webhook-id"), first["id"].as_str().unwrap());

    let (status, body) = stack
        .api_call(
            Method::PATCH,
            &format!("/v1/subscribers/{id}"),
            Some(&json!({"url": new_home.url("/b")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = stack
        .publish(json!({"type": "a.b", "data": {"n": 2}}))
        .await;
    let second_id = second["id"].as_str().unwrap();
    new_home
        .wait_for_ids(&[second_id], Duration::from_secs(20))
        .await;
    runner.stop().await;
    // A redelivered copy of the first event may go to the new URL too; nothing else may.
    let first_id = first["id"].as_str().unwrap();
    assert!(
        new_home
            .ids()
            .iter()
            .all(|id| id == second_id || id == first_id)
    );
    assert!(
        old_home
            .requests()
            .iter()
            .all(|r| r.header("webhook-id") != second_id),
        "the old URL got an event published after the edit"
    );
}

/// Review finding: custom header values are receiver credentials. They live with the
/// signing secret in Secrets Manager (the table holds names only), every role sees them
/// masked, a masked value sent back keeps the stored one, and only admins see a URL's
/// query string, on the subscriber and in the attempt log.
#[tokio::test]
async fn custom_header_values_are_kept_as_secrets_and_shown_masked_to_every_role() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    let url = format!("{}?token=q-s3cret&v=2", receiver.url("/hook"));
    let (status, created) = stack
        .api_call(
            Method::POST,
            "/v1/subscribers",
            Some(&json!({
                "url": url,
                "event_types": ["*"],
                "headers": {"X-Api-Key": "k-s3cret"},
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["headers"], json!({"x-api-key": "********"}));
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("/v1/subscribers/{id}");

    // Sealed beside the signing secret, nowhere in the table in plain text.
    let document = stack.secret_document("default", &id).await;
    assert_eq!(document["headers"]["x-api-key"], "k-s3cret");
    let scan = stack
        .ddb
        .scan()
        .table_name(&stack.resources.table)
        .send()
        .await
        .unwrap();
    assert!(!format!("{:?}", scan.items()).contains("k-s3cret"));

    let (_, reader) = stack.api_key("default", "reader").await;
    for key in [skyhook_tests::ADMIN_KEY, reader.as_str()] {
        let (status, got) = stack.api_as(key, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{got}");
        assert_eq!(got["headers"], json!({"x-api-key": "********"}));
        let (_, list) = stack
            .api_as(key, Method::GET, "/v1/subscribers", None)
            .await;
        assert!(!list.to_string().contains("k-s3cret"));
    }
    let (_, as_admin) = stack.api_call(Method::GET, &path, None).await;
    assert_eq!(as_admin["url"], url.as_str(), "admins see the whole URL");
    let (_, as_reader) = stack.api_as(&reader, Method::GET, &path, None).await;
    assert!(
        as_reader["url"]
            .as_str()
            .unwrap()
            .ends_with("/hook?token=********&v=********"),
        "{as_reader}"
    );

    // The receiver gets the real value; a masked value sent back keeps it.
    let (status, patched) = stack
        .api_call(
            Method::PATCH,
            &path,
            Some(&json!({"headers": {"x-api-key": "********", "x-added": "a-1"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["headers"],
        json!({"x-added": "********", "x-api-key": "********"})
    );
    let (status, refused) = stack
        .api_call(
            Method::PATCH,
            &path,
            Some(&json!({"headers": {"x-unknown": "********"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_headers");
    let event = stack
        .publish(json!({"type": "order.created", "data": {}}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let runner = stack.start_delivery();
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    runner.stop().await;
    for r in got.iter().filter(|r| r.header("webhook-id") == event) {
        assert_eq!(r.header("x-api-key"), "k-s3cret");
        assert_eq!(r.header("x-added"), "a-1");
    }

    // The attempt log: the whole URL for admins, the query masked for everyone else.
    let log = format!("/v1/deliveries?subscriber_id={id}");
    let admin_view = stack.walk(skyhook_tests::ADMIN_KEY, &log, 10).await;
    assert!(admin_view.iter().all(|a| a["url"] == url.as_str()));
    let reader_view = stack.walk(&reader, &log, 10).await;
    assert!(!reader_view.is_empty());
    for a in &reader_view {
        assert!(
            a["url"]
                .as_str()
                .unwrap()
                .ends_with("?token=********&v=********"),
            "{a}"
        );
    }
}

/// A subscriber saved before header values moved to Secrets Manager: its record holds them
/// in plain text and its secret none. The first read through the API moves them.
#[tokio::test]
async fn plain_text_header_values_of_an_old_subscriber_move_to_its_secret_on_first_read() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    let mut ids = Vec::new();
    for path in ["/one", "/two"] {
        let (status, created) = stack
            .api_call(
                Method::POST,
                "/v1/subscribers",
                Some(&json!({"url": receiver.url(path), "event_types": ["*"]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    // Made old: plain values in the record, the secret without headers.
    for id in &ids {
        stack
            .ddb
            .update_item()
            .table_name(&stack.resources.table)
            .key("pk", AttributeValue::S("T#default".into()))
            .key("sk", AttributeValue::S(format!("SUB#{id}")))
            .update_expression("SET headers = :h")
            .expression_attribute_values(
                ":h",
                AttributeValue::M(
                    [(
                        "x-api-key".to_string(),
                        AttributeValue::S("old-s3cret".into()),
                    )]
                    .into(),
                ),
            )
            .send()
            .await
            .unwrap();
    }
    let plain_in_table = |stack: &Stack| {
        let (ddb, table) = (stack.ddb.clone(), stack.resources.table.clone());
        async move {
            let scan = ddb.scan().table_name(table).send().await.unwrap();
            format!("{:?}", scan.items()).matches("old-s3cret").count()
        }
    };
    assert_eq!(plain_in_table(&stack).await, 2);

    // One read of one: that one moves.
    let (status, got) = stack
        .api_call(Method::GET, &format!("/v1/subscribers/{}", ids[0]), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["headers"], json!({"x-api-key": "********"}));
    assert_eq!(plain_in_table(&stack).await, 1);
    let document = stack.secret_document("default", &ids[0]).await;
    assert_eq!(document["headers"]["x-api-key"], "old-s3cret");

    // Listing them all (`skyhook subscribers list --all`) moves the rest.
    let all = stack
        .walk(skyhook_tests::ADMIN_KEY, "/v1/subscribers", 1)
        .await;
    assert_eq!(all.len(), 2);
    assert!(!format!("{all:?}").contains("old-s3cret"));
    assert_eq!(plain_in_table(&stack).await, 0);

    // And deliveries still carry the value.
    let event = stack
        .publish(json!({"type": "order.created", "data": {}}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let runner = stack.start_delivery();
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    runner.stop().await;
    for r in got.iter().filter(|r| r.header("webhook-id") == event) {
        assert_eq!(r.header("x-api-key"), "old-s3cret");
    }
}
