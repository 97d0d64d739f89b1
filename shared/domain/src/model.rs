//! The records Skyhook keeps and sends: subscribers, events, SQS delivery messages,
//! delivery attempts and per-subscriber delivery status.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::event_type::{EventType, EventTypeFilter};
use crate::ids::{ApiKeyId, EventId, SubscriberId, TenantId};
use crate::signing::SignatureScheme;
use crate::url::SubscriberUrl;

/// The header a caller's correlation id arrives in on publish and leaves in on every attempt.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

pub use crate::url::MASKED_VALUE;

/// The header names with every value masked.
pub fn masked_headers(
    headers: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    headers
        .keys()
        .map(|name| (name.clone(), MASKED_VALUE.to_string()))
        .collect()
}

/// Headers Skyhook sets on a delivery itself, or that would break the request: a
/// subscriber's custom headers may not name them (the API refuses them, and delivery skips
/// any that got into storage some other way).
pub const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "host",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-webhook-id",
    "x-webhook-timestamp",
    "x-webhook-signature",
    CORRELATION_HEADER,
];

/// Version of the SQS message format; bumped when a field changes meaning so that
/// messages already in flight during a deploy are still understood or dead-lettered.
pub const MESSAGE_FORMAT_VERSION: u8 = 1;

/// A webhook endpoint of one tenant. Its signing secret lives in the secret store, not here.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subscriber {
    pub id: SubscriberId,
    pub tenant: TenantId,
    pub url: SubscriberUrl,
    pub event_types: Vec<EventTypeFilter>,
    pub active: bool,
    pub description: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub signature_scheme: SignatureScheme,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every secret rotation, so caches of the secret know when to read it again.
    #[serde(skip)]
    pub secret_version: u64,
    /// Most deliveries to it in flight at once in one delivery instance; more wait.
    pub max_concurrency: u32,
    /// Most deliveries a second across all delivery instances; `None`: no limit.
    pub rate_limit: Option<u32>,
    /// Why it is disabled, when it is.
    pub disabled_reason: Option<DisabledReason>,
    /// A jq program mapping `{"type", "timestamp", "data"}` to the body sent (see
    /// [`crate::jq`]); `None` sends that object as it is.
    pub transform: Option<String>,
    /// A jq expression over the same object, checked at fan-out: the event goes to this
    /// subscriber only when it gives `true`. `None` sends every event its types match.
    pub filter: Option<String>,
}

/// A subscriber an event type routes to, as fan-out reads it: its id and its content filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: SubscriberId,
    pub filter: Option<String>,
}

/// The default of a subscriber's `max_concurrency`.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 10;
/// The largest `max_concurrency`: a delivery batch holds at most 100 deliveries.
pub const MAX_MAX_CONCURRENCY: u32 = 100;
/// The largest `rate_limit`, in deliveries a second.
pub const MAX_RATE_LIMIT: u32 = 10_000;

/// Why a subscriber is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DisabledReason {
    /// A person disabled it (`PATCH {"active": false}`).
    Manual,
    /// Its endpoint answered `410 Gone`.
    Gone,
    /// It failed without a single success for `SKYHOOK_AUTO_DISABLE_AFTER`.
    Failing,
}

impl DisabledReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisabledReason::Manual => "manual",
            DisabledReason::Gone => "gone",
            DisabledReason::Failing => "failing",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "manual" => Some(DisabledReason::Manual),
            "gone" => Some(DisabledReason::Gone),
            "failing" => Some(DisabledReason::Failing),
            _ => None,
        }
    }
}

impl Subscriber {
    /// Whether this subscriber asked for events of this type.
    pub fn wants(&self, event_type: &EventType) -> bool {
        self.event_types.iter().any(|f| f.matches(event_type))
    }
}

/// An accepted event, as stored for `GET /v1/events/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    pub id: EventId,
    pub tenant: TenantId,
    #[serde(rename = "type")]
    pub event_type: EventType,
    #[serde(with = "rfc3339")]
    pub timestamp: DateTime<Utc>,
    /// `None` when the payload was too large to keep beside the delivery log.
    pub data: Option<Box<RawValue>>,
    pub correlation_id: String,
    pub subscriber_ids: Vec<SubscriberId>,
}

/// One SQS message: one event for one subscriber. Carries everything the delivery
/// function needs except the subscriber's URL and secret, which may change between attempts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryMessage {
    pub v: u8,
    pub event_id: EventId,
    pub tenant: TenantId,
    pub subscriber_id: SubscriberId,
    #[serde(rename = "type")]
    pub event_type: EventType,
    #[serde(with = "rfc3339")]
    pub timestamp: DateTime<Utc>,
    pub data: Box<RawValue>,
    pub correlation_id: String,
    /// Attempts made in earlier rounds of this delivery: a redriven or recovered message is a
    /// new SQS message whose receive count starts again at 1, and the attempt log numbers its
    /// attempts on from here so that no earlier attempt is overwritten. Left out when zero, so
    /// a first-round message has the same shape as before this field existed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prior_attempts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct WebhookBody<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: String,
    data: &'a RawValue,
}

impl DeliveryMessage {
    pub fn for_subscriber(event: &EventRecord, data: &RawValue, subscriber: &SubscriberId) -> Self {
        DeliveryMessage {
            v: MESSAGE_FORMAT_VERSION,
            event_id: event.id.clone(),
            tenant: event.tenant.clone(),
            subscriber_id: subscriber.clone(),
            event_type: event.event_type.clone(),
            timestamp: event.timestamp,
            data: data.to_owned(),
            correlation_id: event.correlation_id.clone(),
            prior_attempts: 0,
        }
    }

    /// Parses an SQS message body, rejecting formats this build does not know.
    pub fn from_json(body: &str) -> Result<Self, String> {
        let msg: DeliveryMessage = serde_json::from_str(body).map_err(|e| e.to_string())?;
        if msg.v != MESSAGE_FORMAT_VERSION {
            return Err(format!("unsupported message format version {}", msg.v));
        }
        Ok(msg)
    }

    pub fn to_json(&self) -> String {
        // Every field is a string or raw JSON that was valid when parsed, so this cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The exact bytes POSTed to the subscriber: `{"type","timestamp","data"}`. The same
    /// message always yields the same bytes, so every attempt carries an identical body.
    pub fn webhook_body(&self) -> Vec<u8> {
        webhook_body(&self.event_type, self.timestamp, &self.data)
    }
}

/// `{"type","timestamp","data"}` as sent: what a transform maps and a filter tests.
pub fn webhook_body(event_type: &EventType, timestamp: DateTime<Utc>, data: &RawValue) -> Vec<u8> {
    let body = WebhookBody {
        event_type: event_type.as_str(),
        timestamp: format_time(timestamp),
        data,
    };
    // A string, a string and JSON that was valid when parsed: this cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Where one (event, subscriber) delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Retrying,
    Failed,
    /// The subscriber was deleted before the delivery succeeded: it ends here, not sent.
    SubscriberDeleted,
}

impl DeliveryState {
    /// Delivered, failed and subscriber_deleted are where a delivery ends (failed until an
    /// operator redrives it).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryState::Delivered | DeliveryState::Failed | DeliveryState::SubscriberDeleted
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Failed => "failed",
            DeliveryState::SubscriberDeleted => "subscriber_deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "retrying" => Some(DeliveryState::Retrying),
            "failed" => Some(DeliveryState::Failed),
            "subscriber_deleted" => Some(DeliveryState::SubscriberDeleted),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryStatus {
    pub subscriber_id: SubscriberId,
    pub status: DeliveryState,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    #[serde(with = "rfc3339_opt")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl DeliveryStatus {
    pub fn pending(subscriber_id: SubscriberId) -> Self {
        DeliveryStatus {
            subscriber_id,
            status: DeliveryState::Pending,
            attempts: 0,
            last_status_code: None,
            last_error: None,
            updated_at: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            _ => None,
        }
    }
}

/// One HTTP attempt, as written to the delivery log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRecord {
    pub event_id: EventId,
    pub tenant: TenantId,
    pub subscriber_id: SubscriberId,
    #[serde(rename = "event_type")]
    pub event_type: EventType,
    pub attempt: u32,
    pub outcome: Outcome,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    pub response_body: Option<String>,
    pub url: String,
    #[serde(with = "rfc3339")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub finished_at: DateTime<Utc>,
}

/// Totals over finished deliveries (one per event and subscriber that reached `delivered` or
/// `failed`). `attempts` sums the attempts those deliveries took, so `attempts / total` is the
/// average number of attempts a delivery needs; deliveries still retrying are not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    pub success: i64,
    pub failure: i64,
    pub attempts: i64,
}

impl DeliveryStats {
    pub fn total(&self) -> i64 {
        self.success + self.failure
    }

    /// Attempts per finished delivery, rounded to two decimals; 0 when nothing finished.
    pub fn avg_attempts(&self) -> f64 {
        if self.total() <= 0 {
            0.0
        } else {
            (self.attempts as f64 / self.total() as f64 * 100.0).round() / 100.0
        }
    }

    /// What one status contributes to the totals: only final statuses count.
    pub fn of_status(status: &DeliveryStatus) -> Self {
        Self::of(status.status, status.attempts)
    }

    /// What a delivery in `state` after `attempts` attempts contributes to the totals.
    pub fn of(state: DeliveryState, attempts: u32) -> Self {
        let attempts = i64::from(attempts);
        match state {
            DeliveryState::Delivered => DeliveryStats {
                success: 1,
                failure: 0,
                attempts,
            },
            // A delivery that ended unsent because its subscriber went counts as not
            // delivered.
            DeliveryState::Failed | DeliveryState::SubscriberDeleted => DeliveryStats {
                success: 0,
                failure: 1,
                attempts,
            },
            DeliveryState::Pending | DeliveryState::Retrying => DeliveryStats::default(),
        }
    }

    /// `self - other`, the change to apply when a status is replaced.
    pub fn minus(self, other: Self) -> Self {
        DeliveryStats {
            success: self.success - other.success,
            failure: self.failure - other.failure,
            attempts: self.attempts - other.attempts,
        }
    }

    pub fn plus(self, other: Self) -> Self {
        DeliveryStats {
            success: self.success + other.success,
            failure: self.failure + other.failure,
            attempts: self.attempts + other.attempts,
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == DeliveryStats::default()
    }
}

/// What an API key may do. Ordered: each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Reader,
    Publisher,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Publisher => "publisher",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reader" => Some(Role::Reader),
            "publisher" => Some(Role::Publisher),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// An API key as stored: everything but the key itself, which is kept only as a SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant: TenantId,
    pub role: Role,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The key id (or `bootstrap`) that created it.
    pub created_by: String,
}

/// One management change: who (a key id, or `bootstrap`), what, when, and to which resource.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub tenant: TenantId,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub resource: String,
    /// A small JSON summary of the change (field names changed, counts); never secrets.
    pub detail: Option<serde_json::Value>,
}

/// A dead-lettered delivery as the API lists it; the message itself waits in the SQS DLQ, or
/// (parked for a disabled subscriber) in `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterEntry {
    pub tenant: TenantId,
    pub event_id: EventId,
    pub subscriber_id: SubscriberId,
    pub event_type: EventType,
    pub reason: String,
    pub attempts: u32,
    pub dead_at: DateTime<Utc>,
    /// The delivery message itself (JSON), when the entry holds it rather than the SQS
    /// dead-letter queue: a disabled subscriber's parked delivery, which enabling it sends
    /// again, or a dead message a redrive moved out of the queue into its tenant's index.
    pub message: Option<String>,
}

/// The dead-letter reason of a message parked because its subscriber is disabled.
pub const PARKED_REASON: &str = DeadLetterReason::SubscriberDisabled.code();

/// Why a delivery ended in the dead-letter queue, or was parked. It is stored and shown as
/// text, `code: detail` (see [`DeadLetterReason::text`]); the code alone says which case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// The SQS message was not a delivery message (what was wrong with it).
    MalformedMessage(String),
    /// Every attempt the schedule allows failed (the last error).
    AttemptsExhausted(String),
    /// The subscriber has no signing secret, so nothing can be signed.
    NoSigningSecret,
    /// The subscriber's transform failed on this event (the program's error); retrying
    /// would fail the same way.
    TransformFailed(String),
    /// Parked: the subscriber is disabled; enabling it sends the delivery again.
    SubscriberDisabled,
}

impl DeadLetterReason {
    /// The case, as the stored reason starts.
    pub const fn code(&self) -> &'static str {
        match self {
            DeadLetterReason::MalformedMessage(_) => "malformed_message",
            DeadLetterReason::AttemptsExhausted(_) => "attempts_exhausted",
            DeadLetterReason::NoSigningSecret => "no_signing_secret",
            DeadLetterReason::TransformFailed(_) => "transform_failed",
            DeadLetterReason::SubscriberDisabled => "subscriber_disabled",
        }
    }

    /// The reason as stored in the dead-letter index and the message's attributes.
    pub fn text(&self) -> String {
        match self {
            DeadLetterReason::MalformedMessage(detail)
            | DeadLetterReason::AttemptsExhausted(detail)
            | DeadLetterReason::TransformFailed(detail) => format!("{}: {detail}", self.code()),
            // Written so since the first release; dead letters already stored say it.
            DeadLetterReason::NoSigningSecret => "no signing secret".to_string(),
            DeadLetterReason::SubscriberDisabled => self.code().to_string(),
        }
    }

    /// Whether the delivery ran out of attempts, which the operators hear about.
    pub fn is_exhausted(&self) -> bool {
        matches!(self, DeadLetterReason::AttemptsExhausted(_))
    }
}

impl DeadLetterEntry {
    /// Parked for a disabled subscriber, with its message kept in the entry.
    pub fn parked_message(&self) -> Option<&str> {
        self.message
            .as_deref()
            .filter(|_| self.reason == PARKED_REASON)
    }

    /// Whether this is a delivery parked for a disabled subscriber.
    pub fn is_parked(&self) -> bool {
        self.reason == PARKED_REASON
    }
}

/// The reason given to a dead message that carries none: the queue's redrive policy moved
/// it after its receives ran out, without the delivery function seeing it end.
pub const RECEIVES_EXHAUSTED_REASON: &str = "receives_exhausted";

impl DeadLetterEntry {
    /// A message over this size stays in the SQS dead-letter queue rather than in an entry
    /// (deflated in a DynamoDB item of at most 400 KB).
    pub const MAX_MESSAGE_BYTES: usize = 300 * 1024;
}

/// RFC 3339 with millisecond precision and `Z`, the one time format Skyhook writes.
/// The most text of an error kept where it is stored, logged or shown: attempt records,
/// delivery statuses, dead letters, log lines and API answers.
pub const MAX_ERROR_TEXT_BYTES: usize = 4096;

/// An error and each of its sources, joined with `: `.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `text` cut to at most `max` bytes (at a character boundary), saying so when it was cut:
/// text that comes from a tenant's program or a receiver can be any size.
pub fn cap_text(text: impl Into<String>, max: usize) -> String {
    let mut text = text.into();
    if text.len() <= max {
        return text;
    }
    let total = text.len();
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!(" … (cut to {end} of {total} bytes)"));
    text
}

pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An RFC 3339 time, in UTC. Years outside 1–9999 (in UTC) are refused: they would not
/// be written back in RFC 3339 (`-0001-…`, `+10000-…`), so what is read is what is written.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| (1..=9999).contains(&chrono::Datelike::year(t)))
}

pub mod rfc3339 {
    //! serde helpers for [`super::format_time`].
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_time(&s).ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 time"))
    }
}

pub mod rfc3339_opt {
    //! serde helpers for optional times.
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::format_time(*t)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn capped_text_keeps_whole_characters_and_says_it_was_cut() {
        assert_eq!(cap_text("short", 10), "short");
        let long = "é".repeat(3000);
        let cut = cap_text(long, MAX_ERROR_TEXT_BYTES);
        assert!(cut.ends_with(" … (cut to 4096 of 6000 bytes)"), "{cut}");
        assert!(cut.len() < MAX_ERROR_TEXT_BYTES + 64);
        assert_eq!(cap_text("aé", 2), "a … (cut to 1 of 3 bytes)");
    }
    use super::*;

    fn message(data: &str) -> DeliveryMessage {
        DeliveryMessage {
            v: MESSAGE_FORMAT_VERSION,
            event_id: EventId::new(),
            tenant: TenantId::default_tenant(),
            subscriber_id: SubscriberId::new(),
            event_type: EventType::parse("order.created").unwrap(),
            timestamp: parse_time("2026-01-02T03:04:05.678Z").unwrap(),
            data: RawValue::from_string(data.to_string()).unwrap(),
            correlation_id: "corr-1".into(),
            prior_attempts: 0,
        }
    }

    #[test]
    fn webhook_body_is_type_timestamp_data_with_data_bytes_preserved() {
        let m = message(r#"{"b": 1,  "a":[1.50,"x"]}"#);
        let body = String::from_utf8(m.webhook_body()).unwrap();
        assert_eq!(
            body,
            r#"{"type":"order.created","timestamp":"2026-01-02T03:04:05.678Z","data":{"b": 1,  "a":[1.50,"x"]}}"#
        );
    }

    #[test]
    fn message_round_trips_through_json() {
        let m = message(r#"{"k":"v"}"#);
        let back = DeliveryMessage::from_json(&m.to_json()).unwrap();
        assert_eq!(back.event_id, m.event_id);
        assert_eq!(back.subscriber_id, m.subscriber_id);
        assert_eq!(back.webhook_body(), m.webhook_body());
    }

    #[test]
    fn message_with_unknown_version_or_garbage_is_rejected() {
        let m = message("{}");
        let other = m.to_json().replace("\"v\":1", "\"v\":9");
        assert!(
            DeliveryMessage::from_json(&other)
                .unwrap_err()
                .contains("version")
        );
        assert!(DeliveryMessage::from_json("not json").is_err());
        assert!(DeliveryMessage::from_json(r#"{"v":1}"#).is_err());
    }

    #[test]
    fn prior_attempts_is_omitted_when_zero_and_kept_otherwise() {
        let mut m = message("{}");
        assert!(!m.to_json().contains("prior_attempts"));
        m.prior_attempts = 8;
        let back = DeliveryMessage::from_json(&m.to_json()).unwrap();
        assert_eq!(back.prior_attempts, 8);
    }

    #[test]
    fn stats_count_final_statuses_and_average_their_attempts() {
        let sub = SubscriberId::new();
        let mut st = DeliveryStatus::pending(sub);
        assert!(DeliveryStats::of_status(&st).is_zero());
        st.status = DeliveryState::Failed;
        st.attempts = 8;
        let failed = DeliveryStats::of_status(&st);
        st.status = DeliveryState::Delivered;
        st.attempts = 9;
        let delivered = DeliveryStats::of_status(&st);
        // A failed delivery that is recovered and then delivered counts once, as a success.
        let change = delivered.minus(failed);
        assert_eq!(
            (change.success, change.failure, change.attempts),
            (1, -1, 1)
        );
        let total = DeliveryStats {
            success: 2,
            failure: 1,
            attempts: 4,
        };
        assert_eq!(total.total(), 3);
        assert_eq!(total.avg_attempts(), 1.33);
        assert_eq!(DeliveryStats::default().avg_attempts(), 0.0);
    }

    #[test]
    fn roles_round_trip_and_are_ordered() {
        for r in [Role::Reader, Role::Publisher, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert!(Role::Reader < Role::Publisher && Role::Publisher < Role::Admin);
        assert_eq!(Role::parse("owner"), None);
    }

    #[test]
    fn states_and_outcomes_round_trip_their_names() {
        for s in [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Retrying,
            DeliveryState::Failed,
        ] {
            assert_eq!(DeliveryState::parse(s.as_str()), Some(s));
        }
        for o in [Outcome::Success, Outcome::Failure] {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(DeliveryState::parse("done"), None);
    }
}

/// The `source` of Skyhook's operational events on EventBridge.
pub const OPS_EVENT_SOURCE: &str = "skyhook";

/// An operational event: something an operator may want an alarm, a chat message or a
/// webhook of their own for. Put on the stack's EventBridge bus with source `skyhook` and
/// the kind as `detail-type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsEvent {
    pub kind: OpsEventKind,
    pub tenant: TenantId,
    pub subscriber_id: SubscriberId,
    pub reason: String,
    pub event_id: Option<EventId>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpsEventKind {
    SubscriberDisabled,
    BreakerOpened,
    BreakerClosed,
    DeliveryExhausted,
}

impl OpsEventKind {
    /// The `detail-type`.
    pub fn as_str(self) -> &'static str {
        match self {
            OpsEventKind::SubscriberDisabled => "subscriber.disabled",
            OpsEventKind::BreakerOpened => "subscriber.breaker_opened",
            OpsEventKind::BreakerClosed => "subscriber.breaker_closed",
            OpsEventKind::DeliveryExhausted => "delivery.exhausted",
        }
    }
}

impl OpsEvent {
    pub fn new(
        kind: OpsEventKind,
        tenant: &TenantId,
        subscriber_id: &SubscriberId,
        reason: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Self {
        OpsEvent {
            kind,
            tenant: tenant.clone(),
            subscriber_id: subscriber_id.clone(),
            reason: reason.into(),
            event_id: None,
            at,
        }
    }

    pub fn with_event(mut self, event_id: &EventId) -> Self {
        self.event_id = Some(event_id.clone());
        self
    }

    /// The event's `detail`: `tenant`, `subscriber_id`, `reason`, `event_id` (or null), `at`.
    pub fn detail(&self) -> serde_json::Value {
        serde_json::json!({
            "tenant": self.tenant.as_str(),
            "subscriber_id": self.subscriber_id.as_str(),
            "reason": self.reason,
            "event_id": self.event_id.as_ref().map(|e| e.as_str()),
            "at": format_time(self.at),
        })
    }
}
