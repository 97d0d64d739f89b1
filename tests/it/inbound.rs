//! Inbound webhooks: sources through the API, and `POST /v1/inbound/{id}` through the
//! ingest router against the emulator. Requests are signed here as each sender signs them,
//! with this file's own HMAC code (not Skyhook's), so a shared mistake cannot pass.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use base64::Engine as _;
use hmac::{Mac, digest::KeyInit};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use skyhook_tests::{Receiver, Stack};

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// `X-Hub-Signature-256`, as GitHub computes it: hex HMAC-SHA256 of the raw body, keyed with
/// the secret's UTF-8 bytes.
pub(crate) fn github(secret: &str, body: &str) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), body.as_bytes()))
    )
}

/// `Stripe-Signature`, as Stripe computes it: `t=<unix>,v1=<hex HMAC of "{t}.{body}">`.
fn stripe(secret: &str, t: i64, body: &str) -> String {
    let v1 = hex::encode(hmac_sha256(
        secret.as_bytes(),
        format!("{t}.{body}").as_bytes(),
    ));
    format!("t={t},v1={v1}")
}

/// Standard Webhooks headers: `v1,<base64 HMAC of "{id}.{t}.{body}">` keyed with the
/// base64-decoded part of the `whsec_` secret.
fn standard(secret: &str, id: &str, t: i64, body: &str) -> [(String, String); 3] {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let sig = base64::engine::general_purpose::STANDARD
        .encode(hmac_sha256(&key, format!("{id}.{t}.{body}").as_bytes()));
    [
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), t.to_string()),
        ("webhook-signature".into(), format!("v1,{sig}")),
    ]
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn create_source(stack: &Stack, body: Value) -> Value {
    let (status, created) = stack
        .api_call(Method::POST, "/v1/sources", Some(&body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["id"].as_str().unwrap().starts_with("src_"));
    created
}

/// Posts a webhook to a source, with no API key.
pub(crate) async fn inbound(
    stack: &Stack,
    source: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, Value) {
    let path = format!("/v1/inbound/{source}");
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    Stack::send(
        &stack.ingest,
        Method::POST,
        &path,
        Some(Body::from(body.to_string())),
        &all,
    )
    .await
}

fn code(answer: &Value) -> &str {
    answer["error"]["code"].as_str().unwrap_or("")
}

/// What a refused request could have written: items, queued messages, secrets.
async fn footprint(stack: &Stack) -> (usize, usize, usize) {
    (
        stack.table_items().await,
        stack.queue_depth(&stack.resources.queue_url).await,
        stack.secret_count().await,
    )
}

#[tokio::test]
async fn a_github_webhook_is_verified_published_and_fanned_out_transformed() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    let secret = "It's a Secret to Everybody";
    let source = create_source(
        &stack,
        json!({
            "name": "GitHub: acme/shop",
            "verification": "github",
            "secret": secret,
            "event_type": {"header": "X-GitHub-Event", "prefix": "github."},
        }),
    )
    .await;
    assert_eq!(source["secret"], secret, "shown once, at create");
    let id = source["id"].as_str().unwrap().to_string();
    assert_eq!(source["inbound_path"], format!("/v1/inbound/{id}"));
    let (status, sub) = stack
        .api_call(
            Method::POST,
            "/v1/subscribers",
            Some(&json!({
                "url": receiver.url("/ci"),
                "event_types": ["github.push"],
                "transform": "{repo: .data.repository.full_name, commits: (.data.commits | length)}",
                "filter": ".data.ref == \"refs/heads/main\"",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    let sub_secret = sub["secret"].as_str().unwrap().to_string();

    let body = r#"{"ref":"refs/heads/main","repository":{"full_name":"acme/shop"},"commits":[{"id":"a"},{"id":"b"}]}"#;
    let signature = github(secret, body);
    let headers = [
        ("x-hub-signature-256", signature.as_str()),
        ("x-github-event", "push"),
        ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    ];
    let (status, receipt) = inbound(&stack, &id, &headers, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{receipt}");
    assert_eq!(receipt["type"], "github.push");
    assert_eq!(receipt["subscribers"], 1);
    let event_id = receipt["id"].as_str().unwrap().to_string();

    // The same request again is a replay; a push to another branch passes the signature but
    // not the subscriber's filter.
    let (status, again) = inbound(&stack, &id, &headers, body).await;
    assert_eq!(
        (status, code(&again)),
        (StatusCode::UNAUTHORIZED, "replayed"),
        "{again}"
    );
    let other = r#"{"ref":"refs/heads/dev","repository":{"full_name":"acme/shop"},"commits":[]}"#;
    let other_sig = github(secret, other);
    let (status, skipped) = inbound(
        &stack,
        &id,
        &[
            ("x-hub-signature-256", &other_sig),
            ("x-github-event", "push"),
        ],
        other,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{skipped}");
    assert_eq!(skipped["subscribers"], 0);

    let runner = stack.start_delivery();
    receiver
        .wait_for_ids(&[&event_id], Duration::from_secs(20))
        .await;
    runner.stop().await;
    let requests = receiver.requests();
    assert!(!requests.is_empty());
    for req in &requests {
        assert_eq!(req.id(), event_id, "only the main-branch push is delivered");
        assert_eq!(req.json(), json!({"repo": "acme/shop", "commits": 2}));
        req.verify(&sub_secret)
            .expect("the delivery verifies with the subscriber's secret");
        assert_eq!(
            req.header("x-correlation-id"),
            "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "GitHub's delivery id follows the event"
        );
    }
}

/// A refused request: why, its headers and body, and the answer's status and code.
type Refused<'a> = (
    &'a str,
    Vec<(&'a str, &'a str)>,
    &'a str,
    StatusCode,
    &'a str,
);

#[tokio::test]
async fn refused_requests_are_401_with_a_code_and_write_nothing() {
    let stack = Stack::new().await;
    stack.subscribe("http://127.0.0.1:9/x", &["*"]).await;
    let secret = "whsec_test_secret";
    let source = create_source(
        &stack,
        json!({
            "name": "Stripe",
            "verification": "stripe",
            "secret": secret,
            "event_type": {"pointer": "/type", "prefix": "stripe."},
        }),
    )
    .await;
    let id = source["id"].as_str().unwrap().to_string();
    let body = r#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","type":"customer.created","data":{"object":{"id":"cus_1"}}}"#;
    let t = now();
    let before = footprint(&stack).await;

    let stale = stripe(secret, t - 301, body);
    let future = stripe(secret, t + 400, body);
    let wrong_secret = stripe("whsec_other", t, body);
    let tampered = stripe(secret, t, body).replace("t=", "t=1");
    let cases: Vec<Refused> = vec![
        (
            "no signature",
            vec![],
            body,
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        ),
        (
            "another secret",
            vec![("stripe-signature", &wrong_secret)],
            body,
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        ),
        (
            "a moved timestamp",
            vec![("stripe-signature", &tampered)],
            body,
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        ),
        (
            "an altered body",
            vec![("stripe-signature", &stale)],
            r#"{"id":"evt_2","type":"customer.created"}"#,
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        ),
        (
            "five minutes and a second old",
            vec![("stripe-signature", &stale)],
            body,
            StatusCode::UNAUTHORIZED,
            "timestamp_out_of_tolerance",
        ),
        (
            "from the future",
            vec![("stripe-signature", &future)],
            body,
            StatusCode::UNAUTHORIZED,
            "timestamp_out_of_tolerance",
        ),
        (
            "junk",
            vec![("stripe-signature", "t=abc,v1=zz")],
            body,
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        ),
    ];
    for (why, headers, body, status, want) in &cases {
        let (got, answer) = inbound(&stack, &id, headers, body).await;
        assert_eq!((got, code(&answer)), (*status, *want), "{why}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // Signed right, but nothing to publish: not JSON, or no type where the rule looks.
    let not_json = "not json";
    let sig = stripe(secret, t, not_json);
    let (got, answer) = inbound(&stack, &id, &[("stripe-signature", &sig)], not_json).await;
    assert_eq!(
        (got, code(&answer)),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );
    let untyped = r#"{"id":"evt_3"}"#;
    let sig = stripe(secret, t, untyped);
    let (got, answer) = inbound(&stack, &id, &[("stripe-signature", &sig)], untyped).await;
    assert_eq!(
        (got, code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event_type"),
        "{answer}"
    );
    // Unknown sources, and API keys, do not help.
    let sig = stripe(secret, t, body);
    let (got, _) = inbound(
        &stack,
        "src_01JD0000000000000000000000",
        &[("stripe-signature", &sig)],
        body,
    )
    .await;
    assert_eq!(got, StatusCode::NOT_FOUND);
    let (got, answer) = inbound(
        &stack,
        &id,
        &[("authorization", "Bearer sk_test_admin_0123456789abcdef")],
        body,
    )
    .await;
    assert_eq!(
        (got, code(&answer)),
        (StatusCode::UNAUTHORIZED, "invalid_signature")
    );
    assert_eq!(
        footprint(&stack).await,
        before,
        "a refused request wrote nothing"
    );

    // The right request is published once; its replay is refused and writes nothing more.
    let (got, receipt) = inbound(&stack, &id, &[("stripe-signature", &sig)], body).await;
    assert_eq!(got, StatusCode::ACCEPTED, "{receipt}");
    assert_eq!(receipt["type"], "stripe.customer.created");
    let after = footprint(&stack).await;
    let (got, answer) = inbound(&stack, &id, &[("stripe-signature", &sig)], body).await;
    assert_eq!((got, code(&answer)), (StatusCode::UNAUTHORIZED, "replayed"));
    assert_eq!(footprint(&stack).await, after, "a replay wrote nothing");
    // Stripe's retry of the same event signs anew: not a replay, and the same event.
    let retry = stripe(secret, t + 1, body);
    let (got, again) = inbound(&stack, &id, &[("stripe-signature", &retry)], body).await;
    assert_eq!(got, StatusCode::ACCEPTED, "{again}");
    assert_eq!(
        again["id"], receipt["id"],
        "the Stripe event id is the idempotency key"
    );
    let queued: BTreeSet<String> = stack
        .take_queued()
        .await
        .iter()
        .map(|m| {
            serde_json::from_str::<Value>(m).unwrap()["event_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        queued,
        BTreeSet::from([receipt["id"].as_str().unwrap().to_string()])
    );
}

#[tokio::test]
async fn standard_webhooks_and_hmac_sources_verify_their_own_way() {
    let stack = Stack::new().await;
    let sw = create_source(
        &stack,
        json!({"name": "partner", "verification": "standard-webhooks", "event_type": {"fixed": "partner.update"}}),
    )
    .await;
    let secret = sw["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "generated when not given");
    let sw_id = sw["id"].as_str().unwrap().to_string();
    let body = r#"{"n":1}"#;
    let t = now();
    let signed = standard(&secret, "msg_2KWPBgLlAfxdpx2AI54pPJ85f1W", t, body);
    let headers: Vec<(&str, &str)> = signed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, first) = inbound(&stack, &sw_id, &headers, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(first["type"], "partner.update");
    // The sender's retry: the same webhook-id, signed again at another time.
    let retried = standard(&secret, "msg_2KWPBgLlAfxdpx2AI54pPJ85f1W", t + 30, body);
    let headers: Vec<(&str, &str)> = retried
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, again) = inbound(&stack, &sw_id, &headers, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(
        again["id"], first["id"],
        "webhook-id is the idempotency key"
    );
    let stale = standard(&secret, "msg_other", t - 600, body);
    let headers: Vec<(&str, &str)> = stale
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, answer) = inbound(&stack, &sw_id, &headers, body).await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::UNAUTHORIZED, "timestamp_out_of_tolerance")
    );

    let hmac_source = create_source(
        &stack,
        json!({
            "name": "shop",
            "verification": "hmac-sha256",
            "secret": "shh",
            "hmac": {"header": "X-Shop-Signature", "prefix": "", "encoding": "base64"},
            "event_type": {"header": "X-Shop-Topic", "prefix": "shop."},
        }),
    )
    .await;
    let hid = hmac_source["id"].as_str().unwrap().to_string();
    let body = r#"{"order":5}"#;
    let sig =
        base64::engine::general_purpose::STANDARD.encode(hmac_sha256(b"shh", body.as_bytes()));
    let (status, answer) = inbound(
        &stack,
        &hid,
        &[
            ("x-shop-signature", &sig),
            ("x-shop-topic", "orders-create"),
        ],
        body,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["type"], "shop.orders-create");
    let hex_sig = hex::encode(hmac_sha256(b"shh", body.as_bytes()));
    let (status, answer) = inbound(
        &stack,
        &hid,
        &[("x-shop-signature", &hex_sig), ("x-shop-topic", "x")],
        body,
    )
    .await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::UNAUTHORIZED, "invalid_signature")
    );
}

#[tokio::test]
async fn sources_are_managed_by_admins_and_a_new_secret_applies_at_once() {
    let stack = Stack::new().await;
    let created = create_source(
        &stack,
        json!({"name": "gh", "verification": "github", "event_type": {"fixed": "gh.any"}}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    let old = created["secret"].as_str().unwrap().to_string();
    assert_eq!(old.len(), 64, "a generated secret: 32 random bytes in hex");

    let (status, got) = stack
        .api_call(Method::GET, &format!("/v1/sources/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        got.get("secret").is_none(),
        "the secret is shown only once: {got}"
    );
    assert_eq!(got["verification"], "github");
    let (_, reader) = stack.api_key("default", "reader").await;
    let (status, list) = stack
        .api_as(&reader, Method::GET, "/v1/sources", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    let (status, _) = stack
        .api_as(
            &reader,
            Method::PATCH,
            &format!("/v1/sources/{id}"),
            Some(&json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "readers only read");
    let (_, other_admin) = stack.api_key("other", "admin").await;
    let (status, _) = stack
        .api_as(
            &other_admin,
            Method::GET,
            &format!("/v1/sources/{id}"),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another tenant's source is not found"
    );

    // A new secret: the old one stops at the very next request.
    let body = r#"{"a":1}"#;
    let (status, patched) = stack
        .api_call(
            Method::PATCH,
            &format!("/v1/sources/{id}"),
            Some(&json!({"secret": "a new secret", "name": "gh (rotated)"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "gh (rotated)");
    let (status, answer) = inbound(
        &stack,
        &id,
        &[("x-hub-signature-256", &github(&old, body))],
        body,
    )
    .await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::UNAUTHORIZED, "invalid_signature")
    );
    let (status, answer) = inbound(
        &stack,
        &id,
        &[("x-hub-signature-256", &github("a new secret", body))],
        body,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");

    // A scheme the secret does not suit needs a new secret with it.
    let (status, answer) = stack
        .api_call(
            Method::PATCH,
            &format!("/v1/sources/{id}"),
            Some(&json!({"verification": "standard-webhooks"})),
        )
        .await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_secret"),
        "{answer}"
    );
    for (bad, want) in [
        (
            json!({"name": "x", "verification": "gitlab", "event_type": {"fixed": "a.b"}}),
            "invalid_verification",
        ),
        (
            json!({"name": "x", "verification": "github", "event_type": {"fixed": "a.b", "header": "X"}}),
            "invalid_event_type_rule",
        ),
        (
            json!({"name": "x", "verification": "hmac-sha256", "event_type": {"fixed": "a.b"}}),
            "invalid_hmac",
        ),
        (
            json!({"name": "x", "verification": "standard-webhooks", "secret": "plain", "event_type": {"fixed": "a.b"}}),
            "invalid_secret",
        ),
        (
            json!({"name": "", "verification": "github", "event_type": {"fixed": "a.b"}}),
            "invalid_name",
        ),
    ] {
        let (status, answer) = stack
            .api_call(Method::POST, "/v1/sources", Some(&bad))
            .await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::UNPROCESSABLE_ENTITY, want),
            "{bad}: {answer}"
        );
    }

    // Deleted: gone from the API and from the inbound URL at once.
    let secrets = stack.secret_count().await;
    let (status, _) = stack
        .api_call(Method::DELETE, &format!("/v1/sources/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = stack
        .api_call(Method::GET, &format!("/v1/sources/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let other = r#"{"b":2}"#;
    let (status, _) = inbound(
        &stack,
        &id,
        &[("x-hub-signature-256", &github("a new secret", other))],
        other,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        stack.secret_count().await,
        secrets - 1,
        "the source's sealed secret is gone, and subscriber secrets are untouched"
    );
    let (_, audit) = stack.api_call(Method::GET, "/v1/audit", None).await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    for action in ["source.create", "source.update", "source.delete"] {
        assert!(actions.contains(&action), "{actions:?}");
    }
}

/// A source store whose edits lose the race: before each edit lands, another admin's change
/// of the secret lands first (its record, then its secret, as the API writes them), so the
/// edit's record update conflicts.
struct AnotherAdminWins {
    inner: std::sync::Arc<dyn skyhook_domain::ports::SourceStore>,
    secrets: std::sync::Arc<dyn skyhook_domain::ports::SourceSecrets>,
    winner: &'static str,
}

#[async_trait::async_trait]
impl skyhook_domain::ports::SourceStore for AnotherAdminWins {
    async fn create(
        &self,
        s: &skyhook_domain::inbound::Source,
    ) -> Result<(), skyhook_domain::ports::StoreError> {
        self.inner.create(s).await
    }
    async fn get(
        &self,
        id: &skyhook_domain::ids::SourceId,
    ) -> Result<Option<skyhook_domain::inbound::Source>, skyhook_domain::ports::StoreError> {
        self.inner.get(id).await
    }
    async fn list(
        &self,
        t: &skyhook_domain::ids::TenantId,
        p: &skyhook_domain::ports::PageRequest,
    ) -> Result<
        skyhook_domain::ports::Page<skyhook_domain::inbound::Source>,
        skyhook_domain::ports::StoreError,
    > {
        self.inner.list(t, p).await
    }
    async fn replace(
        &self,
        s: &skyhook_domain::inbound::Source,
        expected: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), skyhook_domain::ports::StoreError> {
        let mut theirs = self.inner.get(&s.id).await?.expect("the source");
        theirs.secret_version += 1;
        theirs.updated_at = expected + chrono::Duration::milliseconds(1);
        self.inner.replace(&theirs, expected).await?;
        let secret = skyhook_domain::inbound::SourceSecret::parse(
            skyhook_domain::inbound::Scheme::Github,
            self.winner,
        )
        .unwrap();
        assert!(
            self.secrets
                .put(&theirs.tenant, &theirs.id, &secret, theirs.secret_version)
                .await?
        );
        // Now this edit, which read the source before: it loses.
        self.inner.replace(s, expected).await
    }
    async fn delete(
        &self,
        t: &skyhook_domain::ids::TenantId,
        id: &skyhook_domain::ids::SourceId,
    ) -> Result<bool, skyhook_domain::ports::StoreError> {
        self.inner.delete(t, id).await
    }
}

#[tokio::test]
async fn a_secret_change_that_loses_a_race_leaves_the_winners_secret() {
    let stack = Stack::new().await;
    let created = create_source(
        &stack,
        json!({"name": "gh", "verification": "github", "secret": "first", "event_type": {"fixed": "gh.any"}}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    let mut adapters = stack.adapters.clone();
    adapters.sources = std::sync::Arc::new(AnotherAdminWins {
        inner: adapters.sources.clone(),
        secrets: adapters.source_secrets.clone(),
        winner: "winner",
    });
    let racing = stack.api_with(&adapters);
    let (status, answer) = stack
        .api_via(
            &racing,
            skyhook_tests::ADMIN_KEY,
            Method::PATCH,
            &format!("/v1/sources/{id}"),
            Some(&json!({"secret": "loser"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    for (i, (secret, expected)) in [
        ("winner", StatusCode::ACCEPTED),
        ("loser", StatusCode::UNAUTHORIZED),
        ("first", StatusCode::UNAUTHORIZED),
    ]
    .into_iter()
    .enumerate()
    {
        let body = format!(r#"{{"a":{i}}}"#);
        let (status, answer) = inbound(
            &stack,
            &id,
            &[("x-hub-signature-256", &github(secret, &body))],
            &body,
        )
        .await;
        assert_eq!(status, expected, "signed with {secret:?}: {answer}");
    }
    // What the table and the secret store hold agree: the winner's change, version 1.
    let source = stack
        .adapters
        .sources
        .get(&skyhook_domain::ids::SourceId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let stored = stack
        .adapters
        .source_secrets
        .get(&source.tenant, &source.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((source.secret_version, stored.version), (1, 1));
}
