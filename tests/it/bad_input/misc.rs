//! Routes of no one area: `GET /v1/whoami`, `GET /v1/audit`, `GET /v1/openapi.json`, and
//! routes nobody serves. Each list is gathered at its own place in the corpus.

use http::Method;
use skyhook_tests::ADMIN_KEY;

use super::case::{Case, api};
use super::fixture::Fixture;

/// GET /v1/whoami
pub(super) fn whoami(f: &Fixture) -> Vec<Case> {
    let Fixture { reader, .. } = f;
    vec![
        api("whoami without a key", Method::GET, "/v1/whoami").expect(401, "unauthorized"),
        api("whoami with an unknown key", Method::GET, "/v1/whoami")
            .key("sk_unknown_0123456789abcdefghij")
            .expect(401, "invalid_api_key"),
        api("POST /v1/whoami", Method::POST, "/v1/whoami")
            .key(reader)
            .expect(405, "method_not_allowed"),
    ]
}

/// `GET /v1/audit`, then `GET /v1/openapi.json`.
pub(super) fn audit_and_openapi(f: &Fixture) -> Vec<Case> {
    [audit(f), openapi(f)].into_iter().flatten().collect()
}

/// GET /v1/audit
fn audit(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        publisher,
        admin,
        keys_cursor,
        ..
    } = f;
    vec![
        api("audit as reader", Method::GET, "/v1/audit")
            .key(reader)
            .expect(403, "forbidden"),
        api("audit as publisher", Method::GET, "/v1/audit")
            .key(publisher)
            .expect(403, "forbidden"),
        api("audit without a key", Method::GET, "/v1/audit").expect(401, "unauthorized"),
        api("audit, limit=0", Method::GET, "/v1/audit?limit=0")
            .key(admin)
            .expect(400, "invalid_limit"),
        api(
            "audit, cursor of the key list",
            Method::GET,
            format!("/v1/audit?cursor={keys_cursor}"),
        )
        .key(ADMIN_KEY)
        .expect(400, "invalid_cursor"),
        api("DELETE /v1/audit", Method::DELETE, "/v1/audit")
            .key(admin)
            .expect(405, "method_not_allowed"),
    ]
}

/// GET /v1/openapi.json
fn openapi(f: &Fixture) -> Vec<Case> {
    let Fixture { reader, .. } = f;
    vec![
        api("openapi without a key", Method::GET, "/v1/openapi.json").expect(401, "unauthorized"),
        api(
            "openapi with an unknown key",
            Method::GET,
            "/v1/openapi.json",
        )
        .key("sk_unknown_0123456789abcdefghij")
        .expect(401, "invalid_api_key"),
        api("POST /v1/openapi.json", Method::POST, "/v1/openapi.json")
            .key(reader)
            .expect(405, "method_not_allowed"),
    ]
}

/// Routes nobody serves.
pub(super) fn unserved(f: &Fixture) -> Vec<Case> {
    let Fixture {
        admin,
        other_key_id,
        s,
        ..
    } = f;
    vec![
        api("GET /v1/nope", Method::GET, "/v1/nope")
            .key(admin)
            .expect(404, "not_found"),
        api("GET below a subscriber", Method::GET, format!("{s}/nope"))
            .key(admin)
            .expect(404, "not_found"),
        api(
            "GET /v1/api-keys/{id}/x",
            Method::GET,
            format!("/v1/api-keys/{other_key_id}/x"),
        )
        .key(admin)
        .expect(404, "not_found"),
    ]
}
