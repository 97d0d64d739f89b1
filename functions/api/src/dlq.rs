//! The dead-letter queue: list what died, why and for whom (from the DynamoDB index the
//! delivery function writes), and redrive the caller's dead messages back to the delivery
//! queue as new messages, so each gets a fresh set of attempts under its old `webhook-id`.
//!
//! The SQS dead-letter queue is shared by every tenant; a redrive empties it into the
//! per-tenant index first, so one tenant's redrive never hides another's messages.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::json;

use skyhook_api_types::ListResponse;
use skyhook_api_types::dlq::{DeadView, Redrive, RedriveResult};
use skyhook_api_types::query::{DlqQuery, page_request};
use skyhook_domain::ids::SubscriberId;
use skyhook_http::responses::{AuthErrors, BodyErrors, QueryErrors};
use skyhook_http::{ApiError, ApiQuery, Role, read_optional_json};

use crate::{ApiState, MAX_BODY_BYTES, audit, authorize};

/// The dead-letter queue.
///
/// The caller's dead deliveries: out of attempts, or parked while their subscriber is
/// disabled.
#[utoipa::path(get, path = "/v1/dlq", tag = "dlq", params(DlqQuery),
    responses((status = 200, description = "A page of dead deliveries.", body = ListResponse<DeadView>), QueryErrors, AuthErrors))]
pub(crate) async fn list_dead(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<DlqQuery>,
) -> Result<Json<ListResponse<DeadView>>, ApiError> {
    let principal = authorize(&state, &headers, Role::Reader).await?;
    let page = state
        .dead_letters
        .list(
            &principal.tenant,
            q.subscriber_id.as_ref(),
            &page_request(q.limit, q.cursor),
        )
        .await?;
    Ok(Json(ListResponse::of(page, DeadView::from)))
}

/// Sends dead deliveries back for a fresh set of attempts.
///
/// Moves the caller's dead messages (all, or one subscriber's) back to the delivery queue.
/// First the SQS dead-letter queue is emptied into the dead-letter index (every tenant's
/// message into its own tenant's entries), then the caller's entries that hold a message
/// are sent again: a parked one when its subscriber is enabled, any other unless its
/// delivery moved on since. No tenant's messages are hidden from another's redrive.
#[utoipa::path(post, path = "/v1/dlq/redrive", tag = "dlq",
    request_body(content = Option<Redrive>, description = "Optional: no body redrives every subscriber's."),
    responses((status = 200, description = "What this call moved; call again while `complete` is false.", body = RedriveResult), BodyErrors, AuthErrors))]
pub(crate) async fn redrive(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<RedriveResult>, ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let req: Redrive = read_optional_json(body, MAX_BODY_BYTES).await?;
    let only = req
        .subscriber_id
        .as_deref()
        .map(|s| {
            SubscriberId::parse(s)
                .map_err(|e| ApiError::unprocessable("invalid_subscriber_id", e.to_string()))
        })
        .transpose()?;
    let (moved, outcome) = state
        .redrive
        .redrive(&principal.tenant, only.as_ref())
        .await;
    // Audited before any error is returned: what was moved has been moved.
    audit(
        &state,
        &principal.tenant,
        &principal,
        "dlq.redrive",
        only.as_ref().map_or("*", |s| s.as_str()),
        Some(json!({"redriven": moved.redriven, "dropped": moved.dropped})),
    )
    .await;
    outcome?;
    Ok(Json(RedriveResult {
        redriven: moved.redriven,
        dropped: moved.dropped,
        complete: moved.complete,
    }))
}
