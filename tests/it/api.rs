//! The management API (minimal for now): subscribers and event status.

use http::{Method, StatusCode};
use serde_json::json;
use skyhook_tests::{Receiver, Stack};

#[tokio::test]
async fn creating_a_subscriber_generates_a_whsec_secret_sealed_in_the_table() {
    let stack = Stack::new().await;
    let (status, body) = stack
        .api_call(
            Method::POST,
            "/v1/subscribers",
            Some(&json!({"url": "https://example.com/hooks", "event_types": ["order.*"], "description": "orders"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("sub_"));
    assert_eq!(body["active"], true);
    assert_eq!(body["description"], "orders");
    assert_eq!(body["signature_scheme"], "standard");
    assert!(body["created_at"].as_str().is_some());
    let secret = body["secret"].as_str().unwrap();
    let parsed = skyhook_domain::secret::SigningSecret::parse(secret).unwrap();
    assert!((24..=64).contains(&parsed.key().len()));
    // Sealed in the table under the keyring, with the same value; no Secrets Manager secret.
    let document = stack.secret_document("default", id).await;
    assert_eq!(document["secret"], secret);
    assert_eq!(stack.secrets_manager_count().await, 0);
    assert_eq!(document["headers"], json!({}));
    // Reading it back never shows the secret.
    let (status, read) = stack
        .api_call(Method::GET, &format!("/v1/subscribers/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(read.get("secret").is_none());
    assert_eq!(read["url"], "https://example.com/hooks");
    assert_eq!(read["event_types"], json!(["order.*"]));
}

#[tokio::test]
async fn a_given_secret_is_used_and_a_bad_one_is_refused() {
    let stack = Stack::new().await;
    let receiver = Receiver::always(200).await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (status, body) = stack
        .api_call(
            Method::POST,
            "/v1/subscribers",
            Some(&json!({"url": receiver.url("/"), "event_types": ["*"], "secret": secret})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["secret"], secret);
    let (status, body) = stack
        .api_call(
            Method::POST,
            "/v1/subscribers",
            Some(&json!({"url": receiver.url("/"), "event_types": ["*"], "secret": "whsec_short"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "invalid_secret");
    assert!(
        !body.to_string().contains("whsec_short"),
        "the secret is not echoed"
    );
}

#[tokio::test]
async fn bad_subscriber_urls_are_refused_and_nothing_is_written() {
    let stack = Stack::new().await;
    for (url, code) in [
        ("not a url", "invalid_url"),
        ("ftp://example.com/x", "unsupported_scheme"),
        ("https://user:pw@example.com/x", "url_has_credentials"),
    ] {
        let (status, body) = stack
            .api_call(
                Method::POST,
                "/v1/subscribers",
                Some(&json!({"url": url, "event_types": ["*"]})),
            )
            .await;
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
            "{url}: {status}"
        );
        assert_eq!(body["error"]["code"], code, "{url}");
    }
    let (status, body) = stack
        .api_call(
            Method::POST,
            "/v1/subscribers",
            Some(&json!({"url": "https://example.com", "event_types": []})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "invalid_event_types");
    assert_eq!(stack.table_items().await, 0);
    assert_eq!(stack.secret_count().await, 0);
}

#[tokio::test]
async fn outside_local_mode_http_and_private_targets_are_refused() {
    use skyhook_domain::url::{SubscriberUrl, UrlPolicy};
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/hook",
        "https://[::1]/hook",
    ] {
        assert!(
            SubscriberUrl::parse(url, UrlPolicy::STRICT).is_err(),
            "{url}"
        );
        assert!(SubscriberUrl::parse(url, UrlPolicy::LOCAL).is_ok(), "{url}");
    }
}

#[tokio::test]
async fn subscribers_are_listed_with_cursor_pagination_and_an_active_filter() {
    let stack = Stack::new().await;
    let mut created = Vec::new();
    for i in 0..7 {
        let (id, _) = stack
            .subscribe(&format!("https://example.com/{i}"), &["*"])
            .await;
        created.push(id);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/subscribers?limit=3&cursor={c}"),
            None => "/v1/subscribers?limit=3".to_string(),
        };
        let (status, body) = stack.api_call(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        for s in body["data"].as_array().unwrap() {
            seen.push(s["id"].as_str().unwrap().to_string());
            assert!(s.get("secret").is_none());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    seen.sort();
    created.sort();
    assert_eq!(
        seen, created,
        "every subscriber once, none lost or repeated"
    );
    let (status, body) = stack
        .api_call(Method::GET, "/v1/subscribers?active=false", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["data"].as_array().unwrap().is_empty());
    for bad in [
        "/v1/subscribers?limit=0",
        "/v1/subscribers?limit=abc",
        "/v1/subscribers?active=maybe",
        "/v1/subscribers?cursor=%21%21",
    ] {
        let (status, body) = stack.api_call(Method::GET, bad, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[tokio::test]
async fn deleting_a_subscriber_removes_it_and_its_secret() {
    let stack = Stack::new().await;
    let (id, _) = stack.subscribe("https://example.com/x", &["*"]).await;
    assert_eq!(stack.secret_count().await, 1);
    let (status, _) = stack
        .api_call(Method::DELETE, &format!("/v1/subscribers/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = stack
        .api_call(Method::GET, &format!("/v1/subscribers/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _) = stack
        .api_call(Method::DELETE, &format!("/v1/subscribers/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = stack
        .api_call(Method::GET, "/v1/subscribers/garbage", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_event_shows_one_pending_status_per_subscriber_before_delivery() {
    let stack = Stack::new().await;
    let (a, _) = stack.subscribe("https://example.com/a", &["*"]).await;
    let (b, _) = stack.subscribe("https://example.com/b", &["a.*"]).await;
    let published = stack
        .publish(json!({"type": "a.b", "data": {"x": [1, 2]}}))
        .await;
    let status = stack.event_status(published["id"].as_str().unwrap()).await;
    assert_eq!(status["type"], "a.b");
    assert_eq!(status["data"], json!({"x": [1, 2]}));
    let mut subs: Vec<&str> = status["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["status"], "pending");
            assert_eq!(d["attempts"], 0);
            d["subscriber_id"].as_str().unwrap()
        })
        .collect();
    subs.sort();
    let mut want = vec![a.as_str(), b.as_str()];
    want.sort();
    assert_eq!(subs, want);
    let (status, body) = stack
        .api_call(Method::GET, "/v1/events/evt_unknown", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

/// A secret stored before header values moved to Secrets Manager is the bare `whsec_…`
/// string, in Secrets Manager: it still signs, and a rotation turns it into a sealed
/// document with the old secret signing alongside for the grace period.
#[tokio::test]
async fn a_bare_secret_from_before_the_document_is_read_and_rotated_into_one() {
    let stack = Stack::new().await;
    let (id, _) = stack.subscribe("https://example.com/h", &["*"]).await;
    let old = skyhook_domain::secret::SigningSecret::generate();
    stack
        .make_legacy_secret("default", &id, &old.expose())
        .await;
    let tenant = skyhook_domain::ids::TenantId::parse("default").unwrap();
    let sub = skyhook_domain::ids::SubscriberId::parse(&id).unwrap();
    let read = stack
        .adapters
        .secrets
        .get(&tenant, &sub)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.signing, vec![old.clone()]);
    assert!(read.headers.is_none(), "the record holds them");
    let (status, rotated) = stack
        .api_call(
            Method::POST,
            &format!("/v1/subscribers/{id}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let read = stack
        .adapters
        .secrets
        .get(&tenant, &sub)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.signing.len(), 2);
    assert_eq!(
        read.signing[0].expose(),
        rotated["secret"].as_str().unwrap()
    );
    assert_eq!(
        read.signing[1], old,
        "the bare secret signs through the grace period"
    );
}
