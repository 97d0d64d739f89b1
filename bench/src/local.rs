//! The local-speed figure of `make bench`: `skyhook local` (the very runner `make run`
//! starts, in this process) takes 1,000 events for 10 subscribers over HTTP, and the clock
//! runs until a receiver has all 10,000 deliveries. Bounded in count and time.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde_json::{Value, json};
use skyhook_cli::local::{LocalConfig, run};
use skyhook_tests::{Receiver, unique};

const EVENTS: usize = 1_000;
const SUBSCRIBERS: usize = 10;
/// The goal of the ledger v2 issue, for the printed verdict.
const GOAL: Duration = Duration::from_secs(100);
/// Past this the run stops and reports what arrived.
const LIMIT: Duration = Duration::from_secs(300);

/// `skyhook local` as `make run` starts it, in this process, on a free loopback port, with
/// `pollers` delivery pollers and `admin` as the bootstrap key: its API's base URL, and what
/// stops it. `None` (said on stdout under `section`) when it did not start within 120 s.
pub struct Local {
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    runner: tokio::task::JoinHandle<Result<(), skyhook_cli::local::LocalError>>,
}

impl Local {
    pub async fn start(section: &str, prefix: &str, pollers: usize, admin: &str) -> Option<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = listener.local_addr().expect("its address");
        drop(listener);
        let cfg = LocalConfig {
            addr,
            prefix: unique(prefix),
            pollers,
            batch_size: skyhook_cli::local::DEFAULT_BATCH_SIZE,
            batching_window: skyhook_cli::local::DEFAULT_BATCHING_WINDOW,
            admin_key: admin.to_string(),
            generated_key: false,
            event_pattern: skyhook_cli::local::DEFAULT_EVENT_PATTERN.to_string(),
            endpoint: std::env::var("AWS_ENDPOINT_URL").unwrap_or_default(),
        };
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        let runner = tokio::spawn(async move {
            run(
                cfg,
                async move {
                    let _ = stop_rx.await;
                },
                move |_, _| {
                    let _ = ready_tx.send(());
                },
            )
            .await
        });
        if tokio::time::timeout(Duration::from_secs(120), ready_rx)
            .await
            .is_err()
        {
            println!("{section:<12} skyhook local did not start within 120 s");
            return None;
        }
        Some(Local {
            base: format!("http://{addr}"),
            stop,
            runner,
        })
    }

    /// Stops it, waiting a bounded time for in-flight deliveries.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(90), self.runner).await;
    }
}

pub async fn bench_local_speed() {
    let key = "sk_bench_local_admin_0123456789abcdef".to_string();
    // As `make run` has it.
    let Some(local) = Local::start("local", "bench-local", 4, &key).await else {
        return;
    };
    let base = local.base.clone();
    let http = reqwest::Client::new();
    let receiver = Receiver::always(200).await;
    for i in 0..SUBSCRIBERS {
        let created: Value = http
            .post(format!("{base}/v1/subscribers"))
            .bearer_auth(&key)
            .json(&json!({"url": receiver.url(&format!("/s/{i}")), "event_types": ["order.*"]}))
            .send()
            .await
            .expect("create a subscriber")
            .json()
            .await
            .expect("its answer");
        assert!(created["id"].is_string(), "{created}");
    }

    let started = Instant::now();
    let published = stream::iter(0..EVENTS)
        .map(|i| {
            let (http, base, key) = (http.clone(), base.clone(), key.clone());
            async move {
                http.post(format!("{base}/v1/events"))
                    .bearer_auth(&key)
                    .json(&json!({"type": "order.created", "data": {"n": i}}))
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().as_u16() == 202)
            }
        })
        .buffer_unordered(8)
        .filter_map(|r| async move {
            let body: Value = r?.json().await.ok()?;
            body["id"].as_str().map(str::to_string)
        })
        .collect::<Vec<String>>()
        .await;
    let published_ids = published;
    let published = published_ids.len();
    let publish_time = started.elapsed();

    let want = published * SUBSCRIBERS;
    let mut distinct = 0;
    while started.elapsed() < LIMIT {
        // Distinct (event, subscriber) pairs: a duplicate delivery is not progress.
        distinct = receiver
            .requests()
            .iter()
            .map(|r| (r.header("webhook-id").to_string(), r.path.clone()))
            .collect::<HashSet<_>>()
            .len();
        if distinct >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = started.elapsed();
    if distinct < want {
        report_missing(&receiver, &published_ids);
    }
    local.stop().await;
    let verdict = if distinct >= want && took <= GOAL {
        format!("within the {} s goal", GOAL.as_secs())
    } else if distinct >= want {
        format!("over the {} s goal", GOAL.as_secs())
    } else {
        format!("stopped after {} s", LIMIT.as_secs())
    };
    println!(
        "local        skyhook local (4 pollers, batches of up to {} within {} s, moto): {published} events × {SUBSCRIBERS} subscribers, \
         {distinct} of {want} deliveries in {:.1} s = {:.0}/s (publishing took {:.1} s), {verdict}",
        skyhook_cli::local::DEFAULT_BATCH_SIZE,
        skyhook_cli::local::DEFAULT_BATCHING_WINDOW.as_secs(),
        took.as_secs_f64(),
        distinct as f64 / took.as_secs_f64(),
        publish_time.as_secs_f64(),
    );
}

/// Which (event, subscriber) pairs never arrived, grouped so that a pattern shows: whole
/// events missing, or whole subscribers, or scattered pairs.
fn report_missing(receiver: &Receiver, published: &[String]) {
    let got: HashSet<(String, String)> = receiver
        .requests()
        .iter()
        .map(|r| (r.header("webhook-id").to_string(), r.path.clone()))
        .collect();
    let mut by_event = std::collections::BTreeMap::<&str, Vec<usize>>::new();
    for id in published {
        for s in 0..SUBSCRIBERS {
            if !got.contains(&(id.clone(), format!("/s/{s}"))) {
                by_event.entry(id.as_str()).or_default().push(s);
            }
        }
    }
    for (id, subs) in &by_event {
        println!("local        missing: event {id} to subscribers {subs:?}");
    }
}
