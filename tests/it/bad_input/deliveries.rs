//! The delivery log and its figures: `GET /v1/deliveries`, `GET /v1/stats` and
//! `GET /v1/stats/timeseries`.

use http::Method;
use serde_json::json;
use skyhook_tests::ADMIN_KEY;

use super::case::{Case, api};
use super::fixture::Fixture;

/// This area's cases, in the corpus's order.
pub(super) fn cases(f: &Fixture) -> Vec<Case> {
    [list(f), stats(f), timeseries(f)]
        .into_iter()
        .flatten()
        .collect()
}

/// GET /v1/deliveries
fn list(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        admin,
        keys_cursor,
        ..
    } = f;
    vec![
        api("deliveries without a key", Method::GET, "/v1/deliveries").expect(401, "unauthorized"),
        api(
            "deliveries, outcome=maybe",
            Method::GET,
            "/v1/deliveries?outcome=maybe",
        )
        .key(reader)
        .expect(400, "invalid_outcome"),
        api(
            "deliveries, since after until",
            Method::GET,
            "/v1/deliveries?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
        )
        .key(reader)
        .expect(400, "invalid_time"),
        api(
            "deliveries, since=yesterday",
            Method::GET,
            "/v1/deliveries?since=yesterday",
        )
        .key(reader)
        .expect(400, "invalid_time"),
        api(
            "deliveries, malformed event_id",
            Method::GET,
            "/v1/deliveries?event_id=nope",
        )
        .key(reader)
        .expect(400, "invalid_event_id"),
        api(
            "deliveries, malformed subscriber_id",
            Method::GET,
            "/v1/deliveries?subscriber_id=nope",
        )
        .key(reader)
        .expect(400, "invalid_subscriber_id"),
        api("deliveries, limit=0", Method::GET, "/v1/deliveries?limit=0")
            .key(reader)
            .expect(400, "invalid_limit"),
        api(
            "deliveries, outcome twice",
            Method::GET,
            "/v1/deliveries?outcome=success&outcome=failure",
        )
        .key(reader)
        .expect(400, "invalid_query"),
        api(
            "deliveries, garbage cursor",
            Method::GET,
            "/v1/deliveries?cursor=garbage",
        )
        .key(reader)
        .expect(400, "invalid_cursor"),
        api(
            "deliveries, cursor of the key list",
            Method::GET,
            format!("/v1/deliveries?cursor={keys_cursor}"),
        )
        .key(ADMIN_KEY)
        .expect(400, "invalid_cursor"),
        api("POST /v1/deliveries", Method::POST, "/v1/deliveries")
            .key(admin)
            .json(json!({}))
            .expect(405, "method_not_allowed"),
    ]
}

/// GET /v1/stats
fn stats(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        admin,
        other_sub,
        sub,
        unknown_sub,
        ..
    } = f;
    vec![
        api("stats without a key", Method::GET, "/v1/stats").expect(401, "unauthorized"),
        api(
            "stats, malformed subscriber_id",
            Method::GET,
            "/v1/stats?subscriber_id=nope",
        )
        .key(reader)
        .expect(400, "invalid_subscriber_id"),
        api(
            "stats, unknown subscriber",
            Method::GET,
            format!("/v1/stats?subscriber_id={unknown_sub}"),
        )
        .key(reader)
        .expect(404, "not_found"),
        api(
            "stats, another tenant's subscriber",
            Method::GET,
            format!("/v1/stats?subscriber_id={other_sub}"),
        )
        .key(reader)
        .expect(404, "not_found"),
        api(
            "stats, subscriber_id twice",
            Method::GET,
            format!("/v1/stats?subscriber_id={sub}&subscriber_id={sub}"),
        )
        .key(reader)
        .expect(400, "invalid_query"),
        api("POST /v1/stats", Method::POST, "/v1/stats")
            .key(admin)
            .expect(405, "method_not_allowed"),
    ]
}

/// GET /v1/stats/timeseries
fn timeseries(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader, other_sub, ..
    } = f;
    vec![
        api("timeseries without a key", Method::GET, "/v1/stats/timeseries")
            .expect(401, "unauthorized"),
        api("timeseries by the week", Method::GET, "/v1/stats/timeseries?bucket=week")
            .key(reader)
            .expect(400, "invalid_bucket"),
        api(
            "timeseries, a day of minutes",
            Method::GET,
            "/v1/stats/timeseries?bucket=minute&since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z",
        )
        .key(reader)
        .expect(400, "invalid_range"),
        api(
            "timeseries, since after until",
            Method::GET,
            "/v1/stats/timeseries?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
        )
        .key(reader)
        .expect(400, "invalid_range"),
        api("timeseries, since not a time", Method::GET, "/v1/stats/timeseries?since=yesterday")
            .key(reader)
            .expect(400, "invalid_time"),
        api(
            "timeseries of another tenant's subscriber",
            Method::GET,
            format!("/v1/stats/timeseries?subscriber_id={other_sub}"),
        )
        .key(reader)
        .expect(404, "not_found"),
    ]
}
