//! `GET /v1/dlq` and `POST /v1/dlq/redrive`.

use http::Method;
use serde_json::json;
use skyhook_tests::ADMIN_KEY;

use super::case::{Case, api};
use super::fixture::Fixture;

/// This area's cases, in the corpus's order.
pub(super) fn cases(f: &Fixture) -> Vec<Case> {
    [list(f), redrive(f)].into_iter().flatten().collect()
}

/// GET /v1/dlq
fn list(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        keys_cursor,
        ..
    } = f;
    vec![
        api("dlq without a key", Method::GET, "/v1/dlq").expect(401, "unauthorized"),
        api(
            "dlq, malformed subscriber_id",
            Method::GET,
            "/v1/dlq?subscriber_id=nope",
        )
        .key(reader)
        .expect(400, "invalid_subscriber_id"),
        api("dlq, limit=abc", Method::GET, "/v1/dlq?limit=abc")
            .key(reader)
            .expect(400, "invalid_limit"),
        api("dlq, garbage cursor", Method::GET, "/v1/dlq?cursor=garbage")
            .key(reader)
            .expect(400, "invalid_cursor"),
        api(
            "dlq, cursor of the key list",
            Method::GET,
            format!("/v1/dlq?cursor={keys_cursor}"),
        )
        .key(ADMIN_KEY)
        .expect(400, "invalid_cursor"),
    ]
}

/// POST /v1/dlq/redrive
fn redrive(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        publisher,
        admin,
        ..
    } = f;
    vec![
        api("redrive as reader", Method::POST, "/v1/dlq/redrive")
            .key(reader)
            .expect(403, "forbidden"),
        api("redrive as publisher", Method::POST, "/v1/dlq/redrive")
            .key(publisher)
            .expect(403, "forbidden"),
        api("redrive, malformed JSON", Method::POST, "/v1/dlq/redrive")
            .key(admin)
            .raw("{")
            .expect(400, "malformed_json"),
        api(
            "redrive with an unknown field",
            Method::POST,
            "/v1/dlq/redrive",
        )
        .key(admin)
        .json(json!({"all": true}))
        .expect(422, "invalid_body"),
        api(
            "redrive, malformed subscriber_id",
            Method::POST,
            "/v1/dlq/redrive",
        )
        .key(admin)
        .json(json!({"subscriber_id": "nope"}))
        .expect(422, "invalid_subscriber_id"),
        api(
            "redrive, numeric subscriber_id",
            Method::POST,
            "/v1/dlq/redrive",
        )
        .key(admin)
        .json(json!({"subscriber_id": 7}))
        .expect(422, "invalid_body"),
        api("redrive, JSON array", Method::POST, "/v1/dlq/redrive")
            .key(admin)
            .raw("[]")
            .expect(422, "invalid_body"),
        api("GET /v1/dlq/redrive", Method::GET, "/v1/dlq/redrive")
            .key(admin)
            .expect(405, "method_not_allowed"),
    ]
}
