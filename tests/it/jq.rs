//! The jq sandbox with real worker processes: a program runs with bounded time, memory and
//! output, and one that loops, eats memory or overflows the stack costs its worker, never the
//! delivering process; the next run gets a fresh worker.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use skyhook_domain::jq::{JqError, Sandbox, SandboxLimits};

const EVENT: &str = r#"{"type":"order.created","timestamp":"2026-11-30T00:00:00.000Z","data":{"id":7,"items":[{"sku":"a","qty":2},{"sku":"b","qty":1}]}}"#;

fn sandbox(limits: SandboxLimits) -> Sandbox {
    Sandbox::with_command(
        PathBuf::from(env!("CARGO_BIN_EXE_skyhook-jq-worker")),
        Vec::new(),
        limits,
    )
}

/// Generous for a program that ends; the tests of runaway programs set their own.
fn limits() -> SandboxLimits {
    SandboxLimits {
        time: Duration::from_secs(10),
        memory_mib: 128,
        max_output: 1024,
        workers: 2,
    }
}

#[tokio::test]
async fn a_transform_runs_in_a_worker() {
    let sb = sandbox(limits());
    let out = sb
        .run(
            "{kind: .type, order: .data.id, units: ([.data.items[].qty] | add)}",
            EVENT,
        )
        .await
        .unwrap();
    assert_eq!(out, r#"{"kind":"order.created","order":7,"units":3}"#);
    // Errors of the program come back as they are.
    assert!(matches!(
        sb.run(r#"error("no")"#, EVENT).await,
        Err(JqError::Runtime(_))
    ));
    assert_eq!(
        sb.run(".data.items[]", EVENT).await,
        Err(JqError::ManyOutputs)
    );
    assert!(matches!(
        sb.run(".a +", EVENT).await,
        Err(JqError::Compile(_))
    ));
}

#[tokio::test]
async fn a_program_that_never_ends_is_stopped_and_its_worker_replaced() {
    let sb = sandbox(SandboxLimits {
        time: Duration::from_millis(300),
        ..limits()
    });
    assert_eq!(
        sb.run("def f: f; f", EVENT).await,
        Err(JqError::Timeout(300))
    );
    assert_eq!(
        sb.run("[limit(3; repeat(1))] | length", EVENT).await,
        Ok("3".to_string())
    );
}

#[tokio::test]
async fn a_program_that_eats_memory_or_the_stack_costs_only_its_worker() {
    let sb = sandbox(SandboxLimits {
        memory_mib: 64,
        ..limits()
    });
    assert_eq!(
        sb.run("[range(1e9)] | length", EVENT).await,
        Err(JqError::Crashed(64))
    );
    assert_eq!(
        sb.run("def f: 1 + f; f", EVENT).await,
        Err(JqError::Crashed(64))
    );
    assert_eq!(sb.run(".data.id", EVENT).await, Ok("7".to_string()));
}

#[tokio::test]
async fn runs_share_a_few_workers() {
    let sb = Arc::new(sandbox(limits()));
    let runs = (0..12).map(|i| {
        let sb = sb.clone();
        async move { sb.run(&format!(".data.id + {i}"), EVENT).await }
    });
    let outs = futures::future::join_all(runs).await;
    for (i, out) in outs.into_iter().enumerate() {
        assert_eq!(out, Ok((7 + i).to_string()));
    }
}
