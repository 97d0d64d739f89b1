//! The noisy neighbour, as a user meets it with `skyhook local`: one subscriber's endpoint
//! hangs past the delivery timeout with 200 messages queued for it, and a healthy
//! subscriber's events, published just after, still arrive within seconds.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{call, start_local_with};
use futures::stream::{self, StreamExt};
use serde_json::json;
use skyhook_tests::{Receiver, Reply, eventually};

const HUNG: usize = 200;
const HEALTHY: usize = 30;

#[tokio::test]
async fn a_hanging_endpoint_with_a_backlog_does_not_hold_up_a_healthy_one() {
    // The default timeout, as `make run` has it; the hanging endpoint answers after it.
    let runner = start_local_with(&[("SKYHOOK_HTTP_TIMEOUT", "15s")]).await;
    let hung = Receiver::start(vec![], Reply::Slow(Duration::from_secs(20), 200)).await;
    let healthy = Receiver::always(200).await;
    for (receiver, types) in [(&hung, "slow.*"), (&healthy, "fast.*")] {
        let (status, body) = call(
            &runner,
            reqwest::Method::POST,
            "/v1/subscribers",
            Some(json!({"url": receiver.url("/hook"), "event_types": [types]})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    // The backlog: 200 events for the hanging endpoint.
    let queued = stream::iter(0..HUNG)
        .map(|n| {
            call(
                &runner,
                reqwest::Method::POST,
                "/v1/events",
                Some(json!({"type": "slow.created", "data": {"n": n}})),
            )
        })
        .buffer_unordered(8)
        .filter(|(status, _)| std::future::ready(*status == 202))
        .count()
        .await;
    assert_eq!(queued, HUNG);

    // Just after: the healthy subscriber's events, five a second.
    let mut published: HashMap<String, Instant> = HashMap::new();
    for n in 0..HEALTHY {
        let at = Instant::now();
        let (status, body) = call(
            &runner,
            reqwest::Method::POST,
            "/v1/events",
            Some(json!({"type": "fast.created", "data": {"n": n}})),
        )
        .await;
        assert_eq!(status, 202, "{body}");
        published.insert(body["id"].as_str().unwrap().to_string(), at);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let arrived = eventually(
        Duration::from_secs(120),
        "every healthy delivery",
        || async {
            let mut first: HashMap<String, Instant> = HashMap::new();
            for r in healthy.requests() {
                let id = r.header("webhook-id").to_string();
                let at = first.entry(id).or_insert(r.at);
                *at = (*at).min(r.at);
            }
            (first.len() >= HEALTHY).then_some(first)
        },
    )
    .await;
    assert_eq!(
        arrived.keys().collect::<std::collections::BTreeSet<_>>(),
        published.keys().collect(),
        "exactly the healthy subscriber's events reach it"
    );
    let mut latencies: Vec<Duration> = arrived
        .iter()
        .map(|(id, at)| at.saturating_duration_since(published[id]))
        .collect();
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p95 = latencies[(latencies.len() * 95).div_ceil(100) - 1];
    eprintln!(
        "noisy neighbour: healthy publish-to-arrival p50 {:.2} s, p95 {:.2} s, max {:.2} s ({HEALTHY} events beside {HUNG} queued for a hanging endpoint)",
        p50.as_secs_f64(),
        p95.as_secs_f64(),
        latencies.last().unwrap().as_secs_f64()
    );
    // The figure above is the one to watch (goal: 5 s; it was 149 s before endpoint
    // health). What must hold on any machine, however loaded: no healthy delivery waited
    // behind a hung request, which would cost it at least the 15 s timeout.
    assert!(
        p95 < Duration::from_secs(15),
        "the healthy subscriber's p95 is {p95:?}: its deliveries waited behind the hanging endpoint's: {latencies:?}"
    );
}
