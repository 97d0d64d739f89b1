//! The dead-letter queue: list what died, why and for whom (from the DynamoDB index the
//! delivery function writes), and redrive the caller's dead messages back to the delivery
//! queue as new messages, so each gets a fresh set of attempts under its old `webhook-id`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;

use chrono::Utc;
use skyhook_domain::ids::{SubscriberId, TenantId};
use skyhook_domain::model::{
    DeadLetterEntry, DeliveryMessage, DeliveryState, DeliveryStatus, format_time,
};
use skyhook_domain::ports::{DeadMessage, PageRequest};
use skyhook_http::{ApiError, ApiQuery, Principal, Role, read_optional_json};

use crate::subscribers::{Requeue, requeue};
use crate::{
    ApiState, BULK_TIME_BUDGET, ListResponse, MAX_BODY_BYTES, audit, authorize, page_limit,
};

/// How long a redrive holds the messages it received: longer than its own time budget, so a
/// message is never seen twice by one redrive.
const HOLD: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
pub(crate) struct DlqQuery {
    subscriber_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct DeadView {
    event_id: String,
    subscriber_id: String,
    event_type: String,
    reason: String,
    attempts: u32,
    dead_at: String,
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

fn subscriber_filter(raw: Option<&str>) -> Result<Option<SubscriberId>, ApiError> {
    raw.map(|s| {
        SubscriberId::parse(s)
            .map_err(|e| ApiError::bad_request("invalid_subscriber_id", e.to_string()))
    })
    .transpose()
}

pub(crate) async fn list_dead(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<DlqQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = authorize(&state, &headers, Role::Reader).await?;
    let subscriber = subscriber_filter(q.subscriber_id.as_deref())?;
    let page = state
        .dead_letters
        .list(
            &principal.tenant,
            subscriber.as_ref(),
            &PageRequest {
                limit: page_limit(q.limit.as_deref())?,
                cursor: q.cursor,
                active: None,
            },
        )
        .await?;
    Ok(ListResponse::of(page, DeadView::from))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RedriveBody {
    #[serde(default)]
    subscriber_id: Option<String>,
}

#[derive(Serialize, Default)]
struct RedriveResult {
    /// Sent back to the delivery queue.
    redriven: usize,
    /// Removed from the DLQ without sending: the delivery succeeded or was recovered since.
    dropped: usize,
    /// False when the time budget ran out first; call again to go on.
    complete: bool,
}

/// What to do with one of the caller's dead messages.
enum Fate {
    Redrive,
    Drop,
}

/// A dead message is redriven unless its delivery moved on after it died: delivered since,
/// or already sent again (by a recovery) and now in a newer round of attempts.
async fn fate(
    state: &ApiState,
    message: &DeliveryMessage,
    dead: &DeadMessage,
) -> Result<(Fate, Option<skyhook_domain::model::DeliveryStatus>), ApiError> {
    let status = state
        .log
        .status(&message.tenant, &message.event_id, &message.subscriber_id)
        .await?;
    let died_after = dead.attempts.unwrap_or(0).max(message.prior_attempts);
    let fate = match &status {
        None => Fate::Redrive,
        Some(s) => match s.status {
            // Delivered, or ended because its subscriber was deleted: nothing to send.
            DeliveryState::Delivered | DeliveryState::SubscriberDeleted => Fate::Drop,
            DeliveryState::Failed => Fate::Redrive,
            // Reopened by a recovery: a new message is already on its way.
            DeliveryState::Pending => Fate::Drop,
            // Still retrying at the attempt it died on: the queue's redrive policy moved it
            // without the delivery function seeing its end.
            DeliveryState::Retrying if s.attempts <= died_after => Fate::Redrive,
            DeliveryState::Retrying => Fate::Drop,
        },
    };
    Ok((fate, status))
}

/// Handles one received message: `Ok(None)` when it is not the caller's to touch.
async fn redrive_one(
    state: &ApiState,
    principal: &Principal,
    only: Option<&SubscriberId>,
    dead: &DeadMessage,
) -> Result<Option<Fate>, ApiError> {
    // The body, not the attributes, says whose message this is: it is what gets re-sent.
    let Ok(message) = DeliveryMessage::from_json(&dead.body) else {
        return Ok(None);
    };
    if message.tenant != principal.tenant || only.is_some_and(|s| s != &message.subscriber_id) {
        return Ok(None);
    }
    let (fate, status) = fate(state, &message, dead).await?;
    match fate {
        Fate::Drop => {}
        Fate::Redrive => {
            let prior = dead
                .attempts
                .unwrap_or(0)
                .max(message.prior_attempts)
                .max(status.as_ref().map_or(0, |s| s.attempts));
            if let Requeue::Skipped =
                requeue(state, message.clone(), status.as_ref(), prior).await?
            {
                // Its status moved meanwhile; leave the message for a later look.
                return Ok(None);
            }
        }
    }
    state.dlq.delete(&dead.handle).await?;
    if let Err(e) = state
        .dead_letters
        .remove(&message.tenant, &message.event_id, &message.subscriber_id)
        .await
    {
        tracing::error!(error = %e, event_id = %message.event_id, "could not remove a dead letter from the index");
    }
    Ok(Some(fate))
}

/// Moves the caller's dead messages (all, or one subscriber's) back to the delivery queue.
/// Other tenants' messages are held only while this runs and then released untouched.
pub(crate) async fn redrive(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let req: RedriveBody = read_optional_json(body, MAX_BODY_BYTES).await?;
    let only = req
        .subscriber_id
        .as_deref()
        .map(|s| {
            SubscriberId::parse(s)
                .map_err(|e| ApiError::unprocessable("invalid_subscriber_id", e.to_string()))
        })
        .transpose()?;
    let started = Instant::now();
    let mut result = RedriveResult::default();
    let mut held: Vec<String> = Vec::new();
    let outcome: Result<bool, ApiError> = async {
        // One enabled subscriber's: what is still parked from when it was disabled (enabling
        // sends it, within a time budget; this goes on where that stopped).
        if let Some(sub) = &only
            && state
                .subscribers
                .get(&principal.tenant, sub)
                .await?
                .is_some_and(|s| s.active)
        {
            let parked = unpark(&state, &principal.tenant, sub).await?;
            result.redriven += parked.handled;
            if !parked.complete {
                return Ok(false);
            }
        }
        loop {
            if started.elapsed() > BULK_TIME_BUDGET {
                return Ok(false);
            }
            let batch = state.dlq.receive(10, HOLD).await?;
            if batch.is_empty() {
                return Ok(true);
            }
            for dead in &batch {
                match redrive_one(&state, &principal, only.as_ref(), dead).await? {
                    Some(Fate::Redrive) => result.redriven += 1,
                    Some(Fate::Drop) => result.dropped += 1,
                    None => held.push(dead.handle.clone()),
                }
            }
        }
    }
    .await;
    // Whatever happened, messages this redrive did not take become visible again now.
    for handle in &held {
        if let Err(e) = state.dlq.release(handle).await {
            tracing::warn!(error = %e, "could not release a held dead letter; it reappears after its visibility timeout");
        }
    }
    // Audited before any error is returned: what was moved has been moved.
    audit(
        &state,
        &principal.tenant,
        &principal,
        "dlq.redrive",
        only.as_ref().map_or("*", |s| s.as_str()),
        Some(json!({"redriven": result.redriven, "dropped": result.dropped})),
    )
    .await;
    result.complete = outcome?;
    Ok(Json(result))
}

/// What was done with a subscriber's parked deliveries.
#[derive(Serialize, Debug, Default, Clone, Copy)]
pub(crate) struct Parked {
    /// Deliveries handled (sent again, or ended).
    pub handled: usize,
    /// False when the time budget ran out first; doing it again goes on from there.
    pub complete: bool,
}

/// The subscriber's parked deliveries, oldest first, a page at a time, handed to `each`
/// (which must take them out of the index) within the bulk time budget.
async fn for_each_parked<F, Fut>(
    state: &ApiState,
    tenant: &TenantId,
    subscriber: &SubscriberId,
    mut each: F,
) -> Result<Parked, ApiError>
where
    F: FnMut(Vec<(DeadLetterEntry, DeliveryMessage)>) -> Fut,
    Fut: std::future::Future<Output = Result<usize, ApiError>>,
{
    let started = Instant::now();
    let mut done = Parked::default();
    let mut cursor = None;
    loop {
        if started.elapsed() > BULK_TIME_BUDGET {
            return Ok(done);
        }
        let page = state
            .dead_letters
            .list(
                tenant,
                Some(subscriber),
                &PageRequest {
                    limit: 100,
                    cursor,
                    active: None,
                },
            )
            .await?;
        let parked: Vec<(DeadLetterEntry, DeliveryMessage)> = page
            .items
            .into_iter()
            .filter_map(|e| {
                let message = DeliveryMessage::from_json(e.parked_message()?).ok()?;
                Some((e, message))
            })
            .collect();
        done.handled += each(parked).await?;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => {
                done.complete = true;
                return Ok(done);
            }
        }
    }
}

/// Sends an enabled subscriber's parked deliveries back to the queue, ten to a batch, each
/// with the attempts it already had.
pub(crate) async fn unpark(
    state: &ApiState,
    tenant: &TenantId,
    subscriber: &SubscriberId,
) -> Result<Parked, ApiError> {
    for_each_parked(state, tenant, subscriber, |parked| async move {
        for chunk in parked.chunks(10) {
            let messages: Vec<DeliveryMessage> = chunk.iter().map(|(_, m)| m.clone()).collect();
            state.publisher.enqueue(&messages).await?;
            for (entry, _) in chunk {
                state
                    .dead_letters
                    .remove(tenant, &entry.event_id, &entry.subscriber_id)
                    .await?;
            }
        }
        Ok(parked.len())
    })
    .await
}

/// Ends a deleted subscriber's parked deliveries: status `subscriber_deleted`, out of the
/// index.
pub(crate) async fn end_parked(
    state: &ApiState,
    tenant: &TenantId,
    subscriber: &SubscriberId,
) -> Result<Parked, ApiError> {
    for_each_parked(state, tenant, subscriber, |parked| async move {
        for (entry, message) in &parked {
            let status = DeliveryStatus {
                subscriber_id: subscriber.clone(),
                status: DeliveryState::SubscriberDeleted,
                attempts: message.prior_attempts,
                last_status_code: None,
                last_error: Some(
                    "subscriber_deleted: the subscriber was deleted while its delivery was parked"
                        .into(),
                ),
                updated_at: Some(Utc::now()),
            };
            state
                .log
                .set_status(tenant, &entry.event_id, &status)
                .await?;
            state
                .dead_letters
                .remove(tenant, &entry.event_id, &entry.subscriber_id)
                .await?;
        }
        Ok(parked.len())
    })
    .await
}
