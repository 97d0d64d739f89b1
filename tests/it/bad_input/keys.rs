//! `/v1/api-keys`: creating keys, and listing and deleting them. The corpus has the tenant
//! cases between the two, so they are gathered separately.

use http::Method;
use serde_json::json;
use skyhook_tests::ADMIN_KEY;

use super::case::{Case, api};
use super::fixture::Fixture;

/// POST /v1/api-keys
pub(super) fn create(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        publisher,
        admin,
        ..
    } = f;
    vec![
        api("create key as reader", Method::POST, "/v1/api-keys")
            .key(reader)
            .json(json!({"role": "reader"}))
            .expect(403, "forbidden"),
        api("create key as publisher", Method::POST, "/v1/api-keys")
            .key(publisher)
            .json(json!({"role": "reader"}))
            .expect(403, "forbidden"),
        api("create key, unknown role", Method::POST, "/v1/api-keys")
            .key(admin)
            .json(json!({"role": "root"}))
            .expect(422, "invalid_role"),
        api("create key without role", Method::POST, "/v1/api-keys")
            .key(admin)
            .json(json!({"description": "ci"}))
            .expect(422, "invalid_body"),
        api("create key, bad tenant", Method::POST, "/v1/api-keys")
            .key(ADMIN_KEY)
            .json(json!({"tenant": "Bad Tenant", "role": "reader"}))
            .expect(422, "invalid_tenant"),
        api(
            "create key for another tenant as its admin",
            Method::POST,
            "/v1/api-keys",
        )
        .key(admin)
        .json(json!({"tenant": "other", "role": "admin"}))
        .expect(403, "forbidden"),
        api(
            "create key, description too long",
            Method::POST,
            "/v1/api-keys",
        )
        .key(admin)
        .json(json!({"role": "reader", "description": "d".repeat(257)}))
        .expect(422, "invalid_description"),
        api(
            "create key with an unknown field",
            Method::POST,
            "/v1/api-keys",
        )
        .key(admin)
        .json(json!({"role": "reader", "expires": "never"}))
        .expect(422, "invalid_body"),
        api("create key, JSON array", Method::POST, "/v1/api-keys")
            .key(admin)
            .raw(r#"[null, "reader"]"#)
            .expect(422, "invalid_body"),
        api("create key, malformed JSON", Method::POST, "/v1/api-keys")
            .key(admin)
            .raw("role=reader")
            .expect(400, "malformed_json"),
    ]
}

/// `GET /v1/api-keys`, then `DELETE /v1/api-keys/{id}`.
pub(super) fn list_and_delete(f: &Fixture) -> Vec<Case> {
    [list(f), delete(f)].into_iter().flatten().collect()
}

/// GET /v1/api-keys
fn list(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        admin,
        other_cursor,
        ..
    } = f;
    vec![
        api("list keys as reader", Method::GET, "/v1/api-keys")
            .key(reader)
            .expect(403, "forbidden"),
        api(
            "list keys, limit=abc",
            Method::GET,
            "/v1/api-keys?limit=abc",
        )
        .key(admin)
        .expect(400, "invalid_limit"),
        api(
            "list keys, garbage cursor",
            Method::GET,
            "/v1/api-keys?cursor=garbage",
        )
        .key(admin)
        .expect(400, "invalid_cursor"),
        api(
            "list keys, cursor of another tenant",
            Method::GET,
            format!("/v1/api-keys?cursor={other_cursor}"),
        )
        .key(ADMIN_KEY)
        .expect(400, "invalid_cursor"),
        api("PATCH /v1/api-keys", Method::PATCH, "/v1/api-keys")
            .key(admin)
            .json(json!({"role": "reader"}))
            .expect(405, "method_not_allowed"),
    ]
}

/// DELETE /v1/api-keys/{id}
fn delete(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        admin,
        other_key_id,
        ..
    } = f;
    vec![
        api(
            "delete key as reader",
            Method::DELETE,
            format!("/v1/api-keys/{other_key_id}"),
        )
        .key(reader)
        .expect(403, "forbidden"),
        api(
            "delete key, malformed id",
            Method::DELETE,
            "/v1/api-keys/nope",
        )
        .key(admin)
        .expect(404, "not_found"),
        api(
            "delete key, unknown",
            Method::DELETE,
            "/v1/api-keys/key_01unknown000000000000000",
        )
        .key(admin)
        .expect(404, "not_found"),
        api(
            "delete another tenant's key",
            Method::DELETE,
            format!("/v1/api-keys/{other_key_id}"),
        )
        .key(ADMIN_KEY)
        .expect(404, "not_found"),
    ]
}
