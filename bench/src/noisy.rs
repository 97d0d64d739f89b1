//! The noisy-tenant figure of `make bench`: in `skyhook local` (in this process, as
//! `make run` starts it), a steady tenant publishes one event at a time, first alone and then
//! while another tenant floods publishes far past its limit from several connections. It
//! prints both p95s of the steady tenant's publishes and their ratio (the goal: within 3×),
//! and what the flood got. Bounded in count and time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::local::Local;

/// The steady tenant's publishes in each phase.
const STEADY: usize = 200;
/// Connections the flood publishes from, and at most how many requests each sends.
const FLOOD_CONNECTIONS: usize = 4;
const FLOOD_MOST: usize = 20_000;
/// The noisy tenant's limits: a small fraction of what it asks for.
const NOISY_RATE: u32 = 5;
const GOAL_RATIO: f64 = 3.0;

fn p95(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times
        .get((times.len() * 95).div_ceil(100).saturating_sub(1))
        .copied()
        .unwrap_or_default()
}

async fn publish(http: &reqwest::Client, base: &str, key: &str, i: usize) -> (u16, Duration) {
    let started = Instant::now();
    let status = http
        .post(format!("{base}/v1/events"))
        .bearer_auth(key)
        .json(&json!({"type": "order.created", "data": {"n": i}}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    (status, started.elapsed())
}

/// The steady tenant's publishes, one at a time: their times, and how many were not 202.
async fn steady(http: &reqwest::Client, base: &str, key: &str) -> (Vec<Duration>, usize) {
    let mut times = Vec::with_capacity(STEADY);
    let mut failed = 0;
    for i in 0..STEADY {
        let (status, took) = publish(http, base, key, i).await;
        if status != 202 {
            failed += 1;
        }
        times.push(took);
        // About 50 a second: well within its limit.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (times, failed)
}

async fn key_for(http: &reqwest::Client, base: &str, admin: &str, tenant: &str) -> String {
    let created: Value = http
        .post(format!("{base}/v1/api-keys"))
        .bearer_auth(admin)
        .json(&json!({"tenant": tenant, "role": "publisher"}))
        .send()
        .await
        .expect("create a key")
        .json()
        .await
        .expect("its answer");
    created["key"].as_str().expect("the key").to_string()
}

pub async fn bench_noisy_tenant() {
    let admin = "sk_bench_noisy_admin_0123456789abcdef".to_string();
    let Some(local) = Local::start("noisy", "bench-noisy", 1, &admin).await else {
        return;
    };
    let base = local.base.clone();
    let http = reqwest::Client::new();
    let steady_key = key_for(&http, &base, &admin, "steady").await;
    let noisy_key = key_for(&http, &base, &admin, "noisy").await;
    let set = http
        .put(format!("{base}/v1/tenants/noisy"))
        .bearer_auth(&admin)
        .json(&json!({"limits": {"events_per_second": NOISY_RATE, "burst": NOISY_RATE}}))
        .send()
        .await
        .map(|r| r.status().as_u16());
    if set.as_ref().ok() != Some(&200) {
        println!("noisy        could not set the noisy tenant's limits: {set:?}");
        local.stop().await;
        return;
    }
    // Warm up (connections, caches), then the steady tenant alone.
    let _ = steady(&http, &base, &steady_key).await;
    let (alone, alone_failed) = steady(&http, &base, &steady_key).await;

    // The flood, from several connections at once, until the steady tenant is done.
    let stop = Arc::new(AtomicBool::new(false));
    let (refused, accepted, other) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let started = Instant::now();
    let flood: Vec<_> = (0..FLOOD_CONNECTIONS)
        .map(|c| {
            let (http, base, key) = (reqwest::Client::new(), base.clone(), noisy_key.clone());
            let (stop, refused, accepted, other) = (
                stop.clone(),
                refused.clone(),
                accepted.clone(),
                other.clone(),
            );
            tokio::spawn(async move {
                for i in 0..FLOOD_MOST {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match publish(&http, &base, &key, c * FLOOD_MOST + i).await.0 {
                        429 => refused.fetch_add(1, Ordering::Relaxed),
                        202 => accepted.fetch_add(1, Ordering::Relaxed),
                        _ => other.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    let (loaded, loaded_failed) = steady(&http, &base, &steady_key).await;
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        let _ = tokio::time::timeout(Duration::from_secs(30), f).await;
    }
    let flood_time = started.elapsed().as_secs_f64();
    local.stop().await;

    let (a, b) = (p95(alone), p95(loaded));
    let ratio = b.as_secs_f64() / a.as_secs_f64().max(1e-9);
    let (refused, accepted, other) = (
        refused.load(Ordering::Relaxed),
        accepted.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed),
    );
    println!(
        "noisy        steady tenant ({STEADY} publishes at ~50/s): p95 {:.1} ms alone, {:.1} ms during a flood = {ratio:.2}x ({}; goal <= {GOAL_RATIO}x); \
         its failures {alone_failed} alone, {loaded_failed} during the flood",
        a.as_secs_f64() * 1000.0,
        b.as_secs_f64() * 1000.0,
        if ratio <= GOAL_RATIO {
            "within the goal"
        } else {
            "over the goal"
        },
    );
    println!(
        "             flood (tenant limited to {NOISY_RATE}/s, {FLOOD_CONNECTIONS} connections, {flood_time:.1} s): \
         {} requests = {:.0}/s, {accepted} accepted, {refused} refused 429, {other} other",
        refused + accepted + other,
        (refused + accepted + other) as f64 / flood_time.max(1e-9),
    );
}
