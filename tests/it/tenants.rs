//! Tenants and their publish limits: the bootstrap key's `/v1/tenants`, and a tenant over its
//! limit refused with `429 rate_limited` and `Retry-After` at every door it publishes by
//! (`POST /v1/events`, its inbound sources, the EventBridge ingest, test sends) while another
//! tenant publishes on untouched.

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use base64::Engine;
use http::{Method, StatusCode};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use skyhook_domain::ids::TenantId;
use skyhook_tests::{ADMIN_KEY, Stack};

fn code(answer: &Value) -> &str {
    answer["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn the_bootstrap_key_lists_reads_and_sets_tenants_and_no_one_else_does() {
    let stack = Stack::new().await;
    let (_, acme_admin) = stack.api_key("acme", "admin").await;

    // `default` is always there; `acme` is from its first key.
    let tenants = stack.walk(ADMIN_KEY, "/v1/tenants", 1).await;
    let ids: Vec<&str> = tenants.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"default") && ids.contains(&"acme"), "{ids:?}");
    let acme = tenants.iter().find(|t| t["id"] == "acme").unwrap();
    assert_eq!(acme["custom_limits"], false);
    assert_eq!(
        acme["limits"],
        json!({"events_per_second": 100_000, "burst": 1_000_000}),
        "the stack's defaults"
    );
    assert!(acme["created_at"].as_str().unwrap().ends_with('Z'));

    let (status, set) = stack
        .api_call(
            Method::PUT,
            "/v1/tenants/acme",
            Some(&json!({"limits": {"events_per_second": 5, "burst": 20}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["limits"], json!({"events_per_second": 5, "burst": 20}));
    assert_eq!(set["custom_limits"], true);
    assert_eq!(set["created_at"], acme["created_at"], "first seen stays");
    let (_, got) = stack.api_call(Method::GET, "/v1/tenants/acme", None).await;
    assert_eq!(got, set);

    // A tenant first named by PUT exists from then on.
    let (status, new) = stack
        .api_call(
            Method::PUT,
            "/v1/tenants/beta",
            Some(&json!({"limits": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{new}");
    assert_eq!(new["custom_limits"], false);

    for (body, expected) in [
        (
            json!({"limits": {"events_per_second": 0, "burst": 1}}),
            "invalid_limits",
        ),
        (
            json!({"limits": {"events_per_second": 1, "burst": 0}}),
            "invalid_limits",
        ),
        (
            json!({"limits": {"events_per_second": 100001, "burst": 1}}),
            "invalid_limits",
        ),
        (json!({"limits": {"events_per_second": 1}}), "invalid_body"),
        (json!({"limit": null}), "invalid_body"),
    ] {
        let (status, answer) = stack
            .api_call(Method::PUT, "/v1/tenants/acme", Some(&body))
            .await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::UNPROCESSABLE_ENTITY, expected),
            "{body}: {answer}"
        );
    }
    let (status, answer) = stack
        .api_call(
            Method::PUT,
            "/v1/tenants/Not%20A%20Tenant",
            Some(&json!({"limits": null})),
        )
        .await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_tenant")
    );
    let (status, _) = stack
        .api_call(Method::GET, "/v1/tenants/nobody", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A tenant's own admin may not see tenants, nor raise its own limits.
    for (method, path, body) in [
        (Method::GET, "/v1/tenants", None),
        (Method::GET, "/v1/tenants/acme", None),
        (
            Method::PUT,
            "/v1/tenants/acme",
            Some(json!({"limits": {"events_per_second": 100000, "burst": 1000000}})),
        ),
    ] {
        let (status, answer) = stack.api_as(&acme_admin, method, path, body.as_ref()).await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{path}"
        );
    }
    let (_, got) = stack.api_call(Method::GET, "/v1/tenants/acme", None).await;
    assert_eq!(got["limits"]["events_per_second"], 5, "unchanged");

    // The change is in both trails: the tenant's and the bootstrap tenant's.
    let trail = stack.walk(&acme_admin, "/v1/audit", 50).await;
    assert!(
        trail
            .iter()
            .any(|r| r["action"] == "tenant.update" && r["actor"] == "bootstrap"),
        "{trail:?}"
    );
}

/// Gives `tenant` limits of its own, with the bootstrap key.
async fn set_limits(stack: &Stack, tenant: &str, rate: u32, burst: u32) {
    let (status, body) = stack
        .api_call(
            Method::PUT,
            &format!("/v1/tenants/{tenant}"),
            Some(&json!({"limits": {"events_per_second": rate, "burst": burst}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// `n` publishes of the tenant of `key`, one after another; the answers in order.
async fn flood(stack: &Stack, key: &str, n: usize) -> Vec<(StatusCode, Value)> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(
            stack
                .ingest_as(key, &json!({"type": "order.created", "data": {"n": i}}))
                .await,
        );
    }
    out
}

#[tokio::test]
async fn a_tenant_past_its_limit_is_refused_at_every_door_and_another_is_not() {
    let stack = Stack::new().await;
    let (_, noisy) = stack.api_key("noisy", "admin").await;
    let (_, quiet) = stack.api_key("quiet", "publisher").await;
    // A burst of 3, then one a second.
    set_limits(&stack, "noisy", 1, 3).await;
    let started = std::time::Instant::now();

    let answers = flood(&stack, &noisy, 12).await;
    let admitted = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::ACCEPTED)
        .count();
    // The burst, and one more for each whole second the flood took.
    let most = 3 + started.elapsed().as_secs() as usize;
    assert!(
        (3..=most).contains(&admitted),
        "{admitted} admitted, at most {most}"
    );
    for (status, answer) in answers.iter().filter(|(s, _)| *s != StatusCode::ACCEPTED) {
        assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
        assert_eq!(code(answer), "rate_limited");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("noisy") && message.contains("retry after"),
            "{message}"
        );
    }
    // Retry-After is on the answer itself. The bucket refills one a second, so on a slow
    // machine a publish may fit again: each door is tried until it refuses (a bounded
    // number of times), and must refuse.
    let mut wait = None;
    for _ in 0..20 {
        let req = http::Request::builder()
            .method(Method::POST)
            .uri("/v1/events")
            .header("authorization", format!("Bearer {noisy}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                r#"{"type":"order.created","data":{}}"#,
            ))
            .unwrap();
        let resp = tower::ServiceExt::oneshot(stack.ingest.clone(), req)
            .await
            .unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            wait = Some(
                resp.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap(),
            );
            break;
        }
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
    }
    let wait = wait.expect("refused with Retry-After");
    assert!((1..=2).contains(&wait), "{wait}");

    // Meanwhile another tenant publishes on, every one accepted.
    for i in 0..20 {
        let (status, answer) = stack
            .ingest_as(&quiet, &json!({"type": "order.created", "data": {"n": i}}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }

    // A test send through the API is a publish of the tenant's too.
    let (status, sub) = stack
        .api_as(
            &noisy,
            Method::POST,
            "/v1/subscribers",
            Some(&json!({"url": "https://hooks.example.com/x", "event_types": ["*"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    let mut refused = false;
    for _ in 0..20 {
        let (status, answer) = stack
            .api_as(
                &noisy,
                Method::POST,
                &format!("/v1/subscribers/{}/test", sub["id"].as_str().unwrap()),
                Some(&json!({})),
            )
            .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(code(&answer), "rate_limited", "{answer}");
            refused = true;
            break;
        }
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    assert!(refused, "a test send past the limit is refused");

    // So is a webhook arriving at one of its sources, once verified.
    let (status, source) = stack
        .api_as(
            &noisy,
            Method::POST,
            "/v1/sources",
            Some(&json!({
                "name": "shop",
                "verification": "hmac-sha256",
                "secret": "shh",
                "hmac": {"header": "X-Sig", "prefix": "", "encoding": "base64"},
                "event_type": {"fixed": "shop.order"},
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    let mut refused = false;
    for i in 0..20 {
        let body = format!(r#"{{"order":{i}}}"#);
        let sig =
            base64::engine::general_purpose::STANDARD.encode(hmac_sha256(b"shh", body.as_bytes()));
        let (status, answer) = Stack::send(
            &stack.ingest,
            Method::POST,
            &format!("/v1/inbound/{}", source["id"].as_str().unwrap()),
            Some(axum::body::Body::from(body)),
            &[("content-type", "application/json"), ("x-sig", &sig)],
        )
        .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(code(&answer), "rate_limited", "{answer}");
            refused = true;
            break;
        }
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    assert!(
        refused,
        "an inbound webhook past the tenant's limit is refused"
    );
}

fn hmac_sha256(key: &[u8], body: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

#[tokio::test]
async fn an_eventbridge_event_past_the_limit_fails_its_invocation_for_lambda_to_retry() {
    let stack = Stack::new().await;
    let tenant = TenantId::parse("bus-tenant").unwrap();
    set_limits(&stack, "bus-tenant", 1, 2).await;
    let event = |id: &str| -> EventBridgeEvent<Box<RawValue>> {
        serde_json::from_value(json!({
            "version": "0", "id": id, "detail-type": "order.created",
            "source": "com.example.orders", "account": "000000000000",
            "time": "2026-11-23T10:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {"order": 1},
        }))
        .unwrap()
    };
    let mut refused = None;
    for i in 0..10 {
        let out = skyhook_ingest::handle_eventbridge(
            &stack.events_publisher,
            &tenant,
            LambdaEvent::new(event(&format!("eb-{i}")), Context::default()),
        )
        .await;
        if let Err(e) = out {
            refused = Some(e);
            break;
        }
    }
    let err = refused.expect("the bus tenant is refused past its burst");
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "RateLimited");
    assert!(
        diagnostic.error_message.contains("bus-tenant"),
        "{}",
        diagnostic.error_message
    );
    // Lambda tries it again later, when the bucket has refilled.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = skyhook_ingest::handle_eventbridge(
        &stack.events_publisher,
        &tenant,
        LambdaEvent::new(event("eb-late"), Context::default()),
    )
    .await;
    assert!(out.is_ok(), "{out:?}");
}
