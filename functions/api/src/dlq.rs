//! The dead-letter queue: list what died, why and for whom (from the DynamoDB index the
//! delivery function writes), and redrive the caller's dead messages back to the delivery
//! queue as new messages, so each gets a fresh set of attempts under its old `webhook-id`.
//!
//! The SQS dead-letter queue is shared by every tenant; a redrive empties it into the
//! per-tenant index first, so one tenant's redrive never hides another's messages.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::json;

use chrono::Utc;
use skyhook_api_types::ListResponse;
use skyhook_api_types::dlq::{DeadView, Redrive, RedriveResult};
use skyhook_api_types::query::{DlqQuery, limit_or_default};
use skyhook_domain::ids::{SubscriberId, TenantId};
use skyhook_domain::model::{
    DeadLetterEntry, DeliveryMessage, DeliveryState, DeliveryStatus, RECEIVES_EXHAUSTED_REASON,
};
use skyhook_domain::ports::{DeadMessage, PageRequest};
use skyhook_http::responses::{AuthErrors, BodyErrors, QueryErrors};
use skyhook_http::{ApiError, ApiQuery, Principal, Role, read_optional_json};

use crate::subscribers::{Requeue, requeue};
use crate::{ApiState, BULK_TIME_BUDGET, MAX_BODY_BYTES, audit, authorize};

/// How long a redrive holds a message it received while it moves it into the index; only
/// a redrive that stops half-way (a crashed function) leaves it hidden this long.
const HOLD: Duration = Duration::from_secs(30);

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
            &PageRequest {
                limit: limit_or_default(q.limit),
                cursor: q.cursor.map(String::from),
                active: None,
            },
        )
        .await?;
    Ok(Json(ListResponse::of(page, DeadView::from)))
}

/// What to do with one of the caller's dead messages.
enum Fate {
    Redrive,
    Drop,
}

/// A dead message is redriven unless its delivery moved on after it died: delivered since,
/// or already sent again (by a recovery) and now in a newer round of attempts.
/// `died_after` is the attempts it had made when it died.
async fn fate(
    state: &ApiState,
    message: &DeliveryMessage,
    died_after: u32,
) -> Result<(Fate, Option<DeliveryStatus>), ApiError> {
    let status = state
        .log
        .status(&message.tenant, &message.event_id, &message.subscriber_id)
        .await?;
    let died_after = died_after.max(message.prior_attempts);
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

/// Sends one dead delivery back to the queue, or drops it when its delivery moved on.
/// `None` when its status moved while we looked: it is left for a later redrive.
async fn settle(
    state: &ApiState,
    message: &DeliveryMessage,
    died_after: u32,
) -> Result<Option<Fate>, ApiError> {
    let (fate, status) = fate(state, message, died_after).await?;
    if let Fate::Redrive = fate {
        let prior = died_after
            .max(message.prior_attempts)
            .max(status.as_ref().map_or(0, |s| s.attempts));
        if let Requeue::Skipped = requeue(state, message.clone(), status.as_ref(), prior).await? {
            return Ok(None);
        }
    }
    Ok(Some(fate))
}

/// What one pass over the SQS dead-letter queue did.
#[derive(Default)]
struct Sorted {
    redriven: usize,
    dropped: usize,
    complete: bool,
}

/// Empties the SQS dead-letter queue into the dead-letter index, every tenant's message
/// into its own tenant's entry, so that no redrive ever holds another tenant's message for
/// longer than it takes to move it. A message too large for an entry stays in the queue:
/// the caller's own is redriven from there, another tenant's is released at once.
///
/// Complete when a receive brings nothing not yet seen and no reader holds a message (one
/// being moved by a concurrent redrive is in the index a moment later).
async fn sort_queue(
    state: &ApiState,
    principal: &Principal,
    only: Option<&SubscriberId>,
    started: Instant,
) -> Result<Sorted, ApiError> {
    let mut done = Sorted::default();
    let mut seen: HashSet<String> = HashSet::new();
    loop {
        if started.elapsed() > BULK_TIME_BUDGET {
            return Ok(done);
        }
        let batch = state.dlq.receive(10, HOLD).await?;
        let mut fresh = 0;
        for dead in &batch {
            if seen.insert(dead.id.clone()) {
                fresh += 1;
            }
            let outcome = sort_one(state, principal, only, dead).await;
            match outcome {
                Ok(Sorting::Moved) => {}
                Ok(Sorting::Settled(Fate::Redrive)) => done.redriven += 1,
                Ok(Sorting::Settled(Fate::Drop)) => done.dropped += 1,
                Ok(Sorting::Left) => state.dlq.release(&dead.handle).await?,
                Err(e) => {
                    // Visible again for the next redrive, whoever runs it.
                    if let Err(undo) = state.dlq.release(&dead.handle).await {
                        tracing::warn!(error = %undo, "could not release a dead letter; it reappears after its visibility timeout");
                    }
                    return Err(e);
                }
            }
        }
        if fresh == 0 {
            if state.dlq.held().await? == 0 {
                done.complete = true;
                return Ok(done);
            }
            // Another redrive is moving messages; they are in the index in a moment.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// What became of one message received from the SQS dead-letter queue.
enum Sorting {
    /// Moved into its tenant's dead-letter index and deleted from the queue.
    Moved,
    /// The caller's, too large for the index: redriven or dropped from the queue.
    Settled(Fate),
    /// To be released: unreadable, another tenant's and too large, or status in motion.
    Left,
}

async fn sort_one(
    state: &ApiState,
    principal: &Principal,
    only: Option<&SubscriberId>,
    dead: &DeadMessage,
) -> Result<Sorting, ApiError> {
    // The body, not the attributes, says whose message this is: it is what gets re-sent.
    let Ok(message) = DeliveryMessage::from_json(&dead.body) else {
        return Ok(Sorting::Left);
    };
    let died_after = dead.attempts.unwrap_or(0).max(message.prior_attempts);
    if dead.body.len() <= DeadLetterEntry::MAX_MESSAGE_BYTES {
        let entry = DeadLetterEntry {
            tenant: message.tenant.clone(),
            event_id: message.event_id.clone(),
            subscriber_id: message.subscriber_id.clone(),
            event_type: message.event_type.clone(),
            reason: dead
                .reason
                .clone()
                .unwrap_or_else(|| RECEIVES_EXHAUSTED_REASON.to_string()),
            attempts: died_after,
            dead_at: dead.dead_at.unwrap_or_else(Utc::now),
            message: Some(dead.body.clone()),
        };
        state.dead_letters.put(&entry).await?;
        state.dlq.delete(&dead.handle).await?;
        return Ok(Sorting::Moved);
    }
    if message.tenant != principal.tenant || only.is_some_and(|s| s != &message.subscriber_id) {
        return Ok(Sorting::Left);
    }
    let Some(fate) = settle(state, &message, died_after).await? else {
        return Ok(Sorting::Left);
    };
    state.dlq.delete(&dead.handle).await?;
    if let Err(e) = state
        .dead_letters
        .remove(&message.tenant, &message.event_id, &message.subscriber_id)
        .await
    {
        tracing::error!(error = %e, event_id = %message.event_id, "could not remove a dead letter from the index");
    }
    Ok(Sorting::Settled(fate))
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
    let started = Instant::now();
    let mut result = RedriveResult::default();
    let outcome: Result<bool, ApiError> = async {
        let sorted = sort_queue(&state, &principal, only.as_ref(), started).await?;
        result.redriven += sorted.redriven;
        result.dropped += sorted.dropped;
        let indexed = redrive_indexed(&state, &principal.tenant, only.as_ref(), started).await?;
        result.redriven += indexed.redriven;
        result.dropped += indexed.dropped;
        Ok(sorted.complete && indexed.complete)
    }
    .await;
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

/// Sends again the caller's dead-letter entries that hold their message, oldest first: a
/// parked delivery when its subscriber is enabled again (a disabled one's stay parked), any
/// other unless its delivery moved on since.
async fn redrive_indexed(
    state: &ApiState,
    tenant: &TenantId,
    only: Option<&SubscriberId>,
    started: Instant,
) -> Result<Sorted, ApiError> {
    let mut done = Sorted::default();
    let mut active: HashMap<SubscriberId, bool> = HashMap::new();
    let mut cursor = None;
    loop {
        if started.elapsed() > BULK_TIME_BUDGET {
            return Ok(done);
        }
        let page = state
            .dead_letters
            .list(
                tenant,
                only,
                &PageRequest {
                    limit: 100,
                    cursor,
                    active: None,
                },
            )
            .await?;
        for entry in page.items {
            let Some(body) = entry.message.as_deref() else {
                // Its message is still in the queue (too large to move) or gone.
                continue;
            };
            let Ok(message) = DeliveryMessage::from_json(body) else {
                tracing::error!(event_id = %entry.event_id, "a dead-letter entry holds a message that does not parse; left in place");
                continue;
            };
            if entry.is_parked() {
                let enabled = match active.get(&entry.subscriber_id) {
                    Some(a) => *a,
                    None => {
                        let a = state
                            .subscribers
                            .get(tenant, &entry.subscriber_id)
                            .await?
                            .is_some_and(|s| s.active);
                        active.insert(entry.subscriber_id.clone(), a);
                        a
                    }
                };
                if enabled {
                    state
                        .publisher
                        .enqueue(std::slice::from_ref(&message))
                        .await?;
                    state
                        .dead_letters
                        .remove(tenant, &entry.event_id, &entry.subscriber_id)
                        .await?;
                    done.redriven += 1;
                }
                continue;
            }
            match settle(state, &message, entry.attempts).await? {
                Some(Fate::Redrive) => done.redriven += 1,
                Some(Fate::Drop) => {
                    state
                        .dead_letters
                        .remove(tenant, &entry.event_id, &entry.subscriber_id)
                        .await?;
                    done.dropped += 1;
                }
                None => {}
            }
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => {
                done.complete = true;
                return Ok(done);
            }
        }
    }
}

/// What was done with a subscriber's parked deliveries.
#[derive(Debug, Default, Clone, Copy)]
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
