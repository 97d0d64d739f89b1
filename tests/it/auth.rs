//! API keys, roles and tenants: the role × route matrix, tenant isolation across every kind
//! of data, key management (stored only as digests) and the audit trail.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use skyhook_aws::DynamoDbDeadLetterStore;
use skyhook_domain::event_type::EventType;
use skyhook_domain::ids::{EventId, SubscriberId, TenantId};
use skyhook_domain::model::DeadLetterEntry;
use skyhook_domain::ports::DeadLetterStore;
use skyhook_tests::{ADMIN_KEY, Stack};

/// The least role each management route needs, with a request that succeeds for it.
struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    needs: usize,
}

const READER: usize = 0;
const PUBLISHER: usize = 1;
const ADMIN: usize = 2;

#[tokio::test]
async fn every_route_answers_401_without_a_key_403_below_its_role_and_2xx_with_it() {
    let stack = Stack::new().await;
    let (_, reader) = stack.api_key("acme", "reader").await;
    let (_, publisher) = stack.api_key("acme", "publisher").await;
    let (_, admin) = stack.api_key("acme", "admin").await;
    let keys = [reader.as_str(), publisher.as_str(), admin.as_str()];
    // Resources of tenant acme that the admin's calls act on.
    let create = |url: &str| json!({"url": url, "event_types": ["*"]});
    let (status, sub) = stack
        .api_as(
            &admin,
            Method::POST,
            "/v1/subscribers",
            Some(&create("https://example.com/a")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    let sub = sub["id"].as_str().unwrap().to_string();
    let (_, doomed) = stack
        .api_as(
            &admin,
            Method::POST,
            "/v1/subscribers",
            Some(&create("https://example.com/b")),
        )
        .await;
    let doomed = doomed["id"].as_str().unwrap().to_string();
    let (doomed_key, _) = stack.api_key("acme", "reader").await;
    let (status, event) = stack
        .ingest_as(&publisher, &json!({"type": "a.b", "data": {}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{event}");
    let event = event["id"].as_str().unwrap().to_string();

    let cases = vec![
        Case {
            method: Method::GET,
            path: "/v1/subscribers".into(),
            body: None,
            needs: READER,
        },
        Case {
            method: Method::POST,
            path: "/v1/subscribers".into(),
            body: Some(create("https://example.com/c")),
            needs: ADMIN,
        },
        Case {
            method: Method::GET,
            path: format!("/v1/subscribers/{sub}"),
            body: None,
            needs: READER,
        },
        Case {
            method: Method::PATCH,
            path: format!("/v1/subscribers/{sub}"),
            body: Some(json!({"description": "x"})),
            needs: ADMIN,
        },
        Case {
            method: Method::POST,
            path: format!("/v1/subscribers/{sub}/rotate-secret"),
            body: None,
            needs: ADMIN,
        },
        Case {
            method: Method::POST,
            path: format!("/v1/subscribers/{sub}/test"),
            body: None,
            needs: PUBLISHER,
        },
        Case {
            method: Method::POST,
            path: format!("/v1/subscribers/{sub}/recover"),
            body: Some(json!({"since": "2020-01-01T00:00:00Z"})),
            needs: ADMIN,
        },
        Case {
            method: Method::GET,
            path: format!("/v1/events/{event}"),
            body: None,
            needs: READER,
        },
        Case {
            method: Method::GET,
            path: "/v1/deliveries".into(),
            body: None,
            needs: READER,
        },
        Case {
            method: Method::GET,
            path: "/v1/stats".into(),
            body: None,
            needs: READER,
        },
        Case {
            method: Method::GET,
            path: "/v1/dlq".into(),
            body: None,
            needs: READER,
        },
        Case {
            method: Method::POST,
            path: "/v1/dlq/redrive".into(),
            body: None,
            needs: ADMIN,
        },
        Case {
            method: Method::GET,
            path: "/v1/api-keys".into(),
            body: None,
            needs: ADMIN,
        },
        Case {
            method: Method::POST,
            path: "/v1/api-keys".into(),
            body: Some(json!({"role": "reader"})),
            needs: ADMIN,
        },
        Case {
            method: Method::DELETE,
            path: format!("/v1/api-keys/{doomed_key}"),
            body: None,
            needs: ADMIN,
        },
        Case {
            method: Method::GET,
            path: "/v1/audit".into(),
            body: None,
            needs: ADMIN,
        },
        Case {
            method: Method::GET,
            path: "/v1/openapi.json".into(),
            body: None,
            needs: READER,
        },
        Case {
            method: Method::DELETE,
            path: format!("/v1/subscribers/{doomed}"),
            body: None,
            needs: ADMIN,
        },
    ];
    for case in &cases {
        let (status, body) = stack
            .api_as("", case.method.clone(), &case.path, case.body.as_ref())
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{} {}",
            case.method,
            case.path
        );
        assert_eq!(body["error"]["code"], "unauthorized");
        let (status, _) = stack
            .api_as(
                "sk_not_a_key_at_all",
                case.method.clone(),
                &case.path,
                case.body.as_ref(),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{} {}",
            case.method,
            case.path
        );
        for (level, key) in keys.iter().enumerate() {
            let (status, body) = stack
                .api_as(key, case.method.clone(), &case.path, case.body.as_ref())
                .await;
            if level < case.needs {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{} {} as role {level}: {body}",
                    case.method,
                    case.path
                );
                assert_eq!(body["error"]["code"], "forbidden");
            } else {
                assert!(
                    status.is_success(),
                    "{} {} as role {level}: {status} {body}",
                    case.method,
                    case.path
                );
            }
        }
    }
    // Publishing goes through the ingest router with the same keys.
    let event_body = json!({"type": "a.b", "data": {}});
    assert_eq!(
        stack.ingest_as("", &event_body).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        stack.ingest_as(&reader, &event_body).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        stack.ingest_as(&publisher, &event_body).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        stack.ingest_as(&admin, &event_body).await.0,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn a_second_tenant_never_sees_or_changes_the_first_tenants_data() {
    let stack = Stack::new().await;
    // Tenant default (the bootstrap key's) owns a subscriber, an event, a key, a dead letter.
    let (sub, _) = stack.subscribe("https://example.com/hook", &["*"]).await;
    let published = stack
        .publish(json!({"type": "order.created", "data": {"n": 1}}))
        .await;
    let event = published["id"].as_str().unwrap().to_string();
    let (default_key, _) = stack.api_key("default", "reader").await;
    let index = DynamoDbDeadLetterStore::new(stack.ddb.clone(), &stack.resources.table);
    index
        .put(&DeadLetterEntry {
            tenant: TenantId::default_tenant(),
            event_id: EventId::parse(&event).unwrap(),
            subscriber_id: SubscriberId::parse(&sub).unwrap(),
            event_type: EventType::parse("order.created").unwrap(),
            reason: "attempts_exhausted: HTTP 500".into(),
            attempts: 3,
            dead_at: chrono::Utc::now(),
            message: None,
        })
        .await
        .unwrap();
    let (_, acme) = stack.api_key("acme", "admin").await;
    let (_, acme_publisher) = stack.api_key("acme", "publisher").await;

    let empty_lists = [
        "/v1/subscribers".to_string(),
        format!("/v1/deliveries?event_id={event}"),
        format!("/v1/deliveries?subscriber_id={sub}"),
        "/v1/deliveries".to_string(),
        "/v1/dlq".to_string(),
        format!("/v1/dlq?subscriber_id={sub}"),
    ];
    for path in &empty_lists {
        let (status, body) = stack.api_as(&acme, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["data"], json!([]), "{path}");
    }
    let not_found: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/v1/subscribers/{sub}"), None),
        (
            Method::PATCH,
            format!("/v1/subscribers/{sub}"),
            Some(json!({"active": false})),
        ),
        (Method::DELETE, format!("/v1/subscribers/{sub}"), None),
        (
            Method::POST,
            format!("/v1/subscribers/{sub}/rotate-secret"),
            None,
        ),
        (Method::POST, format!("/v1/subscribers/{sub}/test"), None),
        (
            Method::POST,
            format!("/v1/subscribers/{sub}/recover"),
            Some(json!({"since": "2020-01-01T00:00:00Z"})),
        ),
        (Method::GET, format!("/v1/events/{event}"), None),
        (Method::GET, format!("/v1/stats?subscriber_id={sub}"), None),
        (Method::DELETE, format!("/v1/api-keys/{default_key}"), None),
    ];
    for (method, path, body) in &not_found {
        let (status, answer) = stack
            .api_as(&acme, method.clone(), path, body.as_ref())
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
    }
    let (_, stats) = stack.api_as(&acme, Method::GET, "/v1/stats", None).await;
    assert_eq!(stats["total"], 0);
    let (_, keys) = stack.api_as(&acme, Method::GET, "/v1/api-keys", None).await;
    assert!(
        keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["tenant"] == "acme")
    );
    let (_, audit) = stack.api_as(&acme, Method::GET, "/v1/audit", None).await;
    assert!(
        !audit.to_string().contains(&sub),
        "acme's audit trail shows nothing of tenant default: {audit}"
    );
    let (_, redrive) = stack
        .api_as(&acme, Method::POST, "/v1/dlq/redrive", None)
        .await;
    assert_eq!(redrive["redriven"], 0);
    // Publishing as acme reaches none of default's subscribers, even by explicit id.
    let (_, body) = stack
        .ingest_as(
            &acme_publisher,
            &json!({"type": "order.created", "data": {}}),
        )
        .await;
    assert_eq!(body["subscribers"], 0);
    let (status, _) = stack
        .ingest_as(
            &acme_publisher,
            &json!({"type": "order.created", "data": {}, "subscriber_ids": [sub]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A tenant admin makes keys for itself only.
    let (status, body) = stack
        .api_as(
            &acme,
            Method::POST,
            "/v1/api-keys",
            Some(&json!({"tenant": "default", "role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = stack
        .api_as(
            &acme,
            Method::POST,
            "/v1/api-keys",
            Some(&json!({"tenant": "acme", "role": "reader"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["tenant"], "acme");

    // Everything of tenant default is as it was.
    let (status, read) = stack
        .api_call(Method::GET, &format!("/v1/subscribers/{sub}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["active"], true);
    let (_, dead) = stack.api_call(Method::GET, "/v1/dlq", None).await;
    assert_eq!(dead["data"].as_array().unwrap().len(), 1);
    let (status, _) = stack
        .api_as(&default_key, Method::GET, "/v1/subscribers", None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a key's id is not the key"
    );
    let (_, keys) = stack.api_call(Method::GET, "/v1/api-keys", None).await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn api_keys_are_shown_once_stored_as_digests_paginated_and_revocable() {
    let stack = Stack::new().await;
    let (status, created) = stack
        .api_call(
            Method::POST,
            "/v1/api-keys",
            Some(&json!({"tenant": "acme", "role": "publisher", "description": "ci"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let key = created["key"].as_str().unwrap().to_string();
    assert!(id.starts_with("key_"));
    assert!(key.starts_with("sk_") && key.len() >= 40);
    assert_eq!(created["role"], "publisher");
    assert_eq!(created["created_by"], "bootstrap");
    // The key itself is nowhere in the table.
    let scan = stack
        .ddb
        .scan()
        .table_name(&stack.resources.table)
        .send()
        .await
        .unwrap();
    assert!(!format!("{:?}", scan.items()).contains(&key));
    // It works, as its tenant and role.
    let (status, _) = stack
        .ingest_as(&key, &json!({"type": "a.b", "data": {}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Acme's admin lists acme's keys, page by page, none lost or repeated, none showing a key.
    let (_, admin) = stack.api_key("acme", "admin").await;
    let mut want = vec![id.clone()];
    for _ in 0..4 {
        let (status, body) = stack
            .api_as(
                &admin,
                Method::POST,
                "/v1/api-keys",
                Some(&json!({"role": "reader"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        assert!(body["created_by"].as_str().unwrap().starts_with("key_"));
        want.push(body["id"].as_str().unwrap().to_string());
    }
    let listed = stack.walk(&admin, "/v1/api-keys", 2).await;
    let mut got: Vec<String> = listed
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    assert!(listed.iter().all(|k| k.get("key").is_none()));
    got.retain(|g| want.contains(g));
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(listed.len(), 6, "five made here and the admin's own");
    // Revoked: the key stops working at once; a second delete is 404.
    let (status, _) = stack
        .api_as(&admin, Method::DELETE, &format!("/v1/api-keys/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = stack
        .ingest_as(&key, &json!({"type": "a.b", "data": {}}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = stack
        .api_as(&admin, Method::DELETE, &format!("/v1/api-keys/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = stack
        .api_as(&admin, Method::DELETE, "/v1/api-keys/garbage", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Bad input.
    for (body, status, code) in [
        (
            json!({"role": "owner"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_role",
        ),
        (
            json!({"role": "reader", "tenant": "Not A Tenant"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_tenant",
        ),
        (
            json!({"role": "reader", "scopes": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"tenant": "acme"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
    ] {
        let (got, answer) = stack
            .api_call(Method::POST, "/v1/api-keys", Some(&body))
            .await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}");
    }
    let (status, answer) = Stack::send(
        &stack.api,
        Method::POST,
        "/v1/api-keys",
        Some(axum::body::Body::from("{not json")),
        &[("authorization", &format!("Bearer {ADMIN_KEY}"))],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}

#[tokio::test]
async fn every_management_change_is_in_the_audit_trail_with_who_what_and_which() {
    let stack = Stack::new().await;
    let (admin_id, admin) = stack.api_key("default", "admin").await;
    let (status, sub) = stack
        .api_as(
            &admin,
            Method::POST,
            "/v1/subscribers",
            Some(&json!({"url": "https://example.com/x", "event_types": ["*"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let sub = sub["id"].as_str().unwrap().to_string();
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/v1/subscribers/{sub}"),
            Some(json!({"description": "new"})),
        ),
        (
            Method::PATCH,
            format!("/v1/subscribers/{sub}"),
            Some(json!({"active": false})),
        ),
        (
            Method::POST,
            format!("/v1/subscribers/{sub}/rotate-secret"),
            None,
        ),
        (Method::DELETE, format!("/v1/subscribers/{sub}"), None),
    ] {
        let (status, answer) = stack.api_as(&admin, method, &path, body.as_ref()).await;
        assert!(status.is_success(), "{path}: {answer}");
    }
    let trail = stack.walk(&admin, "/v1/audit", 2).await;
    let actions: Vec<(&str, &str, &str)> = trail
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["actor"].as_str().unwrap(),
                r["resource"].as_str().unwrap(),
            )
        })
        .collect();
    // Newest first; the bootstrap key made the admin key, the admin key did the rest.
    assert_eq!(
        actions,
        vec![
            ("subscriber.delete", admin_id.as_str(), sub.as_str()),
            ("subscriber.rotate_secret", admin_id.as_str(), sub.as_str()),
            ("subscriber.deactivate", admin_id.as_str(), sub.as_str()),
            ("subscriber.update", admin_id.as_str(), sub.as_str()),
            ("subscriber.create", admin_id.as_str(), sub.as_str()),
            ("api_key.create", "bootstrap", admin_id.as_str()),
        ]
    );
    assert!(trail.iter().all(|r| r["at"].as_str().is_some()));
    assert_eq!(trail[3]["detail"], json!({"fields": ["description"]}));
    assert!(
        !trail.iter().any(|r| r.to_string().contains("whsec_")),
        "no secrets in the trail"
    );
}

/// As deployed: the bootstrap key lives in a Secrets Manager secret, which both the API and
/// the HTTP ingest read (and issued keys keep working beside it).
#[tokio::test]
async fn the_bootstrap_key_kept_in_secrets_manager_works_for_the_api_and_the_ingest() {
    let stack = Stack::with(skyhook_tests::StackOptions {
        admin_key_in_secret: true,
        ..skyhook_tests::StackOptions::default()
    })
    .await;
    let (status, body) = stack.api_call(Method::GET, "/v1/subscribers", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = stack
        .ingest_as(ADMIN_KEY, &json!({"type": "a.b", "data": {}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, _) = stack
        .ingest_as(
            "sk_not_the_admin_key_0123456789",
            &json!({"type": "a.b", "data": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, publisher) = stack.api_key("default", "publisher").await;
    let (status, body) = stack
        .ingest_as(&publisher, &json!({"type": "a.b", "data": {}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}
