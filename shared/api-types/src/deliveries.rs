//! The attempt log and delivery totals.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use chrono::DateTime;
use skyhook_domain::model::{AttemptRecord, DeliveryStats, Outcome, format_time};
use skyhook_domain::series::{Bucket, Point};

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

/// `GET /v1/stats/timeseries`: attempts over time, one point per bucket from `since`'s to
/// `until`'s, none missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SeriesView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_id: Option<String>,
    pub bucket: Bucket,
    /// The first point's start.
    #[schema(value_type = String, format = DateTime)]
    pub since: String,
    /// The last point's start.
    #[schema(value_type = String, format = DateTime)]
    pub until: String,
    pub points: Vec<PointView>,
}

/// One bucket: its attempts by outcome, and their latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PointView {
    /// The bucket's start.
    #[schema(value_type = String, format = DateTime)]
    pub start: String,
    /// Attempts answered 2xx.
    pub success: u64,
    /// Attempts that failed (a non-2xx answer, a timeout, no connection).
    pub failure: u64,
    /// Median latency of the attempts that got an answer, in ms (estimated from a histogram
    /// with 1-2-5 steps from 5 ms to 60 s); `null` without any.
    pub p50_ms: Option<u64>,
    /// The 95th percentile, likewise.
    pub p95_ms: Option<u64>,
}

impl PointView {
    pub fn of(point: &Point) -> Self {
        PointView {
            start: format_time(DateTime::from_timestamp(point.start, 0).unwrap_or_default()),
            success: point.counts.success,
            failure: point.counts.failure,
            p50_ms: point.counts.percentile(0.5),
            p95_ms: point.counts.percentile(0.95),
        }
    }
}
