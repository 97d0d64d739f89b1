//! `/v1/subscribers` and everything below a subscriber: create, list, get, patch, delete,
//! the transform preview (with the transform and filter cases of create and update), secret
//! rotation, test sends and recovery.

use http::Method;
use serde_json::json;
use skyhook_tests::ADMIN_KEY;

use super::case::{Case, api};
use super::fixture::Fixture;

/// This area's cases, in the corpus's order.
pub(super) fn cases(f: &Fixture) -> Vec<Case> {
    [
        create(f),
        list(f),
        get(f),
        patch(f),
        delete(f),
        preview(f),
        rotate_secret(f),
        test(f),
        recover(f),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// POST /v1/subscribers
fn create(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        publisher,
        admin,
        big_create,
        new_url,
        ..
    } = f;
    vec![
        api("create subscriber as reader", Method::POST, "/v1/subscribers")
            .key(reader)
            .json(f.create(json!({})))
            .expect(403, "forbidden"),
        api("create subscriber as publisher", Method::POST, "/v1/subscribers")
            .key(publisher)
            .json(f.create(json!({})))
            .expect(403, "forbidden"),
        api("create subscriber, empty body", Method::POST, "/v1/subscribers")
            .key(admin)
            .raw("")
            .expect(400, "malformed_json"),
        api("create subscriber, malformed JSON", Method::POST, "/v1/subscribers")
            .key(admin)
            .raw(r#"{"url": "http://127.0.0.1/", "event_types": ["#)
            .expect(400, "malformed_json"),
        api("create subscriber, JSON array", Method::POST, "/v1/subscribers")
            .key(admin)
            .raw(json!([new_url, ["order.*"]]).to_string())
            .expect(422, "invalid_body"),
        api("create subscriber without url", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(json!({"event_types": ["order.*"]}))
            .expect(422, "invalid_body"),
        api("create subscriber without event_types", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(json!({"url": new_url}))
            .expect(422, "invalid_body"),
        api("create subscriber, numeric url", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"url": 8080})))
            .expect(422, "invalid_body"),
        api("create subscriber, event_types a string", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"event_types": "order.*"})))
            .expect(422, "invalid_body"),
        api("create subscriber with an unknown field", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"active": false})))
            .expect(422, "invalid_body"),
        api("create subscriber, ftp url", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"url": "ftp://127.0.0.1/hook"})))
            .expect(422, "unsupported_scheme"),
        api("create subscriber, url without host", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"url": "https://"})))
            .expect(422, "invalid_url"),
        api("create subscriber, url not a url", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"url": "not a url"})))
            .expect(422, "invalid_url"),
        api("create subscriber, url with credentials", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"url": "http://hook:hunter2-pass@127.0.0.1/x"})))
            .secret("hunter2-pass")
            .expect(422, "url_has_credentials"),
        api("create subscriber, url with a fragment", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"url": "http://127.0.0.1/x#frag"})))
            .expect(422, "url_has_fragment"),
        api("create subscriber, url too long", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"url": format!("http://127.0.0.1/{}", "a".repeat(2100))})))
            .expect(422, "url_too_long"),
        api("create subscriber, no event types", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"event_types": []})))
            .expect(422, "invalid_event_types"),
        api("create subscriber, misplaced wildcard", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"event_types": ["order.*.x"]})))
            .expect(422, "invalid_event_types"),
        api("create subscriber, 49 filters", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({
                "event_types": (0..49).map(|i| format!("t{i}.x")).collect::<Vec<_>>()
            })))
            .expect(422, "invalid_event_types"),
        api("create subscriber, secret without whsec_", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"secret": "sk_not_a_signing_secret_123"})))
            .expect(422, "invalid_secret"),
        api("create subscriber, secret not base64", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"secret": "whsec_!!!not-base64!!!"})))
            .expect(422, "invalid_secret"),
        api("create subscriber, secret too short", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"secret": "whsec_AAAAAAAAAAAAAA=="})))
            .expect(422, "invalid_secret"),
        api("create subscriber, unknown signature_scheme", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"signature_scheme": "md5"})))
            .expect(422, "invalid_signature_scheme"),
        api("create subscriber, reserved header", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"headers": {"webhook-signature": "v1,forged-signature"}})))
            .expect(422, "invalid_headers"),
        api("create subscriber, Content-Type header", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"headers": {"Content-Type": "text/plain"}})))
            .expect(422, "invalid_headers"),
        api("create subscriber, 21 headers", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({
                "headers": (0..21).map(|i| (format!("x-h{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()
            })))
            .expect(422, "invalid_headers"),
        api("create subscriber, header value with a newline", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"headers": {"x-api-key": "token-line\nbreak-value"}})))
            .expect(422, "invalid_headers"),
        api("create subscriber, header name with a space", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"headers": {"x api key": "token-value-123"}})))
            .expect(422, "invalid_headers"),
        api("create subscriber, header value masked", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"headers": {"x-api-key": "********"}})))
            .expect(422, "invalid_headers"),
        api("create subscriber, headers as a string", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"headers": "x-api-key: s3cr3t-token-0xDEADBEEF"})))
            .secret("s3cr3t-token-0xDEADBEEF")
            .expect(422, "invalid_body"),
        api("create subscriber, max_concurrency 0", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"max_concurrency": 0})))
            .expect(422, "invalid_max_concurrency"),
        api("create subscriber, max_concurrency 101", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"max_concurrency": 101})))
            .expect(422, "invalid_max_concurrency"),
        api("create subscriber, max_concurrency -1", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"max_concurrency": -1})))
            .expect(422, "invalid_body"),
        api("create subscriber, rate_limit 0", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"rate_limit": 0})))
            .expect(422, "invalid_rate_limit"),
        api("create subscriber, rate_limit 10001", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"rate_limit": 10001})))
            .expect(422, "invalid_rate_limit"),
        api("create subscriber, description too long", Method::POST, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({"description": "d".repeat(1025)})))
            .expect(422, "invalid_description"),
        api("create subscriber, body over 64 KiB", Method::POST, "/v1/subscribers")
            .key(admin)
            .raw(big_create.clone())
            .expect(413, "payload_too_large"),
        api("PUT /v1/subscribers", Method::PUT, "/v1/subscribers")
            .key(admin)
            .json(f.create(json!({})))
            .expect(405, "method_not_allowed"),
        api("DELETE /v1/subscribers", Method::DELETE, "/v1/subscribers")
            .key(admin)
            .expect(405, "method_not_allowed"),
    ]
}

/// GET /v1/subscribers
fn list(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        keys_cursor,
        ..
    } = f;
    vec![
        api(
            "list subscribers without a key",
            Method::GET,
            "/v1/subscribers",
        )
        .expect(401, "unauthorized"),
        api(
            "list subscribers, limit=0",
            Method::GET,
            "/v1/subscribers?limit=0",
        )
        .key(reader)
        .expect(400, "invalid_limit"),
        api(
            "list subscribers, limit=abc",
            Method::GET,
            "/v1/subscribers?limit=abc",
        )
        .key(reader)
        .expect(400, "invalid_limit"),
        api(
            "list subscribers, limit=251",
            Method::GET,
            "/v1/subscribers?limit=251",
        )
        .key(reader)
        .expect(400, "invalid_limit"),
        api(
            "list subscribers, limit twice",
            Method::GET,
            "/v1/subscribers?limit=1&limit=2",
        )
        .key(reader)
        .expect(400, "invalid_query"),
        api(
            "list subscribers, active=maybe",
            Method::GET,
            "/v1/subscribers?active=maybe",
        )
        .key(reader)
        .expect(400, "invalid_active"),
        api(
            "list subscribers, garbage cursor",
            Method::GET,
            "/v1/subscribers?cursor=garbage",
        )
        .key(reader)
        .expect(400, "invalid_cursor"),
        api(
            "list subscribers, cursor of the key list",
            Method::GET,
            format!("/v1/subscribers?cursor={keys_cursor}"),
        )
        .key(ADMIN_KEY)
        .expect(400, "invalid_cursor"),
        api(
            "list subscribers, limit twice, without a key",
            Method::GET,
            "/v1/subscribers?limit=1&limit=2",
        )
        .expect(401, "unauthorized"),
    ]
}

/// GET /v1/subscribers/{id}
fn get(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        admin,
        other_sub,
        s,
        unknown_sub,
        ..
    } = f;
    vec![
        api(
            "get subscriber, malformed id",
            Method::GET,
            "/v1/subscribers/nope",
        )
        .key(reader)
        .expect(404, "not_found"),
        api(
            "get subscriber, unknown",
            Method::GET,
            format!("/v1/subscribers/{unknown_sub}"),
        )
        .key(reader)
        .expect(404, "not_found"),
        api(
            "get subscriber of another tenant",
            Method::GET,
            format!("/v1/subscribers/{other_sub}"),
        )
        .key(reader)
        .expect(404, "not_found"),
        api("get subscriber with an unknown key", Method::GET, s.clone())
            .key("sk_unknown_0123456789abcdefghij")
            .expect(401, "invalid_api_key"),
        api(
            "get subscriber with an empty id",
            Method::GET,
            "/v1/subscribers/",
        )
        .key(reader)
        .expect(404, "not_found"),
        api("PUT a subscriber", Method::PUT, s.clone())
            .key(admin)
            .json(f.create(json!({})))
            .expect(405, "method_not_allowed"),
    ]
}

/// PATCH /v1/subscribers/{id}
fn patch(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        publisher,
        admin,
        other_sub,
        s,
        unknown_sub,
        ..
    } = f;
    vec![
        api("patch with {}", Method::PATCH, s.clone())
            .key(admin)
            .json(json!({}))
            .expect(422, "empty_update"),
        api("patch with only nulls", Method::PATCH, s.clone())
            .key(admin)
            .json(json!({"active": null, "url": null}))
            .expect(422, "empty_update"),
        api("patch as reader", Method::PATCH, s.clone())
            .key(reader)
            .json(json!({"active": false}))
            .expect(403, "forbidden"),
        api("patch as publisher", Method::PATCH, s.clone())
            .key(publisher)
            .json(json!({"active": false}))
            .expect(403, "forbidden"),
        api("patch, malformed JSON", Method::PATCH, s.clone())
            .key(admin)
            .raw("{active: false}")
            .expect(400, "malformed_json"),
        api("patch, JSON array", Method::PATCH, s.clone())
            .key(admin)
            .raw(json!([null, ["order.*"]]).to_string())
            .expect(422, "invalid_body"),
        api("patch, active a string", Method::PATCH, s.clone())
            .key(admin)
            .json(json!({"active": "yes"}))
            .expect(422, "invalid_body"),
        api("patch, secret is not a field", Method::PATCH, s.clone())
            .key(admin)
            .json(json!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}))
            .expect(422, "invalid_body"),
        api("patch, ftp url", Method::PATCH, s.clone())
            .key(admin)
            .json(json!({"url": "ftp://127.0.0.1/"}))
            .expect(422, "unsupported_scheme"),
        api("patch, no event types", Method::PATCH, s.clone())
            .key(admin)
            .json(json!({"event_types": []}))
            .expect(422, "invalid_event_types"),
        api(
            "patch, masked header with no stored value",
            Method::PATCH,
            s.clone(),
        )
        .key(admin)
        .json(json!({"headers": {"x-api-key": "********"}}))
        .expect(422, "invalid_headers"),
        api("patch, reserved header", Method::PATCH, s.clone())
            .key(admin)
            .json(json!({"headers": {"User-Agent": "evil-agent/1.0"}}))
            .expect(422, "invalid_headers"),
        api("patch, max_concurrency 0", Method::PATCH, s.clone())
            .key(admin)
            .json(json!({"max_concurrency": 0}))
            .expect(422, "invalid_max_concurrency"),
        api("patch, rate_limit 0", Method::PATCH, s.clone())
            .key(admin)
            .json(json!({"rate_limit": 0}))
            .expect(422, "invalid_rate_limit"),
        api("patch, unknown signature_scheme", Method::PATCH, s.clone())
            .key(admin)
            .json(json!({"signature_scheme": "hex-md5"}))
            .expect(422, "invalid_signature_scheme"),
        api("patch, description too long", Method::PATCH, s.clone())
            .key(admin)
            .json(json!({"description": "d".repeat(1025)}))
            .expect(422, "invalid_description"),
        api(
            "patch an unknown subscriber",
            Method::PATCH,
            format!("/v1/subscribers/{unknown_sub}"),
        )
        .key(admin)
        .json(json!({"active": false}))
        .expect(404, "not_found"),
        api(
            "patch a malformed id",
            Method::PATCH,
            "/v1/subscribers/nope",
        )
        .key(admin)
        .json(json!({"active": false}))
        .expect(404, "not_found"),
        api(
            "patch another tenant's subscriber",
            Method::PATCH,
            format!("/v1/subscribers/{other_sub}"),
        )
        .key(admin)
        .json(json!({"active": false}))
        .expect(404, "not_found"),
    ]
}

/// DELETE /v1/subscribers/{id}
fn delete(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        publisher,
        admin,
        other_sub,
        s,
        unknown_sub,
        ..
    } = f;
    vec![
        api("delete subscriber as reader", Method::DELETE, s.clone())
            .key(reader)
            .expect(403, "forbidden"),
        api("delete subscriber as publisher", Method::DELETE, s.clone())
            .key(publisher)
            .expect(403, "forbidden"),
        api("delete subscriber without a key", Method::DELETE, s.clone())
            .expect(401, "unauthorized"),
        api(
            "delete subscriber, malformed id",
            Method::DELETE,
            "/v1/subscribers/nope",
        )
        .key(admin)
        .expect(404, "not_found"),
        api(
            "delete subscriber, unknown",
            Method::DELETE,
            format!("/v1/subscribers/{unknown_sub}"),
        )
        .key(admin)
        .expect(404, "not_found"),
        api(
            "delete another tenant's subscriber",
            Method::DELETE,
            format!("/v1/subscribers/{other_sub}"),
        )
        .key(admin)
        .expect(404, "not_found"),
    ]
}

/// POST /v1/subscribers/{id}/transform/preview
fn preview(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        admin,
        other_sub,
        s,
        ..
    } = f;
    vec![
        api(
            "preview without a key",
            Method::POST,
            format!("{s}/transform/preview"),
        )
        .json(json!({"type": "a.b", "data": {}}))
        .expect(401, "unauthorized"),
        api(
            "preview as a reader",
            Method::POST,
            format!("{s}/transform/preview"),
        )
        .key(reader)
        .json(json!({"type": "a.b", "data": {}}))
        .expect(403, "forbidden"),
        api(
            "preview without a type",
            Method::POST,
            format!("{s}/transform/preview"),
        )
        .key(admin)
        .json(json!({"data": {}}))
        .expect(422, "invalid_body"),
        api(
            "preview a bad event type",
            Method::POST,
            format!("{s}/transform/preview"),
        )
        .key(admin)
        .json(json!({"type": "a b", "data": {}}))
        .expect(422, "invalid_event_type"),
        api(
            "preview a program that does not compile",
            Method::POST,
            format!("{s}/transform/preview"),
        )
        .key(admin)
        .json(json!({"type": "a.b", "data": {}, "transform": "{"}))
        .expect(422, "invalid_transform"),
        api(
            "preview, malformed JSON",
            Method::POST,
            format!("{s}/transform/preview"),
        )
        .key(admin)
        .raw(r#"{"type": "#)
        .expect(400, "malformed_json"),
        api(
            "preview on another tenant's subscriber",
            Method::POST,
            format!("/v1/subscribers/{other_sub}/transform/preview"),
        )
        .key(admin)
        .json(json!({"type": "a.b", "data": {}}))
        .expect(404, "not_found"),
        api(
            "create with a transform that does not compile",
            Method::POST,
            "/v1/subscribers",
        )
        .key(admin)
        .json(f.create(json!({"transform": ".a |"})))
        .expect(422, "invalid_transform"),
        api(
            "update to a transform that does not compile",
            Method::PATCH,
            s.clone(),
        )
        .key(admin)
        .json(json!({"transform": "nosuchfn(1)"}))
        .expect(422, "invalid_transform"),
        api(
            "create with a filter that does not compile",
            Method::POST,
            "/v1/subscribers",
        )
        .key(admin)
        .json(f.create(json!({"filter": ".total >"})))
        .expect(422, "invalid_filter"),
        api(
            "update to a filter that is too long",
            Method::PATCH,
            s.clone(),
        )
        .key(admin)
        .json(json!({"filter": "true or ".repeat(3000) + "true"}))
        .expect(422, "invalid_filter"),
        api(
            "update to a filter that is not a string",
            Method::PATCH,
            s.clone(),
        )
        .key(admin)
        .json(json!({"filter": 5}))
        .expect(422, "invalid_body"),
    ]
}

/// POST /v1/subscribers/{id}/rotate-secret
fn rotate_secret(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        publisher,
        admin,
        other_sub,
        s,
        unknown_sub,
        ..
    } = f;
    vec![
        api(
            "rotate to a secret without whsec_",
            Method::POST,
            format!("{s}/rotate-secret"),
        )
        .key(admin)
        .json(json!({"secret": "plain-old-password-123"}))
        .expect(422, "invalid_secret"),
        api(
            "rotate to a too-short secret",
            Method::POST,
            format!("{s}/rotate-secret"),
        )
        .key(admin)
        .json(json!({"secret": "whsec_AAAAAAAAAAAAAA=="}))
        .expect(422, "invalid_secret"),
        api(
            "rotate to a numeric secret",
            Method::POST,
            format!("{s}/rotate-secret"),
        )
        .key(admin)
        .json(json!({"secret": 1234567890}))
        .expect(422, "invalid_body"),
        api(
            "rotate with an unknown field",
            Method::POST,
            format!("{s}/rotate-secret"),
        )
        .key(admin)
        .json(json!({"grace": "1h"}))
        .expect(422, "invalid_body"),
        api(
            "rotate, malformed JSON",
            Method::POST,
            format!("{s}/rotate-secret"),
        )
        .key(admin)
        .raw(r#"{"secret": "#)
        .expect(400, "malformed_json"),
        api(
            "rotate, JSON array",
            Method::POST,
            format!("{s}/rotate-secret"),
        )
        .key(admin)
        .raw("[]")
        .expect(422, "invalid_body"),
        api(
            "rotate as reader",
            Method::POST,
            format!("{s}/rotate-secret"),
        )
        .key(reader)
        .expect(403, "forbidden"),
        api(
            "rotate as publisher",
            Method::POST,
            format!("{s}/rotate-secret"),
        )
        .key(publisher)
        .expect(403, "forbidden"),
        api(
            "rotate an unknown subscriber",
            Method::POST,
            format!("/v1/subscribers/{unknown_sub}/rotate-secret"),
        )
        .key(admin)
        .expect(404, "not_found"),
        api(
            "rotate another tenant's subscriber",
            Method::POST,
            format!("/v1/subscribers/{other_sub}/rotate-secret"),
        )
        .key(admin)
        .expect(404, "not_found"),
        api(
            "GET rotate-secret",
            Method::GET,
            format!("{s}/rotate-secret"),
        )
        .key(admin)
        .expect(405, "method_not_allowed"),
    ]
}

/// POST /v1/subscribers/{id}/test
fn test(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        publisher,
        other_sub,
        s,
        unknown_sub,
        ..
    } = f;
    vec![
        api("test as reader", Method::POST, format!("{s}/test"))
            .key(reader)
            .expect(403, "forbidden"),
        api("test without a key", Method::POST, format!("{s}/test")).expect(401, "unauthorized"),
        api(
            "test an unknown subscriber",
            Method::POST,
            format!("/v1/subscribers/{unknown_sub}/test"),
        )
        .key(publisher)
        .expect(404, "not_found"),
        api(
            "test a malformed id",
            Method::POST,
            "/v1/subscribers/nope/test",
        )
        .key(publisher)
        .expect(404, "not_found"),
        api(
            "test another tenant's subscriber",
            Method::POST,
            format!("/v1/subscribers/{other_sub}/test"),
        )
        .key(publisher)
        .expect(404, "not_found"),
        api("GET test", Method::GET, format!("{s}/test"))
            .key(publisher)
            .expect(405, "method_not_allowed"),
    ]
}

/// POST /v1/subscribers/{id}/recover
fn recover(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        publisher,
        admin,
        s,
        unknown_sub,
        ..
    } = f;
    vec![
        api(
            "recover without since",
            Method::POST,
            format!("{s}/recover"),
        )
        .key(admin)
        .json(json!({}))
        .expect(422, "invalid_time"),
        api(
            "recover, since not a time",
            Method::POST,
            format!("{s}/recover"),
        )
        .key(admin)
        .json(json!({"since": "yesterday"}))
        .expect(400, "invalid_time"),
        api(
            "recover, since a number",
            Method::POST,
            format!("{s}/recover"),
        )
        .key(admin)
        .json(json!({"since": 1_700_000_000}))
        .expect(422, "invalid_body"),
        api(
            "recover, until before since",
            Method::POST,
            format!("{s}/recover"),
        )
        .key(admin)
        .json(json!({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}))
        .expect(422, "invalid_time"),
        api(
            "recover with an unknown field",
            Method::POST,
            format!("{s}/recover"),
        )
        .key(admin)
        .json(json!({"since": "2026-01-01T00:00:00Z", "outcome": "failure"}))
        .expect(422, "invalid_body"),
        api("recover, empty body", Method::POST, format!("{s}/recover"))
            .key(admin)
            .raw("")
            .expect(400, "malformed_json"),
        api("recover, JSON array", Method::POST, format!("{s}/recover"))
            .key(admin)
            .raw(r#"["2020-01-01T00:00:00Z"]"#)
            .expect(422, "invalid_body"),
        api("recover as reader", Method::POST, format!("{s}/recover"))
            .key(reader)
            .json(json!({"since": "2026-01-01T00:00:00Z"}))
            .expect(403, "forbidden"),
        api("recover as publisher", Method::POST, format!("{s}/recover"))
            .key(publisher)
            .json(json!({"since": "2026-01-01T00:00:00Z"}))
            .expect(403, "forbidden"),
        api(
            "recover an unknown subscriber",
            Method::POST,
            format!("/v1/subscribers/{unknown_sub}/recover"),
        )
        .key(admin)
        .json(json!({"since": "2026-01-01T00:00:00Z"}))
        .expect(404, "not_found"),
    ]
}
