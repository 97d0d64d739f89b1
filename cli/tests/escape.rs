//! The jq escape corpus: programs a hostile tenant admin might save as a transform or a
//! content filter, tried against `skyhook local` with a canary in its environment, at every
//! door a program comes in by:
//!
//! - the preview route (`POST /v1/subscribers/{id}/transform/preview`);
//! - saving it as a transform and as a filter (`PATCH /v1/subscribers/{id}`);
//! - as a saved transform delivered end to end, and as a filter at fan-out. A program the
//!   API refuses is written into the table directly, as a program saved before a rule
//!   changed would be there, so the delivery and the fan-out meet it too.
//!
//! The canary (and the admin key) must appear in no answer, delivered body, delivery
//! status, attempt record, dead letter or log line; every error text is cut to its limit;
//! and the server answers after every program.

mod common;

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use reqwest::Method;
use serde_json::{Value, json};
use skyhook_aws::dynamodb::keys;
use skyhook_domain::event_type::EventTypeFilter;
use skyhook_domain::ids::{SubscriberId, TenantId};
use skyhook_domain::model::MAX_ERROR_TEXT_BYTES;
use skyhook_tests::{Receiver, eventually, sdk_config};

use common::{KEY, Runner, call, start_local_with};

const CANARY: &str = "canary-d41d8cd98f00b204";

/// What becomes of a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Refused when compiled, with a message containing this.
    Refused(&'static str),
    /// Compiles, and fails when it runs (loops, eats memory, errors hugely, …).
    Fails,
}

fn corpus() -> Vec<(String, Fate)> {
    use Fate::*;
    let not_allowed = Refused("is not allowed");
    let too_deep = Refused("nests too deeply");
    let mut programs: Vec<(String, Fate)> = [
        // Every reader of the process or the outside.
        ("env", not_allowed),
        ("env.SKYHOOK_ESCAPE_CANARY", not_allowed),
        ("$ENV", not_allowed),
        ("$ENV.SKYHOOK_ESCAPE_CANARY", not_allowed),
        ("env | tostring", not_allowed),
        ("error(env | tostring)", not_allowed),
        ("[env[]] | join(\",\")", not_allowed),
        ("try env catch .", not_allowed),
        ("def e: env; e", not_allowed),
        ("{leak: env}", not_allowed),
        ("\"\\(env)\"", not_allowed),
        (".data as $d | env", not_allowed),
        ("if .data then env else . end", not_allowed),
        ("input", not_allowed),
        ("[inputs]", not_allowed),
        ("input_filename", not_allowed),
        ("$__loc__", not_allowed),
        ("debug", not_allowed),
        ("debug(env)", not_allowed),
        ("stderr", not_allowed),
        ("halt", not_allowed),
        ("halt_error", not_allowed),
        ("\"x\" | halt_error(1)", not_allowed),
        ("now", not_allowed),
        ("localtime", not_allowed),
        ("0 | strflocaltime(\"%c %Z\")", not_allowed),
        ("get_search_list", not_allowed),
        ("$__prog_args", not_allowed),
        ("builtins", not_allowed),
        (
            "include \"/etc/passwd\"; .",
            Refused("modules cannot be loaded"),
        ),
        (
            "import \"/proc/self/environ\" as $e; $e",
            Refused("modules cannot be loaded"),
        ),
        // Runaways: loops, memory hogs, huge errors and outputs, fork-like recursion.
        ("def f: f; f", Fails),
        ("last(repeat(1))", Fails),
        ("until(false; .)", Fails),
        ("[range(1e9)]", Fails),
        ("reduce range(1e8) as $i ([]; . + [$i])", Fails),
        ("\"x\" * 100000000", Fails),
        ("error([range(400000)])", Fails),
        ("error(\"x\" * 1000000)", Fails),
        ("[range(200000)]", Fails),
        ("def f: f, f; f", Fails),
        ("def f: [f, f]; f", Fails),
        ("def f: 1 + f; f", Fails),
        ("[recurse(., .)]", Fails),
        ("[limit(1e9; repeat(1, 1))] | length", Fails),
        ("def f(g): f(g | g); f(.)", Fails),
        ("repeat(.)", Fails),
    ]
    .into_iter()
    .map(|(p, f)| (p.to_string(), f))
    .collect();
    // Every construct that nests, at a depth that fits in 16 KiB.
    let nest = |open: &str, middle: &str, close: &str, n: usize| {
        format!("{}{middle}{}", open.repeat(n), close.repeat(n))
    };
    programs.extend([
        (nest("-", ".", "", 8000), too_deep),
        (nest("(", ".", ")", 5000), too_deep),
        (nest("[", ".", "]", 5000), too_deep),
        (nest("{a:", ".", "}", 3000), too_deep),
        (nest("try ", ".", "", 3000), too_deep),
        (nest("if . then ", ".", " end", 1000), too_deep),
        (nest("reduce . as $x (.; ", ".", ")", 600), too_deep),
        (nest("def f: ", ".", "; f", 1500), too_deep),
        (nest(". as $x | ", ".", "", 1500), too_deep),
        (nest("label $x | ", ".", "", 1400), too_deep),
        (nest("\"\\(", ".", ")\"", 3000), too_deep),
        (nest(".|", ".", "", 7000), too_deep),
        (nest("1+", "1", "", 7000), too_deep),
        (nest(". // ", ".", "", 3000), too_deep),
        (
            format!(".{}", " ".repeat(16 * 1024)),
            Refused("longer than"),
        ),
    ]);
    programs
}

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

/// Writes `program` into a subscriber's stored transform, or into its route's filter,
/// without the API's check, and bumps the tenant's directory version so every cache reads
/// it again.
async fn store_directly(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    id: &str,
    event_type: &str,
    attribute: &str,
    program: &str,
) {
    let sub = SubscriberId::parse(id).unwrap();
    let key = if attribute == "transform" {
        vec![
            ("pk", keys::tenant_pk(&tenant())),
            ("sk", keys::subscriber_sk(&sub)),
        ]
    } else {
        let route = keys::route_filters_of(&[EventTypeFilter::parse(event_type).unwrap()]);
        vec![
            ("pk", keys::route_pk(&tenant(), &route[0])),
            ("sk", id.to_string()),
        ]
    };
    let mut update = ddb
        .update_item()
        .table_name(table)
        .update_expression("SET #a = :p")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_names("#a", attribute)
        .expression_attribute_values(":p", AttributeValue::S(program.to_string()));
    for (name, value) in key {
        update = update.key(name, AttributeValue::S(value));
    }
    update.send().await.unwrap();
    ddb.update_item()
        .table_name(table)
        .key("pk", AttributeValue::S(keys::tenant_pk(&tenant())))
        .key("sk", AttributeValue::S(keys::VERSION_SK.to_string()))
        .update_expression("ADD version :one")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
}

async fn answers(runner: &Runner) {
    let (status, body) = call(runner, Method::GET, "/v1/health", None).await;
    assert_eq!(status, 200, "the server still answers: {body}");
}

/// Fails if `text` holds a secret of the server's.
fn clean(what: &str, text: &str) {
    assert!(
        !text.contains(CANARY),
        "{what} holds the canary: {text:.300}"
    );
    assert!(
        !text.contains(KEY),
        "{what} holds the admin key: {text:.300}"
    );
}

/// Every error text in `value` is within its limit (and a little for the note that it was
/// cut, and the reason's prefix).
fn capped(what: &str, value: &Value) {
    match value {
        Value::String(s) => assert!(
            s.len() <= MAX_ERROR_TEXT_BYTES + 160,
            "{what}: {} bytes",
            s.len()
        ),
        Value::Array(items) => items.iter().for_each(|v| capped(what, v)),
        Value::Object(fields) => fields.values().for_each(|v| capped(what, v)),
        _ => {}
    }
}

#[tokio::test]
async fn no_jq_program_reaches_the_servers_secrets_or_takes_it_down() {
    let runner = start_local_with(&[
        ("SKYHOOK_ESCAPE_CANARY", CANARY),
        // One try each: a transform failure is final anyway, and a filter is not retried.
        ("SKYHOOK_RETRY_SCHEDULE", "1s"),
    ])
    .await;
    let table = runner.banner("Table").expect("the banner names the table");
    let ddb = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    let receiver = Receiver::always(200).await;
    let corpus = corpus();
    assert!(corpus.len() >= 40, "{}", corpus.len());

    let mut transforms = Vec::new();
    let mut filters = Vec::new();
    for (i, (program, fate)) in corpus.iter().enumerate() {
        // A subscriber for the program as a transform, and one for it as a filter.
        let mut ids = Vec::new();
        for (kind, field, code) in [
            ("t", "transform", "invalid_transform"),
            ("f", "filter", "invalid_filter"),
        ] {
            let event_type = format!("escape.{kind}{i}");
            let (status, created) = call(
                &runner,
                Method::POST,
                "/v1/subscribers",
                Some(json!({"url": receiver.url(&format!("/{kind}{i}")), "event_types": [event_type]})),
            )
            .await;
            assert_eq!(status, 201, "{created}");
            let id = created["id"].as_str().unwrap().to_string();
            let (status, saved) = call(
                &runner,
                Method::PATCH,
                &format!("/v1/subscribers/{id}"),
                Some(json!({ field: program })),
            )
            .await;
            clean("a save's answer", &saved.to_string());
            match fate {
                Fate::Refused(why) => {
                    assert_eq!(status, 422, "{program:.60}: {saved}");
                    assert_eq!(saved["error"]["code"], code, "{saved}");
                    let message = saved["error"]["message"].as_str().unwrap();
                    assert!(message.contains(why), "{program:.60}: {message:.300}");
                    store_directly(&ddb, &table, &id, &event_type, stored_name(field), program)
                        .await;
                }
                Fate::Fails => assert_eq!(status, 200, "{program:.60}: {saved}"),
            }
            ids.push((id, event_type));
        }
        answers(&runner).await;

        let (status, preview) = call(
            &runner,
            Method::POST,
            &format!("/v1/subscribers/{}/transform/preview", ids[0].0),
            Some(json!({"type": "order.created", "data": {"id": 7}, "transform": program})),
        )
        .await;
        clean("a preview", &preview.to_string());
        capped("a preview", &preview);
        assert_eq!(status, 422, "{program:.60}: {preview}");
        let code = preview["error"]["code"].as_str().unwrap();
        match fate {
            Fate::Refused(_) => assert_eq!(code, "invalid_transform", "{preview}"),
            Fate::Fails => assert_eq!(code, "transform_failed", "{preview}"),
        }
        answers(&runner).await;
        transforms.push(ids[0].clone());
        filters.push(ids[1].clone());
    }

    // Each program as a saved transform: the delivery fails once, nothing is sent.
    let mut events = Vec::new();
    for (_, event_type) in &transforms {
        let (status, published) = call(
            &runner,
            Method::POST,
            "/v1/events",
            Some(json!({"type": event_type, "data": {"id": 7}})),
        )
        .await;
        assert_eq!(status, 202, "{published}");
        assert_eq!(published["subscribers"], 1, "{published}");
        events.push(published["id"].as_str().unwrap().to_string());
    }
    // Each program as a filter: it does not pass, so nothing goes out.
    for (_, event_type) in &filters {
        let (status, published) = call(
            &runner,
            Method::POST,
            "/v1/events",
            Some(json!({"type": event_type, "data": {"id": 7}})),
        )
        .await;
        clean("a publish's answer", &published.to_string());
        assert_eq!(status, 202, "{event_type}: {published}");
        assert_eq!(published["subscribers"], 0, "{event_type}: {published}");
        answers(&runner).await;
    }

    for (event_id, (program, _)) in events.iter().zip(&corpus) {
        let status = eventually(
            Duration::from_secs(120),
            "every transformed delivery to end",
            || async {
                let (_, status) = call(
                    &runner,
                    Method::GET,
                    &format!("/v1/events/{event_id}"),
                    None,
                )
                .await;
                (status["deliveries"][0]["status"] == "failed").then_some(status)
            },
        )
        .await;
        clean("a delivery status", &status.to_string());
        capped("a delivery status", &status);
        let error = status["deliveries"][0]["last_error"].as_str().unwrap();
        assert!(
            error.starts_with("transform_failed: "),
            "{program:.60}: {error:.200}"
        );
        let (_, attempts) = call(
            &runner,
            Method::GET,
            &format!("/v1/deliveries?event_id={event_id}"),
            None,
        )
        .await;
        clean("an attempt record", &attempts.to_string());
        capped("an attempt record", &attempts);
        assert_eq!(attempts["data"].as_array().unwrap().len(), 1, "{attempts}");
    }
    answers(&runner).await;

    // Every dead letter, page by page.
    let mut cursor: Option<String> = None;
    let mut dead = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/dlq?limit=100&cursor={c}"),
            None => "/v1/dlq?limit=100".to_string(),
        };
        let (status, page) = call(&runner, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        clean("a dead letter", &page.to_string());
        capped("a dead letter", &page);
        dead += page["data"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(
        dead,
        corpus.len(),
        "one dead letter per transformed delivery"
    );

    assert!(
        receiver.requests().is_empty(),
        "nothing went out: {:?}",
        receiver.requests().first().map(|r| r.json())
    );
    let printed = runner.printed.lock().unwrap().clone();
    assert!(
        printed.iter().filter(|l| l.starts_with('{')).count() > 10,
        "the server logged"
    );
    assert!(
        printed.iter().all(|l| !l.contains(CANARY)),
        "nothing printed holds the canary"
    );
    // The banner shows the admin key on purpose; the log lines after it are JSON.
    for line in printed.iter().filter(|l| l.starts_with('{')) {
        clean("a log line", line);
        assert!(
            line.len() < 4 * MAX_ERROR_TEXT_BYTES,
            "a log line of {} bytes",
            line.len()
        );
    }
}

/// Where the table keeps a field: the route's copy of a filter has a name of its own.
fn stored_name(field: &str) -> &'static str {
    match field {
        "transform" => "transform",
        _ => "content_filter",
    }
}
