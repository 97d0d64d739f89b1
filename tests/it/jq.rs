//! The jq sandbox with real worker processes: a program runs with bounded time, memory and
//! output, and one that loops, eats memory or overflows the stack costs its worker, never the
//! delivering process; the next run gets a fresh worker.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use skyhook_domain::jq::JqError;
use skyhook_process::{Sandbox, SandboxLimits};

const EVENT: &str = r#"{"type":"order.created","timestamp":"2026-11-30T00:00:00.000Z","data":{"id":7,"items":[{"sku":"a","qty":2},{"sku":"b","qty":1}]}}"#;

fn sandbox(limits: SandboxLimits) -> Sandbox {
    Sandbox::with_command(
        PathBuf::from(env!("CARGO_BIN_EXE_skyhook-jq-worker")),
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
async fn one_tenants_slow_programs_leave_another_tenant_a_worker() {
    let sb = Arc::new(sandbox(SandboxLimits {
        time: Duration::from_millis(1500),
        workers: 2,
        ..limits()
    }));
    let (noisy, quiet) = (
        skyhook_domain::ids::TenantId::parse("noisy").unwrap(),
        skyhook_domain::ids::TenantId::parse("quiet").unwrap(),
    );
    let finished = Arc::new(std::sync::Mutex::new(Vec::new()));
    let run = |tenant: skyhook_domain::ids::TenantId, program: &'static str, name: &'static str| {
        let (sb, finished) = (sb.clone(), finished.clone());
        tokio::spawn(async move {
            let out = sb.run_for(&tenant, program, EVENT).await;
            finished.lock().unwrap().push(name);
            out
        })
    };
    // Two loops of one tenant: with two workers, it gets one; the second waits. The test's
    // runtime has one thread and polls tasks in the order they were spawned, so both loops
    // have asked for a worker before the other tenant does.
    let first = run(noisy.clone(), "def f: f; f", "noisy-1");
    let second = run(noisy, "def f: f; f", "noisy-2");
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
    let other = run(quiet, ".data.id", "quiet");
    assert_eq!(other.await.unwrap(), Ok("7".to_string()));
    assert_eq!(first.await.unwrap(), Err(JqError::Timeout(1500)));
    assert_eq!(second.await.unwrap(), Err(JqError::Timeout(1500)));
    // The other tenant's run ended before either loop was stopped.
    assert_eq!(finished.lock().unwrap()[0], "quiet");
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

/// The jq workers that are children of this test process (nextest runs each test in a
/// process of its own), by PID.
fn workers() -> Vec<u32> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …: the name may hold spaces, so read after its ')'.
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let ppid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(me) && stat.contains("(skyhook-jq-wor") {
            found.push(pid);
        }
    }
    found
}

/// A limit's soft value from `/proc/<pid>/limits`, as printed ("unlimited" or a number).
fn limit(pid: u32, name: &str) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in {limits}"));
    line[name.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_worker_holds_no_environment_no_stray_descriptor_and_its_limits() {
    // What a careless parent might hand down: a secret in its environment and a descriptor
    // without close-on-exec.
    // SAFETY: this test runs alone in its process (nextest), before any other thread reads
    // the environment.
    unsafe { std::env::set_var("SKYHOOK_TEST_CANARY", "canary-7f3a") };
    let path = std::ffi::CString::new("/proc/self/status").unwrap();
    // SAFETY: open with a valid C string; the descriptor is closed below.
    let stray = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
    assert!(stray > 2);

    let sb = sandbox(SandboxLimits {
        memory_mib: 96,
        time: Duration::from_millis(1500),
        ..limits()
    });
    assert_eq!(sb.run(".data.id", EVENT).await, Ok("7".to_string()));
    let pids = workers();
    assert_eq!(pids.len(), 1, "{pids:?}");
    let pid = pids[0];

    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let vars: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert_eq!(vars.len(), 1, "{vars:?}");
    assert!(vars[0].starts_with("SKYHOOK_JQ_WORKER="), "{vars:?}");

    let mut fds: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect();
    fds.sort_unstable();
    assert_eq!(fds, vec![0, 1, 2], "only its pipes and /dev/null");

    assert_eq!(limit(pid, "Max address space"), (96u64 << 20).to_string());
    assert_eq!(limit(pid, "Max core file size"), "0");
    // CPU time: what it used (rounded up) plus the run's share (1.5 s → 2 s, and one more).
    let cpu: u64 = limit(pid, "Max cpu time").parse().unwrap();
    assert!((3..=5).contains(&cpu), "{cpu}");

    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(stray) };
}

#[test]
fn a_worker_dies_with_the_thread_that_started_it() {
    // PR_SET_PDEATHSIG fires when the thread that forked the worker ends; a process that
    // dies ends all its threads, so this is the parent's death in small.
    let pid = std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let sb = sandbox(limits());
            assert_eq!(sb.run(".data.id", EVENT).await, Ok("7".to_string()));
            let pids = workers();
            assert_eq!(pids.len(), 1, "{pids:?}");
            // The sandbox is leaked, so it is not what stops the worker.
            std::mem::forget(sb);
            pids[0]
        })
    })
    .join()
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        // A killed child stays a zombie until reaped: reap it, or see it gone.
        let mut status = 0;
        // SAFETY: waitpid on our own child, with a valid pointer.
        let reaped = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
        if reaped == pid as i32 {
            assert!(libc::WIFSIGNALED(status), "killed by a signal: {status}");
            assert_eq!(libc::WTERMSIG(status), libc::SIGKILL);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker {pid} outlived the thread that started it"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_worker_left_running_is_stopped_by_its_cpu_limit() {
    // The parent's wall clock normally stops a loop first; the CPU limit is for a parent that
    // stopped watching. Started by hand with one CPU second per run and never killed, a
    // worker running a loop is ended by the kernel.
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;
    let mut worker = std::process::Command::new(env!("CARGO_BIN_EXE_skyhook-jq-worker"))
        .env_clear()
        .env(skyhook_process::WORKER_ENV, "64,1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let request = serde_json::json!({"program": "def f: f; f", "input": "{}", "max_output": 64});
    let mut stdin = worker.stdin.take().unwrap();
    writeln!(stdin, "{request}").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = worker.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = worker.kill();
            panic!("the worker was not stopped by its CPU limit");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.signal(), Some(libc::SIGXCPU), "{status:?}");
}

mod transforms {
    //! Subscribers' transforms through the API and the delivery function.

    use std::time::Duration;

    use http::{Method, StatusCode};
    use serde_json::json;
    use skyhook_tests::{Receiver, Stack, eventually};

    #[tokio::test]
    async fn a_transform_shapes_the_body_and_the_signature_covers_it() {
        let stack = Stack::new().await;
        let receiver = Receiver::always(200).await;
        let (status, created) = stack
            .api_call(
                Method::POST,
                "/v1/subscribers",
                Some(&json!({
                    "url": receiver.url("/hook"),
                    "event_types": ["order.*"],
                    "transform": "{kind: .type, order: .data.id, units: ([.data.items[].qty] | add)}",
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(
            created["transform"],
            "{kind: .type, order: .data.id, units: ([.data.items[].qty] | add)}"
        );
        let secret = created["secret"].as_str().unwrap().to_string();
        let published = stack
            .publish(json!({"type": "order.created", "data": {"id": 7, "items": [{"qty": 2}, {"qty": 3}]}}))
            .await;
        let event_id = published["id"].as_str().unwrap().to_string();
        let runner = stack.start_delivery();
        receiver
            .wait_for_ids(&[&event_id], Duration::from_secs(20))
            .await;
        runner.stop().await;
        for req in receiver.requests() {
            assert_eq!(
                req.json(),
                json!({"kind": "order.created", "order": 7, "units": 5})
            );
            req.verify(&secret)
                .expect("the signature covers the transformed body");
        }
    }

    #[tokio::test]
    async fn a_sandbox_that_cannot_start_retries_the_delivery_instead_of_failing_it() {
        let mut stack = Stack::new().await;
        let receiver = Receiver::always(200).await;
        let (id, secret) = stack.subscribe(&receiver.url("/hook"), &["order.*"]).await;
        let (status, body) = stack
            .api_call(
                Method::PATCH,
                &format!("/v1/subscribers/{id}"),
                Some(&json!({"transform": "{order: .data.id}"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // A worker binary that is not there: the sandbox cannot run anything.
        let working = stack.deliverer.sandbox.clone();
        stack.deliverer.sandbox = std::sync::Arc::new(skyhook_process::Sandbox::with_command(
            "/nonexistent/skyhook-jq-worker".into(),
            skyhook_process::SandboxLimits::default(),
        ));
        let published = stack
            .publish(json!({"type": "order.created", "data": {"id": 7}}))
            .await;
        let event_id = published["id"].as_str().unwrap().to_string();
        let runner = stack.start_delivery();
        let delivery = eventually(Duration::from_secs(20), "the delivery waits", || async {
            let s = stack.event_status(&event_id).await;
            let d = s["deliveries"][0].clone();
            (d["status"] == "retrying").then_some(d)
        })
        .await;
        runner.stop().await;
        let error = delivery["last_error"].as_str().unwrap();
        assert!(error.starts_with("sandbox_unavailable: "), "{error}");
        let (_, dead) = stack.api_call(Method::GET, "/v1/dlq", None).await;
        assert_eq!(dead["data"], json!([]), "not dead-lettered");

        // The sandbox is back: the retry delivers the transformed body.
        stack.deliverer.sandbox = working;
        let runner = stack.start_delivery();
        receiver
            .wait_for_ids(&[&event_id], Duration::from_secs(20))
            .await;
        runner.stop().await;
        let requests = receiver.requests();
        assert!(!requests.is_empty());
        for req in requests {
            assert_eq!(req.json(), json!({"order": 7}));
            req.verify(&secret).unwrap();
        }
        let s = stack.event_status(&event_id).await;
        assert_eq!(s["deliveries"][0]["status"], "delivered", "{s}");
    }

    #[tokio::test]
    async fn a_failing_transform_ends_the_delivery_once_and_dead_letters_it() {
        let stack = Stack::new().await;
        let receiver = Receiver::always(200).await;
        let (id, _) = stack.subscribe(&receiver.url("/hook"), &["order.*"]).await;
        let (status, body) = stack
            .api_call(
                Method::PATCH,
                &format!("/v1/subscribers/{id}"),
                Some(&json!({"transform": r#"if .data.ok then . else error("not ok") end"#})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let published = stack
            .publish(json!({"type": "order.created", "data": {"ok": false}}))
            .await;
        let event_id = published["id"].as_str().unwrap().to_string();
        let runner = stack.start_delivery();
        let delivery = eventually(Duration::from_secs(20), "the delivery fails", || async {
            let s = stack.event_status(&event_id).await;
            let d = s["deliveries"][0].clone();
            (d["status"] == "failed").then_some(d)
        })
        .await;
        runner.stop().await;
        assert_eq!(delivery["attempts"], 1, "{delivery}");
        let error = delivery["last_error"].as_str().unwrap();
        assert!(
            error.starts_with("transform_failed: ") && error.contains("not ok"),
            "{error}"
        );
        assert!(receiver.requests().is_empty(), "nothing is sent");
        let (_, dead) = stack.api_call(Method::GET, "/v1/dlq", None).await;
        let dead = dead["data"].as_array().unwrap();
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert!(
            dead[0]["reason"]
                .as_str()
                .unwrap()
                .starts_with("transform_failed")
        );
        let (_, log) = stack
            .api_call(
                Method::GET,
                &format!("/v1/deliveries?event_id={event_id}"),
                None,
            )
            .await;
        assert_eq!(log["data"].as_array().unwrap().len(), 1, "{log}");
    }

    #[tokio::test]
    async fn transforms_are_checked_when_saved_and_previewed_on_a_sample() {
        let stack = Stack::new().await;
        let (status, body) = stack
            .api_call(
                Method::POST,
                "/v1/subscribers",
                Some(&json!({"url": "http://127.0.0.1:9/x", "event_types": ["*"], "transform": "{a: .b"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["code"], "invalid_transform");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("line 1"),
            "{body}"
        );

        let (id, _) = stack.subscribe("http://127.0.0.1:9/x", &["*"]).await;
        let preview = |body: serde_json::Value| {
            let stack = &stack;
            let id = id.clone();
            async move {
                stack
                    .api_call(
                        Method::POST,
                        &format!("/v1/subscribers/{id}/transform/preview"),
                        Some(&body),
                    )
                    .await
            }
        };
        // No transform: the event as it is.
        let (status, out) =
            preview(json!({"type": "a.b", "data": {"x": 1}, "timestamp": "2026-01-02T03:04:05Z"}))
                .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(
            out["body"],
            json!({"type": "a.b", "timestamp": "2026-01-02T03:04:05.000Z", "data": {"x": 1}})
        );
        // A program to try, not saved.
        let (status, out) =
            preview(json!({"type": "a.b", "data": {"x": 1}, "transform": "{x: (.data.x + 1)}"}))
                .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(out["body"], json!({"x": 2}));
        let (_, sub) = stack
            .api_call(Method::GET, &format!("/v1/subscribers/{id}"), None)
            .await;
        assert!(sub["transform"].is_null(), "{sub}");
        // A program that fails on the sample says why.
        let (status, out) =
            preview(json!({"type": "a.b", "data": {}, "transform": "def f: f; f"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
        assert_eq!(out["error"]["code"], "transform_failed");
        // Removing it with null.
        let (status, sub) = stack
            .api_call(
                Method::PATCH,
                &format!("/v1/subscribers/{id}"),
                Some(&json!({"transform": ".data"})),
            )
            .await;
        assert_eq!(
            (status, &sub["transform"]),
            (StatusCode::OK, &json!(".data"))
        );
        let (status, sub) = stack
            .api_call(
                Method::PATCH,
                &format!("/v1/subscribers/{id}"),
                Some(&json!({"transform": null})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(sub["transform"].is_null(), "{sub}");
    }
}

mod filters {
    //! Subscribers' content filters, checked at fan-out.

    use std::collections::BTreeSet;

    use http::{Method, StatusCode};
    use serde_json::{Value, json};
    use skyhook_tests::Stack;

    async fn subscriber(stack: &Stack, filter: Option<&str>) -> String {
        let mut body = json!({"url": "http://127.0.0.1:9/hook", "event_types": ["order.*"]});
        if let Some(f) = filter {
            body["filter"] = json!(f);
        }
        let (status, created) = stack
            .api_call(Method::POST, "/v1/subscribers", Some(&body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["filter"], json!(filter));
        created["id"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn a_tenant_holds_at_most_fifty_distinct_filters() {
        let max = skyhook_domain::publish::MAX_FILTERS_PER_TENANT;
        let stack = Stack::new().await;
        let mut ids = Vec::new();
        for i in 0..max {
            ids.push(subscriber(&stack, Some(&format!(".data.n == {i}"))).await);
        }
        // Sharing a filter adds no program; a new one is one too many.
        subscriber(&stack, Some(".data.n == 0")).await;
        let body = json!({"url": "http://127.0.0.1:9/hook", "event_types": ["order.*"], "filter": ".data.n == -1"});
        let (status, answer) = stack
            .api_call(Method::POST, "/v1/subscribers", Some(&body))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["code"], "too_many_filters");
        let plain = subscriber(&stack, None).await;
        let (status, answer) = stack
            .api_call(
                Method::PATCH,
                &format!("/v1/subscribers/{plain}"),
                Some(&json!({"filter": ".data.n == -1"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        // Replacing a subscriber's own filter keeps the count.
        let (status, answer) = stack
            .api_call(
                Method::PATCH,
                &format!("/v1/subscribers/{}", ids[1]),
                Some(&json!({"filter": ".data.n == -1"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        // Another tenant has its own fifty.
        let (_, other) = stack.api_key("other", "admin").await;
        let (status, answer) = stack
            .api_as(&other, Method::POST, "/v1/subscribers", Some(&json!({"url": "http://127.0.0.1:9/hook", "event_types": ["order.*"], "filter": ".data.n == -2"})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }

    /// The (subscriber, event) pairs waiting in the delivery queue, taken out of it.
    async fn queued(stack: &Stack) -> BTreeSet<(String, String)> {
        stack
            .take_queued()
            .await
            .iter()
            .map(|body| {
                let m: Value = serde_json::from_str(body).unwrap();
                (
                    m["subscriber_id"].as_str().unwrap().to_string(),
                    m["event_id"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn an_event_goes_only_where_the_filter_says_true_and_costs_no_message_elsewhere() {
        let stack = Stack::new().await;
        let big = subscriber(
            &stack,
            Some(".data.total >= 100 and .type == \"order.created\""),
        )
        .await;
        let all = subscriber(&stack, None).await;
        // Neither an error nor a value other than `true` sends anything.
        let failing = subscriber(&stack, Some(r#"error("no")"#)).await;
        let truthy = subscriber(&stack, Some(".data.total")).await;
        let looping = subscriber(&stack, Some("def f: f; f")).await;

        let large = stack
            .publish(json!({"type": "order.created", "data": {"total": 150}}))
            .await;
        assert_eq!(large["subscribers"], 2, "{large}");
        let small = stack
            .publish(json!({"type": "order.created", "data": {"total": 5}}))
            .await;
        assert_eq!(small["subscribers"], 1, "{small}");
        let (large, small) = (
            large["id"].as_str().unwrap().to_string(),
            small["id"].as_str().unwrap().to_string(),
        );
        assert_eq!(
            queued(&stack).await,
            BTreeSet::from([
                (big.clone(), large.clone()),
                (all.clone(), large.clone()),
                (all.clone(), small.clone()),
            ]),
            "one message per passing subscriber, none for the others ({failing}, {truthy}, {looping})"
        );
        let status = stack.event_status(&large).await;
        let mut listed: Vec<&str> = status["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["subscriber_id"].as_str().unwrap())
            .collect();
        listed.sort_unstable();
        let mut want = vec![big.as_str(), all.as_str()];
        want.sort_unstable();
        assert_eq!(listed, want, "{status}");

        // Removing the filter sends every event its types match; naming a subscriber
        // explicitly passes its filter by, as for a test send.
        let (status, sub) = stack
            .api_call(
                Method::PATCH,
                &format!("/v1/subscribers/{big}"),
                Some(&json!({"filter": null})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{sub}");
        assert!(sub["filter"].is_null(), "{sub}");
        let next = stack
            .publish(json!({"type": "order.created", "data": {"total": 1}}))
            .await;
        let named = stack
            .publish(
                json!({"type": "order.created", "data": {"total": 1}, "subscriber_ids": [failing]}),
            )
            .await;
        let (next, named) = (
            next["id"].as_str().unwrap().to_string(),
            named["id"].as_str().unwrap().to_string(),
        );
        assert_eq!(
            queued(&stack).await,
            BTreeSet::from([
                (big.clone(), next.clone()),
                (all.clone(), next.clone()),
                (failing.clone(), named.clone()),
            ])
        );
    }

    #[tokio::test]
    async fn a_filter_is_checked_when_saved() {
        let stack = Stack::new().await;
        let (status, body) = stack
            .api_call(
                Method::POST,
                "/v1/subscribers",
                Some(&json!({"url": "http://127.0.0.1:9/x", "event_types": ["*"], "filter": ".data.total >="})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["code"], "invalid_filter");
        let id = subscriber(&stack, None).await;
        let (status, body) = stack
            .api_call(
                Method::PATCH,
                &format!("/v1/subscribers/{id}"),
                Some(&json!({"filter": "nosuchfunction(1)"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["code"], "invalid_filter");
        let (_, sub) = stack
            .api_call(Method::GET, &format!("/v1/subscribers/{id}"), None)
            .await;
        assert!(sub["filter"].is_null(), "nothing was saved: {sub}");
    }
}
