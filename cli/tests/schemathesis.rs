//! Schemathesis, the property-based API tester, against `skyhook local`: a bounded number of
//! generated requests for every operation of the OpenAPI document (the file the `api`
//! function serves), and none may get a 5xx, an answer the document does not describe
//! (status, content type, headers, body schema), an answer without a key, or a deleted
//! resource back.
//!
//! Not checked: whether every request the schema allows is accepted. The API's rules are
//! stricter than JSON Schema can say (a URL must resolve to a public host, an event type
//! filter has its own grammar), and those refusals are `422`s the document lists.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{KEY, start_local};

/// What must hold for every generated request.
const CHECKS: &str = "not_a_server_error,response_schema_conformance,content_type_conformance,\
status_code_conformance,response_headers_conformance,ignored_auth,unsupported_method,\
use_after_free,ensure_resource_availability";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the CLI crate sits in the workspace")
        .to_path_buf()
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[tokio::test]
async fn schemathesis_finds_no_5xx_and_no_answer_outside_the_document() {
    let root = root();
    let schemathesis = root.join(".venv/bin/schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: scripts/ensure-venv.sh installs it (make test runs it)",
        schemathesis.display()
    );
    let runner = start_local().await;
    // Examples per operation and seed: fixed in `make test`, so a failure reproduces.
    // `make api-fuzz` runs more with a fresh seed, and a time budget that Schemathesis
    // spends in full (it repeats fuzzing until the time is up).
    let examples = setting("SKYHOOK_SCHEMATHESIS_EXAMPLES", "15");
    let seed = setting("SKYHOOK_SCHEMATHESIS_SEED", "20261130");
    let budget: Option<u64> = std::env::var("SKYHOOK_SCHEMATHESIS_SECONDS").ok().map(|s| {
        s.parse()
            .expect("SKYHOOK_SCHEMATHESIS_SECONDS is a number of seconds")
    });
    let mut command = tokio::process::Command::new(&schemathesis);
    command
        .current_dir(std::env::temp_dir())
        .arg("run")
        .arg(root.join("functions/api/src/openapi.json"))
        .args(["--url", &runner.base])
        .args(["--header", &format!("Authorization: Bearer {KEY}")])
        .args(["--checks", CHECKS])
        .args(["--max-examples", &examples])
        .args(["--seed", &seed])
        .args(["--request-timeout", "30"])
        .args(["--generation-database", "none"])
        .args(["--workers", "1"])
        .args(["--warnings", "off"])
        .arg("--no-color")
        .kill_on_drop(true);
    if let Some(seconds) = budget {
        command.args(["--max-time", &seconds.to_string()]);
    }
    // The bounded run takes about a minute; this only stops one that hangs.
    let output = tokio::time::timeout(
        Duration::from_secs(budget.unwrap_or(0) + 600),
        command.output(),
    )
    .await
    .expect("schemathesis ran past its time budget")
    .expect("schemathesis runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{text}");
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{text}"
    );
    // It really ran every operation of the document.
    let operations = skyhook_api::routes().len() + skyhook_ingest::routes().len();
    assert!(
        text.contains(&format!("Tested: {operations}")),
        "schemathesis did not test all {operations} operations:\n{text}"
    );
}
