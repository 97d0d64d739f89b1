//! The cases of the ports the delivery side writes: the attempt log, subscribers' health,
//! the dead-letter index, the audit trail, operational events and rate budgets.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{event_type, fresh_tenant};
use crate::breaker::BreakerState;
use crate::ids::{EventId, SubscriberId, TenantId};
use crate::model::{
    AttemptRecord, AuditRecord, DeadLetterEntry, DeliveryState, DeliveryStatus, OpsEvent,
    OpsEventKind, Outcome,
};
use crate::ports::{
    AttemptLog, AttemptQuery, AuditLog, DeadLetterStore, HealthStore, OpsEvents, PageRequest,
    RateBudget,
};

/// Now at millisecond precision, as stored.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_default()
}

fn attempt(
    tenant: &TenantId,
    event: &EventId,
    subscriber: &SubscriberId,
    n: u32,
    code: u16,
) -> AttemptRecord {
    let ok = (200..300).contains(&code);
    AttemptRecord {
        event_id: event.clone(),
        tenant: tenant.clone(),
        subscriber_id: subscriber.clone(),
        event_type: event_type("order.created"),
        attempt: n,
        outcome: if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        status_code: Some(code),
        latency_ms: 12,
        error: (!ok).then(|| format!("HTTP {code}")),
        response_body: Some("body".into()),
        url: "https://example.com/hook".into(),
        started_at: now(),
        finished_at: now(),
    }
}

fn status_of(a: &AttemptRecord, state: DeliveryState) -> DeliveryStatus {
    DeliveryStatus {
        subscriber_id: a.subscriber_id.clone(),
        status: state,
        attempts: a.attempt,
        last_status_code: a.status_code,
        last_error: a.error.clone(),
        updated_at: Some(a.finished_at),
    }
}

/// The attempt log: a status moves on with each attempt and never back (a late duplicate
/// is still logged), a final status holds, statuses are read one or many at a time, a
/// reopen succeeds only from the status it expects, and listings filter and order.
/// (Totals and series come from the stats consumer, which this case does not run.)
pub async fn attempt_log(log: &dyn AttemptLog) {
    let tenant = fresh_tenant();
    let (event, sub, other) = (EventId::new(), SubscriberId::new(), SubscriberId::new());
    let first = attempt(&tenant, &event, &sub, 1, 500);
    log.record(&first, &status_of(&first, DeliveryState::Retrying))
        .await
        .expect("record");
    let status = log.status(&tenant, &event, &sub).await.expect("status");
    let status = status.expect("a status after the first attempt");
    assert_eq!(
        (status.status, status.attempts, status.last_status_code),
        (DeliveryState::Retrying, 1, Some(500)),
        "the first attempt sets the status"
    );
    let second = attempt(&tenant, &event, &sub, 2, 200);
    log.record(&second, &status_of(&second, DeliveryState::Delivered))
        .await
        .expect("record");
    // A late duplicate of the first attempt does not undo the delivery.
    log.record(&first, &status_of(&first, DeliveryState::Retrying))
        .await
        .expect("late record");
    let status = log.status(&tenant, &event, &sub).await.expect("status");
    assert_eq!(
        status.map(|s| (s.status, s.attempts)),
        Some((DeliveryState::Delivered, 2)),
        "a status never goes back to an earlier attempt"
    );
    // Nor does a status set without an attempt move a final one.
    let late = DeliveryStatus {
        status: DeliveryState::SubscriberDeleted,
        ..status_of(&second, DeliveryState::SubscriberDeleted)
    };
    log.set_status(&tenant, &event, &late).await.expect("set");
    let status = log.status(&tenant, &event, &sub).await.expect("status");
    assert_eq!(
        status.map(|s| s.status),
        Some(DeliveryState::Delivered),
        "a delivered status holds"
    );
    let mut numbers: Vec<u32> = log
        .attempts(&tenant, &event, &sub)
        .await
        .expect("attempts")
        .iter()
        .map(|a| a.attempt)
        .collect();
    numbers.dedup();
    assert_eq!(numbers, vec![1, 2], "attempts in attempt order");

    // A status set without an attempt, read with others.
    let parked = DeliveryStatus {
        subscriber_id: other.clone(),
        status: DeliveryState::Failed,
        attempts: 3,
        last_status_code: None,
        last_error: Some("attempts_exhausted: HTTP 500".into()),
        updated_at: Some(now()),
    };
    log.set_status(&tenant, &event, &parked).await.expect("set");
    let mut many = log
        .statuses(
            &tenant,
            &event,
            &[sub.clone(), other.clone(), SubscriberId::new()],
        )
        .await
        .expect("statuses");
    many.sort_by(|a, b| a.subscriber_id.cmp(&b.subscriber_id));
    let mut want = vec![
        (sub.clone(), DeliveryState::Delivered),
        (other.clone(), DeliveryState::Failed),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        many.iter()
            .map(|s| (s.subscriber_id.clone(), s.status))
            .collect::<Vec<_>>(),
        want,
        "statuses of those that have one"
    );

    // A reopen from the status it expects, once.
    let reopened = DeliveryStatus {
        status: DeliveryState::Pending,
        last_error: None,
        ..parked.clone()
    };
    assert!(
        log.replace_status(&tenant, &event, Some(&parked), &reopened)
            .await
            .expect("replace"),
        "a reopen from the stored status succeeds"
    );
    assert!(
        !log.replace_status(&tenant, &event, Some(&parked), &reopened)
            .await
            .expect("replace"),
        "a second reopen from the old status is refused"
    );
    let fresh = DeliveryStatus {
        subscriber_id: SubscriberId::new(),
        ..reopened.clone()
    };
    assert!(
        log.replace_status(&tenant, &event, None, &fresh)
            .await
            .expect("replace"),
        "a status where none was, from none"
    );

    // Listings: a subscriber's attempts, and one delivery's, filtered.
    let query = AttemptQuery {
        subscriber_id: Some(sub.clone()),
        limit: 100,
        ..AttemptQuery::default()
    };
    let page = log.list(&tenant, &query).await.expect("list");
    assert!(
        !page.items.is_empty() && page.items.iter().all(|a| a.subscriber_id == sub),
        "a subscriber's attempts only: {:?}",
        page.items
    );
    // One delivery's failures. (Without a subscriber, the adapter finds an event's
    // subscribers through the event's record, which this case does not write.)
    let query = AttemptQuery {
        event_id: Some(event.clone()),
        subscriber_id: Some(sub.clone()),
        outcome: Some(Outcome::Failure),
        limit: 100,
        ..AttemptQuery::default()
    };
    let page = log.list(&tenant, &query).await.expect("list");
    let mut found: Vec<_> = page
        .items
        .iter()
        .map(|a| {
            (
                a.event_id.clone(),
                a.subscriber_id.clone(),
                a.attempt,
                a.outcome,
            )
        })
        .collect();
    found.dedup();
    assert_eq!(
        found,
        vec![(event.clone(), sub.clone(), 1, Outcome::Failure)],
        "the delivery's failed attempt only"
    );
    let elsewhere = log
        .list(
            &fresh_tenant(),
            &AttemptQuery {
                limit: 10,
                ..AttemptQuery::default()
            },
        )
        .await
        .expect("list");
    assert!(elsewhere.items.is_empty(), "another tenant sees none");
}

/// Subscribers' health: failures count up from the first, the breaker opens once, one probe
/// is taken after the cool-down (and again only after its lease), and a reset returns what
/// was there.
pub async fn health_store(store: &dyn HealthStore) {
    let tenant = fresh_tenant();
    let (sub, other) = (SubscriberId::new(), SubscriberId::new());
    assert_eq!(
        store.get(&tenant, &sub).await.expect("get"),
        None,
        "healthy: none"
    );
    let t0 = now();
    assert!(
        !store
            .open(&tenant, &sub, t0, Duration::from_secs(30))
            .await
            .expect("open"),
        "a healthy subscriber's breaker is not opened"
    );
    let one = store
        .failed(&tenant, &sub, "HTTP 500", t0)
        .await
        .expect("failed");
    let later = t0 + chrono::Duration::seconds(5);
    let two = store
        .failed(&tenant, &sub, "HTTP 502", later)
        .await
        .expect("failed");
    assert_eq!(one.consecutive_failures, 1);
    assert_eq!(two.consecutive_failures, 2);
    assert_eq!(
        two.failing_since,
        Some(t0),
        "failing since the first failure"
    );
    assert_eq!(two.last_error.as_deref(), Some("HTTP 502"));
    assert_eq!(two.state, BreakerState::Closed);

    assert!(
        store
            .open(&tenant, &sub, later, Duration::from_secs(30))
            .await
            .expect("open"),
        "the breaker opens"
    );
    assert!(
        !store
            .open(&tenant, &sub, later, Duration::from_secs(60))
            .await
            .expect("open"),
        "an open breaker is not opened again"
    );
    let open = store
        .get(&tenant, &sub)
        .await
        .expect("get")
        .expect("health");
    assert_eq!(open.state, BreakerState::Open);
    assert_eq!(open.opened_at, Some(later));
    assert_eq!(open.retry_at, Some(later + chrono::Duration::seconds(30)));
    assert_eq!(open.cooldown, Duration::from_secs(30));

    let lease = Duration::from_secs(20);
    let early = later + chrono::Duration::seconds(10);
    assert!(
        !store
            .claim_probe(&tenant, &sub, early, lease)
            .await
            .expect("probe"),
        "no probe during the cool-down"
    );
    let due = later + chrono::Duration::seconds(31);
    assert!(
        store
            .claim_probe(&tenant, &sub, due, lease)
            .await
            .expect("probe"),
        "the probe"
    );
    assert!(
        !store
            .claim_probe(&tenant, &sub, due, lease)
            .await
            .expect("probe"),
        "one probe at a time"
    );
    let gone = due + chrono::Duration::seconds(21);
    assert!(
        store
            .claim_probe(&tenant, &sub, gone, lease)
            .await
            .expect("probe"),
        "another probe once the lease ran out"
    );
    assert_eq!(
        store
            .get(&tenant, &sub)
            .await
            .expect("get")
            .map(|h| h.state),
        Some(BreakerState::HalfOpen)
    );
    assert!(
        !store
            .claim_probe(&tenant, &other, gone, lease)
            .await
            .expect("probe"),
        "a healthy subscriber has no probe to take"
    );

    store
        .failed(&tenant, &other, "timed out", t0)
        .await
        .expect("failed");
    let many = store
        .get_many(&tenant, &[sub.clone(), other.clone(), SubscriberId::new()])
        .await
        .expect("get_many");
    assert_eq!(many.len(), 2, "the health of those that have one");
    assert_eq!(many[&other].consecutive_failures, 1);

    let old = store.reset(&tenant, &sub).await.expect("reset");
    assert_eq!(
        old.map(|h| h.state),
        Some(BreakerState::HalfOpen),
        "what it was"
    );
    assert_eq!(
        store.get(&tenant, &sub).await.expect("get"),
        None,
        "healthy again"
    );
    assert_eq!(store.reset(&tenant, &sub).await.expect("reset"), None);
}

fn dead(
    tenant: &TenantId,
    event: &EventId,
    sub: &SubscriberId,
    message: Option<&str>,
) -> DeadLetterEntry {
    DeadLetterEntry {
        tenant: tenant.clone(),
        event_id: event.clone(),
        subscriber_id: sub.clone(),
        event_type: event_type("order.created"),
        reason: if message.is_some() {
            crate::model::PARKED_REASON.into()
        } else {
            "attempts_exhausted: HTTP 500".into()
        },
        attempts: 3,
        dead_at: now(),
        message: message.map(str::to_string),
    }
}

/// The dead-letter index: entries listed oldest event first, by subscriber, page by page;
/// a parked message kept whole; removal; nothing across tenants.
pub async fn dead_letter_store(store: &dyn DeadLetterStore) {
    let tenant = fresh_tenant();
    let (sub, other) = (SubscriberId::new(), SubscriberId::new());
    let base = u128::try_from(Utc::now().timestamp_millis()).unwrap_or_default();
    let events: Vec<EventId> = (0..3).map(|i| EventId::minted_at(base + i)).collect();
    let kept = r#"{"event_id":"kept"}"#;
    // Written out of order.
    store
        .put(&dead(&tenant, &events[2], &sub, None))
        .await
        .expect("put");
    store
        .put(&dead(&tenant, &events[0], &sub, Some(kept)))
        .await
        .expect("put");
    store
        .put(&dead(&tenant, &events[1], &other, None))
        .await
        .expect("put");

    let all = store
        .list(
            &tenant,
            None,
            &PageRequest {
                limit: 10,
                ..PageRequest::default()
            },
        )
        .await
        .expect("list");
    let order: Vec<_> = all.items.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(order, events, "oldest event first");
    let mut parked = dead(&tenant, &events[0], &sub, Some(kept));
    parked.dead_at = all.items[0].dead_at;
    assert_eq!(all.items[0], parked, "read back as written");
    assert_eq!(
        all.items[0].message.as_deref(),
        Some(kept),
        "a parked message kept whole"
    );

    let mine = store
        .list(
            &tenant,
            Some(&sub),
            &PageRequest {
                limit: 10,
                ..PageRequest::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(
        mine.items
            .iter()
            .map(|e| e.event_id.clone())
            .collect::<Vec<_>>(),
        vec![events[0].clone(), events[2].clone()],
        "one subscriber's"
    );

    let first = store
        .list(
            &tenant,
            None,
            &PageRequest {
                limit: 2,
                ..PageRequest::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(first.items.len(), 2);
    let cursor = first.next_cursor.expect("a cursor to the rest");
    let rest = store
        .list(
            &tenant,
            None,
            &PageRequest {
                limit: 2,
                cursor: Some(cursor),
                ..PageRequest::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(
        rest.items
            .iter()
            .map(|e| e.event_id.clone())
            .collect::<Vec<_>>(),
        vec![events[2].clone()],
        "the next page"
    );
    assert_eq!(rest.next_cursor, None, "the last page");

    store
        .remove(&tenant, &events[0], &sub)
        .await
        .expect("remove");
    let left = store
        .list(
            &tenant,
            None,
            &PageRequest {
                limit: 10,
                ..PageRequest::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(left.items.len(), 2, "removed");
    let elsewhere = store
        .list(
            &fresh_tenant(),
            None,
            &PageRequest {
                limit: 10,
                ..PageRequest::default()
            },
        )
        .await
        .expect("list");
    assert!(elsewhere.items.is_empty(), "another tenant sees none");
}

/// The audit trail: newest first, page by page, per tenant.
pub async fn audit_log(log: &dyn AuditLog) {
    let tenant = fresh_tenant();
    let t0 = now();
    for i in 0..3 {
        let record = AuditRecord {
            tenant: tenant.clone(),
            at: t0 + chrono::Duration::seconds(i),
            actor: "key_contract".into(),
            action: "subscriber.update".into(),
            resource: format!("r{i}"),
            detail: Some(serde_json::json!({"fields": ["url"]})),
        };
        log.record(&record).await.expect("record");
    }
    let first = log
        .list(
            &tenant,
            &PageRequest {
                limit: 2,
                ..PageRequest::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(
        first
            .items
            .iter()
            .map(|r| r.resource.as_str())
            .collect::<Vec<_>>(),
        vec!["r2", "r1"],
        "newest first"
    );
    assert_eq!(first.items[0].at, t0 + chrono::Duration::seconds(2));
    assert_eq!(
        first.items[0].detail,
        Some(serde_json::json!({"fields": ["url"]}))
    );
    let rest = log
        .list(
            &tenant,
            &PageRequest {
                limit: 2,
                cursor: first.next_cursor,
                ..PageRequest::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(
        rest.items
            .iter()
            .map(|r| r.resource.as_str())
            .collect::<Vec<_>>(),
        vec!["r0"],
        "the next page"
    );
    let elsewhere = log
        .list(
            &fresh_tenant(),
            &PageRequest {
                limit: 10,
                ..PageRequest::default()
            },
        )
        .await
        .expect("list");
    assert!(elsewhere.items.is_empty(), "another tenant sees none");
}

/// Operational events: each kind is accepted.
pub async fn ops_events(ops: &dyn OpsEvents) {
    let tenant = fresh_tenant();
    let sub = SubscriberId::new();
    for kind in [
        OpsEventKind::SubscriberDisabled,
        OpsEventKind::BreakerOpened,
        OpsEventKind::BreakerClosed,
        OpsEventKind::DeliveryExhausted,
    ] {
        let event =
            OpsEvent::new(kind, &tenant, &sub, "contract", now()).with_event(&EventId::new());
        ops.emit(&event).await.expect("emit");
    }
}

/// Rate budgets: a second's budget gives out all of a take or none, per subscriber and
/// per second.
pub async fn rate_budget(budget: &dyn RateBudget) {
    let tenant = fresh_tenant();
    let (sub, other) = (SubscriberId::new(), SubscriberId::new());
    let second = Utc::now().timestamp();
    assert!(
        budget
            .take(&tenant, &sub, second, 3, 5)
            .await
            .expect("take")
    );
    assert!(
        !budget
            .take(&tenant, &sub, second, 3, 5)
            .await
            .expect("take"),
        "none when fewer are left"
    );
    assert!(
        budget
            .take(&tenant, &sub, second, 2, 5)
            .await
            .expect("take"),
        "the rest"
    );
    assert!(
        !budget
            .take(&tenant, &sub, second, 1, 5)
            .await
            .expect("take"),
        "spent"
    );
    assert!(
        budget
            .take(&tenant, &sub, second + 1, 5, 5)
            .await
            .expect("take"),
        "the next second is new"
    );
    assert!(
        budget
            .take(&tenant, &other, second, 5, 5)
            .await
            .expect("take"),
        "another subscriber has its own"
    );
}
