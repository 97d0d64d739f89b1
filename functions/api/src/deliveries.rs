//! Delivery status and history: one event with a status per subscriber, the attempt log with
//! filters, delivery stats, and attempts over time.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use skyhook_api_types::deliveries::{AttemptView, PointView, SeriesView, StatsView};
use skyhook_api_types::events::{EventView, Resend, ResendResult};
use skyhook_api_types::query::{DeliveriesQuery, SeriesQuery, StatsQuery, limit_or_default};
use skyhook_api_types::{ErrorBody, ListResponse};
use skyhook_domain::ids::{EventId, SubscriberId, TenantId};
use skyhook_domain::model::{DeliveryState, DeliveryStatus, format_time};
use skyhook_domain::ports::AttemptQuery;
use skyhook_domain::series::{self, Bucket};
use skyhook_http::responses::{AuthErrors, BodyErrors, Conflict, NotFound, QueryErrors};
use skyhook_http::{ApiError, ApiPath, ApiQuery, Role, read_json};

use crate::{ApiState, MAX_BODY_BYTES, audit, authorize};
use skyhook_domain::redrive::{ResendError, ResendRefusal};

/// An event and its delivery status per subscriber (`pending` until first attempted).
#[utoipa::path(get, path = "/v1/events/{id}", tag = "events",
    params(("id" = String, Path, description = "The event's id (`evt_…`).")),
    responses((status = 200, description = "The event, with one status per subscriber.", body = EventView), NotFound, AuthErrors))]
pub(crate) async fn get_event(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<EventView>, ApiError> {
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

/// The attempt log.
///
/// Newest first (by subscriber and attempt when filtered to one event). Only admins see a URL's query string: it often carries the receiver's token.
#[utoipa::path(get, path = "/v1/deliveries", tag = "deliveries", params(DeliveriesQuery),
    responses((status = 200, description = "A page of attempts.", body = ListResponse<AttemptView>), QueryErrors, AuthErrors))]
pub(crate) async fn list_deliveries(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Json<ListResponse<AttemptView>>, ApiError> {
    let principal = authorize(&state, &headers, Role::Reader).await?;
    if let (Some(a), Some(b)) = (q.since, q.until)
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
                subscriber_id: q.subscriber_id,
                event_id: q.event_id,
                outcome: q.outcome,
                since: q.since.map(|t| t.0),
                until: q.until.map(|t| t.0),
                limit: limit_or_default(q.limit),
                cursor: q.cursor.map(String::from),
            },
        )
        .await?;
    let admin = principal.require(Role::Admin).is_ok();
    Ok(Json(ListResponse::of(page, |a| {
        let mut view = AttemptView::from(a);
        if !admin {
            view.url = skyhook_domain::url::mask_query(&view.url);
        }
        view
    })))
}

/// `404` unless `id` (when given) is one of the tenant's subscribers.
async fn known_subscriber(
    state: &ApiState,
    tenant: &TenantId,
    id: Option<&SubscriberId>,
) -> Result<(), ApiError> {
    if let Some(id) = id
        && state.subscribers.get(tenant, id).await?.is_none()
    {
        return Err(ApiError::not_found("subscriber"));
    }
    Ok(())
}

/// Totals over finished deliveries, of the tenant or of one subscriber.
#[utoipa::path(get, path = "/v1/stats", tag = "deliveries", params(StatsQuery),
    responses((status = 200, description = "The totals.", body = StatsView),
        (status = 404, description = "No such subscriber (`not_found`).", body = ErrorBody),
        QueryErrors, AuthErrors))]
pub(crate) async fn stats(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<Json<StatsView>, ApiError> {
    let principal = authorize(&state, &headers, Role::Reader).await?;
    known_subscriber(&state, &principal.tenant, q.subscriber_id.as_ref()).await?;
    let totals = state
        .log
        .stats(&principal.tenant, q.subscriber_id.as_ref())
        .await?;
    Ok(Json(StatsView::new(
        q.subscriber_id.map(|s| s.to_string()),
        &totals,
    )))
}

/// Attempts over time, of the tenant or of one subscriber: per bucket, the successful and
/// failed attempts and their p50/p95 latency.
///
/// One point per bucket from `since`'s to `until`'s (at most 240; none missing, zero where
/// nothing happened), as far as the stats consumer has folded the ledger in. The read is one
/// bounded range of one partition.
#[utoipa::path(get, path = "/v1/stats/timeseries", tag = "deliveries", params(SeriesQuery),
    responses((status = 200, description = "The series.", body = SeriesView),
        (status = 404, description = "No such subscriber (`not_found`).", body = ErrorBody),
        QueryErrors, AuthErrors))]
pub(crate) async fn timeseries(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<SeriesQuery>,
) -> Result<Json<SeriesView>, ApiError> {
    let principal = authorize(&state, &headers, Role::Reader).await?;
    let bucket = q.bucket.unwrap_or(Bucket::Hour);
    let until = q
        .until
        .map_or_else(|| chrono::Utc::now().timestamp(), |t| t.0.timestamp());
    let since = q
        .since
        .map_or(until - 59 * bucket.secs(), |t| t.0.timestamp());
    let (first, last) = series::range(bucket, since, until)
        .map_err(|e| ApiError::bad_request("invalid_range", e.to_string()))?;
    known_subscriber(&state, &principal.tenant, q.subscriber_id.as_ref()).await?;
    let stored = state
        .log
        .series(
            &principal.tenant,
            q.subscriber_id.as_ref(),
            bucket,
            first,
            last,
        )
        .await?;
    let at = |t: i64| format_time(chrono::DateTime::from_timestamp(t, 0).unwrap_or_default());
    Ok(Json(SeriesView {
        subscriber_id: q.subscriber_id.map(|s| s.to_string()),
        bucket,
        since: at(first),
        until: at(last),
        points: series::dense(bucket, first, last, &stored)
            .iter()
            .map(PointView::of)
            .collect(),
    }))
}

/// The answer to a resend the redrive service refused: `404` for what does not exist,
/// `409` for a delivery that cannot be resent now.
fn refused(why: ResendRefusal, id: &EventId, sub_id: &SubscriberId) -> ApiError {
    let conflict =
        |code: &'static str, message: String| ApiError::new(StatusCode::CONFLICT, code, message);
    match why {
        ResendRefusal::EventNotFound => ApiError::not_found("event"),
        ResendRefusal::SubscriberNotFound => ApiError::not_found("subscriber"),
        ResendRefusal::SubscriberInactive => conflict(
            "subscriber_inactive",
            format!("subscriber {sub_id} is inactive; enable it first"),
        ),
        ResendRefusal::NotARecipient => conflict(
            "not_a_recipient",
            format!(
                "event {id} was not sent to {sub_id}; publish it with subscriber_ids to send it there"
            ),
        ),
        ResendRefusal::InProgress(state_name) => conflict(
            "delivery_in_progress",
            format!("the delivery to {sub_id} is still {state_name}; it is not resent meanwhile"),
        ),
        ResendRefusal::DataUnavailable => conflict(
            "event_data_unavailable",
            "the event's payload was too large to keep beside the log; a DLQ redrive sends it"
                .into(),
        ),
        ResendRefusal::Changed => conflict(
            "conflict",
            format!("the delivery to {sub_id} changed meanwhile; look at it again"),
        ),
    }
}

/// Sends an event to one of its subscribers again, with the same `webhook-id`.
///
/// A finished delivery (`delivered`, `failed`, `subscriber_deleted`) is reopened (`pending`)
/// and queued; its new attempts number on from the ones it had. A delivery still under way
/// (queued, `pending`, `retrying`) is `409 delivery_in_progress`; a subscriber the event was
/// not sent to `409 not_a_recipient`; an inactive one `409 subscriber_inactive`; an event whose
/// payload was too large to keep beside the log `409 event_data_unavailable` (a DLQ redrive
/// sends those).
#[utoipa::path(post, path = "/v1/events/{id}/resend", tag = "events", request_body = Resend,
    params(("id" = String, Path, description = "The event's id (`evt_…`).")),
    responses((status = 202, description = "Reopened and queued.", body = ResendResult), BodyErrors, NotFound, Conflict, AuthErrors))]
pub(crate) async fn resend(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    body: Body,
) -> Result<(StatusCode, Json<ResendResult>), ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let req: Resend = read_json(body, MAX_BODY_BYTES).await?;
    let id = EventId::parse(&id).map_err(|_| ApiError::not_found("event"))?;
    let sub_id = SubscriberId::parse(&req.subscriber_id)
        .map_err(|e| ApiError::unprocessable("invalid_subscriber_id", e.to_string()))?;
    let attempts = state
        .redrive
        .resend(&principal.tenant, &id, &sub_id)
        .await
        .map_err(|e| match e {
            ResendError::Failed(e) => e.into(),
            ResendError::Refused(why) => refused(why, &id, &sub_id),
        })?;
    audit(
        &state,
        &principal.tenant,
        &principal,
        "event.resend",
        id.as_str(),
        Some(serde_json::json!({"subscriber_id": sub_id.as_str()})),
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(ResendResult {
            event_id: id.to_string(),
            subscriber_id: sub_id.to_string(),
            status: DeliveryState::Pending,
            attempts,
        }),
    ))
}
