//! Secrets sealed in the table under the keyring: nothing of a secret in plain text at rest,
//! one Secrets Manager secret however many subscribers, values bound to their record, the
//! keyring rotated and everything sealed again, and secrets from before moved in; every
//! delivery verified with the official `standardwebhooks` crate before, during and after.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use skyhook_aws::dynamodb::keys;
use skyhook_aws::{Resources, SecretsAdmin};
use skyhook_domain::ids::{SourceId, SubscriberId, TenantId};
use skyhook_tests::{Receiver, Stack, eventually};

fn admin(stack: &Stack) -> SecretsAdmin {
    SecretsAdmin::from_sdk(
        &stack.sdk,
        &Resources {
            table: stack.resources.table.clone(),
            stats_table: None,
            queue_url: String::new(),
            dlq_url: None,
            secret_prefix: stack.secret_prefix.clone(),
            source_secret_prefix: stack.source_secret_prefix.clone(),
            keyring_secret: stack.resources.keyring_secret.clone(),
            event_bus: None,
        },
    )
}

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

/// Every item of `table`, as text.
async fn scan(stack: &Stack, table: &str) -> String {
    format!("{:?}", stack.scan(table).await)
}

/// Publishes one event to `subscribers` only, runs deliveries until each has its request,
/// and checks each request's signature with its subscriber's secret (Skyhook's verify and
/// the `standardwebhooks` crate's, which must agree).
async fn deliver_and_verify(stack: &Stack, receiver: &Receiver, subscribers: &[(String, String)]) {
    let ids: Vec<&str> = subscribers.iter().map(|(id, _)| id.as_str()).collect();
    let event = stack
        .publish(json!({"type": "order.created", "data": {"n": 1}, "subscriber_ids": ids}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let runner = stack.start_delivery();
    let got = eventually(Duration::from_secs(30), "the deliveries", || async {
        let got: Vec<_> = receiver
            .requests()
            .into_iter()
            .filter(|r| r.header("webhook-id") == event)
            .collect();
        let paths: std::collections::BTreeSet<String> =
            got.iter().map(|r| r.path.clone()).collect();
        (paths.len() == subscribers.len()).then_some(got)
    })
    .await;
    runner.stop().await;
    for r in &got {
        let (_, secret) = subscribers
            .iter()
            .find(|(id, _)| r.path == format!("/{id}"))
            .expect("only the subscribers named");
        r.verify(secret)
            .unwrap_or_else(|e| panic!("{}: {e:?}", r.path));
    }
}

async fn subscribe_with(stack: &Stack, receiver: &Receiver, body: Value) -> (String, String) {
    let (status, created) = stack
        .api_call(Method::POST, "/v1/subscribers", Some(&body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    // Each subscriber at its own path, so its requests are told apart.
    let (status, patched) = stack
        .api_call(
            Method::PATCH,
            &format!("/v1/subscribers/{id}"),
            Some(&json!({"url": receiver.url(&format!("/{id}"))})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    (id, created["secret"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn secrets_and_header_values_are_sealed_and_secrets_manager_does_not_grow() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    let mut plain = Vec::new();
    let mut subs = Vec::new();
    for i in 0..6 {
        let header = format!("header-value-{i}-{}", uuid::Uuid::new_v4());
        let body = if i % 2 == 0 {
            json!({"url": receiver.url("/x"), "event_types": ["*"], "headers": {"X-Api-Key": header}})
        } else {
            let given = skyhook_domain::secret::SigningSecret::generate().expose();
            json!({"url": receiver.url("/x"), "event_types": ["*"], "headers": {"X-Api-Key": header}, "secret": given})
        };
        let (id, secret) = subscribe_with(&stack, &receiver, body).await;
        // The secret as given or generated, its key in base64 too, and the header value.
        plain.push(secret.clone());
        plain.push(secret.trim_start_matches("whsec_").to_string());
        plain.push(header);
        subs.push((id, secret));
    }
    let source_secret = format!("source-secret-{}", uuid::Uuid::new_v4());
    let (status, source) = stack
        .api_call(
            Method::POST,
            "/v1/sources",
            Some(&json!({"name": "gh", "verification": "github", "secret": source_secret, "event_type": {"header": "X-GitHub-Event", "prefix": "github."}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    plain.push(source_secret);
    // A rotation and a header change write new revisions: sealed too.
    let (status, rotated) = stack
        .api_call(
            Method::POST,
            &format!("/v1/subscribers/{}/rotate-secret", subs[0].0),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    plain.push(rotated["secret"].as_str().unwrap().to_string());

    for table in [&stack.resources.table, &stack.resources.stats_table] {
        let text = scan(&stack, table).await;
        for value in &plain {
            assert!(
                !text.contains(value.as_str()),
                "{value} in plain text in {table}"
            );
        }
    }
    let sealed = stack.sealed_items().await;
    assert_eq!(sealed.len(), 7, "six subscribers and a source");
    for item in &sealed {
        assert!(item["sealed"].as_s().unwrap().starts_with("sk1.1."));
    }
    // Not one secret per subscriber or source in Secrets Manager: only the keyring.
    assert_eq!(stack.secrets_manager_count().await, 0);
    let keyring = stack
        .secrets_client
        .describe_secret()
        .secret_id(&stack.resources.keyring_secret)
        .send()
        .await;
    assert!(keyring.is_ok(), "the keyring secret");

    // And every delivery signs with the right secret and carries its header.
    let (rotated_id, _) = &subs[0];
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    let mut targets = subs.clone();
    targets[0] = (rotated_id.clone(), new_secret);
    deliver_and_verify(&stack, &receiver, &targets).await;
}

#[tokio::test]
async fn a_sealed_value_moved_to_another_subscriber_does_not_open_and_signs_nothing() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    let a = subscribe_with(
        &stack,
        &receiver,
        json!({"url": receiver.url("/a"), "event_types": ["*"]}),
    )
    .await;
    let b = subscribe_with(
        &stack,
        &receiver,
        json!({"url": receiver.url("/b"), "event_types": ["*"]}),
    )
    .await;
    // Someone with write access to the table copies A's sealed document onto B's item.
    let key = |id: &str| keys::sealed_subscriber_key(&tenant(), &SubscriberId::parse(id).unwrap());
    let (pk_a, sk_a) = key(&a.0);
    let item_a = stack
        .ddb
        .get_item()
        .table_name(&stack.resources.table)
        .key("pk", AttributeValue::S(pk_a))
        .key("sk", AttributeValue::S(sk_a))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let (pk_b, sk_b) = key(&b.0);
    stack
        .ddb
        .update_item()
        .table_name(&stack.resources.table)
        .key("pk", AttributeValue::S(pk_b))
        .key("sk", AttributeValue::S(sk_b))
        .update_expression("SET sealed = :s")
        .expression_attribute_values(":s", item_a["sealed"].clone())
        .send()
        .await
        .unwrap();

    let err = stack
        .adapters
        .secrets
        .get(&tenant(), &SubscriberId::parse(&b.0).unwrap())
        .await
        .expect_err("A's value does not open as B's");
    let text = err.to_string();
    assert!(text.contains("does not open for this record"), "{text}");
    assert!(!text.contains(&a.1), "{text}");

    // B's delivery is not signed with A's secret: it is not sent, and waits for a retry
    // with the reason; A's is delivered and verifies.
    let event = stack
        .publish(json!({"type": "order.created", "data": {}, "subscriber_ids": [a.0, b.0]}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let runner = stack.start_delivery();
    let status = eventually(
        Duration::from_secs(30),
        "B's failed attempt to read",
        || async {
            let status = stack.event_status(&event).await;
            let of_b = status["deliveries"]
                .as_array()?
                .iter()
                .find(|d| d["subscriber_id"] == b.0.as_str())?
                .clone();
            of_b["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("signing secret is unreadable"))
                .then_some(status)
        },
    )
    .await;
    runner.stop().await;
    let got = receiver.requests();
    assert!(
        got.iter().all(|r| r.path != format!("/{}", b.0)),
        "B got nothing"
    );
    let to_a: Vec<_> = got
        .iter()
        .filter(|r| r.path == format!("/{}", a.0))
        .collect();
    assert!(!to_a.is_empty(), "{status}");
    for r in to_a {
        r.verify(&a.1).expect("A's delivery verifies");
    }
}

#[tokio::test]
async fn the_keyring_rotates_and_a_reseal_moves_everything_to_the_new_key() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    let admin = admin(&stack);
    let before = subscribe_with(
        &stack,
        &receiver,
        json!({"url": receiver.url("/"), "event_types": ["*"]}),
    )
    .await;
    deliver_and_verify(&stack, &receiver, std::slice::from_ref(&before)).await;
    let status = admin.status().await.unwrap();
    assert_eq!((status.current, status.versions.clone()), (1, vec![1]));
    assert_eq!(status.sealed.get(&1), Some(&1));

    assert_eq!(admin.rotate_keyring().await.unwrap(), 2);
    // During: values of version 1 still open, and a value sealed under 2 (the re-seal's)
    // is opened by a delivery function that read the keyring before the rotation.
    let during = subscribe_with(
        &stack,
        &receiver,
        json!({"url": receiver.url("/"), "event_types": ["*"]}),
    )
    .await;
    deliver_and_verify(&stack, &receiver, &[before.clone(), during.clone()]).await;

    // An item that does not open (altered at rest) is reported, and the pass goes on.
    let (pk, sk) = keys::sealed_subscriber_key(&tenant(), &SubscriberId::new());
    stack
        .ddb
        .put_item()
        .table_name(&stack.resources.table)
        .item("pk", AttributeValue::S(pk))
        .item("sk", AttributeValue::S(sk))
        .item("kind", AttributeValue::S("sealed-subscriber-secret".into()))
        .item(
            "sealed",
            AttributeValue::S(format!("sk1.1.{}", "A".repeat(54))),
        )
        .send()
        .await
        .unwrap();
    let report = admin.reseal().await.unwrap();
    let counts = (
        report.current,
        report.checked,
        report.resealed,
        report.changed,
    );
    assert_eq!(counts, (2, 3, 2, 0));
    assert_eq!(report.failed.len(), 1, "{report:?}");
    let status = admin.status().await.unwrap();
    assert_eq!(status.versions, vec![1, 2]);
    assert_eq!(status.sealed.get(&2), Some(&2));
    // The altered item still names version 1: it cannot be moved, and says so.
    assert_eq!(status.sealed.get(&1), Some(&1));
    // Idempotent: a second pass finds nothing to do.
    let again = admin.reseal().await.unwrap();
    assert_eq!(
        (again.checked, again.resealed, again.failed.len()),
        (3, 0, 1)
    );
    // After: both still sign, wherever the keyring each process holds came from.
    deliver_and_verify(&stack, &receiver, &[before.clone(), during.clone()]).await;
    // A subscriber secret rotation after the keyring's: the old secret signs alongside.
    let (status, rotated) = stack
        .api_call(
            Method::POST,
            &format!("/v1/subscribers/{}/rotate-secret", before.0),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let document = stack.secret_document("default", &before.0).await;
    assert_eq!(document["previous"], before.1.as_str());
    deliver_and_verify(
        &stack,
        &receiver,
        &[(
            before.0.clone(),
            rotated["secret"].as_str().unwrap().to_string(),
        )],
    )
    .await;
}

#[tokio::test]
async fn secrets_from_before_sealing_are_read_then_migrated_once_and_deleted() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    let mut subs = Vec::new();
    for i in 0..3 {
        let (id, secret) = subscribe_with(
            &stack,
            &receiver,
            json!({"url": receiver.url("/"), "event_types": ["*"], "headers": {"X-Token": format!("t{i}")}}),
        )
        .await;
        // As a stack before sealing kept them: a document, or (the oldest) the bare secret.
        let value = if i == 0 {
            secret.clone()
        } else {
            json!({"secret": secret, "headers": {"x-token": format!("t{i}")}}).to_string()
        };
        stack.make_legacy_secret("default", &id, &value).await;
        subs.push((id, secret));
    }
    let source = {
        let (status, created) = stack
            .api_call(
                Method::POST,
                "/v1/sources",
                Some(&json!({"name": "gh", "verification": "github", "secret": "legacy source secret", "event_type": {"header": "X-GitHub-Event", "prefix": "github."}})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        SourceId::parse(created["id"].as_str().unwrap()).unwrap()
    };
    let (source_pk, source_sk) = keys::sealed_source_key(&tenant(), &source);
    stack
        .ddb
        .delete_item()
        .table_name(&stack.resources.table)
        .key("pk", AttributeValue::S(source_pk))
        .key("sk", AttributeValue::S(source_sk))
        .send()
        .await
        .unwrap();
    stack
        .secrets_client
        .create_secret()
        .name(format!("{}default/{source}", stack.source_secret_prefix))
        .secret_string(json!({"version": 0, "secret": "legacy source secret"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(stack.sealed_items().await.len(), 0);
    assert_eq!(stack.secrets_manager_count().await, 4);

    // Before: read from Secrets Manager, and deliveries verify; the inbound source verifies
    // with its old secret too.
    deliver_and_verify(&stack, &receiver, &subs).await;
    let admin = admin(&stack);
    assert_eq!(admin.status().await.unwrap().legacy, 4);
    // Each push its own body: the replay guard refuses a message it has seen.
    let pushes = std::sync::atomic::AtomicUsize::new(0);
    let push = |secret: &str| {
        let n = pushes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let body = format!(r#"{{"ref":"main","n":{n}}}"#);
        let signature = crate::inbound::github(secret, &body);
        let (stack, source) = (&stack, source.clone());
        async move {
            crate::inbound::inbound(
                stack,
                source.as_str(),
                &[
                    ("x-hub-signature-256", &signature),
                    ("x-github-event", "push"),
                ],
                &body,
            )
            .await
        }
    };
    let (status, answer) = push("legacy source secret").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    // A change since the upgrade: the source's new secret is sealed at once (the old one is
    // still in Secrets Manager until the migration).
    let (status, patched) = stack
        .api_call(
            Method::PATCH,
            &format!("/v1/sources/{source}"),
            Some(&json!({"secret": "the new source secret"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let (status, answer) = push("the new source secret").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");

    let report = admin.migrate().await.unwrap();
    assert_eq!((report.subscribers, report.sources), (3, 1), "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(stack.sealed_items().await.len(), 4);
    assert_eq!(
        stack.secrets_manager_count().await,
        0,
        "deleted once sealed"
    );
    for (i, (id, secret)) in subs.iter().enumerate() {
        let document = stack.secret_document("default", id).await;
        assert_eq!(document["secret"], secret.as_str());
        if i > 0 {
            assert_eq!(document["headers"]["x-token"], format!("t{i}"));
        }
    }
    // The source's sealed secret is the newer one, which the migration kept.
    let stored = stack
        .ingest_adapters
        .source_secrets
        .get(&tenant(), &source)
        .await
        .unwrap()
        .expect("the source's sealed secret");
    assert_eq!(stored.secret.expose(), "the new source secret");
    let (status, answer) = push("the new source secret").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, _) = push("legacy source secret").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Twice: nothing left to move, nothing changed.
    let again = admin.migrate().await.unwrap();
    assert_eq!(
        (again.subscribers, again.sources, again.failed.len()),
        (0, 0, 0)
    );
    assert_eq!(stack.sealed_items().await.len(), 4);
    // After: deliveries verify with the same secrets.
    deliver_and_verify(&stack, &receiver, &subs).await;
}
