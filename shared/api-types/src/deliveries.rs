//! The attempt log and delivery totals.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use skyhook_domain::model::{AttemptRecord, DeliveryStats, Outcome, format_time};

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    pub event_id: String,
    pub subscriber_id: String,
    pub event_type: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub outcome: Outcome,
    /// `null` when no answer came (a timeout, a refused connection).
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// The first 4 KiB of the answer.
    pub response_body: Option<String>,
    /// The URL it went to; its query string is masked for all but admins.
    pub url: String,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: String,
    #[schema(value_type = String, format = DateTime)]
    pub finished_at: String,
}

impl From<AttemptRecord> for AttemptView {
    fn from(a: AttemptRecord) -> Self {
        AttemptView {
            event_id: a.event_id.to_string(),
            subscriber_id: a.subscriber_id.to_string(),
            event_type: a.event_type.to_string(),
            attempt: a.attempt,
            outcome: a.outcome,
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error,
            response_body: a.response_body,
            url: a.url,
            started_at: format_time(a.started_at),
            finished_at: format_time(a.finished_at),
        }
    }
}

/// Totals over finished deliveries (delivered or failed for good), of the tenant or of one
/// subscriber.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_id: Option<String>,
    /// Finished deliveries: success plus failure.
    pub total: i64,
    pub success: i64,
    pub failure: i64,
    /// Attempts per finished delivery, to two decimals.
    pub avg_attempts: f64,
    /// Attempts the finished deliveries took, in all.
    pub attempts: i64,
}

impl StatsView {
    pub fn new(subscriber_id: Option<String>, totals: &DeliveryStats) -> Self {
        StatsView {
            subscriber_id,
            total: totals.total(),
            success: totals.success,
            failure: totals.failure,
            avg_attempts: totals.avg_attempts(),
            attempts: totals.attempts,
        }
    }
}
