//! Helpers for the tests that run `skyhook local` as a separate process.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use skyhook_tests::{eventually, sdk_config, unique};

pub const BIN: &str = env!("CARGO_BIN_EXE_skyhook");
pub const KEY: &str = "sk_local_test_0123456789abcdef";

/// Kills the runner if a test fails half-way, so no process outlives the test.
pub struct Runner {
    pub child: Child,
    pub base: String,
    pub prefix: String,
    /// Every line it printed on stdout so far (its banner, then its log lines).
    pub printed: Arc<Mutex<Vec<String>>>,
}

impl Runner {
    /// The value of a banner line such as `Table        <name>`.
    pub fn banner(&self, name: &str) -> Option<String> {
        self.printed.lock().unwrap().iter().find_map(|line| {
            line.trim()
                .strip_prefix(name)
                .filter(|rest| rest.starts_with(' '))
                .map(|rest| rest.trim().to_string())
        })
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `skyhook local` on a free port with its own resource prefix and a fast retry
/// schedule (`1s,1s`: three attempts) and a 1 s secret cache, and waits until it serves.
pub async fn start_local() -> Runner {
    start_local_with(&[]).await
}

/// [`start_local`] with some settings of its own (they win over the ones above). It binds
/// port 0 and reads the address it got from its banner, so no two runners can meet on one
/// port.
pub async fn start_local_with(settings: &[(&str, &str)]) -> Runner {
    start_local_named(&unique("local"), settings).await
}

/// [`start_local_with`] on the resources of `prefix`: a second runner with the same prefix
/// (after the first was killed, say) goes on with the same table and queues.
pub async fn start_local_named(prefix: &str, settings: &[(&str, &str)]) -> Runner {
    let endpoint = sdk_config().await.endpoint_url().unwrap().to_string();
    let prefix = prefix.to_string();
    let mut command = Command::new(BIN);
    command
        .arg("local")
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("SKYHOOK_LOCAL_ADDR", "127.0.0.1:0")
        .env("SKYHOOK_LOCAL_PREFIX", &prefix)
        .env("SKYHOOK_ADMIN_KEY", KEY)
        .env("SKYHOOK_RETRY_SCHEDULE", "1s,1s")
        .env("SKYHOOK_HTTP_TIMEOUT", "5s")
        // Short, so a rotated secret reaches deliveries within a test's patience.
        .env("SKYHOOK_SECRET_CACHE_TTL", "1s")
        .env("SKYHOOK_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (name, value) in settings {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    // The banner's `API  http://…` line, read on a thread that then drains the rest.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let printed = Arc::new(Mutex::new(Vec::new()));
    let keep = printed.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(url) = line.trim().strip_prefix("API") {
                let _ = tx.send(url.trim().to_string());
            }
            keep.lock().unwrap().push(line);
        }
    });
    let mut runner = Runner {
        child,
        base: String::new(),
        prefix,
        printed,
    };
    // The reader thread ends (and the channel with it) when skyhook local closes stdout.
    let printed = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
        .await
        .unwrap();
    runner.base = match printed {
        Ok(url) => url,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!(
                "skyhook local exited before it served: {:?}",
                runner.child.wait()
            )
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("skyhook local printed no API address within 60 s")
        }
    };
    let http = reqwest::Client::new();
    eventually(
        Duration::from_secs(60),
        "skyhook local to serve",
        || async {
            http.get(format!("{}/v1/health", runner.base))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
        },
    )
    .await;
    runner
}

/// One API call with the admin key; returns the status and the JSON body (or null).
pub async fn call(
    runner: &Runner,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", runner.base))
        .bearer_auth(KEY);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}
