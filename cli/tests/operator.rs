//! The operator commands against a running `skyhook local`, as a script would use them:
//! import, update, enable/disable, rotate-secret, test, deliveries, stats, the DLQ and its
//! redrive, recover, API keys and the audit trail.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{BIN, KEY, Runner, start_local_with};
use serde_json::Value;
use skyhook_tests::{Receiver, Reply, eventually};

fn run(runner: &Runner, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("SKYHOOK_API_URL", &runner.base)
        .env("SKYHOOK_API_KEY", KEY)
        .output()
        .expect("run skyhook")
}

/// Runs a command with `--json` that must succeed, and parses what it printed.
async fn json(runner: &Runner, args: &[&str]) -> Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let (base, args): (String, Vec<String>) = (
        runner.base.clone(),
        full.iter().map(|s| s.to_string()).collect(),
    );
    let shown = args.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(&args)
            .env("SKYHOOK_API_URL", base)
            .env("SKYHOOK_API_KEY", KEY)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{shown:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|_| panic!("{shown:?} printed {text}"))
}

#[tokio::test]
async fn operators_manage_subscribers_secrets_and_dead_letters_from_the_cli() {
    // One consumer: the test counts the shaky delivery's attempts exactly.
    let runner = start_local_with(&[("SKYHOOK_LOCAL_POLLERS", "1")]).await;
    let good = Receiver::always(200).await;
    // Fails each delivery's first three requests (three attempts), then recovers.
    let shaky = Receiver::per_id(
        vec![Reply::Status(500), Reply::Status(500), Reply::Status(500)],
        Reply::Status(200),
    )
    .await;

    // Import: one new subscriber per entry; a disabled one stays disabled.
    let dir = std::env::temp_dir().join(format!("skyhook-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("endpoints.yaml");
    std::fs::write(
        &file,
        format!(
            "endpoints:\n  - url: {}\n    events: ['order.*']\n    description: good\n  - url: {}\n    events: ['order.*']\n    description: shaky\n  - url: https://example.com/off\n    events: ['*']\n    enabled: false\n",
            good.url("/good"),
            shaky.url("/shaky")
        ),
    )
    .unwrap();
    let file_s = file.to_string_lossy().into_owned();
    let dry = run(&runner, &["subscribers", "import", "--dry-run", &file_s]);
    assert!(dry.status.success());
    assert_eq!(String::from_utf8_lossy(&dry.stdout).lines().count(), 3);
    let imported = json(&runner, &["subscribers", "import", &file_s]).await;
    let results = imported["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r["action"] == "created"));
    let id_of = |desc_url: &str| {
        results
            .iter()
            .find(|r| r["url"].as_str().unwrap().contains(desc_url))
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (good_id, shaky_id, off_id) = (id_of("/good"), id_of("/shaky"), id_of("/off"));
    let listed = json(
        &runner,
        &["subscribers", "list", "--all", "--active", "false"],
    )
    .await;
    let inactive: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(inactive, vec![off_id.as_str()]);

    // Update and enable/disable.
    let updated = json(
        &runner,
        &[
            "subscribers",
            "update",
            &off_id,
            "--description",
            "renamed",
            "--header",
            "X-Team=ops",
        ],
    )
    .await;
    assert_eq!(updated["description"], "renamed");
    assert_eq!(
        updated["headers"]["x-team"], "********",
        "values are shown masked"
    );
    assert_eq!(
        json(&runner, &["subscribers", "enable", &off_id]).await["active"],
        true
    );
    assert_eq!(
        json(&runner, &["subscribers", "disable", &off_id]).await["active"],
        false
    );
    let nothing = run(&runner, &["subscribers", "update", &off_id]);
    assert_eq!(nothing.status.code(), Some(2));

    // A test event reaches only that subscriber.
    let sent = json(&runner, &["subscribers", "test", &good_id]).await;
    let test_id = sent["id"].as_str().unwrap().to_string();
    let got = good
        .wait_for_ids(&[&test_id], Duration::from_secs(30))
        .await;
    assert_eq!(got[&test_id][0].json()["type"], "skyhook.test");
    assert!(shaky.requests().is_empty());

    // Rotation: the new secret is returned and signs from now on.
    let rotated = json(&runner, &["subscribers", "rotate-secret", &good_id]).await;
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert!(new_secret.starts_with("whsec_"));
    // Deliveries pick the rotation up at once: the cache is keyed by the secret's version.

    // An event the shaky receiver fails three times ends in the DLQ.
    let event = json(
        &runner,
        &[
            "events",
            "send",
            "--type",
            "order.created",
            "--data",
            r#"{"id":"ord_1"}"#,
        ],
    )
    .await;
    let event_id = event["id"].as_str().unwrap().to_string();
    let got = good
        .wait_for_ids(&[&event_id], Duration::from_secs(30))
        .await;
    for r in &got[&event_id] {
        r.verify(&new_secret)
            .expect("signed with the rotated secret");
    }
    shaky.wait_for(3, Duration::from_secs(30)).await;
    let dead = eventually(Duration::from_secs(30), "a DLQ entry", || {
        let runner = &runner;
        async move {
            let d = json(runner, &["dlq", "list"]).await;
            (d["data"].as_array().unwrap().len() == 1).then_some(d)
        }
    })
    .await;
    assert_eq!(dead["data"][0]["subscriber_id"], shaky_id.as_str());
    assert_eq!(dead["data"][0]["event_id"], event_id.as_str());

    // The delivery log and the stats tell the same story.
    let failures = json(
        &runner,
        &[
            "deliveries",
            "--subscriber",
            &shaky_id,
            "--outcome",
            "failure",
            "--all",
        ],
    )
    .await;
    assert_eq!(failures["data"].as_array().unwrap().len(), 3);
    // Stats are folded from the table's stream, a moment after the deliveries.
    eventually(
        Duration::from_secs(30),
        "stats to count the failure",
        || async {
            let stats = json(&runner, &["stats", "--subscriber", &shaky_id]).await;
            (stats["failure"] == 1).then_some(())
        },
    )
    .await;

    // Redrive sends it back with the same webhook-id; this time it is delivered.
    let redriven = json(&runner, &["dlq", "redrive", "--subscriber", &shaky_id]).await;
    assert_eq!(redriven["redriven"], 1);
    let got = shaky.wait_for(4, Duration::from_secs(30)).await;
    assert!(got.iter().all(|r| r.id() == event_id), "one delivery only");
    assert!(
        json(&runner, &["dlq", "list"]).await["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Recover finds nothing failed any more in the window: it is skipped, not resent.
    let recovered = json(
        &runner,
        &[
            "subscribers",
            "recover",
            &shaky_id,
            "--since",
            "2020-01-01T00:00:00Z",
        ],
    )
    .await;
    assert_eq!(recovered["recovered"], 0);

    // API keys: a reader key reads but cannot change anything.
    let key = json(
        &runner,
        &[
            "api-keys",
            "create",
            "--role",
            "reader",
            "--description",
            "dashboards",
        ],
    )
    .await;
    let reader_key = key["key"].as_str().unwrap().to_string();
    let as_reader = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("SKYHOOK_API_URL", &runner.base)
            .env("SKYHOOK_API_KEY", &reader_key)
            .output()
            .unwrap()
    };
    assert!(as_reader(&["subscribers", "list"]).status.success());
    let refused = as_reader(&["subscribers", "delete", &good_id]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("403"));
    let keys = json(&runner, &["api-keys", "list"]).await;
    assert!(
        keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == key["id"])
    );
    json_ok(
        &runner,
        &["api-keys", "delete", key["id"].as_str().unwrap()],
    );
    assert_eq!(as_reader(&["subscribers", "list"]).status.code(), Some(1));

    // Every change above is in the audit trail.
    let audit = json(&runner, &["audit", "--limit", "100"]).await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    for action in [
        "subscriber.create",
        "subscriber.rotate_secret",
        "dlq.redrive",
        "api_key.create",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn json_ok(runner: &Runner, args: &[&str]) {
    let out = run(runner, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--transform` on create and update, `preview-transform`, a delivery through `skyhook
/// local` shaped by the transform, and `--filter`/`--no-filter` deciding at fan-out: the
/// workers are the `skyhook` binary itself.
#[tokio::test]
async fn transforms_and_filters_are_set_previewed_and_applied_from_the_cli() {
    let runner = start_local_with(&[]).await;
    let receiver = Receiver::always(200).await;
    let url = receiver.url("/shaped");
    let created = json(
        &runner,
        &[
            "subscribers",
            "create",
            "--url",
            &url,
            "--event-type",
            "order.*",
            "--transform",
            "{kind: .type, order: .data.id}",
        ],
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["transform"], "{kind: .type, order: .data.id}");

    let preview = json(
        &runner,
        &[
            "subscribers",
            "preview-transform",
            &id,
            "--type",
            "order.created",
            "--data",
            r#"{"id": 9}"#,
        ],
    )
    .await;
    assert_eq!(
        preview["body"],
        serde_json::json!({"kind": "order.created", "order": 9})
    );

    // A program that does not compile is refused with the compiler's words.
    let out = run(
        &runner,
        &["subscribers", "update", &id, "--transform", "{kind: "],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid_transform"), "{err}");

    let sent = json(
        &runner,
        &[
            "events",
            "send",
            "--type",
            "order.created",
            "--data",
            r#"{"id": 11}"#,
        ],
    )
    .await;
    let event_id = sent["id"].as_str().unwrap().to_string();
    receiver
        .wait_for_ids(&[&event_id], Duration::from_secs(30))
        .await;
    for req in receiver.requests() {
        assert_eq!(
            req.json(),
            serde_json::json!({"kind": "order.created", "order": 11})
        );
    }

    // A content filter, run at fan-out by the local ingest's workers.
    let filtered = json(
        &runner,
        &["subscribers", "update", &id, "--filter", ".data.id > 20"],
    )
    .await;
    assert_eq!(filtered["filter"], ".data.id > 20");
    let send = |id: u32| {
        let data = format!(r#"{{"id": {id}}}"#);
        let runner = &runner;
        async move {
            json(
                runner,
                &["events", "send", "--type", "order.created", "--data", &data],
            )
            .await
        }
    };
    let skipped = send(5).await;
    assert_eq!(skipped["subscribers"], 0, "{skipped}");
    let passed = send(25).await;
    assert_eq!(passed["subscribers"], 1, "{passed}");
    receiver
        .wait_for_ids(&[passed["id"].as_str().unwrap()], Duration::from_secs(30))
        .await;
    let unfiltered = json(&runner, &["subscribers", "update", &id, "--no-filter"]).await;
    assert!(unfiltered["filter"].is_null(), "{unfiltered}");
    assert_eq!(send(5).await["subscribers"], 1);

    let removed = json(&runner, &["subscribers", "update", &id, "--no-transform"]).await;
    assert!(removed["transform"].is_null(), "{removed}");
}

/// `skyhook sources …` through `skyhook local`: a GitHub-style source, a signed sample sent
/// with `send-test` and fanned out to a `--filter`ed subscriber, a new secret that applies
/// at once, and the delete.
#[tokio::test]
async fn sources_are_managed_and_tried_out_from_the_cli() {
    let runner = start_local_with(&[]).await;
    let receiver = Receiver::always(200).await;
    let url = receiver.url("/gh");
    let subscriber = json(
        &runner,
        &[
            "subscribers",
            "create",
            "--url",
            &url,
            "--event-type",
            "github.*",
            "--filter",
            ".data.action == \"opened\"",
        ],
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let created = json(
        &runner,
        &[
            "sources",
            "create",
            "--name",
            "GitHub",
            "--verification",
            "github",
            "--secret",
            "It's a Secret to Everybody",
            "--type-header",
            "X-GitHub-Event",
            "--type-prefix",
            "github.",
        ],
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["secret"], "It's a Secret to Everybody");
    let got = json(&runner, &["sources", "get", &id]).await;
    assert!(got.get("secret").is_none(), "{got}");
    assert_eq!(
        json(&runner, &["sources", "list"]).await["data"][0]["id"],
        id.as_str()
    );

    let sent = json(
        &runner,
        &[
            "sources",
            "send-test",
            &id,
            "--secret",
            "It's a Secret to Everybody",
            "--header",
            "X-GitHub-Event=issues",
            "--data",
            r#"{"action": "opened", "issue": {"number": 7}}"#,
        ],
    )
    .await;
    assert_eq!(sent["type"], "github.issues");
    assert_eq!(sent["subscribers"], 1, "{sent}");
    receiver
        .wait_for_ids(&[sent["id"].as_str().unwrap()], Duration::from_secs(30))
        .await;
    // Once the local stats consumer has folded it, the attempt shows over time.
    eventually(Duration::from_secs(30), "the attempt in the series", || {
        let (runner, subscriber) = (&runner, &subscriber);
        async move {
            let series = json(
                runner,
                &[
                    "stats",
                    "--series",
                    "--bucket",
                    "minute",
                    "--subscriber",
                    subscriber,
                ],
            )
            .await;
            let points = series["points"].as_array().cloned().unwrap_or_default();
            (points.len() == 60
                && points
                    .iter()
                    .map(|p| p["success"].as_u64().unwrap_or(0))
                    .sum::<u64>()
                    == 1)
                .then_some(())
        }
    })
    .await;
    let out = run(&runner, &["stats", "--series", "--bucket", "week"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a bad bucket is refused before anything is sent"
    );
    let closed = json(
        &runner,
        &[
            "sources",
            "send-test",
            &id,
            "--secret",
            "It's a Secret to Everybody",
            "--header",
            "X-GitHub-Event=issues",
            "--data",
            r#"{"action": "closed"}"#,
        ],
    )
    .await;
    assert_eq!(closed["subscribers"], 0, "the filter keeps it out");

    json_ok(&runner, &["sources", "update", &id, "--secret", "rotated"]);
    let out = run(
        &runner,
        &[
            "sources",
            "send-test",
            &id,
            "--secret",
            "It's a Secret to Everybody",
            "--header",
            "X-GitHub-Event=issues",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid_signature"), "{err}");
    let out = run(
        &runner,
        &[
            "sources",
            "create",
            "--name",
            "x",
            "--verification",
            "github",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "no event type rule is a usage error"
    );

    json_ok(&runner, &["sources", "delete", &id]);
    let out = run(&runner, &["sources", "get", &id]);
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn tenants_and_their_limits_are_set_from_the_cli_and_hold_in_skyhook_local() {
    let runner = start_local_with(&[]).await;
    let noisy = json(
        &runner,
        &[
            "api-keys",
            "create",
            "--role",
            "publisher",
            "--tenant",
            "noisy",
        ],
    )
    .await;
    let quiet = json(
        &runner,
        &[
            "api-keys",
            "create",
            "--role",
            "publisher",
            "--tenant",
            "quiet",
        ],
    )
    .await;
    let set = json(
        &runner,
        &[
            "tenants",
            "set",
            "noisy",
            "--events-per-second",
            "1",
            "--burst",
            "2",
        ],
    )
    .await;
    assert_eq!(set["limits"]["burst"], 2, "{set}");
    assert_eq!(set["custom_limits"], true);
    let got = json(&runner, &["tenants", "get", "noisy"]).await;
    assert_eq!(got, set);
    let listed = json(&runner, &["tenants", "list"]).await;
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(
        ["default", "noisy", "quiet"]
            .iter()
            .all(|t| ids.contains(t)),
        "{ids:?}"
    );

    // Half a flag, or both ways at once, is wrong usage (exit 2), sent nowhere.
    for args in [
        &["tenants", "set", "noisy", "--events-per-second", "5"][..],
        &["tenants", "set", "noisy", "--defaults", "--burst", "5"][..],
        &["tenants", "set", "noisy"][..],
    ] {
        assert_eq!(run(&runner, args).status.code(), Some(2), "{args:?}");
    }
    // The API's refusals exit 1 with its code.
    let out = run(
        &runner,
        &[
            "tenants",
            "set",
            "noisy",
            "--events-per-second",
            "0",
            "--burst",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_limits"));

    // Past its burst, the noisy tenant's publishes are refused; the quiet one's are not.
    let send = |key: &Value| {
        Command::new(BIN)
            .args(["events", "send", "--type", "order.created", "--data", "{}"])
            .env("SKYHOOK_API_URL", &runner.base)
            .env("SKYHOOK_API_KEY", key["key"].as_str().unwrap())
            .output()
            .unwrap()
    };
    let noisy_out: Vec<Output> = (0..6).map(|_| send(&noisy)).collect();
    let refused: Vec<&Output> = noisy_out.iter().filter(|o| !o.status.success()).collect();
    assert!(
        !refused.is_empty(),
        "the noisy tenant is refused past its burst"
    );
    for out in &refused {
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("rate_limited"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for _ in 0..6 {
        let out = send(&quiet);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Back on the defaults, it publishes again.
    let back = json(&runner, &["tenants", "set", "noisy", "--defaults"]).await;
    assert_eq!(back["custom_limits"], false);
    // The ingest reads limits through a 30 s cache, so the refusal may last that long.
    eventually(
        Duration::from_secs(60),
        "noisy to publish again",
        || async { send(&noisy).status.success().then_some(()) },
    )
    .await;
}
