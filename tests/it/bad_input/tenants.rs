//! `GET /v1/tenants` and `GET`/`PUT /v1/tenants/{tenant}`.

use http::Method;
use serde_json::json;
use skyhook_tests::ADMIN_KEY;

use super::case::{Case, api};
use super::fixture::Fixture;

/// GET /v1/tenants, GET/PUT /v1/tenants/{tenant}: the bootstrap key's alone.
pub(super) fn cases(f: &Fixture) -> Vec<Case> {
    let Fixture { admin, .. } = f;
    vec![
        api(
            "list tenants as a tenant's admin",
            Method::GET,
            "/v1/tenants",
        )
        .key(admin)
        .expect(403, "forbidden"),
        api("list tenants, limit=0", Method::GET, "/v1/tenants?limit=0")
            .key(ADMIN_KEY)
            .expect(400, "invalid_limit"),
        api(
            "list tenants, garbage cursor",
            Method::GET,
            "/v1/tenants?cursor=garbage",
        )
        .key(ADMIN_KEY)
        .expect(400, "invalid_cursor"),
        api(
            "get a tenant as its own admin",
            Method::GET,
            "/v1/tenants/default",
        )
        .key(admin)
        .expect(403, "forbidden"),
        api(
            "get a tenant never seen",
            Method::GET,
            "/v1/tenants/never-seen",
        )
        .key(ADMIN_KEY)
        .expect(404, "not_found"),
        api(
            "set limits as the tenant's admin",
            Method::PUT,
            "/v1/tenants/default",
        )
        .key(admin)
        .json(json!({"limits": {"events_per_second": 100000, "burst": 1000000}}))
        .expect(403, "forbidden"),
        api("set limits of zero", Method::PUT, "/v1/tenants/default")
            .key(ADMIN_KEY)
            .json(json!({"limits": {"events_per_second": 0, "burst": 10}}))
            .expect(422, "invalid_limits"),
        api(
            "set limits without a burst",
            Method::PUT,
            "/v1/tenants/default",
        )
        .key(ADMIN_KEY)
        .json(json!({"limits": {"events_per_second": 10}}))
        .expect(422, "invalid_body"),
        api(
            "set limits of a bad tenant id",
            Method::PUT,
            "/v1/tenants/Bad_Tenant",
        )
        .key(ADMIN_KEY)
        .json(json!({"limits": null}))
        .expect(422, "invalid_tenant"),
        api(
            "set limits, malformed JSON",
            Method::PUT,
            "/v1/tenants/default",
        )
        .key(ADMIN_KEY)
        .raw("limits=none")
        .expect(400, "malformed_json"),
        api(
            "DELETE /v1/tenants/default",
            Method::DELETE,
            "/v1/tenants/default",
        )
        .key(ADMIN_KEY)
        .expect(405, "method_not_allowed"),
    ]
}
