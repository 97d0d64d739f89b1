//! The bad-input corpus: requests across every route that must be refused with a 4xx in the
//! SPEC error shape, writing and sending nothing.
//!
//! One stack, one subscriber pointing at a receiver, keys of every role, and a second tenant
//! whose subscriber, event, key and cursor the first tenant's calls must not reach. Every case
//! is sent as raw bytes (so malformed JSON, odd headers and oversized bodies go out as they
//! are); after each one the whole table, the subscribers' secrets and both queues are compared
//! with what they were before it, so a refused request that writes anything is named. All
//! mismatches are gathered and reported at once.

mod case;
mod deliveries;
mod dlq;
mod events;
mod fixture;
mod keys;
mod misc;
mod publish;
mod sources;
mod subscribers;
mod tenants;

use std::collections::BTreeSet;

use skyhook_tests::Stack;

use case::{Case, Footprint, To, changes, check, footprint, matches_route, send};
use fixture::Fixture;

/// The whole corpus, in its order: each area's cases where they stand in it.
fn corpus(f: &Fixture) -> Vec<Case> {
    [
        publish::cases(f),
        events::cases(f),
        misc::whoami(f),
        subscribers::cases(f),
        deliveries::cases(f),
        dlq::cases(f),
        keys::create(f),
        tenants::cases(f),
        keys::list_and_delete(f),
        misc::audit_and_openapi(f),
        sources::cases(f),
        misc::unserved(f),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[tokio::test]
async fn bad_input_on_every_route_is_a_4xx_in_the_error_shape_and_writes_and_sends_nothing() {
    let f = Fixture::new().await;
    let never = f.never();
    let cases = corpus(&f);
    check_the_corpus(&cases);

    // Snapshot after the set-up, then every case against it.
    let stack = &f.stack;
    let items_before = stack.table_items().await;
    let secrets_before = stack.secret_count().await;
    let start = footprint(stack).await;
    let mut failures = run(stack, &cases, &never, &start).await;
    failures.extend(after_the_corpus(&f, &start, items_before, secrets_before).await);
    assert!(
        failures.is_empty(),
        "{} problem(s) across {} bad-input cases and the final checks:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The corpus itself: big enough, names unique, expectations set, every route reached
/// (`GET /v1/health` takes no input, so only other methods on its path can be wrong).
fn check_the_corpus(cases: &[Case]) {
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let names: BTreeSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
    for c in cases {
        assert!(
            c.status >= 400 && !c.code.is_empty(),
            "{}: no expectation",
            c.name
        );
    }
    let served = skyhook_api::routes()
        .into_iter()
        .map(|(m, p)| (To::Api, m, p))
        .chain(
            skyhook_ingest::routes()
                .into_iter()
                .map(|(m, p)| (To::Ingest, m, p)),
        );
    for (to, method, template) in served {
        assert!(
            cases.iter().any(|c| c.to == to
                && (c.method == method || c.status == 405)
                && matches_route(&template, &c.path)),
            "no bad-input case for {method} {template}"
        );
    }
}

/// Sends every case, checks its answer, and names what it changed against the footprint
/// before it; returns every problem found.
async fn run(stack: &Stack, cases: &[Case], never: &[String], start: &Footprint) -> Vec<String> {
    let mut last = start.clone();
    let mut failures: Vec<String> = Vec::new();
    for c in cases {
        let router = match c.to {
            To::Ingest => &stack.ingest,
            To::Api => &stack.api,
        };
        let label = format!(
            "{} ({} {})",
            c.name,
            c.method,
            c.path.chars().take(90).collect::<String>()
        );
        match send(router, c).await {
            Ok((status, content_type, bytes)) => {
                for p in check(c, status, content_type.as_deref(), &bytes, never) {
                    failures.push(format!("{label}: {p}"));
                }
            }
            Err(e) => failures.push(format!("{label}: {e}")),
        }
        let now = footprint(stack).await;
        for change in changes(&last, &now) {
            failures.push(format!("{label}: {change}"));
        }
        last = now;
    }
    failures
}

/// Nothing written, nothing queued, and (after letting a delivery run) nothing sent.
async fn after_the_corpus(
    f: &Fixture,
    start: &Footprint,
    items_before: usize,
    secrets_before: usize,
) -> Vec<String> {
    let stack = &f.stack;
    let mut failures: Vec<String> = Vec::new();
    let items_after = stack.table_items().await;
    if items_after != items_before {
        failures.push(format!(
            "after the corpus: table items {items_before} -> {items_after}"
        ));
    }
    let secrets_after = stack.secret_count().await;
    if secrets_after != secrets_before {
        failures.push(format!(
            "after the corpus: secrets {secrets_before} -> {secrets_after}"
        ));
    }
    let end = footprint(stack).await;
    let changed = changes(start, &end);
    if !changed.is_empty() {
        // Each change is named under the case that made it, above.
        failures.push(format!(
            "after the corpus: {} change(s) to the table and secrets against the snapshot; \
             delivery queue depth {} -> {}, DLQ depth {} -> {}",
            changed.len(),
            start.queue,
            end.queue,
            start.dlq,
            end.dlq
        ));
    }
    // Whatever the queue holds is delivered before the receivers are looked at.
    let runner = stack.start_delivery();
    let queue = stack.resources.queue_url.clone();
    skyhook_tests::eventually(
        std::time::Duration::from_secs(60),
        "the delivery queue drained",
        || async { (stack.queue_depth(&queue).await == 0).then_some(()) },
    )
    .await;
    runner.stop().await;
    for (name, r) in [
        ("receiver", &f.receiver),
        ("other tenant's receiver", &f.other_receiver),
    ] {
        let got = r.requests();
        if !got.is_empty() {
            failures.push(format!(
                "after the corpus: the {name} got {} request(s), first to {}",
                got.len(),
                got[0].path
            ));
        }
    }
    failures
}
