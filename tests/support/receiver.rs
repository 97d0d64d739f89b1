//! The HTTP servers the tests start on `127.0.0.1`: a scriptable webhook receiver that keeps
//! every request it gets, and the loopback server the receiver, the IAM check's recorder and
//! the bench's cost meter run on.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::Value;
use tokio::sync::Notify;

use skyhook_domain::secret::SigningSecret;

/// Serves `app` on `127.0.0.1:0` until the sender is used or dropped; returns the port, the
/// sender and the server's task. The receivers, the recorder and the bench's meter start this way.
pub async fn serve_on_loopback(
    app: Router,
    what: &str,
) -> (
    u16,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("binding the {what} to 127.0.0.1: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("the {what}'s address: {e}"))
        .port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    (port, tx, task)
}

/// What the receiver answers to one request.
#[derive(Clone, Debug)]
pub enum Reply {
    Status(u16),
    WithHeaders(u16, Vec<(&'static str, String)>),
    /// Waits before answering, to provoke a timeout.
    Slow(Duration, u16),
    /// Answers with this body, as a real receiver would say `{"ok":true}`.
    Body(u16, &'static str),
}

#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }

    /// The delivery's id: `webhook-id`, or `x-webhook-id` under the legacy schemes.
    pub fn id(&self) -> &str {
        match self.header("webhook-id") {
            "" => self.header("x-webhook-id"),
            id => id,
        }
    }

    /// Checks the Standard Webhooks signature against `secret`, twice: with Skyhook's own
    /// code and with the official `standardwebhooks` library, which must agree.
    pub fn verify(&self, secret: &str) -> Result<(), skyhook_domain::signing::VerifyError> {
        let parsed = SigningSecret::parse(secret).expect("secret");
        let ours = skyhook_domain::signing::verify(
            &parsed,
            self.header("webhook-id"),
            self.header("webhook-timestamp"),
            self.header("webhook-signature"),
            &self.body,
            chrono::Utc::now().timestamp(),
        );
        let theirs = standardwebhooks::Webhook::new(secret)
            .expect("the official library takes the secret")
            .verify(&self.body, &self.headers);
        assert_eq!(
            ours.is_ok(),
            theirs.is_ok(),
            "Skyhook's verify ({ours:?}) and the standardwebhooks crate ({theirs:?}) disagree"
        );
        ours
    }
}

struct ReceiverState {
    script: Mutex<VecDeque<Reply>>,
    /// With [`Receiver::per_id`]: how many requests each delivery id made so far.
    per_id: Mutex<Option<HashMap<String, usize>>>,
    /// Requests being answered right now, and the most there ever were at once.
    in_flight: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
    then: Reply,
    requests: Mutex<Vec<Received>>,
    notify: Notify,
}

/// A webhook receiver on `127.0.0.1:0` answering from a script, then with `then`.
pub struct Receiver {
    pub port: u16,
    state: Arc<ReceiverState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Receiver {
    pub async fn start(script: Vec<Reply>, then: Reply) -> Self {
        let state = Arc::new(ReceiverState {
            script: Mutex::new(script.into()),
            per_id: Mutex::default(),
            in_flight: Default::default(),
            peak: Default::default(),
            then,
            requests: Mutex::default(),
            notify: Notify::new(),
        });
        let app_state = state.clone();
        let app = Router::new().fallback(move |req: Request| {
            let state = app_state.clone();
            async move { receive(state, req).await }
        });
        let (port, tx, _) = serve_on_loopback(app, "receiver").await;
        Receiver {
            port,
            state,
            shutdown: Some(tx),
        }
    }

    /// Always answers `status`.
    pub async fn always(status: u16) -> Self {
        Self::start(vec![], Reply::Status(status)).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.state.requests.lock().unwrap().clone()
    }

    /// A receiver whose script is per delivery: the n-th request carrying a given
    /// `webhook-id` gets `script[n]`, then `then`. A duplicate of one delivery never takes
    /// another's reply; with one consumer, the n-th request of an id is its n-th attempt.
    pub async fn per_id(script: Vec<Reply>, then: Reply) -> Self {
        let receiver = Self::start(script, then).await;
        *receiver.state.per_id.lock().unwrap() = Some(HashMap::new());
        receiver
    }

    /// The most requests this receiver was answering at the same moment.
    pub fn peak_in_flight(&self) -> usize {
        self.state.peak.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The distinct delivery ids received so far: what a test compares with what it
    /// expects, since at-least-once delivery may bring any of them twice.
    pub fn ids(&self) -> std::collections::BTreeSet<String> {
        self.requests().iter().map(|r| r.id().to_string()).collect()
    }

    /// The requests so far by delivery id (`webhook-id`), each id's in arrival order.
    pub fn by_id(&self) -> BTreeMap<String, Vec<Received>> {
        let mut out: BTreeMap<String, Vec<Received>> = BTreeMap::new();
        for r in self.requests() {
            out.entry(r.id().to_string()).or_default().push(r);
        }
        out
    }

    /// Waits until every id in `ids` arrived at least once; returns the requests by id.
    /// Panics after `timeout`, naming what is missing.
    pub async fn wait_for_ids(
        &self,
        ids: &[&str],
        timeout: Duration,
    ) -> BTreeMap<String, Vec<Received>> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.state.notify.notified();
            let got = self.by_id();
            let missing: Vec<&&str> = ids.iter().filter(|id| !got.contains_key(**id)).collect();
            if missing.is_empty() {
                return got;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "receiver still misses {missing:?} after {timeout:?} (got {:?})",
                got.keys().collect::<Vec<_>>()
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }

    /// Waits for the first request that `matches`; panics after `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        matches: impl Fn(&Received) -> bool,
    ) -> Received {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.state.notify.notified();
            if let Some(r) = self.requests().into_iter().find(|r| matches(r)) {
                return r;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no request with {what} within {timeout:?} ({} others)",
                self.requests().len()
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }

    /// Waits until at least `n` requests arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.state.notify.notified();
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "receiver got {} of {n} requests within {timeout:?}",
                got.len()
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn receive(state: Arc<ReceiverState>, req: Request) -> Response {
    use std::sync::atomic::Ordering::SeqCst;
    let now = state.in_flight.fetch_add(1, SeqCst) + 1;
    state.peak.fetch_max(now, SeqCst);
    let response = answer(&state, req).await;
    state.in_flight.fetch_sub(1, SeqCst);
    response
}

async fn answer(state: &ReceiverState, req: Request) -> Response {
    let at = Instant::now();
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let reply = {
        let mut per_id = state.per_id.lock().unwrap();
        match per_id.as_mut() {
            Some(seen) => {
                let id = headers
                    .get("webhook-id")
                    .or_else(|| headers.get("x-webhook-id"))
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let n = seen.entry(id).or_insert(0);
                let reply = state.script.lock().unwrap().get(*n).cloned();
                *n += 1;
                reply.unwrap_or_else(|| state.then.clone())
            }
            None => state
                .script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| state.then.clone()),
        }
    };
    state.requests.lock().unwrap().push(Received {
        path,
        headers,
        body,
        at,
    });
    state.notify.notify_waiters();
    match reply {
        Reply::Status(s) => status(s).into_response(),
        Reply::WithHeaders(s, headers) => {
            let mut resp = status(s).into_response();
            for (k, v) in headers {
                resp.headers_mut().insert(k, v.parse().unwrap());
            }
            resp
        }
        Reply::Slow(wait, s) => {
            tokio::time::sleep(wait).await;
            status(s).into_response()
        }
        Reply::Body(s, body) => (status(s), body).into_response(),
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap()
}
