//! Inbound sources: `/v1/sources`, `/v1/sources/{id}` and `POST /v1/inbound/{source_id}`.

use http::Method;
use serde_json::json;

use super::case::{Case, api, ingest};
use super::fixture::{Fixture, source};

/// This area's cases, in the corpus's order.
pub(super) fn cases(f: &Fixture) -> Vec<Case> {
    [list(f), create(f), by_id(f), inbound(f)]
        .into_iter()
        .flatten()
        .collect()
}

/// GET /v1/sources
fn list(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        admin,
        keys_cursor,
        ..
    } = f;
    vec![
        api("list sources without a key", Method::GET, "/v1/sources").expect(401, "unauthorized"),
        api("list sources, limit 0", Method::GET, "/v1/sources?limit=0")
            .key(reader)
            .expect(400, "invalid_limit"),
        api(
            "list sources, a cursor of another list",
            Method::GET,
            format!("/v1/sources?cursor={keys_cursor}"),
        )
        .key(admin)
        .expect(400, "invalid_cursor"),
    ]
}

/// POST /v1/sources
fn create(f: &Fixture) -> Vec<Case> {
    let Fixture { reader, admin, .. } = f;
    vec![
        api("create source as reader", Method::POST, "/v1/sources")
            .key(reader)
            .json(source(json!({})))
            .expect(403, "forbidden"),
        api("create source, malformed JSON", Method::POST, "/v1/sources")
            .key(admin)
            .raw("{\"name\": ")
            .expect(400, "malformed_json"),
        api("create source, unknown field", Method::POST, "/v1/sources")
            .key(admin)
            .json(source(json!({"tenant": "other"})))
            .expect(422, "invalid_body"),
        api(
            "create source, unknown verification",
            Method::POST,
            "/v1/sources",
        )
        .key(admin)
        .json(source(json!({"verification": "gitlab"})))
        .expect(422, "invalid_verification"),
        api(
            "create source, two event type rules",
            Method::POST,
            "/v1/sources",
        )
        .key(admin)
        .json(source(
            json!({"event_type": {"fixed": "a.b", "pointer": "/t"}}),
        ))
        .expect(422, "invalid_event_type_rule"),
        api(
            "create source, a rule with an unknown key",
            Method::POST,
            "/v1/sources",
        )
        .key(admin)
        .json(source(json!({"event_type": {"fixd": "a.b"}})))
        .expect(422, "invalid_body"),
        api(
            "create source, hmac-sha256 without settings",
            Method::POST,
            "/v1/sources",
        )
        .key(admin)
        .json(source(json!({"verification": "hmac-sha256"})))
        .expect(422, "invalid_hmac"),
        api(
            "create source, hmac settings with a bad header",
            Method::POST,
            "/v1/sources",
        )
        .key(admin)
        .json(source(
            json!({"verification": "hmac-sha256", "hmac": {"header": "X Sig", "encoding": "hex"}}),
        ))
        .expect(422, "invalid_hmac"),
        api(
            "create source, standard-webhooks with a plain secret",
            Method::POST,
            "/v1/sources",
        )
        .key(admin)
        .json(source(
            json!({"verification": "standard-webhooks", "secret": "hunter2-hunter2"}),
        ))
        .secret("hunter2-hunter2")
        .expect(422, "invalid_secret"),
        api("create source, an empty name", Method::POST, "/v1/sources")
            .key(admin)
            .json(source(json!({"name": ""})))
            .expect(422, "invalid_name"),
    ]
}

/// GET/PATCH/DELETE /v1/sources/{id}
fn by_id(f: &Fixture) -> Vec<Case> {
    let Fixture {
        reader,
        publisher,
        admin,
        src,
        other_src,
        ..
    } = f;
    vec![
        api(
            "get an unknown source",
            Method::GET,
            "/v1/sources/src_01unknown0000000000000000",
        )
        .key(reader)
        .expect(404, "not_found"),
        api(
            "get a source by a malformed id",
            Method::GET,
            "/v1/sources/sub_01",
        )
        .key(reader)
        .expect(404, "not_found"),
        api(
            "get another tenant's source",
            Method::GET,
            other_src.clone(),
        )
        .key(admin)
        .expect(404, "not_found"),
        api("update a source with nothing", Method::PATCH, src.clone())
            .key(admin)
            .json(json!({}))
            .expect(422, "empty_update"),
        api("update a source as reader", Method::PATCH, src.clone())
            .key(reader)
            .json(json!({"name": "x"}))
            .expect(403, "forbidden"),
        api(
            "update a source to a scheme its secret does not suit",
            Method::PATCH,
            src.clone(),
        )
        .key(admin)
        .json(json!({"verification": "standard-webhooks"}))
        .expect(422, "invalid_secret"),
        api(
            "update another tenant's source",
            Method::PATCH,
            other_src.clone(),
        )
        .key(admin)
        .json(json!({"name": "mine"}))
        .expect(404, "not_found"),
        api("delete a source as publisher", Method::DELETE, src.clone())
            .key(publisher)
            .expect(403, "forbidden"),
        api(
            "delete another tenant's source",
            Method::DELETE,
            other_src.clone(),
        )
        .key(admin)
        .expect(404, "not_found"),
    ]
}

/// POST /v1/inbound/{source_id}: no key; the signature is the credential.
fn inbound(f: &Fixture) -> Vec<Case> {
    let Fixture {
        admin,
        inbound_path,
        big_publish,
        ..
    } = f;
    vec![
        ingest(
            "inbound without a signature",
            Method::POST,
            inbound_path.clone(),
        )
        .header("x-github-event", "push")
        .json(json!({"a": 1}))
        .expect(401, "invalid_signature"),
        ingest(
            "inbound with an API key instead",
            Method::POST,
            inbound_path.clone(),
        )
        .key(admin)
        .header("x-github-event", "push")
        .json(json!({"a": 1}))
        .expect(401, "invalid_signature"),
        ingest(
            "inbound signed for another body",
            Method::POST,
            inbound_path.clone(),
        )
        .header("x-hub-signature-256", f.github_sig(r#"{"a":2}"#))
        .header("x-github-event", "push")
        .raw(r#"{"a":1}"#)
        .expect(401, "invalid_signature"),
        ingest(
            "inbound signed, not JSON",
            Method::POST,
            inbound_path.clone(),
        )
        .header("x-hub-signature-256", f.github_sig("a=1"))
        .header("x-github-event", "push")
        .raw("a=1")
        .expect(400, "malformed_json"),
        ingest(
            "inbound signed, no event type header",
            Method::POST,
            inbound_path.clone(),
        )
        .header("x-hub-signature-256", f.github_sig(r#"{"a":1}"#))
        .raw(r#"{"a":1}"#)
        .expect(422, "invalid_event_type"),
        ingest(
            "inbound signed, a bad event type",
            Method::POST,
            inbound_path.clone(),
        )
        .header("x-hub-signature-256", f.github_sig(r#"{"a":1}"#))
        .header("x-github-event", "pull request")
        .raw(r#"{"a":1}"#)
        .expect(422, "invalid_event_type"),
        ingest("inbound too large", Method::POST, inbound_path.clone())
            .header("x-github-event", "push")
            .raw(big_publish.clone())
            .expect(413, "payload_too_large"),
        ingest(
            "inbound to an unknown source",
            Method::POST,
            "/v1/inbound/src_01unknown0000000000000000",
        )
        .header("x-hub-signature-256", f.github_sig(r#"{"a":1}"#))
        .raw(r#"{"a":1}"#)
        .expect(404, "not_found"),
        ingest(
            "inbound to a malformed source id",
            Method::POST,
            "/v1/inbound/x",
        )
        .raw(r#"{"a":1}"#)
        .expect(404, "not_found"),
        ingest("GET an inbound URL", Method::GET, inbound_path.clone())
            .expect(405, "method_not_allowed"),
    ]
}
