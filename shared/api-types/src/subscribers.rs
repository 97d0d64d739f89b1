//! Subscribers: the create and update bodies, the subscriber as the API shows it, secret
//! rotation and recovery.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use skyhook_domain::breaker::{BreakerState, Health};
use skyhook_domain::model::{DisabledReason, Subscriber, format_time, masked_headers};
use skyhook_domain::signing::SignatureScheme;

/// `POST /v1/subscribers`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscriber {
    /// Where deliveries are POSTed: `https` with a public host (local mode also allows `http`
    /// and loopback or private hosts).
    #[schema(
        example = "https://example.com/webhooks",
        format = "uri",
        max_length = 2048
    )]
    pub url: String,
    /// 1 to 48 filters: an exact type (`order.created`), a trailing wildcard (`order.*`) or
    /// `*` for every type.
    #[schema(example = json!(["order.*"]), min_items = 1, max_items = 48)]
    pub event_types: Vec<String>,
    /// Up to 1024 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    /// `whsec_` and base64 of 24 to 64 bytes; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Up to 20 custom headers sent with every delivery. The values are kept in Secrets
    /// Manager and never shown again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// How deliveries are signed; `standard` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<SignatureScheme>)]
    pub signature_scheme: Option<String>,
    /// Deliveries in flight to it at once per delivery instance, 1 to 100; 10 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 100)]
    pub max_concurrency: Option<u32>,
    /// Deliveries a second across all instances, 1 to 10000; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 10000)]
    pub rate_limit: Option<u32>,
    /// A jq program mapping `{"type", "timestamp", "data"}` to the body sent; the signature
    /// covers what it produces. Checked when saved: one that does not compile is
    /// `422 invalid_transform` with the compiler's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 16384, example = "{kind: .type, order: .data.id}")]
    pub transform: Option<String>,
    /// A jq expression over `{"type", "timestamp", "data"}`, checked at fan-out: the event
    /// goes to this subscriber only when it gives `true` (anything else, or an error, sends
    /// nothing and costs no queue message). Checked when saved: one that does not compile is
    /// `422 invalid_filter` with the compiler's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 16384, example = ".data.total >= 100")]
    pub filter: Option<String>,
}

/// `null` in JSON is `Some(None)`, an absent field `None`: an update tells "clear it" from
/// "leave it".
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// `PATCH /v1/subscribers/{id}`: only the fields given change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscriber {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = "uri", max_length = 2048)]
    pub url: Option<String>,
    /// Replaces the filters (1 to 48).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 1, max_items = 48)]
    pub event_types: Option<Vec<String>>,
    /// `false` disables it (its deliveries are kept and wait); `true` enables it and sends
    /// what waited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// `null` clears it.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(max_length = 1024)]
    pub description: Option<Option<String>>,
    /// Replaces the custom headers; `null` removes them all. A value given as `"********"`
    /// (as the API shows it) keeps the stored value.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub headers: Option<Option<BTreeMap<String, String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<SignatureScheme>)]
    pub signature_scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 100)]
    pub max_concurrency: Option<u32>,
    /// `null` removes the limit.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(minimum = 1, maximum = 10000)]
    pub rate_limit: Option<Option<u32>>,
    /// Replaces the transform; `null` removes it (the event is sent as it is).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(max_length = 16384)]
    pub transform: Option<Option<String>>,
    /// Replaces the content filter; `null` removes it (every event its types match is sent).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(max_length = 16384)]
    pub filter: Option<Option<String>>,
}

impl UpdateSubscriber {
    /// Sets `active` and nothing else: enable or disable.
    pub fn active(active: bool) -> Self {
        UpdateSubscriber {
            active: Some(active),
            ..Self::default()
        }
    }

    /// The names of the fields it sets.
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("url", self.url.is_some()),
            ("event_types", self.event_types.is_some()),
            ("active", self.active.is_some()),
            ("description", self.description.is_some()),
            ("headers", self.headers.is_some()),
            ("signature_scheme", self.signature_scheme.is_some()),
            ("max_concurrency", self.max_concurrency.is_some()),
            ("rate_limit", self.rate_limit.is_some()),
            ("transform", self.transform.is_some()),
            ("filter", self.filter.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// A subscriber as the API shows it. The signing secret appears only in the answer to the
/// create; header values never (each shows as `"********"`); a URL's query string only to
/// admins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SubscriberView {
    #[schema(example = "sub_01JD0000000000000000000000")]
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub active: bool,
    pub description: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub signature_scheme: SignatureScheme,
    pub max_concurrency: u32,
    pub rate_limit: Option<u32>,
    /// Why it is inactive: `manual` (a person), `gone` (it answered 410), `failing` (no
    /// success for the auto-disable period).
    pub disabled_reason: Option<DisabledReason>,
    /// The jq program that shapes the body sent, if any.
    pub transform: Option<String>,
    /// The jq expression that decides at fan-out whether an event goes to it, if any.
    pub filter: Option<String>,
    pub health: HealthView,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: String,
    /// The signing secret: only in the answer to the create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A subscriber's endpoint health: its circuit breaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthView {
    pub state: BreakerState,
    pub consecutive_failures: u32,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub opened_at: Option<String>,
    pub last_error: Option<String>,
}

impl From<&Health> for HealthView {
    fn from(h: &Health) -> Self {
        HealthView {
            state: h.state,
            consecutive_failures: h.consecutive_failures,
            opened_at: h.opened_at.map(format_time),
            last_error: h.last_error.clone(),
        }
    }
}

impl SubscriberView {
    /// The subscriber with its health (`None`: healthy).
    pub fn with_health(s: &Subscriber, health: Option<&Health>) -> Self {
        let mut view = SubscriberView::from(s);
        if let Some(h) = health {
            view.health = HealthView::from(h);
        }
        view
    }
}

impl From<&Subscriber> for SubscriberView {
    fn from(s: &Subscriber) -> Self {
        SubscriberView {
            id: s.id.to_string(),
            url: s.url.to_string(),
            event_types: s.event_types.iter().map(|f| f.to_string()).collect(),
            active: s.active,
            description: s.description.clone(),
            // Names only: the values are receiver credentials (masked in the record too,
            // except in one written before they moved to Secrets Manager).
            headers: masked_headers(&s.headers),
            signature_scheme: s.signature_scheme,
            max_concurrency: s.max_concurrency,
            rate_limit: s.rate_limit,
            disabled_reason: s.disabled_reason,
            transform: s.transform.clone(),
            filter: s.filter.clone(),
            health: HealthView::from(&Health::healthy()),
            created_at: format_time(s.created_at),
            updated_at: format_time(s.updated_at),
            secret: None,
        }
    }
}

/// `POST /v1/subscribers/{id}/rotate-secret`; the body is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// The new secret (`whsec_…`); generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// The new secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RotatedSecret {
    pub id: String,
    pub secret: String,
    /// Until when the previous secret keeps signing beside the new one; `null` when there was
    /// no previous secret to keep.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub previous_secret_expires_at: Option<String>,
}

/// `POST /v1/subscribers/{id}/recover`: the window of failed attempts to look in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recover {
    /// RFC 3339; required.
    #[schema(required = true, value_type = String, format = DateTime)]
    pub since: Option<String>,
    /// RFC 3339; now when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<String>,
}

/// What a recovery did. Each call does a bounded slice of the work: call again while
/// `complete` is `false`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecoverResult {
    /// Sent again, with the attempts counted on.
    pub recovered: usize,
    /// No longer failed (delivered or recovered since).
    pub skipped: usize,
    pub complete: bool,
}

/// `POST /v1/subscribers/{id}/transform/preview`: a sample event, and optionally a program to
/// try instead of the stored one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransformPreview {
    #[serde(rename = "type")]
    #[schema(example = "order.created")]
    pub event_type: String,
    /// The sample event's data.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// RFC 3339; now when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub timestamp: Option<String>,
    /// A program to try (not saved); the subscriber's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 16384)]
    pub transform: Option<String>,
}

/// What a delivery of the sample event would send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TransformPreviewResult {
    /// The body, as the receiver would get it (the transform's output, any JSON value, or the
    /// event as it is when there is no transform).
    pub body: serde_json::Value,
}
