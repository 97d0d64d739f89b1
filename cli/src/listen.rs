//! `skyhook listen` and `skyhook verify`: a local webhook receiver that checks every delivery's
//! signature and prints it (like `stripe listen`), and the same check on a saved request.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, watch};

use skyhook_domain::secret::SigningSecret;
use skyhook_domain::signing::{
    LegacyScheme, SignatureScheme, VerifyError, verify_legacy_with_tolerance, verify_with_tolerance,
};

/// Largest request the receiver accepts; Skyhook's own limit is 1 MiB of payload.
const MAX_REQUEST_BYTES: usize = 2 * 1024 * 1024;

/// A received request as `listen --save` writes it and `verify` reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedRequest {
    pub method: String,
    pub path: String,
    /// Lower-case header names.
    pub headers: BTreeMap<String, String>,
    /// The exact body, as text (webhook bodies are JSON).
    pub body: String,
    pub received_at: String,
}

impl SavedRequest {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    /// The scheme the request was signed with, judged by its headers.
    pub fn scheme(&self) -> SignatureScheme {
        let sig = self.header("x-webhook-signature");
        if !self.header("webhook-signature").is_empty() || sig.is_empty() {
            SignatureScheme::Standard
        } else if sig.contains("sha512=") {
            SignatureScheme::HexSha512
        } else {
            SignatureScheme::HexSha256
        }
    }
}

/// How a request fared against the secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Verified(SignatureScheme),
    Invalid(VerifyError),
    /// No secret to check with.
    Unchecked,
}

/// Checks a request with any of `secrets`. `now` is the receiver's clock; `tolerance_secs`
/// `None` skips the age check (for requests saved long ago).
pub fn verify_request(
    req: &SavedRequest,
    secrets: &[SigningSecret],
    now: i64,
    tolerance_secs: Option<i64>,
) -> Verdict {
    if secrets.is_empty() {
        return Verdict::Unchecked;
    }
    let scheme = req.scheme();
    let names = scheme.header_names();
    let ts = req.header(names.timestamp);
    // Without an age check, verify as of the request's own timestamp.
    let (now, tolerance) = match tolerance_secs {
        Some(t) => (now, t),
        None => (ts.parse::<i64>().unwrap_or(now), 0),
    };
    let mut last = VerifyError::NoMatchingSignature;
    for secret in secrets {
        let result = match scheme.legacy() {
            None => verify_with_tolerance(
                secret,
                req.header(names.id),
                ts,
                req.header(names.signature),
                req.body.as_bytes(),
                now,
                tolerance,
            ),
            Some(legacy) => verify_legacy_with_tolerance(
                legacy,
                secret,
                ts,
                req.header(names.signature),
                req.body.as_bytes(),
                now,
                tolerance,
            ),
        };
        match result {
            Ok(()) => return Verdict::Verified(scheme),
            Err(e) => last = e,
        }
    }
    Verdict::Invalid(last)
}

fn legacy_label(scheme: SignatureScheme) -> &'static str {
    match scheme.legacy() {
        None => "standard",
        Some(LegacyScheme::Sha256) => "hex-sha256",
        Some(LegacyScheme::Sha512) => "hex-sha512",
    }
}

/// A one-line summary and the pretty-printed body of a received request.
pub fn describe(req: &SavedRequest, verdict: &Verdict) -> String {
    let names = req.scheme().header_names();
    let body: serde_json::Value =
        serde_json::from_str(&req.body).unwrap_or(serde_json::Value::String(req.body.clone()));
    let event_type = body["type"].as_str().unwrap_or("-");
    let check = match verdict {
        Verdict::Verified(s) => format!("signature verified ({})", legacy_label(*s)),
        Verdict::Invalid(e) => format!("SIGNATURE INVALID: {e}"),
        Verdict::Unchecked => "signature not checked (no secret)".to_string(),
    };
    let pretty = serde_json::to_string_pretty(&body).unwrap_or_else(|_| req.body.clone());
    format!(
        "{} {} {}  id={}  type={}  {}\n{}\n",
        req.received_at,
        req.method,
        req.path,
        req.header(names.id),
        event_type,
        check,
        pretty
    )
}

pub struct ListenOptions {
    pub addr: SocketAddr,
    pub secrets: Vec<SigningSecret>,
    /// Status answered to verified (or unchecked) deliveries.
    pub status: u16,
    pub save_dir: Option<PathBuf>,
    /// Stop after this many verified deliveries.
    pub exit_after: Option<usize>,
}

struct ListenState {
    secrets: Mutex<Vec<SigningSecret>>,
    status: StatusCode,
    save_dir: Option<PathBuf>,
    verified: AtomicUsize,
    received: AtomicUsize,
    exit_after: Option<usize>,
    done: watch::Sender<bool>,
}

/// A running receiver.
pub struct Listener {
    pub addr: SocketAddr,
    state: Arc<ListenState>,
    done: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Listener {
    /// Binds and starts serving; returns once the port is open.
    pub async fn start(opts: ListenOptions) -> std::io::Result<Self> {
        if let Some(dir) = &opts.save_dir {
            std::fs::create_dir_all(dir)?;
        }
        let status = StatusCode::from_u16(opts.status)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let (done_tx, done_rx) = watch::channel(false);
        let state = Arc::new(ListenState {
            secrets: Mutex::new(opts.secrets),
            status,
            save_dir: opts.save_dir,
            verified: AtomicUsize::new(0),
            received: AtomicUsize::new(0),
            exit_after: opts.exit_after,
            done: done_tx,
        });
        let listener = tokio::net::TcpListener::bind(opts.addr).await?;
        let addr = listener.local_addr()?;
        let app = Router::new().fallback(receive).with_state(state.clone());
        let mut stop = done_rx.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|d| *d).await;
                })
                .await
        });
        Ok(Listener {
            addr,
            state,
            done: done_rx,
            task,
        })
    }

    /// Adds a secret to verify with (e.g. the one a subscription just returned).
    pub async fn add_secret(&self, secret: SigningSecret) {
        self.state.secrets.lock().await.push(secret);
    }

    pub fn verified(&self) -> usize {
        self.state.verified.load(Ordering::SeqCst)
    }

    /// Waits until `--exit-after` is reached or `interrupt` resolves, then stops serving.
    pub async fn wait(mut self, interrupt: impl std::future::Future<Output = ()>) {
        tokio::select! {
            _ = self.done.wait_for(|d| *d) => {}
            _ = interrupt => {}
        }
        let _ = self.state.done.send(true);
        let _ = self.task.await;
    }
}

/// Every request: verified, printed, saved with `--save`, and answered (401 when its
/// signature does not verify).
async fn receive(State(state): State<Arc<ListenState>>, req: Request) -> Response {
    let saved = match read_request(req).await {
        Ok(saved) => saved,
        Err(too_large) => return too_large,
    };
    let verdict = {
        let secrets = state.secrets.lock().await;
        verify_request(
            &saved,
            &secrets,
            chrono::Utc::now().timestamp(),
            Some(skyhook_domain::signing::DEFAULT_TOLERANCE_SECS),
        )
    };
    let n = state.received.fetch_add(1, Ordering::SeqCst) + 1;
    print!("{}", describe(&saved, &verdict));
    if let Some(dir) = &state.save_dir {
        save(dir, n, &saved);
    }
    match verdict {
        Verdict::Invalid(e) => (StatusCode::UNAUTHORIZED, format!("{e}\n")).into_response(),
        Verdict::Verified(_) => {
            let verified = state.verified.fetch_add(1, Ordering::SeqCst) + 1;
            if state.exit_after.is_some_and(|n| verified >= n) {
                let _ = state.done.send(true);
            }
            state.status.into_response()
        }
        Verdict::Unchecked => state.status.into_response(),
    }
}

/// The request as it is saved, received now; a 413 answer when its body is too large.
async fn read_request(req: Request) -> Result<SavedRequest, Response> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body: Bytes = match axum::body::to_bytes(req.into_body(), MAX_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return Err((StatusCode::PAYLOAD_TOO_LARGE, "request too large\n").into_response());
        }
    };
    Ok(SavedRequest {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        received_at: skyhook_domain::model::format_time(chrono::Utc::now()),
    })
}

/// Writes the `n`th request to `dir` as `{n:04}-{its webhook id}.json`; a failure is only
/// reported.
fn save(dir: &Path, n: usize, saved: &SavedRequest) {
    let id = saved
        .headers
        .get(saved.scheme().header_names().id)
        .cloned()
        .unwrap_or_else(|| "unsigned".to_string());
    let safe: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    let file = dir.join(format!("{n:04}-{safe}.json"));
    match serde_json::to_vec_pretty(saved) {
        Ok(bytes) => {
            if let Err(e) = std::fs::write(&file, bytes) {
                eprintln!("could not save {}: {e}", file.display());
            }
        }
        Err(e) => eprintln!("could not save the request: {e}"),
    }
}

/// Reads a saved request from a file, or from standard input for `-`.
pub fn read_saved(path: &Path) -> Result<SavedRequest, String> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("reading stdin: {e}"))?
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?
    };
    let mut req: SavedRequest = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a saved request: {e}", path.display()))?;
    req.headers = req
        .headers
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skyhook_domain::signing::{SignatureScheme, delivery_headers};

    fn signed(scheme: SignatureScheme, secret: &SigningSecret, ts: i64) -> SavedRequest {
        let body = r#"{"type":"a.b","timestamp":"2026-01-01T00:00:00.000Z","data":{}}"#;
        let headers = delivery_headers(
            scheme,
            std::slice::from_ref(secret),
            "evt_1",
            ts,
            body.as_bytes(),
        )
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        SavedRequest {
            method: "POST".into(),
            path: "/".into(),
            headers,
            body: body.into(),
            received_at: "now".into(),
        }
    }

    #[test]
    fn every_scheme_verifies_and_a_wrong_secret_does_not() {
        let secret = SigningSecret::generate();
        let other = SigningSecret::generate();
        for scheme in [
            SignatureScheme::Standard,
            SignatureScheme::HexSha256,
            SignatureScheme::HexSha512,
        ] {
            let req = signed(scheme, &secret, 1_000);
            assert_eq!(req.scheme(), scheme);
            assert_eq!(
                verify_request(&req, std::slice::from_ref(&secret), 1_010, Some(300)),
                Verdict::Verified(scheme)
            );
            assert!(matches!(
                verify_request(&req, std::slice::from_ref(&other), 1_010, Some(300)),
                Verdict::Invalid(_)
            ));
            // Any of several secrets may match.
            assert_eq!(
                verify_request(&req, &[other.clone(), secret.clone()], 1_010, Some(300)),
                Verdict::Verified(scheme)
            );
        }
    }

    #[test]
    fn old_requests_fail_unless_the_age_check_is_skipped() {
        let secret = SigningSecret::generate();
        let req = signed(SignatureScheme::Standard, &secret, 1_000);
        assert_eq!(
            verify_request(&req, std::slice::from_ref(&secret), 100_000, Some(300)),
            Verdict::Invalid(VerifyError::TimestampTooOld)
        );
        assert_eq!(
            verify_request(&req, std::slice::from_ref(&secret), 100_000, None),
            Verdict::Verified(SignatureScheme::Standard)
        );
        let mut tampered = req.clone();
        tampered.body = tampered.body.replace("a.b", "a.c");
        assert!(matches!(
            verify_request(&tampered, std::slice::from_ref(&secret), 100_000, None),
            Verdict::Invalid(_)
        ));
    }

    #[test]
    fn without_a_secret_nothing_is_claimed() {
        let req = signed(SignatureScheme::Standard, &SigningSecret::generate(), 1);
        assert_eq!(verify_request(&req, &[], 1, Some(300)), Verdict::Unchecked);
        assert!(describe(&req, &Verdict::Unchecked).contains("not checked"));
    }
}
