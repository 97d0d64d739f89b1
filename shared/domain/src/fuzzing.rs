//! What the property tests of every crate share (`fuzzing` feature): their configuration,
//! a JSON strategy, a runtime for async cases, and the check of an error code's form.

use std::future::Future;

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::Value;

/// `PROPTEST_CASES` when set (so `make fuzz` can raise it), else `default`; failing cases
/// are reported, never written into the source tree.
pub fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Runs an async case on a runtime kept per test thread.
pub fn block_on<F: Future>(f: F) -> F::Output {
    thread_local! {
        static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
    }
    RT.with(|rt| rt.block_on(f))
}

/// Whether `code` has the form of an API error code: lower snake case.
pub fn is_snake_case(code: &str) -> bool {
    !code.is_empty()
        && code.starts_with(|c: char| c.is_ascii_lowercase())
        && !code.ends_with('_')
        && !code.contains("__")
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Any JSON value: every scalar (numbers at their extremes, strings of any text), nested
/// arrays and objects up to `depth` levels with at most `items` elements each.
pub fn json_value(depth: u32, items: usize) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        "\\PC{0,16}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    let size = depth * 8 * u32::try_from(items).unwrap_or(8);
    leaf.prop_recursive(
        depth,
        size,
        u32::try_from(items).unwrap_or(8),
        move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..items).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..items)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        },
    )
}
