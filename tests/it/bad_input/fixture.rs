//! The stack the corpus runs against: one subscriber pointing at a receiver, keys of every
//! role, a second tenant whose subscriber, event, key and cursor the first tenant's calls must
//! not reach, and an inbound source of each tenant; plus the values and bodies the cases use.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use skyhook_tests::{ADMIN_KEY, Receiver, Stack};

/// Everything the area modules' cases name, set up once.
pub(super) struct Fixture {
    pub(super) stack: Stack,
    pub(super) receiver: Receiver,
    /// The other tenant's subscriber's receiver.
    pub(super) other_receiver: Receiver,
    pub(super) sub: String,
    sub_secret: String,
    /// `/v1/subscribers/{sub}`.
    pub(super) s: String,
    pub(super) reader: String,
    pub(super) publisher: String,
    pub(super) admin: String,
    // The second tenant: its subscriber, event, key and cursors must be out of reach.
    pub(super) other_key_id: String,
    other_admin: String,
    other_reader: String,
    pub(super) other_sub: String,
    other_sub_secret: String,
    /// Matches no subscriber: stored, nothing queued.
    pub(super) other_event: String,
    /// A real cursor of this tenant's key list.
    pub(super) keys_cursor: String,
    /// A real cursor of the other tenant's key list.
    pub(super) other_cursor: String,
    /// `/v1/sources/{id}` of this tenant's source.
    pub(super) src: String,
    pub(super) inbound_path: String,
    source_secret: String,
    /// `/v1/sources/{id}` of the other tenant's source.
    pub(super) other_src: String,
    /// Where a subscriber wrongly created would point.
    pub(super) new_url: String,
    pub(super) unknown_sub: &'static str,
    /// A publish body of 256 KiB + 1 byte.
    pub(super) big_publish: String,
    /// A subscriber body over 64 KiB.
    pub(super) big_create: String,
}

impl Fixture {
    pub(super) async fn new() -> Self {
        let stack = Stack::new().await;
        let receiver = Receiver::always(200).await;
        let (sub, sub_secret) = stack.subscribe(&receiver.url("/hook"), &["order.*"]).await;
        let (_, reader) = stack.api_key("default", "reader").await;
        let (_, publisher) = stack.api_key("default", "publisher").await;
        let (_, admin) = stack.api_key("default", "admin").await;
        // A second tenant: its subscriber, event, key and cursors must be out of reach.
        let (other_key_id, other_admin) = stack.api_key("other", "admin").await;
        let (_, other_reader) = stack.api_key("other", "reader").await;
        let other_receiver = Receiver::always(200).await;
        let (other_sub, other_sub_secret) =
            other_subscriber(&stack, &other_admin, &other_receiver).await;
        let other_event = other_event(&stack, &other_admin).await;
        // Real cursors: one of this tenant's key list, one of the other tenant's.
        let (status, page) = stack
            .api_call(Method::GET, "/v1/api-keys?limit=1", None)
            .await;
        let keys_cursor = next_cursor(status, &page);
        let (status, page) = stack
            .api_as(&other_admin, Method::GET, "/v1/api-keys?limit=1", None)
            .await;
        let other_cursor = next_cursor(status, &page);
        // Inbound sources: one of this tenant's, one of the other tenant's.
        let (src, inbound_path, source_secret) = own_source(&stack).await;
        let other_src = other_source(&stack, &other_admin).await;

        let new_url = receiver.url("/wrongly-created");
        let big_publish = {
            let filler = 256 * 1024 + 1 - publish(json!({"data": ""})).to_string().len();
            publish(json!({"data": "x".repeat(filler)})).to_string()
        };
        let big_create =
            create_body(&new_url, json!({"description": "x".repeat(64 * 1024)})).to_string();
        Fixture {
            s: format!("/v1/subscribers/{sub}"),
            stack,
            receiver,
            other_receiver,
            sub,
            sub_secret,
            reader,
            publisher,
            admin,
            other_key_id,
            other_admin,
            other_reader,
            other_sub,
            other_sub_secret,
            other_event,
            keys_cursor,
            other_cursor,
            src,
            inbound_path,
            source_secret,
            other_src,
            new_url,
            unknown_sub: "sub_01unknown0000000000000000",
            big_publish,
            big_create,
        }
    }

    /// The keys and secrets no error message may hold, whatever the request.
    pub(super) fn never(&self) -> Vec<String> {
        [
            ADMIN_KEY,
            &self.reader,
            &self.publisher,
            &self.admin,
            &self.other_admin,
            &self.other_reader,
            &self.sub_secret,
            &self.other_sub_secret,
            &self.source_secret,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// A subscriber body that would be created (pointing at the receiver), with `extra`'s
    /// fields set over it.
    pub(super) fn create(&self, extra: Value) -> Value {
        create_body(&self.new_url, extra)
    }

    /// The GitHub signature of `body` under this tenant's source's secret.
    pub(super) fn github_sig(&self, body: &str) -> String {
        use hmac::{Mac, digest::KeyInit};
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(self.source_secret.as_bytes())
                .unwrap();
        mac.update(body.as_bytes());
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }
}

/// `body` with `extra`'s fields set over it.
fn with(mut body: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn create_body(url: &str, extra: Value) -> Value {
    with(json!({"url": url, "event_types": ["order.*"]}), extra)
}

/// A publish body that would be accepted, with `extra`'s fields set over it.
pub(super) fn publish(extra: Value) -> Value {
    with(json!({"type": "order.created", "data": {"n": 1}}), extra)
}

/// A source body that would be created, with `extra`'s fields set over it.
pub(super) fn source(extra: Value) -> Value {
    with(
        json!({"name": "n", "verification": "github", "event_type": {"fixed": "a.b"}}),
        extra,
    )
}

/// The other tenant's subscriber: its id and secret.
async fn other_subscriber(stack: &Stack, other_admin: &str, to: &Receiver) -> (String, String) {
    let (status, body) = stack
        .api_as(
            other_admin,
            Method::POST,
            "/v1/subscribers",
            Some(&json!({"url": to.url("/other"), "event_types": ["order.*"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let other_sub = body["id"].as_str().unwrap().to_string();
    let other_sub_secret = body["secret"].as_str().unwrap().to_string();
    (other_sub, other_sub_secret)
}

/// An event of the other tenant that matches no subscriber: stored, nothing queued.
async fn other_event(stack: &Stack, other_admin: &str) -> String {
    let (status, body) = stack
        .ingest_as(other_admin, &json!({"type": "misc.nothing", "data": {}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["subscribers"], 0, "{body}");
    body["id"].as_str().unwrap().to_string()
}

fn next_cursor(status: StatusCode, page: &Value) -> String {
    assert_eq!(status, StatusCode::OK, "{page}");
    page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string()
}

/// This tenant's GitHub source: its path, inbound path and secret.
async fn own_source(stack: &Stack) -> (String, String, String) {
    let (status, body) = stack
        .api_call(
            Method::POST,
            "/v1/sources",
            Some(&json!({"name": "gh", "verification": "github", "event_type": {"header": "X-GitHub-Event"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let src = format!("/v1/sources/{}", body["id"].as_str().unwrap());
    let inbound_path = body["inbound_path"].as_str().unwrap().to_string();
    let source_secret = body["secret"].as_str().unwrap().to_string();
    (src, inbound_path, source_secret)
}

/// The other tenant's source's path.
async fn other_source(stack: &Stack, other_admin: &str) -> String {
    let (status, body) = stack
        .api_as(
            other_admin,
            Method::POST,
            "/v1/sources",
            Some(&json!({"name": "theirs", "verification": "github", "event_type": {"fixed": "a.b"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    format!("/v1/sources/{}", body["id"].as_str().unwrap())
}
