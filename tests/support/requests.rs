//! A stack's requests to its ingest and management API routers, as API Gateway would hand
//! them to the Lambdas, and the common steps built on them (keys, subscribers, publishes,
//! walking a list route).

use axum::Router;
use axum::body::Body;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{ADMIN_KEY, Stack};

impl Stack {
    /// Sends one request to a router, as API Gateway would hand it to the Lambda.
    pub async fn send(
        router: &Router,
        method: Method,
        path: &str,
        body: Option<Body>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = http::Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body.unwrap_or_else(Body::empty)).unwrap();
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("non-JSON response: {}", String::from_utf8_lossy(&bytes))
            })
        };
        (status, value)
    }

    const AUTH: (&'static str, &'static str) =
        ("authorization", "Bearer sk_test_admin_0123456789abcdef");

    pub async fn ingest_json(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        Self::send(
            &self.ingest,
            method,
            path,
            Some(Body::from(body.to_string())),
            &[Self::AUTH, ("content-type", "application/json")],
        )
        .await
    }

    pub async fn api_call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        self.api_as(ADMIN_KEY, method, path, body).await
    }

    /// A management call with another key (`""` sends no key at all).
    pub async fn api_as(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        self.api_via(&self.api, key, method, path, body).await
    }

    /// A management call through another router (see [`Stack::api_with`]).
    pub async fn api_via(
        &self,
        router: &Router,
        key: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let auth = format!("Bearer {key}");
        let mut headers = vec![("content-type", "application/json")];
        if !key.is_empty() {
            headers.push(("authorization", auth.as_str()));
        }
        Self::send(
            router,
            method,
            path,
            body.map(|b| Body::from(b.to_string())),
            &headers,
        )
        .await
    }

    /// A publish through the ingest router with another key (`""` sends no key at all).
    pub async fn ingest_as(&self, key: &str, body: &Value) -> (StatusCode, Value) {
        let auth = format!("Bearer {key}");
        let mut headers = vec![("content-type", "application/json")];
        if !key.is_empty() {
            headers.push(("authorization", auth.as_str()));
        }
        Self::send(
            &self.ingest,
            Method::POST,
            "/v1/events",
            Some(Body::from(body.to_string())),
            &headers,
        )
        .await
    }

    /// Creates an API key with the bootstrap key; returns (id, key).
    pub async fn api_key(&self, tenant: &str, role: &str) -> (String, String) {
        let (status, body) = self
            .api_call(
                Method::POST,
                "/v1/api-keys",
                Some(&json!({"tenant": tenant, "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["id"].as_str().unwrap().to_string(),
            body["key"].as_str().unwrap().to_string(),
        )
    }

    /// Walks a list route to its end with `limit`, checking every page; returns all items.
    pub async fn walk(&self, key: &str, path: &str, limit: usize) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..200 {
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
                None => format!("{path}{sep}limit={limit}"),
            };
            let (status, body) = self.api_as(key, Method::GET, &url, None).await;
            assert_eq!(status, StatusCode::OK, "{url}: {body}");
            let data = body["data"].as_array().unwrap();
            assert!(data.len() <= limit, "{url}: page larger than the limit");
            all.extend(data.iter().cloned());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return all,
            }
        }
        panic!("{path}: pagination does not end");
    }

    /// Creates a subscriber through the API; returns its id and signing secret.
    pub async fn subscribe(&self, url: &str, event_types: &[&str]) -> (String, String) {
        let (status, body) = self
            .api_call(
                Method::POST,
                "/v1/subscribers",
                Some(&json!({"url": url, "event_types": event_types})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["id"].as_str().unwrap().to_string(),
            body["secret"].as_str().unwrap().to_string(),
        )
    }

    /// Publishes through `POST /v1/events`; returns the `202` body.
    pub async fn publish(&self, event: Value) -> Value {
        let (status, body) = self.ingest_json(Method::POST, "/v1/events", &event).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body
    }

    pub async fn event_status(&self, id: &str) -> Value {
        let (status, body) = self
            .api_call(Method::GET, &format!("/v1/events/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}
