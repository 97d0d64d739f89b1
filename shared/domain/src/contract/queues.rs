//! The cases of the delivery queue with its dead-letter queue, the stats counters (read back
//! through the attempt log), secret values, and the jq program runner.

use std::time::Duration;

use chrono::Utc;
use serde_json::value::RawValue;

use super::{event_type, fresh_tenant};
use crate::ids::{EventId, SubscriberId, TenantId};
use crate::jq::JqError;
use crate::model::{DeliveryMessage, DeliveryStats};
use crate::ports::{
    AttemptLog, DeadLetter, DeadLetterQueue, DeliveryQueue, ProgramRunner, SecretValues,
    StatsChange, StatsCounters,
};
use crate::series::{Bucket, SeriesChange, SeriesCounts};

fn message(tenant: &TenantId) -> DeliveryMessage {
    DeliveryMessage {
        v: 1,
        event_id: EventId::new(),
        tenant: tenant.clone(),
        subscriber_id: SubscriberId::new(),
        event_type: event_type("order.created"),
        timestamp: Utc::now(),
        data: RawValue::from_string(r#"{"id":1}"#.into()).expect("json"),
        correlation_id: "contract".into(),
        prior_attempts: 0,
    }
}

/// Messages to deliver are accepted in batches and with a delay; a dead-lettered one is read
/// back from the dead-letter queue with its reason and attempts, held from other readers
/// until released, and gone once deleted. `dlq` must be empty when the case starts.
pub async fn delivery_queue(queue: &dyn DeliveryQueue, dlq: &dyn DeadLetterQueue) {
    let tenant = fresh_tenant();
    let batch: Vec<DeliveryMessage> = (0..queue.max_batch().min(3))
        .map(|_| message(&tenant))
        .collect();
    let sent = queue.send_batch(&batch).await.expect("send_batch");
    assert!(sent.failed.is_empty(), "every entry accepted: {sent:?}");
    queue
        .send_later(&message(&tenant), Duration::from_secs(1))
        .await
        .expect("send_later");

    let dead = message(&tenant);
    let why = DeadLetter {
        reason: "attempts_exhausted: HTTP 500".into(),
        event_id: Some(dead.event_id.to_string()),
        subscriber_id: Some(dead.subscriber_id.to_string()),
        tenant: Some(tenant.to_string()),
        attempts: 3,
    };
    queue
        .dead_letter(&dead.to_json(), &why)
        .await
        .expect("dead_letter");

    let hold = Duration::from_secs(30);
    let got = dlq.receive(10, hold).await.expect("receive");
    assert_eq!(got.len(), 1, "the one dead letter");
    let first = &got[0];
    assert_eq!(first.body, dead.to_json(), "the body as it was");
    assert_eq!(first.reason.as_deref(), Some(why.reason.as_str()));
    assert_eq!(first.attempts, Some(3));
    assert!(dlq.held().await.expect("held") >= 1, "held while received");
    assert!(
        dlq.receive(10, hold).await.expect("receive").is_empty(),
        "hidden while held"
    );

    dlq.release(&first.handle).await.expect("release");
    let again = dlq.receive(10, hold).await.expect("receive");
    assert_eq!(again.len(), 1, "visible again once released");
    assert_eq!(again[0].id, first.id, "the same message");
    dlq.delete(&again[0].handle).await.expect("delete");
    assert_eq!(
        dlq.held().await.expect("held"),
        0,
        "nothing held once deleted"
    );
    assert!(
        dlq.receive(10, hold).await.expect("receive").is_empty(),
        "gone"
    );
}

/// The stats counters: a batch's changes add to the totals and series the attempt log
/// reads, and a batch applied twice counts once.
pub async fn stats_counters(counters: &dyn StatsCounters, log: &dyn AttemptLog) {
    let tenant = fresh_tenant();
    let sub = SubscriberId::new();
    let delta = DeliveryStats {
        success: 2,
        failure: 1,
        attempts: 5,
    };
    let changes = [
        StatsChange {
            tenant: tenant.clone(),
            subscriber: None,
            delta,
        },
        StatsChange {
            tenant: tenant.clone(),
            subscriber: Some(sub.clone()),
            delta,
        },
    ];
    let start = Bucket::Minute.start_of(Utc::now().timestamp());
    let counts = SeriesCounts {
        success: 2,
        failure: 1,
        ..SeriesCounts::default()
    };
    let series = [SeriesChange {
        tenant: tenant.clone(),
        subscriber: Some(sub.clone()),
        bucket: Bucket::Minute,
        start,
        delta: counts,
    }];
    let batch = format!("contract-{}", EventId::new());
    counters
        .apply(&batch, &changes, &series)
        .await
        .expect("apply");
    counters
        .apply(&batch, &changes, &series)
        .await
        .expect("apply again");
    assert_eq!(
        log.stats(&tenant, None).await.expect("stats"),
        delta,
        "counted once"
    );
    assert_eq!(log.stats(&tenant, Some(&sub)).await.expect("stats"), delta);
    let later = format!("contract-{}", EventId::new());
    counters
        .apply(&later, &changes[..1], &[])
        .await
        .expect("apply");
    assert_eq!(
        log.stats(&tenant, None).await.expect("stats"),
        delta.plus(delta),
        "another batch adds"
    );
    let points = log
        .series(&tenant, Some(&sub), Bucket::Minute, start - 600, start)
        .await
        .expect("series");
    assert_eq!(points, vec![(start, counts)], "the bucket, counted once");
    let none = log.stats(&fresh_tenant(), None).await.expect("stats");
    assert_eq!(none, DeliveryStats::default(), "another tenant has none");
}

/// Secret values: the value of a secret the caller stored as `id`; none for a name that
/// does not exist.
pub async fn secret_values(values: &dyn SecretValues, id: &str, value: &str) {
    assert_eq!(
        values.secret_string(id).await.expect("read").as_deref(),
        Some(value)
    );
    let missing = format!("skyhook/contract/missing-{}", EventId::new());
    assert_eq!(values.secret_string(&missing).await.expect("read"), None);
}

/// The jq runner: one output as JSON text; refused functions, bad programs and anything
/// but exactly one output are errors of the program, named.
pub async fn program_runner(runner: &dyn ProgramRunner) {
    let tenant = fresh_tenant();
    let event = r#"{"type":"order.created","data":{"id":7,"items":[1,2]}}"#;
    let out = runner
        .run(&tenant, "{kind: .type, n: (.data.items | length)}", event)
        .await
        .expect("run");
    let value: serde_json::Value = serde_json::from_str(&out).expect("JSON out");
    assert_eq!(value, serde_json::json!({"kind": "order.created", "n": 2}));
    runner.check(".data | keys").await.expect("a good program");
    match runner.check("env").await {
        Err(JqError::Compile(why)) => assert!(why.contains("not allowed"), "{why}"),
        other => panic!("env is refused when checked: {other:?}"),
    }
    assert!(
        matches!(
            runner.run(&tenant, "$ENV", event).await,
            Err(JqError::Compile(_))
        ),
        "and when run"
    );
    assert!(matches!(runner.check("{").await, Err(JqError::Compile(_))));
    assert!(matches!(
        runner.run(&tenant, ".data.items[]", event).await,
        Err(JqError::ManyOutputs)
    ));
    assert!(matches!(
        runner.run(&tenant, "empty", event).await,
        Err(JqError::NoOutput)
    ));
    assert!(matches!(
        runner.run(&tenant, ".data.id + \"x\"", event).await,
        Err(JqError::Runtime(_))
    ));
}
