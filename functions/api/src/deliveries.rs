//! Delivery status and history: one event with a status per subscriber, the attempt log with
//! filters, and delivery stats.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use skyhook_domain::ids::{EventId, SubscriberId};
use skyhook_domain::model::{AttemptRecord, DeliveryStatus, Outcome, format_time};
use skyhook_domain::ports::AttemptQuery;
use skyhook_http::{ApiError, ApiPath, ApiQuery, Role};

use crate::{ApiState, ListResponse, authorize, page_limit, parse_time_param};

#[derive(Serialize)]
struct EventView {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    timestamp: String,
    data: Option<Box<RawValue>>,
    correlation_id: String,
    deliveries: Vec<DeliveryStatusView>,
}

#[derive(Serialize)]
struct DeliveryStatusView {
    subscriber_id: String,
    status: &'static str,
    attempts: u32,
    last_status_code: Option<u16>,
    last_error: Option<String>,
    updated_at: Option<String>,
}

impl From<DeliveryStatus> for DeliveryStatusView {
    fn from(s: DeliveryStatus) -> Self {
        DeliveryStatusView {
            subscriber_id: s.subscriber_id.to_string(),
            status: s.status.as_str(),
            attempts: s.attempts,
            last_status_code: s.last_status_code,
            last_error: s.last_error,
            updated_at: s.updated_at.map(format_time),
        }
    }
}

pub(crate) async fn get_event(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = authorize(&state, &headers, Role::Reader).await?;
    let id = EventId::parse(&id).map_err(|_| ApiError::not_found("event"))?;
    let event = state
        .events
        .get_event(&principal.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("event"))?;
    let mut statuses = state
        .log
        .statuses(&principal.tenant, &id, &event.subscriber_ids)
        .await?;
    // One entry per targeted subscriber; those not yet attempted are pending.
    let deliveries = event
        .subscriber_ids
        .iter()
        .map(|sub| {
            statuses
                .iter()
                .position(|s| &s.subscriber_id == sub)
                .map(|i| statuses.swap_remove(i))
                .unwrap_or_else(|| DeliveryStatus::pending(sub.clone()))
                .into()
        })
        .collect();
    Ok(Json(EventView {
        id: event.id.to_string(),
        event_type: event.event_type.to_string(),
        timestamp: format_time(event.timestamp),
        data: event.data,
        correlation_id: event.correlation_id,
        deliveries,
    }))
}

#[derive(Deserialize)]
pub(crate) struct DeliveriesQuery {
    subscriber_id: Option<String>,
    event_id: Option<String>,
    outcome: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// One attempt as `GET /v1/deliveries` shows it.
#[derive(Serialize)]
struct AttemptView {
    event_id: String,
    subscriber_id: String,
    event_type: String,
    attempt: u32,
    outcome: &'static str,
    status_code: Option<u16>,
    latency_ms: u64,
    error: Option<String>,
    response_body: Option<String>,
    url: String,
    started_at: String,
    finished_at: String,
}

impl From<AttemptRecord> for AttemptView {
    fn from(a: AttemptRecord) -> Self {
        AttemptView {
            event_id: a.event_id.to_string(),
            subscriber_id: a.subscriber_id.to_string(),
            event_type: a.event_type.to_string(),
            attempt: a.attempt,
            outcome: a.outcome.as_str(),
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

fn query_subscriber(raw: Option<&str>) -> Result<Option<SubscriberId>, ApiError> {
    raw.map(|s| {
        SubscriberId::parse(s)
            .map_err(|e| ApiError::bad_request("invalid_subscriber_id", e.to_string()))
    })
    .transpose()
}

/// The attempt log, newest first (by subscriber and attempt when filtered to one event).
pub(crate) async fn list_deliveries(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = authorize(&state, &headers, Role::Reader).await?;
    let subscriber_id = query_subscriber(q.subscriber_id.as_deref())?;
    let event_id = q
        .event_id
        .as_deref()
        .map(|e| {
            EventId::parse(e).map_err(|e| ApiError::bad_request("invalid_event_id", e.to_string()))
        })
        .transpose()?;
    let outcome = q
        .outcome
        .as_deref()
        .map(|o| {
            Outcome::parse(o).ok_or_else(|| {
                ApiError::bad_request("invalid_outcome", "outcome must be success or failure")
            })
        })
        .transpose()?;
    let since = parse_time_param("since", q.since.as_deref())?;
    let until = parse_time_param("until", q.until.as_deref())?;
    if let (Some(a), Some(b)) = (since, until)
        && b < a
    {
        return Err(ApiError::bad_request(
            "invalid_time",
            "until must not be before since",
        ));
    }
    let page = state
        .log
        .list(
            &principal.tenant,
            &AttemptQuery {
                subscriber_id,
                event_id,
                outcome,
                since,
                until,
                limit: page_limit(q.limit.as_deref())?,
                cursor: q.cursor,
            },
        )
        .await?;
    // Only admins see a URL's query string: it often carries the receiver's token.
    let admin = principal.require(Role::Admin).is_ok();
    Ok(ListResponse::of(page, |a| {
        let mut view = AttemptView::from(a);
        if !admin {
            view.url = skyhook_domain::url::mask_query(&view.url);
        }
        view
    }))
}

#[derive(Deserialize)]
pub(crate) struct StatsQuery {
    subscriber_id: Option<String>,
}

#[derive(Serialize)]
struct StatsView {
    #[serde(skip_serializing_if = "Option::is_none")]
    subscriber_id: Option<String>,
    /// Finished deliveries: delivered plus failed.
    total: i64,
    success: i64,
    failure: i64,
    /// Attempts per finished delivery.
    avg_attempts: f64,
    /// Attempts the finished deliveries took, in all.
    attempts: i64,
}

/// Totals over finished deliveries, of the tenant or of one subscriber.
pub(crate) async fn stats(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = authorize(&state, &headers, Role::Reader).await?;
    let subscriber_id = query_subscriber(q.subscriber_id.as_deref())?;
    if let Some(id) = &subscriber_id
        && state
            .subscribers
            .get(&principal.tenant, id)
            .await?
            .is_none()
    {
        return Err(ApiError::not_found("subscriber"));
    }
    let totals = state
        .log
        .stats(&principal.tenant, subscriber_id.as_ref())
        .await?;
    Ok(Json(StatsView {
        subscriber_id: subscriber_id.map(|s| s.to_string()),
        total: totals.total(),
        success: totals.success,
        failure: totals.failure,
        avg_attempts: totals.avg_attempts(),
        attempts: totals.attempts,
    }))
}
