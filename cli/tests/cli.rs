//! The `skyhook` binary as scripts use it: `--help`, `listen`, `verify`, and exit codes.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use skyhook_cli::listen::SavedRequest;
use skyhook_domain::secret::SigningSecret;
use skyhook_domain::signing::{SignatureScheme, delivery_headers};
use skyhook_tests::{Receiver, Reply};
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_skyhook");

fn skyhook(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SKYHOOK_API_URL")
        .env_remove("SKYHOOK_API_KEY")
        .output()
        .expect("run skyhook")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["local", "--help"],
        vec!["subscribers", "--help"],
        vec!["subscribers", "create", "--help"],
        vec!["subscribers", "list", "--help"],
        vec!["subscribers", "get", "--help"],
        vec!["subscribers", "delete", "--help"],
        vec!["events", "send", "--help"],
        vec!["events", "show", "--help"],
        vec!["listen", "--help"],
        vec!["verify", "--help"],
    ] {
        let out = skyhook(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).contains("Usage: skyhook"), "{args:?}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let out = skyhook(&["subscribers", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = skyhook(&["subscribers", "list"]);
    assert_eq!(out.status.code(), Some(2), "no API key");
    assert!(stderr(&out).contains("SKYHOOK_API_KEY"), "{}", stderr(&out));
    let out = skyhook(&[
        "events",
        "send",
        "--type",
        "a.b",
        "--data",
        "{not json",
        "--api-key",
        "k",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not JSON"));
    let out = skyhook(&["verify", "--secret", "whsec_tooshort", "nothing.json"]);
    assert_eq!(out.status.code(), Some(2));
    let out = skyhook(&[
        "verify",
        "--secret",
        &SigningSecret::generate().expose(),
        "/no/such/file.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/no/such/file.json"));
}

#[test]
fn an_unreachable_api_exits_3() {
    // Nothing listens on port 9 of the loopback interface.
    let out = skyhook(&[
        "subscribers",
        "list",
        "--api-url",
        "http://127.0.0.1:9",
        "--api-key",
        "k",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot reach"));
}

#[tokio::test]
async fn a_refused_request_exits_1_with_the_api_message() {
    let api = Receiver::start(
        vec![],
        Reply::WithHeaders(404, vec![("content-type", "application/json".to_string())]),
    )
    .await;
    let url = api.url("");
    let out = tokio::task::spawn_blocking(move || {
        skyhook(&[
            "subscribers",
            "get",
            "sub_nothere",
            "--api-url",
            &url,
            "--api-key",
            "sk_x",
        ])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("HTTP 404"), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("warning"),
        "plain http to loopback is not warned about"
    );
    let req = &api.requests()[0];
    assert_eq!(req.path, "/v1/subscribers/sub_nothere");
    assert_eq!(req.header("authorization"), "Bearer sk_x");
}

#[test]
fn an_api_key_about_to_go_over_plain_http_to_another_machine_is_warned_about_first() {
    // Nothing listens on port 9 of 0.0.0.0 (this machine, but not its loopback name), so
    // the request fails at once; the warning comes before it.
    let out = skyhook(&[
        "subscribers",
        "list",
        "--api-url",
        "http://0.0.0.0:9",
        "--api-key",
        "sk_x",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    let warned = err.find("plain http").expect("a warning");
    let failed = err.find("cannot reach").expect("the request failed");
    assert!(warned <= failed, "the warning comes first: {err}");
    assert!(!err.contains("sk_x"), "the key is never printed: {err}");
}

fn saved(secret: &SigningSecret, scheme: SignatureScheme, ts: i64) -> SavedRequest {
    let body = r#"{"type":"order.created","timestamp":"2026-11-23T10:00:00.000Z","data":{"id":1}}"#;
    SavedRequest {
        method: "POST".into(),
        path: "/webhooks".into(),
        headers: delivery_headers(
            scheme,
            std::slice::from_ref(secret),
            "evt_01TEST",
            ts,
            body.as_bytes(),
        )
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        body: body.into(),
        received_at: "2026-11-23T10:00:00.000Z".into(),
    }
}

fn write(dir: &Path, name: &str, req: &SavedRequest) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec(req).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn verify_accepts_a_genuine_saved_request_and_rejects_a_tampered_one() {
    let dir = std::env::temp_dir().join(format!("skyhook-verify-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = SigningSecret::generate();
    let now = chrono::Utc::now().timestamp();
    for scheme in [SignatureScheme::Standard, SignatureScheme::HexSha256] {
        let fresh = write(&dir, "fresh.json", &saved(&secret, scheme, now));
        let out = skyhook(&["verify", "--secret", &secret.expose(), &fresh]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stdout(&out).contains("signature verified"));

        let old = write(&dir, "old.json", &saved(&secret, scheme, now - 3600));
        let out = skyhook(&["verify", "--secret", &secret.expose(), &old]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "an hour-old request fails the age check"
        );
        let out = skyhook(&["verify", "--secret", &secret.expose(), "--ignore-age", &old]);
        assert_eq!(out.status.code(), Some(0));

        let mut tampered = saved(&secret, scheme, now);
        tampered.body = tampered.body.replace("\"id\":1", "\"id\":2");
        let tampered = write(&dir, "tampered.json", &tampered);
        let out = skyhook(&["verify", "--secret", &secret.expose(), &tampered]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("does not verify"));

        let other = SigningSecret::generate();
        let out = skyhook(&["verify", "--secret", &other.expose(), &fresh]);
        assert_eq!(out.status.code(), Some(1));
        // Any of several secrets may match (rotation).
        let out = skyhook(&[
            "verify",
            "--secret",
            &other.expose(),
            "--secret",
            &secret.expose(),
            &fresh,
        ]);
        assert_eq!(out.status.code(), Some(0));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    )
}

/// Starts `skyhook listen` and returns the child and the URL it printed.
async fn start_listen(
    args: &[&str],
) -> (
    tokio::process::Child,
    String,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let mut child = tokio::process::Command::new(BIN)
        .arg("listen")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(line);
        }
    });
    let url = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let line = rx.recv().await.expect("listen exited early");
            if let Some(rest) = line.strip_prefix("Listening on ") {
                return rest.split_whitespace().next().unwrap().to_string();
            }
        }
    })
    .await
    .expect("listen printed its URL");
    (child, url, rx)
}

async fn post(url: &str, req: &SavedRequest) -> u16 {
    let mut r = reqwest::Client::new().post(url).body(req.body.clone());
    for (k, v) in &req.headers {
        r = r.header(k, v);
    }
    r.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn listen_verifies_prints_saves_and_exits_after_n_deliveries() {
    let secret = SigningSecret::generate();
    let dir = std::env::temp_dir().join(format!("skyhook-listen-{}", uuid_like()));
    let dir_s = dir.to_string_lossy().into_owned();
    let (mut child, url, mut out) = start_listen(&[
        "--port",
        "0",
        "--secret",
        &secret.expose(),
        "--save",
        &dir_s,
        "--exit-after",
        "2",
    ])
    .await;
    let now = chrono::Utc::now().timestamp();
    // A delivery signed with another secret is refused with 401 and does not count.
    assert_eq!(
        post(
            &url,
            &saved(&SigningSecret::generate(), SignatureScheme::Standard, now)
        )
        .await,
        401
    );
    assert_eq!(
        post(&url, &saved(&secret, SignatureScheme::Standard, now)).await,
        200
    );
    assert_eq!(
        post(&url, &saved(&secret, SignatureScheme::HexSha512, now)).await,
        200
    );
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    // Everything it printed: the channel closes once its stdout is read to the end.
    let mut printed = Vec::new();
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(10), out.recv()).await {
        printed.push(line);
    }
    let printed = printed.join("\n");
    assert!(printed.contains("SIGNATURE INVALID"), "{printed}");
    assert!(
        printed.contains("signature verified (standard)"),
        "{printed}"
    );
    assert!(
        printed.contains("signature verified (hex-sha512)"),
        "{printed}"
    );
    assert!(printed.contains("id=evt_01TEST"));
    // Every request was saved, and a saved one verifies with `skyhook verify`.
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3);
    let second = files[1].to_string_lossy().into_owned();
    let out = tokio::task::spawn_blocking(move || {
        skyhook(&[
            "verify",
            "--secret",
            &secret.expose(),
            "--ignore-age",
            &second,
        ])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn listen_answers_the_status_it_is_told_to() {
    let secret = SigningSecret::generate();
    let (mut child, url, _out) = start_listen(&[
        "--port",
        "0",
        "--secret",
        &secret.expose(),
        "--status",
        "503",
    ])
    .await;
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        post(&url, &saved(&secret, SignatureScheme::Standard, now)).await,
        503
    );
    child.kill().await.unwrap();
}
