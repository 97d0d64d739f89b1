//! Events: the publish body and receipt, and an event with its delivery status per
//! subscriber.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use skyhook_domain::model::{DeliveryState, DeliveryStatus, format_time};
use skyhook_domain::ports::PublishReceipt;

/// `POST /v1/events`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishEvent {
    /// Dot-separated name, such as `order.created`.
    #[serde(rename = "type")]
    #[schema(example = "order.created")]
    pub event_type: String,
    /// The event's payload, sent to subscribers as it is.
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
    /// An idempotency key, when no `Idempotency-Key` header is given: repeats within 24 h
    /// answer with the first event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Deliver only to these subscribers (at most 100) instead of every matching one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_ids: Option<Vec<String>>,
}

/// What a publish did: the event and how many subscribers it goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublishReceiptView {
    #[schema(example = "evt_01JD0000000000000000000000")]
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub subscribers: usize,
}

impl From<PublishReceipt> for PublishReceiptView {
    fn from(r: PublishReceipt) -> Self {
        PublishReceiptView {
            id: r.id.to_string(),
            event_type: r.event_type.to_string(),
            subscribers: r.subscribers,
        }
    }
}

/// An event and one delivery status per subscriber it was sent to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: String,
    /// `null` when the payload was too large to keep beside the log.
    #[schema(value_type = Option<Object>)]
    pub data: Option<Box<RawValue>>,
    pub correlation_id: String,
    pub deliveries: Vec<DeliveryStatusView>,
}

/// Where one subscriber's delivery of an event stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryStatusView {
    pub subscriber_id: String,
    pub status: DeliveryState,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<String>,
}

impl From<DeliveryStatus> for DeliveryStatusView {
    fn from(s: DeliveryStatus) -> Self {
        DeliveryStatusView {
            subscriber_id: s.subscriber_id.to_string(),
            status: s.status,
            attempts: s.attempts,
            last_status_code: s.last_status_code,
            last_error: s.last_error,
            updated_at: s.updated_at.map(format_time),
        }
    }
}

/// `POST /v1/events/{id}/resend`: the subscriber to send the event to again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resend {
    #[schema(example = "sub_01JD0000000000000000000000")]
    pub subscriber_id: String,
}

/// The delivery as it now stands: reopened and queued, with the same `webhook-id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResendResult {
    pub event_id: String,
    pub subscriber_id: String,
    pub status: DeliveryState,
    /// Attempts so far; the new ones number on from here.
    pub attempts: u32,
}
