//! The dead-letter queue: what is dead, and sending it back.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use skyhook_domain::model::{DeadLetterEntry, format_time};

/// A delivery that ran out of attempts (or waits for its disabled subscriber).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeadView {
    pub event_id: String,
    pub subscriber_id: String,
    pub event_type: String,
    /// The last error, or why it waits.
    pub reason: String,
    pub attempts: u32,
    #[schema(value_type = String, format = DateTime)]
    pub dead_at: String,
}

impl From<DeadLetterEntry> for DeadView {
    fn from(e: DeadLetterEntry) -> Self {
        DeadView {
            event_id: e.event_id.to_string(),
            subscriber_id: e.subscriber_id.to_string(),
            event_type: e.event_type.to_string(),
            reason: e.reason,
            attempts: e.attempts,
            dead_at: format_time(e.dead_at),
        }
    }
}

/// `POST /v1/dlq/redrive`; the body is optional (no body: everything of the tenant).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redrive {
    /// Only this subscriber's dead deliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_id: Option<String>,
}

/// What a redrive did. Each call does a bounded slice of the work: call again while
/// `complete` is `false`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RedriveResult {
    /// Sent back to the delivery queue, each with a fresh set of attempts.
    pub redriven: usize,
    /// Removed without sending: delivered or recovered since.
    pub dropped: usize,
    pub complete: bool,
}
