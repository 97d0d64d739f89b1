//! `GET /v1/events/{id}` and `POST /v1/events/{id}/resend`.

use http::Method;
use serde_json::json;
use skyhook_tests::ADMIN_KEY;

use super::case::{Case, api};
use super::fixture::Fixture;

/// This area's cases, in the corpus's order.
pub(super) fn cases(f: &Fixture) -> Vec<Case> {
    [get(f), resend(f)].into_iter().flatten().collect()
}

/// GET /v1/events/{id}
fn get(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        other_event,
        ..
    } = f;
    vec![
        api(
            "event without a key",
            Method::GET,
            format!("/v1/events/{other_event}"),
        )
        .expect(401, "unauthorized"),
        api(
            "event with a malformed id",
            Method::GET,
            "/v1/events/not-an-id",
        )
        .key(reader)
        .expect(404, "not_found"),
        api(
            "event unknown",
            Method::GET,
            "/v1/events/evt_01unknown000000000000000",
        )
        .key(reader)
        .expect(404, "not_found"),
        api(
            "event of another tenant",
            Method::GET,
            format!("/v1/events/{other_event}"),
        )
        .key(ADMIN_KEY)
        .expect(404, "not_found"),
        api("event id not UTF-8", Method::GET, "/v1/events/%FF%FE")
            .key(reader)
            .expect(400, "invalid_path"),
        api(
            "event id not UTF-8, without a key",
            Method::GET,
            "/v1/events/%FF%FE",
        )
        .expect(401, "unauthorized"),
        api(
            "DELETE an event",
            Method::DELETE,
            format!("/v1/events/{other_event}"),
        )
        .key(ADMIN_KEY)
        .expect(405, "method_not_allowed"),
    ]
}

/// POST /v1/events/{id}/resend
fn resend(f: &Fixture) -> Vec<Case> {
    let Fixture {
        publisher,
        admin,
        other_event,
        sub,
        ..
    } = f;
    vec![
        api(
            "resend without a key",
            Method::POST,
            format!("/v1/events/{other_event}/resend"),
        )
        .json(json!({"subscriber_id": sub}))
        .expect(401, "unauthorized"),
        api(
            "resend as publisher",
            Method::POST,
            format!("/v1/events/{other_event}/resend"),
        )
        .key(publisher)
        .json(json!({"subscriber_id": sub}))
        .expect(403, "forbidden"),
        api(
            "resend another tenant's event",
            Method::POST,
            format!("/v1/events/{other_event}/resend"),
        )
        .key(admin)
        .json(json!({"subscriber_id": sub}))
        .expect(404, "not_found"),
        api(
            "resend without a subscriber",
            Method::POST,
            format!("/v1/events/{other_event}/resend"),
        )
        .key(admin)
        .json(json!({}))
        .expect(422, "invalid_body"),
        api(
            "resend to a malformed subscriber id",
            Method::POST,
            "/v1/events/evt_01unknown000000000000000/resend",
        )
        .key(admin)
        .json(json!({"subscriber_id": "nope"}))
        .expect(422, "invalid_subscriber_id"),
    ]
}
