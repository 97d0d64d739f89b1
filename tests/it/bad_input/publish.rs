//! `POST /v1/events` (keys and roles, then the body), and the ingest function's other
//! routes: `GET /v1/health` and paths it does not serve.

use http::Method;
use serde_json::json;
use skyhook_tests::ADMIN_KEY;

use super::case::{Case, ingest};
use super::fixture::{Fixture, publish};

/// This area's cases, in the corpus's order.
pub(super) fn cases(f: &Fixture) -> Vec<Case> {
    [keys_and_roles(f), body(f), other_routes(f)]
        .into_iter()
        .flatten()
        .collect()
}

/// POST /v1/events: keys and roles.
fn keys_and_roles(f: &Fixture) -> Vec<Case> {
    let Fixture { reader, .. } = f;
    vec![
        ingest("publish without a key", Method::POST, "/v1/events")
            .json(publish(json!({})))
            .expect(401, "unauthorized"),
        ingest(
            "publish with a Basic credential",
            Method::POST,
            "/v1/events",
        )
        .header("authorization", format!("Basic {ADMIN_KEY}"))
        .secret(ADMIN_KEY)
        .json(publish(json!({})))
        .expect(401, "unauthorized"),
        ingest("publish with an empty bearer", Method::POST, "/v1/events")
            .header("authorization", "Bearer   ")
            .json(publish(json!({})))
            .expect(401, "unauthorized"),
        ingest("publish with a non-ASCII key", Method::POST, "/v1/events")
            .header("authorization", b"Bearer sk_\xff\xfe")
            .json(publish(json!({})))
            .expect(401, "unauthorized"),
        ingest("publish with an unknown key", Method::POST, "/v1/events")
            .key("sk_unknown_0123456789abcdefghij")
            .json(publish(json!({})))
            .expect(401, "invalid_api_key"),
        ingest("publish with a reader key", Method::POST, "/v1/events")
            .key(reader)
            .json(publish(json!({})))
            .expect(403, "forbidden"),
    ]
}

/// POST /v1/events: the body.
fn body(f: &Fixture) -> Vec<Case> {
    let Fixture {
        publisher,
        other_sub,
        sub,
        unknown_sub,
        big_publish,
        ..
    } = f;
    vec![
        ingest("publish an empty body", Method::POST, "/v1/events")
            .key(publisher)
            .raw("")
            .expect(400, "malformed_json"),
        ingest("publish truncated JSON", Method::POST, "/v1/events")
            .key(publisher)
            .raw(r#"{"type": "order.created", "data": "#)
            .expect(400, "malformed_json"),
        ingest(
            "publish JSON with trailing garbage",
            Method::POST,
            "/v1/events",
        )
        .key(publisher)
        .raw(r#"{"type": "order.created", "data": {}} x"#)
        .expect(400, "malformed_json"),
        ingest("publish a form body", Method::POST, "/v1/events")
            .key(publisher)
            .raw("type=order.created&data=1")
            .expect(400, "malformed_json"),
        ingest("publish a JSON array", Method::POST, "/v1/events")
            .key(publisher)
            .raw(r#"["order.created", {"n": 1}]"#)
            .expect(422, "invalid_body"),
        ingest("publish a JSON string", Method::POST, "/v1/events")
            .key(publisher)
            .raw(r#""order.created""#)
            .expect(422, "invalid_body"),
        ingest("publish JSON null", Method::POST, "/v1/events")
            .key(publisher)
            .raw("null")
            .expect(422, "invalid_body"),
        ingest("publish without type", Method::POST, "/v1/events")
            .key(publisher)
            .json(json!({"data": {}}))
            .expect(422, "invalid_body"),
        ingest("publish without data", Method::POST, "/v1/events")
            .key(publisher)
            .json(json!({"type": "order.created"}))
            .expect(422, "invalid_body"),
        ingest("publish a numeric type", Method::POST, "/v1/events")
            .key(publisher)
            .json(publish(json!({"type": 42})))
            .expect(422, "invalid_body"),
        ingest("publish with an unknown field", Method::POST, "/v1/events")
            .key(publisher)
            .json(publish(json!({"priority": "high"})))
            .expect(422, "invalid_body"),
        ingest("publish with type given twice", Method::POST, "/v1/events")
            .key(publisher)
            .raw(r#"{"type": "order.created", "type": "order.paid", "data": {}}"#)
            .expect(422, "invalid_body"),
        ingest("publish an empty type", Method::POST, "/v1/events")
            .key(publisher)
            .json(publish(json!({"type": ""})))
            .expect(422, "invalid_event_type"),
        ingest("publish a type with a space", Method::POST, "/v1/events")
            .key(publisher)
            .json(publish(json!({"type": "order created"})))
            .expect(422, "invalid_event_type"),
        ingest("publish a wildcard type", Method::POST, "/v1/events")
            .key(publisher)
            .json(publish(json!({"type": "order.*"})))
            .expect(422, "invalid_event_type"),
        ingest(
            "publish a type with an empty segment",
            Method::POST,
            "/v1/events",
        )
        .key(publisher)
        .json(publish(json!({"type": "order..created"})))
        .expect(422, "invalid_event_type"),
        ingest("publish a 129-character type", Method::POST, "/v1/events")
            .key(publisher)
            .json(publish(json!({"type": "a".repeat(129)})))
            .expect(422, "invalid_event_type"),
        ingest(
            "publish subscriber_ids as a string",
            Method::POST,
            "/v1/events",
        )
        .key(publisher)
        .json(publish(json!({"subscriber_ids": sub})))
        .expect(422, "invalid_body"),
        ingest(
            "publish a malformed subscriber id",
            Method::POST,
            "/v1/events",
        )
        .key(publisher)
        .json(publish(json!({"subscriber_ids": ["nope"]})))
        .expect(422, "invalid_subscriber_id"),
        ingest("publish to 101 subscribers", Method::POST, "/v1/events")
            .key(publisher)
            .json(publish(json!({
                "subscriber_ids": (0..101).map(|i| format!("sub_x{i}")).collect::<Vec<_>>()
            })))
            .expect(422, "too_many_subscriber_ids"),
        ingest(
            "publish to an unknown subscriber",
            Method::POST,
            "/v1/events",
        )
        .key(publisher)
        .json(publish(json!({"subscriber_ids": [sub, unknown_sub]})))
        .expect(422, "unknown_subscriber"),
        ingest(
            "publish to another tenant's subscriber",
            Method::POST,
            "/v1/events",
        )
        .key(publisher)
        .json(publish(json!({"subscriber_ids": [other_sub]})))
        .expect(422, "unknown_subscriber"),
        ingest(
            "publish with an Idempotency-Key to an unknown subscriber",
            Method::POST,
            "/v1/events",
        )
        .key(publisher)
        .header("idempotency-key", "bad-input-corpus-1")
        .json(publish(json!({"subscriber_ids": [unknown_sub]})))
        .expect(422, "unknown_subscriber"),
        ingest(
            "publish with a 256-character Idempotency-Key",
            Method::POST,
            "/v1/events",
        )
        .key(publisher)
        .header("idempotency-key", "k".repeat(256))
        .json(publish(json!({})))
        .expect(400, "invalid_request"),
        ingest(
            "publish with a spaced Idempotency-Key",
            Method::POST,
            "/v1/events",
        )
        .key(publisher)
        .header("idempotency-key", "two words")
        .json(publish(json!({})))
        .expect(400, "invalid_request"),
        ingest(
            "publish with a non-ASCII Idempotency-Key",
            Method::POST,
            "/v1/events",
        )
        .key(publisher)
        .header("idempotency-key", b"caf\xc3\xa9")
        .json(publish(json!({})))
        .expect(400, "invalid_header"),
        ingest(
            "publish with an inbound source's key prefix",
            Method::POST,
            "/v1/events",
        )
        .key(publisher)
        .header(
            "idempotency-key",
            "inbound:src_01JD0000000000000000000000:msg_1",
        )
        .json(publish(json!({})))
        .expect(400, "invalid_request"),
        ingest(
            "publish with an EventBridge key prefix as its id",
            Method::POST,
            "/v1/events",
        )
        .key(publisher)
        .json(publish(json!({"id": "eventbridge:0f3a"})))
        .expect(400, "invalid_request"),
        ingest("publish with an empty id", Method::POST, "/v1/events")
            .key(publisher)
            .json(publish(json!({"id": ""})))
            .expect(400, "invalid_request"),
        ingest(
            "publish with a 129-character correlation id",
            Method::POST,
            "/v1/events",
        )
        .key(publisher)
        .header("x-correlation-id", "c".repeat(129))
        .json(publish(json!({})))
        .expect(400, "invalid_request"),
        ingest("publish announcing 1 MiB", Method::POST, "/v1/events")
            .key(publisher)
            .json(publish(json!({})))
            .header("content-length", "1048576")
            .expect(413, "payload_too_large"),
        ingest("publish 256 KiB + 1 byte", Method::POST, "/v1/events")
            .key(publisher)
            .raw(big_publish.clone())
            .expect(413, "payload_too_large"),
        ingest("GET /v1/events", Method::GET, "/v1/events")
            .key(publisher)
            .expect(405, "method_not_allowed"),
        ingest("PUT /v1/events", Method::PUT, "/v1/events")
            .key(publisher)
            .json(publish(json!({})))
            .expect(405, "method_not_allowed"),
    ]
}

/// GET /v1/health and unknown ingest routes.
fn other_routes(f: &Fixture) -> Vec<Case> {
    let Fixture { publisher, .. } = f;
    vec![
        ingest("POST /v1/health", Method::POST, "/v1/health").expect(405, "method_not_allowed"),
        ingest("DELETE /v1/health", Method::DELETE, "/v1/health").expect(405, "method_not_allowed"),
        ingest("GET / on ingest", Method::GET, "/").expect(404, "not_found"),
        ingest("POST /v2/events", Method::POST, "/v2/events")
            .key(publisher)
            .json(publish(json!({})))
            .expect(404, "not_found"),
    ]
}
