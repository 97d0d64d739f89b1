//! Sending deliveries again: redrive of the dead-letter queue, parked deliveries unparked
//! or ended, recovery of a time window's failures, and the resend of one delivery. The
//! rules live here; the HTTP handlers parse, call one of these and map the answer.
//!
//! Every path sends again through [`Redrive::requeue`]: the delivery's status is reopened
//! (`pending`) from the one read, so that a delivery moved on meanwhile by someone else is
//! left to them, and put back when the send fails.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::ids::{EventId, SubscriberId, TenantId};
use crate::model::{
    DeadLetterEntry, DeliveryMessage, DeliveryState, DeliveryStatus, Outcome,
    RECEIVES_EXHAUSTED_REASON, Subscriber,
};
use crate::ports::{
    AttemptLog, AttemptQuery, DeadLetterQueue, DeadLetterStore, DeadMessage, EventStore,
    PageRequest, StoreError, SubscriberStore,
};
use crate::publish::{PublishError, Publisher};

/// How long a redrive holds a message it received while it moves it into the index; only
/// a redrive that stops half-way (a crashed function) leaves it hidden this long.
const HOLD: Duration = Duration::from_secs(30);

/// A redrive, recovery or unpark that fails part way: what it did stays done.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Send(#[from] PublishError),
}

/// What became of one candidate for recovery or redrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    Sent,
    /// Its delivery moved on meanwhile (or has nothing to send): left as it is.
    Skipped,
}

/// What to do with a dead message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    Redrive,
    /// Its delivery moved on after it died: nothing to send.
    Drop,
}

/// What a redrive moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Redriven {
    pub redriven: usize,
    pub dropped: usize,
    /// False when the time budget ran out first; calling again goes on from there.
    pub complete: bool,
}

/// What was done with a subscriber's parked deliveries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Parked {
    /// Deliveries handled (sent again, or ended).
    pub handled: usize,
    /// False when the time budget ran out first; doing it again goes on from there.
    pub complete: bool,
}

/// What a recovery sent again.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    pub recovered: usize,
    pub skipped: usize,
    pub complete: bool,
}

/// Why a delivery cannot be resent now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResendRefusal {
    EventNotFound,
    SubscriberNotFound,
    /// Enable it first.
    SubscriberInactive,
    /// The event was not sent to that subscriber.
    NotARecipient,
    /// Queued (no status yet), pending or retrying: the state it is in.
    InProgress(&'static str),
    /// The payload was too large to keep beside the log; a DLQ redrive sends it.
    DataUnavailable,
    /// Its status moved while the resend looked at it.
    Changed,
}

#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    #[error("refused: {0:?}")]
    Refused(ResendRefusal),
    #[error(transparent)]
    Failed(#[from] RedriveError),
}

impl From<StoreError> for ResendError {
    fn from(e: StoreError) -> Self {
        ResendError::Failed(e.into())
    }
}

/// The redrive service.
#[derive(Clone)]
pub struct Redrive {
    pub subscribers: Arc<dyn SubscriberStore>,
    pub events: Arc<dyn EventStore>,
    pub log: Arc<dyn AttemptLog>,
    pub dead_letters: Arc<dyn DeadLetterStore>,
    pub dlq: Arc<dyn DeadLetterQueue>,
    /// Sends messages again, in queue-sized batches.
    pub publisher: Publisher,
    /// How long one call may work before it answers `complete: false`.
    pub budget: Duration,
}

impl Redrive {
    /// Reopens a delivery and sends it again as a new message that numbers its attempts on
    /// from `prior_attempts`. The status goes to `pending` first, so the new attempts are
    /// accepted and stats count the delivery once; if the send fails the status goes back
    /// (to `failed` when there was none).
    pub async fn requeue(
        &self,
        message: DeliveryMessage,
        stored: Option<&DeliveryStatus>,
        prior_attempts: u32,
    ) -> Result<Requeue, RedriveError> {
        let reopened = DeliveryStatus {
            subscriber_id: message.subscriber_id.clone(),
            status: DeliveryState::Pending,
            attempts: prior_attempts,
            last_status_code: stored.and_then(|s| s.last_status_code),
            last_error: stored.and_then(|s| s.last_error.clone()),
            updated_at: Some(Utc::now()),
        };
        let (tenant, event) = (&message.tenant, &message.event_id);
        if !self
            .log
            .replace_status(tenant, event, stored, &reopened)
            .await?
        {
            // Someone else moved this delivery on meanwhile; it is theirs now.
            return Ok(Requeue::Skipped);
        }
        let mut message = message.clone();
        message.prior_attempts = prior_attempts;
        if let Err(e) = self.publisher.enqueue(std::slice::from_ref(&message)).await {
            self.undo_reopen(&message, stored, &reopened, &e).await;
            return Err(e.into());
        }
        if let Err(e) = self
            .dead_letters
            .remove(&message.tenant, &message.event_id, &message.subscriber_id)
            .await
        {
            tracing::error!(error = %e, event_id = %message.event_id, "could not remove a re-sent delivery from the dead-letter index");
        }
        Ok(Requeue::Sent)
    }

    /// Puts a reopened status back after its message could not be sent: `pending` would tell
    /// the next redrive that this delivery was sent again, and it would drop the dead
    /// message. With no status before, the delivery is recorded as what it is, failed.
    async fn undo_reopen(
        &self,
        message: &DeliveryMessage,
        stored: Option<&DeliveryStatus>,
        reopened: &DeliveryStatus,
        error: &PublishError,
    ) {
        let previous = stored.cloned().unwrap_or_else(|| DeliveryStatus {
            status: DeliveryState::Failed,
            last_error: Some(format!("redrive could not send it again: {error}")),
            ..reopened.clone()
        });
        if let Err(undo) = self
            .log
            .replace_status(
                &message.tenant,
                &message.event_id,
                Some(reopened),
                &previous,
            )
            .await
        {
            tracing::error!(error = %undo, event_id = %message.event_id, "could not restore the status of a delivery that was not re-sent");
        }
    }

    /// A dead message is redriven unless its delivery moved on after it died: delivered
    /// since, or already sent again (by a recovery) and now in a newer round of attempts.
    /// `died_after` is the attempts it had made when it died.
    async fn disposition(
        &self,
        message: &DeliveryMessage,
        died_after: u32,
    ) -> Result<(Disposition, Option<DeliveryStatus>), StoreError> {
        let status = self
            .log
            .status(&message.tenant, &message.event_id, &message.subscriber_id)
            .await?;
        let died_after = died_after.max(message.prior_attempts);
        let disposition = match &status {
            None => Disposition::Redrive,
            Some(s) => match s.status {
                // Delivered, or ended because its subscriber was deleted: nothing to send.
                DeliveryState::Delivered | DeliveryState::SubscriberDeleted => Disposition::Drop,
                DeliveryState::Failed => Disposition::Redrive,
                // Reopened by a recovery: a new message is already on its way.
                DeliveryState::Pending => Disposition::Drop,
                // Still retrying at the attempt it died on: the queue's redrive policy moved
                // it without the delivery function seeing its end.
                DeliveryState::Retrying if s.attempts <= died_after => Disposition::Redrive,
                DeliveryState::Retrying => Disposition::Drop,
            },
        };
        Ok((disposition, status))
    }

    /// Sends one dead delivery back to the queue, or drops it when its delivery moved on.
    /// `None` when its status moved while we looked: it is left for a later redrive.
    async fn settle(
        &self,
        message: &DeliveryMessage,
        died_after: u32,
    ) -> Result<Option<Disposition>, RedriveError> {
        let (disposition, status) = self.disposition(message, died_after).await?;
        if disposition == Disposition::Redrive {
            let prior = died_after
                .max(message.prior_attempts)
                .max(status.as_ref().map_or(0, |s| s.attempts));
            let sent = self
                .requeue(message.clone(), status.as_ref(), prior)
                .await?;
            if sent == Requeue::Skipped {
                return Ok(None);
            }
        }
        Ok(Some(disposition))
    }

    /// Moves the tenant's dead messages (all, or one subscriber's) back to the delivery
    /// queue. First the SQS dead-letter queue is emptied into the dead-letter index (every
    /// tenant's message into its own tenant's entries), then the tenant's entries that hold
    /// a message are sent again: a parked one when its subscriber is enabled, any other
    /// unless its delivery moved on since. What was moved is counted even when a later step
    /// fails.
    pub async fn redrive(
        &self,
        tenant: &TenantId,
        only: Option<&SubscriberId>,
    ) -> (Redriven, Result<(), RedriveError>) {
        let started = Instant::now();
        let mut total = Redriven::default();
        let sorted = match self.sort_queue(tenant, only, started).await {
            Ok(sorted) => sorted,
            Err(e) => return (total, Err(e)),
        };
        total.redriven += sorted.redriven;
        total.dropped += sorted.dropped;
        let indexed = match self.redrive_indexed(tenant, only, started).await {
            Ok(indexed) => indexed,
            Err(e) => return (total, Err(e)),
        };
        total.redriven += indexed.redriven;
        total.dropped += indexed.dropped;
        total.complete = sorted.complete && indexed.complete;
        (total, Ok(()))
    }

    /// Empties the SQS dead-letter queue into the dead-letter index, every tenant's message
    /// into its own tenant's entry, so that no redrive ever holds another tenant's message
    /// for longer than it takes to move it. A message too large for an entry stays in the
    /// queue: the caller's own is redriven from there, another tenant's is released at once.
    ///
    /// Complete when a receive brings nothing not yet seen and no reader holds a message
    /// (one being moved by a concurrent redrive is in the index a moment later).
    async fn sort_queue(
        &self,
        tenant: &TenantId,
        only: Option<&SubscriberId>,
        started: Instant,
    ) -> Result<Redriven, RedriveError> {
        let mut done = Redriven::default();
        let mut seen: HashSet<String> = HashSet::new();
        loop {
            if started.elapsed() > self.budget {
                return Ok(done);
            }
            let batch = self.dlq.receive(10, HOLD).await?;
            let fresh = batch.iter().filter(|d| seen.insert(d.id.clone())).count();
            for dead in &batch {
                match self.sort_one(tenant, only, dead).await {
                    Ok(Sorting::Moved) => {}
                    Ok(Sorting::Settled(Disposition::Redrive)) => done.redriven += 1,
                    Ok(Sorting::Settled(Disposition::Drop)) => done.dropped += 1,
                    Ok(Sorting::Left) => self.dlq.release(&dead.handle).await?,
                    Err(e) => {
                        // Visible again for the next redrive, whoever runs it.
                        if let Err(undo) = self.dlq.release(&dead.handle).await {
                            tracing::warn!(error = %undo, "could not release a dead letter; it reappears after its visibility timeout");
                        }
                        return Err(e);
                    }
                }
            }
            if fresh == 0 {
                if self.dlq.held().await? == 0 {
                    done.complete = true;
                    return Ok(done);
                }
                // Another redrive is moving messages; they are in the index in a moment.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    async fn sort_one(
        &self,
        tenant: &TenantId,
        only: Option<&SubscriberId>,
        dead: &DeadMessage,
    ) -> Result<Sorting, RedriveError> {
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
            self.dead_letters.put(&entry).await?;
            self.dlq.delete(&dead.handle).await?;
            return Ok(Sorting::Moved);
        }
        if &message.tenant != tenant || only.is_some_and(|s| s != &message.subscriber_id) {
            return Ok(Sorting::Left);
        }
        let Some(disposition) = self.settle(&message, died_after).await? else {
            return Ok(Sorting::Left);
        };
        self.dlq.delete(&dead.handle).await?;
        if let Err(e) = self
            .dead_letters
            .remove(&message.tenant, &message.event_id, &message.subscriber_id)
            .await
        {
            tracing::error!(error = %e, event_id = %message.event_id, "could not remove a dead letter from the index");
        }
        Ok(Sorting::Settled(disposition))
    }

    /// Sends again the tenant's dead-letter entries that hold their message, oldest first:
    /// a parked delivery when its subscriber is enabled again (a disabled one's stay
    /// parked), any other unless its delivery moved on since.
    async fn redrive_indexed(
        &self,
        tenant: &TenantId,
        only: Option<&SubscriberId>,
        started: Instant,
    ) -> Result<Redriven, RedriveError> {
        let mut done = Redriven::default();
        let mut enabled: HashMap<SubscriberId, bool> = HashMap::new();
        let mut pages = self.pages(tenant, only, started);
        while let Some(entries) = pages.next().await? {
            for entry in entries {
                let Some(message) = held_message(&entry) else {
                    continue;
                };
                if !entry.is_parked() {
                    match self.settle(&message, entry.attempts).await? {
                        Some(Disposition::Redrive) => done.redriven += 1,
                        Some(Disposition::Drop) => {
                            self.remove(&entry).await?;
                            done.dropped += 1;
                        }
                        None => {}
                    }
                } else if self.is_enabled(&mut enabled, tenant, &entry).await? {
                    self.publisher
                        .enqueue(std::slice::from_ref(&message))
                        .await?;
                    self.remove(&entry).await?;
                    done.redriven += 1;
                }
            }
        }
        done.complete = pages.complete;
        Ok(done)
    }

    /// Whether the entry's subscriber is enabled, read once per call.
    async fn is_enabled(
        &self,
        known: &mut HashMap<SubscriberId, bool>,
        tenant: &TenantId,
        entry: &DeadLetterEntry,
    ) -> Result<bool, StoreError> {
        if let Some(enabled) = known.get(&entry.subscriber_id) {
            return Ok(*enabled);
        }
        let enabled = self
            .subscribers
            .get(tenant, &entry.subscriber_id)
            .await?
            .is_some_and(|s| s.active);
        known.insert(entry.subscriber_id.clone(), enabled);
        Ok(enabled)
    }

    async fn remove(&self, entry: &DeadLetterEntry) -> Result<(), StoreError> {
        self.dead_letters
            .remove(&entry.tenant, &entry.event_id, &entry.subscriber_id)
            .await
    }

    /// The tenant's dead-letter entries (or one subscriber's), oldest first, a page at a
    /// time, within the time budget counted from `started`.
    fn pages<'a>(
        &'a self,
        tenant: &'a TenantId,
        only: Option<&'a SubscriberId>,
        started: Instant,
    ) -> Pages<'a> {
        Pages {
            store: self.dead_letters.as_ref(),
            tenant,
            only,
            deadline: started + self.budget,
            cursor: None,
            complete: false,
        }
    }

    /// The subscriber's parked deliveries, ten at a time, handed to `each` and then taken
    /// out of the index, within the time budget.
    async fn for_each_parked<F, Fut>(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
        mut each: F,
    ) -> Result<Parked, RedriveError>
    where
        F: FnMut(Vec<(DeadLetterEntry, DeliveryMessage)>) -> Fut,
        Fut: std::future::Future<Output = Result<(), RedriveError>>,
    {
        let mut done = Parked::default();
        let mut pages = self.pages(tenant, Some(subscriber), Instant::now());
        while let Some(entries) = pages.next().await? {
            let parked: Vec<(DeadLetterEntry, DeliveryMessage)> = entries
                .into_iter()
                .filter_map(|e| {
                    let message = DeliveryMessage::from_json(e.parked_message()?).ok()?;
                    let message = belongs(&e, message)?;
                    Some((e, message))
                })
                .collect();
            for chunk in parked.chunks(10) {
                each(chunk.to_vec()).await?;
                for (entry, _) in chunk {
                    self.remove(entry).await?;
                }
                done.handled += chunk.len();
            }
        }
        done.complete = pages.complete;
        Ok(done)
    }

    /// Sends an enabled subscriber's parked deliveries back to the queue, ten to a batch,
    /// each with the attempts it already had.
    pub async fn unpark(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
    ) -> Result<Parked, RedriveError> {
        self.for_each_parked(tenant, subscriber, |chunk| async move {
            let messages: Vec<DeliveryMessage> = chunk.into_iter().map(|(_, m)| m).collect();
            Ok(self.publisher.enqueue(&messages).await?)
        })
        .await
    }

    /// Ends a deleted subscriber's parked deliveries: status `subscriber_deleted`, out of
    /// the index.
    pub async fn end_parked(
        &self,
        tenant: &TenantId,
        subscriber: &SubscriberId,
    ) -> Result<Parked, RedriveError> {
        self.for_each_parked(tenant, subscriber, |chunk| async move {
            for (entry, message) in chunk {
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
                self.log.set_status(tenant, &entry.event_id, &status).await?;
            }
            Ok(())
        })
        .await
    }

    /// Re-enqueues the subscriber's deliveries that failed for good and had a failed attempt
    /// in `[since, until]`, rebuilt from the stored events. Deliveries that are no longer
    /// failed (delivered since, or already recovered) are skipped, so calling it again is
    /// safe.
    pub async fn recover(
        &self,
        sub: &Subscriber,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Recovered, RedriveError> {
        let started = Instant::now();
        let mut result = Recovered::default();
        let mut seen: HashSet<EventId> = HashSet::new();
        let mut query = AttemptQuery {
            subscriber_id: Some(sub.id.clone()),
            outcome: Some(Outcome::Failure),
            since: Some(since),
            until,
            limit: 100,
            ..AttemptQuery::default()
        };
        result.complete = loop {
            if started.elapsed() > self.budget {
                break false;
            }
            let page = self.log.list(&sub.tenant, &query).await?;
            for attempt in &page.items {
                if seen.insert(attempt.event_id.clone()) {
                    match self.recover_one(sub, &attempt.event_id).await? {
                        Requeue::Sent => result.recovered += 1,
                        Requeue::Skipped => result.skipped += 1,
                    }
                }
            }
            match page.next_cursor {
                Some(c) => query.cursor = Some(c),
                None => break true,
            }
        };
        Ok(result)
    }

    async fn recover_one(
        &self,
        sub: &Subscriber,
        event_id: &EventId,
    ) -> Result<Requeue, RedriveError> {
        let Some(status) = self.log.status(&sub.tenant, event_id, &sub.id).await? else {
            return Ok(Requeue::Skipped);
        };
        if status.status != DeliveryState::Failed {
            return Ok(Requeue::Skipped);
        }
        let Some(event) = self.events.get_event(&sub.tenant, event_id).await? else {
            return Ok(Requeue::Skipped);
        };
        // Payloads too large to keep beside the log can only come back through a DLQ
        // redrive.
        let Some(data) = event.data.as_deref() else {
            return Ok(Requeue::Skipped);
        };
        let message = DeliveryMessage::for_subscriber(&event, data, &sub.id);
        self.requeue(message, Some(&status), status.attempts).await
    }

    /// Sends an event to one of its subscribers again, with the same `webhook-id`: a
    /// finished delivery is reopened and queued, its new attempts numbering on from the
    /// ones it had (returned). Refused while the delivery is under way, and for a subscriber
    /// that is inactive or was not a recipient.
    pub async fn resend(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        sub_id: &SubscriberId,
    ) -> Result<u32, ResendError> {
        use ResendRefusal::*;
        let refuse = |r| Err(ResendError::Refused(r));
        let Some(event) = self.events.get_event(tenant, event_id).await? else {
            return refuse(EventNotFound);
        };
        let Some(sub) = self.subscribers.get(tenant, sub_id).await? else {
            return refuse(SubscriberNotFound);
        };
        if !sub.active {
            return refuse(SubscriberInactive);
        }
        if !event.subscriber_ids.contains(sub_id) {
            return refuse(NotARecipient);
        }
        // No status yet: its message is queued and not attempted, so it is under way too.
        let status = self.log.status(tenant, event_id, sub_id).await?;
        match status.as_ref().map(|s| s.status) {
            None => return refuse(InProgress("queued")),
            Some(s @ (DeliveryState::Pending | DeliveryState::Retrying)) => {
                return refuse(InProgress(s.as_str()));
            }
            Some(_) => {}
        }
        let Some(data) = event.data.as_deref() else {
            return refuse(DataUnavailable);
        };
        let attempts = status.as_ref().map_or(0, |s| s.attempts);
        let message = DeliveryMessage::for_subscriber(&event, data, sub_id);
        match self.requeue(message, status.as_ref(), attempts).await? {
            Requeue::Sent => Ok(attempts),
            Requeue::Skipped => refuse(Changed),
        }
    }
}

/// What became of one message received from the SQS dead-letter queue.
enum Sorting {
    /// Moved into its tenant's dead-letter index and deleted from the queue.
    Moved,
    /// The caller's, too large for the index: redriven or dropped from the queue.
    Settled(Disposition),
    /// To be released: unreadable, another tenant's and too large, or status in motion.
    Left,
}

/// Pages of dead-letter entries, until the last or the deadline.
struct Pages<'a> {
    store: &'a dyn DeadLetterStore,
    tenant: &'a TenantId,
    only: Option<&'a SubscriberId>,
    deadline: Instant,
    cursor: Option<String>,
    /// Whether every page was read (rather than the deadline passing first).
    complete: bool,
}

impl Pages<'_> {
    /// The next page; `None` after the last one, or once the deadline has passed.
    async fn next(&mut self) -> Result<Option<Vec<DeadLetterEntry>>, StoreError> {
        if self.complete || Instant::now() > self.deadline {
            return Ok(None);
        }
        let request = PageRequest {
            limit: 100,
            cursor: self.cursor.take(),
            active: None,
        };
        let page = self.store.list(self.tenant, self.only, &request).await?;
        match page.next_cursor {
            Some(next) => self.cursor = Some(next),
            None => self.complete = true,
        }
        Ok(Some(page.items))
    }
}

/// The message an entry holds, when it holds one that parses (one too large to move stays
/// in the queue).
fn held_message(entry: &DeadLetterEntry) -> Option<DeliveryMessage> {
    let body = entry.message.as_deref()?;
    match DeliveryMessage::from_json(body) {
        Ok(message) => belongs(entry, message),
        Err(_) => {
            tracing::error!(event_id = %entry.event_id, "a dead-letter entry holds a message that does not parse; left in place");
            None
        }
    }
}

/// The message, when it is the entry's own: its tenant, event and subscriber. What is sent
/// again goes by the message, so one that names anyone else is never sent (every writer
/// keeps them alike; this holds the redrive to it).
fn belongs(entry: &DeadLetterEntry, message: DeliveryMessage) -> Option<DeliveryMessage> {
    let own = message.tenant == entry.tenant
        && message.event_id == entry.event_id
        && message.subscriber_id == entry.subscriber_id;
    if !own {
        tracing::error!(event_id = %entry.event_id, "a dead-letter entry holds another delivery's message; left in place");
    }
    own.then_some(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_type::EventType;
    use crate::memory::{
        MemoryAttemptLog, MemoryDeadLetterStore, MemoryDeliveryQueue, MemoryEventStore,
        MemoryIdempotencyStore, MemorySubscriberStore, NoProgramRunner,
    };
    use crate::model::{DeadLetterReason, PARKED_REASON};
    use crate::ports::{DeadLetter, DeliveryQueue};
    use serde_json::value::RawValue;

    struct Fixture {
        redrive: Redrive,
        queue: Arc<MemoryDeliveryQueue>,
        log: Arc<MemoryAttemptLog>,
        dead: Arc<MemoryDeadLetterStore>,
        tenant: TenantId,
    }

    fn fixture() -> Fixture {
        let subscribers = Arc::new(MemorySubscriberStore::default());
        let events = Arc::new(MemoryEventStore::default());
        let queue = Arc::new(MemoryDeliveryQueue::default());
        let log = Arc::new(MemoryAttemptLog::default());
        let dead = Arc::new(MemoryDeadLetterStore::default());
        let publisher = Publisher {
            subscribers: subscribers.clone(),
            events: events.clone(),
            queue: queue.clone(),
            idempotency: Arc::new(MemoryIdempotencyStore::default()),
            idempotency_ttl: Duration::from_secs(3600),
            filters: Arc::new(NoProgramRunner),
            gate: None,
        };
        let redrive = Redrive {
            subscribers,
            events,
            log: log.clone(),
            dead_letters: dead.clone(),
            dlq: queue.clone(),
            publisher,
            budget: Duration::from_secs(20),
        };
        Fixture {
            redrive,
            queue,
            log,
            dead,
            tenant: TenantId::parse("acme").unwrap(),
        }
    }

    fn message(tenant: &TenantId, sub: &SubscriberId) -> DeliveryMessage {
        DeliveryMessage {
            v: 1,
            event_id: EventId::new(),
            tenant: tenant.clone(),
            subscriber_id: sub.clone(),
            event_type: EventType::parse("order.created").unwrap(),
            timestamp: Utc::now(),
            data: RawValue::from_string("{}".into()).unwrap(),
            correlation_id: "c".into(),
            prior_attempts: 0,
        }
    }

    fn failed(attempts: u32, sub: &SubscriberId) -> DeliveryStatus {
        DeliveryStatus {
            subscriber_id: sub.clone(),
            status: DeliveryState::Failed,
            attempts,
            last_status_code: Some(500),
            last_error: Some("HTTP 500".into()),
            updated_at: Some(Utc::now()),
        }
    }

    fn sent_ids(f: &Fixture) -> Vec<EventId> {
        let sent = f.queue.sent.lock().unwrap();
        sent.iter().map(|m| m.event_id.clone()).collect()
    }

    #[tokio::test]
    async fn a_failed_dead_letter_is_sent_again_reopened_and_a_delivered_one_dropped() {
        let f = fixture();
        let sub = SubscriberId::new();
        let (dead, done) = (message(&f.tenant, &sub), message(&f.tenant, &sub));
        for (m, state) in [
            (&dead, DeliveryState::Failed),
            (&done, DeliveryState::Delivered),
        ] {
            let status = DeliveryStatus {
                status: state,
                ..failed(3, &sub)
            };
            f.log
                .set_status(&f.tenant, &m.event_id, &status)
                .await
                .unwrap();
            let why = DeadLetter {
                reason: DeadLetterReason::AttemptsExhausted("HTTP 500".into()).text(),
                event_id: None,
                subscriber_id: None,
                tenant: None,
                attempts: 3,
            };
            f.queue.dead_letter(&m.to_json(), &why).await.unwrap();
        }
        let (moved, result) = f.redrive.redrive(&f.tenant, None).await;
        result.unwrap();
        assert_eq!(
            (moved.redriven, moved.dropped, moved.complete),
            (1, 1, true)
        );
        assert_eq!(
            sent_ids(&f),
            vec![dead.event_id.clone()],
            "only the failed one"
        );
        let sent = f.queue.sent.lock().unwrap()[0].clone();
        assert_eq!(sent.prior_attempts, 3, "its attempts number on");
        let status = f.log.status(&f.tenant, &dead.event_id, &sub).await.unwrap();
        assert_eq!(status.map(|s| s.status), Some(DeliveryState::Pending));
        let page = PageRequest {
            limit: 10,
            ..Default::default()
        };
        let left = f.dead.list(&f.tenant, None, &page).await.unwrap();
        assert!(left.items.is_empty(), "the index is empty");
    }

    #[tokio::test]
    async fn another_tenants_redrive_sends_nothing_of_this_ones() {
        let f = fixture();
        let sub = SubscriberId::new();
        let m = message(&f.tenant, &sub);
        f.log
            .set_status(&f.tenant, &m.event_id, &failed(3, &sub))
            .await
            .unwrap();
        let why = DeadLetter {
            reason: "attempts_exhausted: HTTP 500".into(),
            event_id: None,
            subscriber_id: None,
            tenant: None,
            attempts: 3,
        };
        f.queue.dead_letter(&m.to_json(), &why).await.unwrap();
        let other = TenantId::parse("globex").unwrap();
        let (moved, result) = f.redrive.redrive(&other, None).await;
        result.unwrap();
        assert_eq!((moved.redriven, moved.dropped), (0, 0));
        assert!(sent_ids(&f).is_empty(), "nothing sent");
        // Sorted into its own tenant's index, where its own redrive finds it.
        let (moved, result) = f.redrive.redrive(&f.tenant, None).await;
        result.unwrap();
        assert_eq!(moved.redriven, 1);
        assert_eq!(sent_ids(&f), vec![m.event_id]);
    }

    #[tokio::test]
    async fn an_entry_holding_another_deliverys_message_is_never_sent() {
        let f = fixture();
        let sub = SubscriberId::new();
        let stranger = message(&TenantId::parse("globex").unwrap(), &SubscriberId::new());
        let entry = DeadLetterEntry {
            tenant: f.tenant.clone(),
            event_id: EventId::new(),
            subscriber_id: sub.clone(),
            event_type: EventType::parse("order.created").unwrap(),
            reason: PARKED_REASON.into(),
            attempts: 1,
            dead_at: Utc::now(),
            message: Some(stranger.to_json()),
        };
        f.dead.put(&entry).await.unwrap();
        let parked = f.redrive.unpark(&f.tenant, &sub).await.unwrap();
        assert_eq!(parked.handled, 0);
        let (moved, result) = f.redrive.redrive(&f.tenant, None).await;
        result.unwrap();
        assert_eq!(moved.redriven, 0);
        assert!(
            sent_ids(&f).is_empty(),
            "the other tenant's delivery is not sent"
        );
    }

    #[tokio::test]
    async fn parked_deliveries_are_unparked_in_tens_or_ended_as_subscriber_deleted() {
        let f = fixture();
        let sub = SubscriberId::new();
        let mut ids = Vec::new();
        for _ in 0..12 {
            let mut m = message(&f.tenant, &sub);
            m.prior_attempts = 2;
            ids.push(m.event_id.clone());
            let entry = DeadLetterEntry {
                tenant: f.tenant.clone(),
                event_id: m.event_id.clone(),
                subscriber_id: sub.clone(),
                event_type: m.event_type.clone(),
                reason: PARKED_REASON.into(),
                attempts: 2,
                dead_at: Utc::now(),
                message: Some(m.to_json()),
            };
            f.dead.put(&entry).await.unwrap();
        }
        let parked = f.redrive.unpark(&f.tenant, &sub).await.unwrap();
        assert_eq!((parked.handled, parked.complete), (12, true));
        let mut sent = sent_ids(&f);
        sent.sort();
        ids.sort();
        assert_eq!(sent, ids);
        assert_eq!(
            *f.queue.batches.lock().unwrap(),
            vec![10, 2],
            "ten to a batch"
        );

        let gone = SubscriberId::new();
        let m = message(&f.tenant, &gone);
        let entry = DeadLetterEntry {
            tenant: f.tenant.clone(),
            event_id: m.event_id.clone(),
            subscriber_id: gone.clone(),
            event_type: m.event_type.clone(),
            reason: PARKED_REASON.into(),
            attempts: 0,
            dead_at: Utc::now(),
            message: Some(m.to_json()),
        };
        f.dead.put(&entry).await.unwrap();
        let ended = f.redrive.end_parked(&f.tenant, &gone).await.unwrap();
        assert_eq!(ended.handled, 1);
        let status = f.log.status(&f.tenant, &m.event_id, &gone).await.unwrap();
        assert_eq!(
            status.map(|s| s.status),
            Some(DeliveryState::SubscriberDeleted)
        );
    }
}
