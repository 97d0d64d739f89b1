//! The chaos run (`make soak`; a small one in `make test`): `skyhook local` delivers to
//! receivers that fail on purpose — 10 % 5xx, 5 % answers after the timeout, 2 % reset
//! connections, 3 % 429 with `Retry-After: 1` — while it is killed with SIGKILL twice and
//! started again on the same emulator state. When the queues have drained, every (event,
//! subscriber) pair must be delivered or dead-lettered with its attempts in the log, none
//! lost, duplicates only under their own `webhook-id`, every request signed, and the stats
//! equal to the log. It prints the figures.
//!
//! Size and time: `SKYHOOK_SOAK_EVENTS` events (default 40) to `SKYHOOK_SOAK_SUBSCRIBERS`
//! subscribers (default 10), within `SKYHOOK_SOAK_MINUTES` (default 10).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use common::{KEY, Runner, start_local_named};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use skyhook_tests::{sdk_config, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The delivery timeout `skyhook local` runs with here; a "timeout" answers after it.
const HTTP_TIMEOUT: Duration = Duration::from_secs(2);

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    ServerError(u16),
    Timeout,
    Reset,
    TooMany,
}

/// One request the chaos receiver got.
#[derive(Clone, Debug)]
struct Arrival {
    path: String,
    webhook_id: String,
    at: Instant,
    fault: Fault,
    verified: bool,
}

#[derive(Default)]
struct Chaos {
    arrivals: Mutex<Vec<Arrival>>,
    /// Subscriber path → its signing secret.
    secrets: RwLock<HashMap<String, String>>,
}

/// Reads one HTTP/1.1 request from a kept-alive connection: the request line's path, the
/// headers and the body (by `Content-Length`). `None` at the end of the connection.
async fn read_request(
    stream: &mut TcpStream,
    buffered: &mut Vec<u8>,
) -> Option<(String, http::HeaderMap, Vec<u8>)> {
    let head_end = loop {
        if let Some(i) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buffered.len() > 64 * 1024 {
            return None;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffered.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffered[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let mut headers = http::HeaderMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':')
            && let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(k.trim().as_bytes()),
                http::HeaderValue::from_str(v.trim()),
            )
        {
            headers.append(name, value);
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    buffered.drain(..head_end + 4);
    while buffered.len() < length {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffered.extend_from_slice(&chunk[..n]);
    }
    let body: Vec<u8> = buffered.drain(..length).collect();
    Some((path, headers, body))
}

async fn serve(mut stream: TcpStream, chaos: Arc<Chaos>, seed: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut buffered = Vec::new();
    while let Some((path, headers, body)) = read_request(&mut stream, &mut buffered).await {
        let roll: f64 = rng.random();
        let fault = match roll {
            r if r < 0.10 => Fault::ServerError([500, 502, 503][rng.random_range(0..3)]),
            r if r < 0.15 => Fault::Timeout,
            r if r < 0.17 => Fault::Reset,
            r if r < 0.20 => Fault::TooMany,
            _ => Fault::None,
        };
        let secret = chaos.secrets.read().unwrap().get(&path).cloned();
        let verified = secret.is_some_and(|s| {
            standardwebhooks::Webhook::new(&s)
                .and_then(|w| w.verify(&body, &headers))
                .is_ok()
        });
        chaos.arrivals.lock().unwrap().push(Arrival {
            path,
            webhook_id: headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            at: Instant::now(),
            fault,
            verified,
        });
        let answer = match fault {
            Fault::None => "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_string(),
            Fault::ServerError(code) => {
                format!("HTTP/1.1 {code} Chaos\r\ncontent-length: 5\r\n\r\nchaos")
            }
            Fault::TooMany => {
                "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n"
                    .to_string()
            }
            Fault::Timeout => {
                tokio::time::sleep(HTTP_TIMEOUT + Duration::from_secs(1)).await;
                return;
            }
            Fault::Reset => {
                // Closed with a reset, not a goodbye. (tokio deprecates SO_LINGER because a
                // non-zero linger blocks on drop; a zero one resets at once.)
                #[allow(deprecated)]
                let _ = stream.set_linger(Some(Duration::ZERO));
                return;
            }
        };
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn start_chaos(chaos: Arc<Chaos>, seed: u64) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut n = 0u64;
        while let Ok((stream, _)) = listener.accept().await {
            n += 1;
            tokio::spawn(serve(stream, chaos.clone(), seed.wrapping_add(n)));
        }
    });
    port
}

/// The settings every `skyhook local` of the run gets.
const SETTINGS: &[(&str, &str)] = &[
    ("SKYHOOK_HTTP_TIMEOUT", "2s"),
    // One failure in five trips the breaker now and then (five in a row); it stays in the
    // run, with a cool-down short enough that a run of failed probes cannot outlast it.
    ("SKYHOOK_BREAKER_COOLDOWN", "5s"),
    ("SKYHOOK_BREAKER_MAX_COOLDOWN", "20s"),
    ("SKYHOOK_RETRY_SCHEDULE", "1s,1s,2s,2s,5s"),
    ("SKYHOOK_LOG_FORMAT", "json"),
    ("RUST_LOG", "warn"),
];

async fn api(base: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(KEY)
        .timeout(Duration::from_secs(30));
    if let Some(b) = body {
        req = req.json(&b);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

/// Every item of a list route, page by page, within the run's time.
async fn walk(base: &str, path: &str, deadline: Instant) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        assert!(
            Instant::now() < deadline,
            "reading {path} did not finish within SKYHOOK_SOAK_MINUTES"
        );
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=100&cursor={c}"),
            None => format!("{path}{sep}limit=100"),
        };
        let (status, page) = api(base, reqwest::Method::GET, &url, None).await;
        assert_eq!(status, 200, "{url}: {page}");
        all.extend(page["data"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return all,
        }
    }
}

/// The (event, subscriber) pairs waiting in the SQS dead-letter queue, looked at without
/// hiding them.
async fn peek_dead(sqs: &aws_sdk_sqs::Client, dlq_url: &str) -> BTreeSet<(String, String)> {
    let mut seen = BTreeSet::new();
    for _ in 0..50 {
        let out = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
        let before = seen.len();
        for m in out.messages() {
            if let Ok(v) = serde_json::from_str::<Value>(m.body().unwrap_or_default()) {
                seen.insert((
                    v["event_id"].as_str().unwrap_or_default().to_string(),
                    v["subscriber_id"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        if out.messages().is_empty() || seen.len() == before {
            break;
        }
    }
    seen
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[tokio::test]
async fn chaos_soak_loses_nothing_through_faults_and_two_sigkills() {
    let events = setting("SKYHOOK_SOAK_EVENTS", 40) as usize;
    let subscribers = setting("SKYHOOK_SOAK_SUBSCRIBERS", 10) as usize;
    let deadline = Instant::now() + Duration::from_secs(60 * setting("SKYHOOK_SOAK_MINUTES", 10));
    let seed: u64 = setting("SKYHOOK_SOAK_SEED", rand::random::<u32>() as u64);
    eprintln!(
        "soak: {events} events x {subscribers} subscribers, seed {seed} (SKYHOOK_SOAK_SEED to repeat)"
    );

    let chaos = Arc::new(Chaos::default());
    let port = start_chaos(chaos.clone(), seed).await;
    let prefix = unique("soak");
    let mut runner: Runner = start_local_named(&prefix, SETTINGS).await;
    let base = Arc::new(RwLock::new(runner.base.clone()));

    // Subscribers, each on a path of its own with its own secret.
    let mut sub_paths: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..subscribers {
        let path = format!("/s{i:02}");
        let (status, body) = api(
            &runner.base,
            reqwest::Method::POST,
            "/v1/subscribers",
            Some(
                json!({"url": format!("http://127.0.0.1:{port}{path}"), "event_types": ["soak.*"]}),
            ),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        chaos
            .secrets
            .write()
            .unwrap()
            .insert(path.clone(), body["secret"].as_str().unwrap().to_string());
        sub_paths.insert(body["id"].as_str().unwrap().to_string(), path);
    }

    // Publish, each event under its own idempotency key, retried until accepted: the
    // runner may be dead, or die between accepting an event and answering.
    let mut accepted: BTreeMap<String, Instant> = BTreeMap::new();
    let kills = [events / 3, 2 * events / 3];
    for i in 0..events {
        if kills.contains(&i) && i > 0 {
            runner.child.kill().expect("SIGKILL skyhook local");
            let _ = runner.child.wait();
            eprintln!("soak: killed skyhook local (SIGKILL) after {i} publishes");
            runner = start_local_named(&prefix, SETTINGS).await;
            *base.write().unwrap() = runner.base.clone();
        }
        let id = loop {
            assert!(
                Instant::now() < deadline,
                "publishing did not finish in time"
            );
            let current = base.read().unwrap().clone();
            let resp = reqwest::Client::new()
                .post(format!("{current}/v1/events"))
                .bearer_auth(KEY)
                .header("idempotency-key", format!("soak-{i}"))
                .json(&json!({"type": "soak.tick", "data": {"i": i}}))
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            match resp {
                Ok(r) if r.status().as_u16() == 202 => {
                    let body: Value = r.json().await.unwrap();
                    assert_eq!(body["subscribers"], subscribers, "{body}");
                    break body["id"].as_str().unwrap().to_string();
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        accepted.entry(id).or_insert_with(Instant::now);
    }
    assert_eq!(accepted.len(), events, "one event per idempotency key");

    // Drain: every pair final (delivered or failed), or dead in the SQS DLQ by the queue's
    // redrive policy (its receives spent by the killed runners, unseen by the delivery
    // function).
    let base_now = runner.base.clone();
    let sqs = aws_sdk_sqs::Client::new(&sdk_config().await);
    let dlq_url = sqs
        .get_queue_url()
        .queue_name(format!("{prefix}-deliveries-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let mut statuses: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut in_sqs_dlq: BTreeSet<(String, String)> = BTreeSet::new();
    let mut open: BTreeSet<String> = accepted.keys().cloned().collect();
    while !open.is_empty() && Instant::now() < deadline {
        in_sqs_dlq.extend(peek_dead(&sqs, &dlq_url).await);
        for event in open.clone() {
            let (status, body) = api(
                &base_now,
                reqwest::Method::GET,
                &format!("/v1/events/{event}"),
                None,
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let deliveries = body["deliveries"].as_array().cloned().unwrap_or_default();
            let mut done = deliveries.len() == subscribers;
            for d in &deliveries {
                let sub = d["subscriber_id"].as_str().unwrap().to_string();
                let state = d["status"].as_str().unwrap_or_default().to_string();
                done &= state == "delivered"
                    || state == "failed"
                    || in_sqs_dlq.contains(&(event.clone(), sub.clone()));
                statuses.insert((event.clone(), sub), state);
            }
            if done {
                open.remove(&event);
            }
        }
        if !open.is_empty() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    let listed: BTreeSet<(String, String)> = walk(&base_now, "/v1/dlq", deadline)
        .await
        .iter()
        .map(|d| {
            (
                d["event_id"].as_str().unwrap_or_default().to_string(),
                d["subscriber_id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();

    // Each pair's fate, held against what the receivers saw and what the log holds.
    let arrivals = chaos.arrivals.lock().unwrap().clone();
    let mut ok_at: HashMap<(String, String), Vec<Instant>> = HashMap::new();
    let mut unexpected = 0usize;
    let mut unsigned = 0usize;
    let path_to_sub: HashMap<&str, &str> = sub_paths
        .iter()
        .map(|(s, p)| (p.as_str(), s.as_str()))
        .collect();
    for a in &arrivals {
        if !a.verified {
            unsigned += 1;
        }
        let Some(sub) = path_to_sub.get(a.path.as_str()) else {
            unexpected += 1;
            continue;
        };
        if !accepted.contains_key(&a.webhook_id) {
            unexpected += 1;
            continue;
        }
        if a.fault == Fault::None {
            ok_at
                .entry((a.webhook_id.clone(), sub.to_string()))
                .or_default()
                .push(a.at);
        }
    }
    let (mut delivered, mut dead, mut lost, mut duplicates) = (0usize, 0usize, Vec::new(), 0usize);
    let mut latencies = Vec::new();
    for (event, published_at) in &accepted {
        for sub in sub_paths.keys() {
            let pair = (event.clone(), sub.clone());
            let state = statuses.get(&pair).map(String::as_str).unwrap_or("");
            let oks = ok_at.get(&pair).map(Vec::len).unwrap_or(0);
            duplicates += oks.saturating_sub(1);
            match state {
                "delivered" if oks > 0 => {
                    delivered += 1;
                    let first = ok_at[&pair].iter().min().unwrap();
                    latencies.push(first.saturating_duration_since(*published_at));
                }
                "failed" if listed.contains(&pair) || in_sqs_dlq.contains(&pair) => dead += 1,
                _ if in_sqs_dlq.contains(&pair) => dead += 1,
                _ => lost.push(format!(
                    "{event}/{sub}: status {state:?}, {oks} successful requests"
                )),
            }
        }
    }
    latencies.sort();
    let total = events * subscribers;
    let faults: BTreeMap<String, usize> = arrivals.iter().fold(BTreeMap::new(), |mut m, a| {
        let k = match a.fault {
            Fault::None => "2xx".to_string(),
            Fault::ServerError(_) => "5xx".to_string(),
            Fault::Timeout => "timeout".to_string(),
            Fault::Reset => "reset".to_string(),
            Fault::TooMany => "429".to_string(),
        };
        *m.entry(k).or_default() += 1;
        m
    });
    eprintln!(
        "\nsoak ({events} events x {subscribers} subscribers, 2 x SIGKILL, seed {seed})\n\
         | sent | delivered | dead-lettered | duplicates | lost | p50 | p95 |\n\
         |---|---|---|---|---|---|---|\n\
         | {total} | {delivered} | {dead} | {duplicates} | {} | {:.2} s | {:.2} s |\n\
         requests {} ({faults:?}), unsigned {unsigned}, unexpected {unexpected}\n",
        lost.len(),
        percentile(&latencies, 0.5).as_secs_f64(),
        percentile(&latencies, 0.95).as_secs_f64(),
        arrivals.len(),
    );
    assert!(lost.is_empty(), "lost deliveries: {lost:#?}");
    assert_eq!(delivered + dead, total);
    assert_eq!(
        unexpected, 0,
        "requests for no accepted event or subscriber"
    );
    assert_eq!(
        unsigned, 0,
        "requests the standardwebhooks crate did not verify"
    );

    // Every pair's attempts are in the log (read once, all of it), with a success for a
    // delivered one.
    let log = walk(&base_now, "/v1/deliveries", deadline).await;
    let mut logged: HashMap<(String, String), Vec<&Value>> = HashMap::new();
    for a in &log {
        logged
            .entry((
                a["event_id"].as_str().unwrap_or_default().to_string(),
                a["subscriber_id"].as_str().unwrap_or_default().to_string(),
            ))
            .or_default()
            .push(a);
    }
    for event in accepted.keys() {
        for sub in sub_paths.keys() {
            let pair = (event.clone(), sub.clone());
            let mine = logged.get(&pair).map(Vec::as_slice).unwrap_or_default();
            if in_sqs_dlq.contains(&pair) && mine.is_empty() {
                // Its receives all went to killed runners: nothing was attempted.
                continue;
            }
            assert!(!mine.is_empty(), "no attempt logged for {event}/{sub}");
            if statuses.get(&pair).is_some_and(|s| s == "delivered") {
                assert!(
                    mine.iter().any(|a| a["outcome"] == "success"),
                    "{event}/{sub} delivered without a logged success"
                );
            }
        }
    }

    // The stats, folded from the table's stream, come to the same totals.
    let want = (total as u64, delivered as u64);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        let (_, stats) = api(&base_now, reqwest::Method::GET, "/v1/stats", None).await;
        let finished =
            stats["success"].as_u64().unwrap_or(0) + stats["failure"].as_u64().unwrap_or(0);
        last = stats.clone();
        let dead_by_status = statuses.values().filter(|s| *s == "failed").count() as u64;
        if (finished, stats["success"].as_u64().unwrap_or(0)) == (want.1 + dead_by_status, want.1) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let dead_by_status = statuses.values().filter(|s| *s == "failed").count() as u64;
    assert_eq!(
        (last["success"].as_u64(), last["failure"].as_u64()),
        (Some(want.1), Some(dead_by_status)),
        "stats against the log: {last}"
    );
    drop(runner);
}
