//! The contract suite: the cases every implementation of a port must pass, run against the
//! in-memory twins (unit tests here) and against the AWS adapters (`tests/it/contract.rs`,
//! on the emulator). A twin that passes them can stand in for its adapter in unit tests; one
//! that nothing runs these against does not exist.
//!
//! Each case panics with a message naming the broken rule. Ids are fresh per call, so the
//! suite can run against a shared table.

mod delivery;
mod queues;
mod sources;
pub use delivery::{
    attempt_log, audit_log, dead_letter_store, health_store, ops_events, rate_budget,
};
pub use queues::{delivery_queue, program_runner, secret_values, stats_counters};
pub use sources::{replay_guard, source_secrets, source_store};

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use crate::event_type::{EventType, EventTypeFilter};
use crate::ids::{ApiKeyId, EventId, SubscriberId, TenantId};
use crate::model::{ApiKey, EventRecord, Role, Subscriber, Target};
use crate::ports::{
    ApiKeyStore, EventStore, IdempotencyClaim, IdempotencyStore, PageRequest, PublishReceipt,
    SecretStore, StoreError, SubscriberStore,
};
use crate::secret::SigningSecret;
use crate::signing::SignatureScheme;
use crate::url::{SubscriberUrl, UrlPolicy};

/// A tenant no other run of the suite uses.
pub fn fresh_tenant() -> TenantId {
    let id = SubscriberId::new();
    TenantId::parse(&format!("c{}", id.as_str()[4..].to_ascii_lowercase())).expect("tenant id")
}

fn subscriber(tenant: &TenantId, filters: &[&str], active: bool) -> Subscriber {
    // Millisecond precision, as stored.
    let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_default();
    Subscriber {
        id: SubscriberId::new(),
        tenant: tenant.clone(),
        url: SubscriberUrl::parse("https://example.com/hook", UrlPolicy::STRICT).expect("url"),
        event_types: filters
            .iter()
            .map(|f| EventTypeFilter::parse(f).expect("filter"))
            .collect(),
        active,
        description: Some("contract".into()),
        headers: BTreeMap::from([("x-team".to_string(), "shop".to_string())]),
        signature_scheme: SignatureScheme::Standard,
        created_at: now,
        updated_at: now,
        secret_version: 0,
        max_concurrency: crate::model::DEFAULT_MAX_CONCURRENCY,
        rate_limit: None,
        disabled_reason: None,
        // Kept and read back as written, like every other field.
        transform: Some("{kind: .type, order: .data.id}".into()),
        filter: None,
    }
}

fn event_type(s: &str) -> EventType {
    EventType::parse(s).expect("event type")
}

/// Subscribers: create, read, conflicts, routes for fan-out, edits, the directory version,
/// secret versions, listing and deletion.
pub async fn subscriber_store(store: &dyn SubscriberStore) {
    let tenant = fresh_tenant();
    let other = fresh_tenant();
    let v0 = version(store, &tenant).await;

    let orders = subscriber(&tenant, &["order.*", "order.created"], true);
    let all = subscriber(&tenant, &["*"], true);
    let off = subscriber(&tenant, &["order.created"], false);
    let elsewhere = subscriber(&other, &["*"], true);
    for s in [&orders, &all, &off, &elsewhere] {
        store.create(s).await.expect("create");
    }
    assert!(
        matches!(store.create(&orders).await, Err(StoreError::Conflict(_))),
        "creating an existing id is a conflict"
    );
    let read = store.get(&tenant, &orders.id).await.expect("get");
    assert_eq!(
        read.as_ref(),
        Some(&orders),
        "a subscriber reads back as written"
    );
    assert_eq!(
        store.get(&other, &orders.id).await.expect("get"),
        None,
        "another tenant's subscriber is unknown"
    );
    assert!(
        version(store, &tenant).await > v0,
        "a create bumps the version"
    );

    // Fan-out: the active subscribers whose filters match, sorted, each once.
    let mut want = vec![orders.id.clone(), all.id.clone()];
    want.sort();
    assert_eq!(
        targets(store, &tenant, "order.created").await,
        want,
        "targets are the matching active subscribers, once each, by id"
    );
    assert_eq!(
        targets(store, &tenant, "invoice.paid").await,
        vec![all.id.clone()],
        "a type only `*` matches reaches only `*`"
    );
    assert_eq!(
        targets(store, &tenant, "orders.x").await,
        vec![all.id.clone()],
        "`order.*` does not match `orders.x`"
    );

    // Edits: filters and activity change the fan-out at once; a stale edit is refused.
    let before = version(store, &tenant).await;
    let mut edited = orders.clone();
    edited.event_types = vec![EventTypeFilter::parse("invoice.*").expect("filter")];
    edited.updated_at = orders.updated_at + chrono::Duration::milliseconds(5);
    store
        .replace(&edited, orders.updated_at)
        .await
        .expect("replace");
    assert!(
        version(store, &tenant).await > before,
        "an edit bumps the version"
    );
    assert_eq!(
        targets(store, &tenant, "order.created").await,
        vec![all.id.clone()],
        "removed filters stop matching at once"
    );
    assert!(
        targets(store, &tenant, "invoice.paid")
            .await
            .contains(&orders.id),
        "added filters match at once"
    );
    assert!(
        matches!(
            store.replace(&edited, orders.updated_at).await,
            Err(StoreError::Conflict(_))
        ),
        "an edit based on a stale read is a conflict"
    );

    // A content filter travels with the routes, and changing only the filter changes them.
    let mut filtered = edited.clone();
    filtered.filter = Some(".data.total > 100".into());
    filtered.updated_at = edited.updated_at + chrono::Duration::milliseconds(5);
    store
        .replace(&filtered, edited.updated_at)
        .await
        .expect("set the filter");
    let routed = |ts: Vec<Target>| ts.into_iter().find(|t| t.id == orders.id);
    assert_eq!(
        routed(
            store
                .targets(&tenant, &event_type("invoice.paid"))
                .await
                .expect("targets")
        )
        .and_then(|t| t.filter)
        .as_deref(),
        Some(".data.total > 100"),
        "fan-out reads the filter with the route"
    );
    let mut unfiltered = filtered.clone();
    unfiltered.filter = None;
    unfiltered.updated_at = filtered.updated_at + chrono::Duration::milliseconds(5);
    store
        .replace(&unfiltered, filtered.updated_at)
        .await
        .expect("remove the filter");
    assert_eq!(
        routed(
            store
                .targets(&tenant, &event_type("invoice.paid"))
                .await
                .expect("targets")
        )
        .map(|t| t.filter),
        Some(None),
        "a removed filter is gone from the route"
    );
    let mut enabled = off.clone();
    enabled.active = true;
    enabled.updated_at = off.updated_at + chrono::Duration::milliseconds(5);
    store
        .replace(&enabled, off.updated_at)
        .await
        .expect("enable");
    assert!(
        targets(store, &tenant, "order.created")
            .await
            .contains(&off.id),
        "an enabled subscriber gets events at once"
    );

    // The secret version moves only with the secret.
    let before = version(store, &tenant).await;
    store
        .secret_changed(&tenant, &all.id)
        .await
        .expect("secret changed");
    let rotated = store
        .get(&tenant, &all.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        rotated.secret_version,
        all.secret_version + 1,
        "a rotation bumps the secret version"
    );
    assert!(
        version(store, &tenant).await > before,
        "a rotation bumps the directory version"
    );
    let mut renamed = rotated.clone();
    renamed.description = Some("renamed".into());
    renamed.secret_version = 0;
    renamed.updated_at = rotated.updated_at + chrono::Duration::milliseconds(5);
    store
        .replace(&renamed, rotated.updated_at)
        .await
        .expect("replace");
    assert_eq!(
        store
            .get(&tenant, &all.id)
            .await
            .expect("get")
            .expect("exists")
            .secret_version,
        rotated.secret_version,
        "an edit keeps the secret version"
    );
    assert!(
        matches!(
            store.secret_changed(&tenant, &SubscriberId::new()).await,
            Err(StoreError::Conflict(_))
        ),
        "rotating an unknown subscriber's secret is a conflict"
    );

    // Listing walks every subscriber of the tenant once, and filters by activity.
    let listed = walk(store, &tenant, None).await;
    assert_eq!(
        listed.len(),
        3,
        "the listing holds the tenant's three subscribers"
    );
    let mut deactivated = store
        .get(&tenant, &orders.id)
        .await
        .expect("get")
        .expect("exists");
    let at = deactivated.updated_at;
    deactivated.active = false;
    deactivated.updated_at = at + chrono::Duration::milliseconds(5);
    store.replace(&deactivated, at).await.expect("deactivate");
    assert_eq!(
        walk(store, &tenant, Some(true)).await.len(),
        2,
        "active=true"
    );
    assert_eq!(
        walk(store, &tenant, Some(false)).await,
        vec![orders.id.clone()],
        "active=false"
    );
    assert!(
        !targets(store, &tenant, "invoice.paid")
            .await
            .contains(&orders.id),
        "a deactivated subscriber gets nothing"
    );

    // Deletion: once, and it takes the subscriber out of the fan-out.
    let before = version(store, &tenant).await;
    assert!(
        store.delete(&tenant, &all.id).await.expect("delete"),
        "the first delete deletes"
    );
    assert!(
        !store.delete(&tenant, &all.id).await.expect("delete"),
        "the second finds nothing"
    );
    assert!(
        version(store, &tenant).await > before,
        "a delete bumps the version"
    );
    assert_eq!(
        store.get(&tenant, &all.id).await.expect("get"),
        None,
        "a deleted subscriber is gone"
    );
    assert!(
        !targets(store, &tenant, "invoice.paid")
            .await
            .contains(&all.id),
        "a deleted subscriber gets nothing"
    );
    assert_eq!(
        targets(store, &other, "a.b").await,
        vec![elsewhere.id.clone()],
        "tenants do not see each other's subscribers"
    );
}

/// The ids fan-out reads for `event_type`.
async fn targets(
    store: &dyn SubscriberStore,
    tenant: &TenantId,
    event_type: &str,
) -> Vec<SubscriberId> {
    store
        .targets(tenant, &self::event_type(event_type))
        .await
        .expect("targets")
        .into_iter()
        .map(|t| t.id)
        .collect()
}

async fn version(store: &dyn SubscriberStore, tenant: &TenantId) -> u64 {
    store
        .versions(std::slice::from_ref(tenant))
        .await
        .expect("versions")
        .get(tenant)
        .copied()
        .expect("every tenant asked for has a version")
}

async fn walk(
    store: &dyn SubscriberStore,
    tenant: &TenantId,
    active: Option<bool>,
) -> Vec<SubscriberId> {
    let mut ids = Vec::new();
    let mut cursor = None;
    for _ in 0..20 {
        let page = store
            .list(
                tenant,
                &PageRequest {
                    limit: 1,
                    cursor: cursor.take(),
                    active,
                },
            )
            .await
            .expect("list");
        assert!(page.items.len() <= 1, "a page holds at most `limit` items");
        ids.extend(page.items.into_iter().map(|s| s.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return ids,
        }
    }
    panic!("the subscriber listing does not end");
}

/// Events: a stored event reads back whole, including a fan-out too big for one item.
pub async fn event_store(store: &dyn EventStore) {
    let tenant = fresh_tenant();
    let subscriber_ids: Vec<SubscriberId> = (0..2_500).map(|_| SubscriberId::new()).collect();
    let event = EventRecord {
        id: EventId::new(),
        tenant: tenant.clone(),
        event_type: event_type("order.created"),
        timestamp: DateTime::from_timestamp_millis(1_767_323_045_678).unwrap_or_default(),
        data: Some(
            RawValue::from_string(r#"{"id": "ord_1", "total": 12.50}"#.into()).expect("json"),
        ),
        correlation_id: "corr-1".into(),
        subscriber_ids,
    };
    store.put_event(&event).await.expect("put");
    let back = store
        .get_event(&tenant, &event.id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(back.id, event.id);
    assert_eq!(back.event_type, event.event_type);
    assert_eq!(back.timestamp, event.timestamp);
    assert_eq!(back.correlation_id, "corr-1");
    assert_eq!(
        back.data.map(|d| d.get().to_string()),
        Some(r#"{"id": "ord_1", "total": 12.50}"#.to_string()),
        "the payload's bytes are kept"
    );
    assert_eq!(
        back.subscriber_ids, event.subscriber_ids,
        "every subscriber id, in order"
    );
    assert!(
        store
            .get_event(&fresh_tenant(), &event.id)
            .await
            .expect("get")
            .is_none(),
        "another tenant's event is unknown"
    );
}

/// Idempotency keys: claim, busy, resume after the lease, completion, expiry.
pub async fn idempotency_store(store: &dyn IdempotencyStore) {
    let tenant = fresh_tenant();
    let ttl = Duration::from_secs(24 * 3600);
    let now = Utc::now();
    let first = EventId::new();
    let claim = |key: &'static str, id: EventId, at: DateTime<Utc>| {
        let tenant = tenant.clone();
        async move {
            store
                .claim(&tenant, key, &id, at, ttl)
                .await
                .expect("claim")
        }
    };
    assert_eq!(
        claim("k1", first.clone(), now).await,
        IdempotencyClaim::Claimed
    );
    assert_eq!(
        claim("k1", EventId::new(), now).await,
        IdempotencyClaim::Busy(first.clone()),
        "a second publish inside the lease waits"
    );
    let later = now + chrono::Duration::seconds(60);
    assert_eq!(
        claim("k1", EventId::new(), later).await,
        IdempotencyClaim::Resume(first.clone()),
        "after the lease, the next caller resumes under the same event id"
    );
    let receipt = PublishReceipt {
        id: first.clone(),
        event_type: event_type("order.created"),
        subscribers: 3,
    };
    store
        .complete(&tenant, "k1", &receipt, later, ttl)
        .await
        .expect("complete");
    assert_eq!(
        claim("k1", EventId::new(), later).await,
        IdempotencyClaim::Completed(receipt),
        "a completed key answers with its receipt"
    );
    let expired = later + chrono::Duration::hours(25);
    assert_eq!(
        claim("k1", EventId::new(), expired).await,
        IdempotencyClaim::Claimed,
        "a key is claimable again once it expired"
    );
    let second = EventId::new();
    assert_eq!(
        claim("k2", second.clone(), now).await,
        IdempotencyClaim::Claimed
    );
    store.abandon(&tenant, "k2").await.expect("abandon");
    assert_eq!(
        claim("k2", EventId::new(), now).await,
        IdempotencyClaim::Resume(second.clone()),
        "an abandoned lease is taken over at once"
    );
    // A refused publish releases its key; only the claim's own event id can.
    let third = EventId::new();
    assert_eq!(
        claim("k3", third.clone(), now).await,
        IdempotencyClaim::Claimed
    );
    store
        .release(&tenant, "k3", &EventId::new())
        .await
        .expect("release");
    assert_eq!(
        claim("k3", EventId::new(), now).await,
        IdempotencyClaim::Busy(third.clone()),
        "another event id releases nothing"
    );
    store.release(&tenant, "k3", &third).await.expect("release");
    assert_eq!(
        claim("k3", EventId::new(), now).await,
        IdempotencyClaim::Claimed,
        "a released key is as if never used"
    );
}

/// Signing secrets with the custom header values: create, read, rotate with a grace period
/// (headers kept), change headers (secrets and grace kept), delete.
pub async fn secret_store(store: &dyn SecretStore) {
    let tenant = fresh_tenant();
    let id = SubscriberId::new();
    assert!(
        store.get(&tenant, &id).await.expect("get").is_none(),
        "no secret yet"
    );
    let headers = BTreeMap::from([("x-api-key".to_string(), "k-1".to_string())]);
    let first = SigningSecret::generate();
    store
        .create(&tenant, &id, &first, &headers)
        .await
        .expect("create");
    let read = store.get(&tenant, &id).await.expect("get").expect("stored");
    assert_eq!(read.signing.len(), 1);
    assert_eq!(read.signing[0].expose(), first.expose());
    assert_eq!(read.headers.as_ref(), Some(&headers));
    let current = store
        .get_current(&tenant, &id)
        .await
        .expect("get_current")
        .expect("stored");
    assert_eq!(current.headers.as_ref(), Some(&headers));
    let second = SigningSecret::generate();
    let until = store.rotate(&tenant, &id, &second).await.expect("rotate");
    assert!(
        until.is_some_and(|u| u > Utc::now()),
        "the old secret has a grace period"
    );
    let read = store.get(&tenant, &id).await.expect("get").expect("stored");
    assert_eq!(
        read.signing.iter().map(|s| s.expose()).collect::<Vec<_>>(),
        vec![second.expose(), first.expose()],
        "the new secret first, the old one beside it"
    );
    assert_eq!(
        read.headers.as_ref(),
        Some(&headers),
        "a rotation keeps them"
    );
    let changed = BTreeMap::from([("authorization".to_string(), "Bearer t".to_string())]);
    assert!(
        store
            .set_headers(&tenant, &id, &changed)
            .await
            .expect("set_headers")
    );
    let read = store.get(&tenant, &id).await.expect("get").expect("stored");
    assert_eq!(read.headers.as_ref(), Some(&changed));
    assert_eq!(
        read.signing.iter().map(|s| s.expose()).collect::<Vec<_>>(),
        vec![second.expose(), first.expose()],
        "a header change keeps both secrets signing"
    );
    assert_eq!(
        read.previous_until.map(|t| t.timestamp()),
        until.map(|t| t.timestamp()),
        "and the grace period where it was"
    );
    assert!(
        !store
            .set_headers(&tenant, &SubscriberId::new(), &changed)
            .await
            .expect("set_headers"),
        "a missing secret says so"
    );
    store.delete(&tenant, &id).await.expect("delete");
    assert!(
        store.get(&tenant, &id).await.expect("get").is_none(),
        "a deleted secret is gone"
    );
    assert!(
        store
            .rotate(&tenant, &SubscriberId::new(), &second)
            .await
            .expect("rotate")
            .is_none(),
        "rotating a missing secret says so"
    );
}

/// API keys: found by digest only, listed per tenant, deleted once.
pub async fn api_key_store(store: &dyn ApiKeyStore) {
    let tenant = fresh_tenant();
    let key = ApiKey {
        id: ApiKeyId::new(),
        tenant: tenant.clone(),
        role: Role::Publisher,
        description: Some("ci".into()),
        created_at: DateTime::from_timestamp_millis(Utc::now().timestamp_millis())
            .unwrap_or_default(),
        created_by: "bootstrap".into(),
    };
    let digest = [7u8; 32];
    let mut unique_digest = digest;
    unique_digest[..16].copy_from_slice(&key.id.as_str().as_bytes()[4..20]);
    store.create(&key, &unique_digest).await.expect("create");
    let (found, stored) = store
        .find(&unique_digest)
        .await
        .expect("find")
        .expect("found");
    assert_eq!(found, key);
    assert_eq!(stored, unique_digest);
    assert!(
        store.find(&[9u8; 32]).await.expect("find").is_none(),
        "an unknown digest finds nothing"
    );
    let page = store
        .list(
            &tenant,
            &PageRequest {
                limit: 10,
                cursor: None,
                active: None,
            },
        )
        .await
        .expect("list");
    assert_eq!(page.items, vec![key.clone()]);
    assert!(store.delete(&tenant, &key.id).await.expect("delete"));
    assert!(!store.delete(&tenant, &key.id).await.expect("delete"));
    assert!(
        store.find(&unique_digest).await.expect("find").is_none(),
        "a deleted key stops working"
    );
}

/// The tenants' registry: a record is created once (`ensure` keeps an existing one), `put`
/// sets or clears limits and keeps when the tenant was first seen, and `list` pages by id.
pub async fn tenant_store(store: &dyn crate::ports::TenantStore) {
    use crate::tenants::{TenantLimits, TenantRecord};
    let a = fresh_tenant();
    assert_eq!(store.get(&a).await.expect("get"), None, "unknown tenant");
    let first = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_default();
    store.ensure(&a, first).await.expect("ensure");
    let got = store.get(&a).await.expect("get").expect("ensured");
    assert_eq!((got.limits, got.created_at), (None, first));
    let later = first + chrono::Duration::seconds(5);
    store.ensure(&a, later).await.expect("ensure again");
    assert_eq!(
        store.get(&a).await.expect("get").expect("kept").created_at,
        first,
        "ensure keeps the record it finds"
    );
    let limits = TenantLimits::new(7, 70).expect("limits");
    let put = store
        .put(&TenantRecord {
            id: a.clone(),
            limits: Some(limits),
            created_at: later,
            updated_at: later,
        })
        .await
        .expect("put");
    assert_eq!(put.limits, Some(limits));
    assert_eq!(
        put.created_at, first,
        "put keeps when the tenant was first seen"
    );
    assert_eq!(
        store.get(&a).await.expect("get").expect("put").limits,
        Some(limits)
    );
    let cleared = store
        .put(&TenantRecord {
            id: a.clone(),
            limits: None,
            created_at: later,
            updated_at: later,
        })
        .await
        .expect("put");
    assert_eq!(cleared.limits, None, "null limits go back to the defaults");

    // A new tenant by put alone.
    let b = fresh_tenant();
    let created = store
        .put(&TenantRecord {
            id: b.clone(),
            limits: None,
            created_at: later,
            updated_at: later,
        })
        .await
        .expect("put new");
    assert_eq!(created.created_at, later);

    // Every tenant once, in id order, over pages of one.
    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..100_000 {
        let page = store
            .list(PageRequest {
                limit: 1,
                cursor: cursor.clone(),
                active: None,
            })
            .await
            .expect("list");
        seen.extend(page.items.into_iter().map(|t| t.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "in id order, each once");
    assert!(seen.contains(&a) && seen.contains(&b), "both listed");
    assert!(matches!(
        store
            .list(PageRequest {
                limit: 1,
                cursor: Some("not-a-cursor".into()),
                active: None,
            })
            .await,
        Err(StoreError::BadCursor)
    ));
}

/// Tenants' publish buckets: a burst, then the rate; a refusal says how long to wait; a
/// block more than the burst never fits; two tenants' buckets are apart.
pub async fn publish_budget(budget: &dyn crate::ports::PublishBudget) {
    use crate::tenants::{Admission, TenantLimits};
    let limits = TenantLimits::new(10, 5).expect("limits");
    let (a, b) = (fresh_tenant(), fresh_tenant());
    let now = Utc::now();
    for i in 0..5 {
        assert_eq!(
            budget.take(&a, 1, limits, now).await.expect("take"),
            Admission::Admitted,
            "publish {i} of the burst"
        );
    }
    match budget.take(&a, 1, limits, now).await.expect("take") {
        Admission::Limited(wait) => assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        ),
        Admission::Admitted => panic!("past the burst is refused"),
    }
    assert_eq!(
        budget.take(&b, 5, limits, now).await.expect("take"),
        Admission::Admitted,
        "another tenant's bucket is its own"
    );
    assert!(
        matches!(
            budget
                .take(&b, 6, limits, now + chrono::Duration::seconds(60))
                .await,
            Ok(Admission::Limited(_))
        ),
        "more than the burst at once never fits"
    );
    // A tenth of a second later, one more; two tenths, two more.
    let later = now + chrono::Duration::milliseconds(200);
    assert_eq!(
        budget.take(&a, 2, limits, later).await.expect("take"),
        Admission::Admitted
    );
    assert!(matches!(
        budget.take(&a, 1, limits, later).await,
        Ok(Admission::Limited(_))
    ));
    // A charge goes past the burst, and the next take waits for it.
    let c = fresh_tenant();
    budget
        .charge(&c, 20, limits, now)
        .await
        .expect("charge a new bucket");
    budget
        .charge(&c, 0, limits, now)
        .await
        .expect("charge nothing");
    match budget.take(&c, 1, limits, now).await.expect("take") {
        Admission::Limited(wait) => assert!(
            wait >= Duration::from_millis(1500) && wait <= Duration::from_millis(1700),
            "20 publishes charged at 10 a second, burst 5: {wait:?}"
        ),
        Admission::Admitted => panic!("a charged bucket refuses"),
    }
    budget
        .charge(&c, 10, limits, now)
        .await
        .expect("charge a running bucket");
    match budget.take(&c, 1, limits, now).await.expect("take") {
        Admission::Limited(wait) => assert!(wait >= Duration::from_millis(2500), "{wait:?}"),
        Admission::Admitted => panic!("a charged bucket refuses"),
    }

    // After a quiet spell, the whole burst again and no more.
    let quiet = now + chrono::Duration::seconds(30);
    assert_eq!(
        budget.take(&a, 5, limits, quiet).await.expect("take"),
        Admission::Admitted
    );
    assert!(matches!(
        budget.take(&a, 1, limits, quiet).await,
        Ok(Admission::Limited(_))
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{
        MemoryApiKeyStore, MemoryEventStore, MemoryIdempotencyStore, MemorySecretStore,
        MemorySubscriberStore,
    };

    #[tokio::test]
    async fn the_memory_subscriber_store_keeps_the_contract() {
        subscriber_store(&MemorySubscriberStore::default()).await;
    }

    #[tokio::test]
    async fn the_memory_event_store_keeps_the_contract() {
        event_store(&MemoryEventStore::default()).await;
    }

    #[tokio::test]
    async fn the_memory_idempotency_store_keeps_the_contract() {
        idempotency_store(&MemoryIdempotencyStore::default()).await;
    }

    #[tokio::test]
    async fn the_memory_secret_store_keeps_the_contract() {
        secret_store(&MemorySecretStore::default()).await;
    }

    #[tokio::test]
    async fn the_memory_api_key_store_keeps_the_contract() {
        api_key_store(&MemoryApiKeyStore::default()).await;
    }

    #[tokio::test]
    async fn the_memory_tenant_store_keeps_the_contract() {
        tenant_store(&crate::memory::MemoryTenantStore::default()).await;
    }

    #[tokio::test]
    async fn the_memory_attempt_log_keeps_the_contract() {
        attempt_log(&crate::memory::MemoryAttemptLog::default()).await;
    }

    #[tokio::test]
    async fn the_memory_health_store_keeps_the_contract() {
        health_store(&crate::memory::MemoryHealthStore::default()).await;
    }

    #[tokio::test]
    async fn the_memory_dead_letter_store_keeps_the_contract() {
        dead_letter_store(&crate::memory::MemoryDeadLetterStore::default()).await;
    }

    #[tokio::test]
    async fn the_memory_audit_log_keeps_the_contract() {
        audit_log(&crate::memory::MemoryAuditLog::default()).await;
    }

    #[tokio::test]
    async fn the_memory_ops_events_keeps_the_contract() {
        ops_events(&crate::memory::MemoryOpsEvents::default()).await;
    }

    #[tokio::test]
    async fn the_memory_rate_budget_keeps_the_contract() {
        rate_budget(&crate::memory::MemoryRateBudget::default()).await;
    }

    #[tokio::test]
    async fn the_memory_delivery_queue_keeps_the_contract() {
        let queue = crate::memory::MemoryDeliveryQueue::default();
        delivery_queue(&queue, &queue).await;
    }

    #[tokio::test]
    async fn the_memory_stats_counters_keep_the_contract() {
        let counters = std::sync::Arc::new(crate::memory::MemoryStatsCounters::default());
        let log = crate::memory::MemoryAttemptLog::with_counters(counters.clone());
        stats_counters(counters.as_ref(), &log).await;
    }

    #[tokio::test]
    async fn the_memory_secret_values_keep_the_contract() {
        let values = crate::memory::MemorySecretValues::default();
        values.put("skyhook/admin", "sk_contract");
        secret_values(&values, "skyhook/admin", "sk_contract").await;
    }

    #[tokio::test]
    async fn the_in_process_program_runner_keeps_the_contract() {
        program_runner(&crate::memory::InProcessRunner).await;
    }

    #[tokio::test]
    async fn the_memory_source_store_keeps_the_contract() {
        source_store(&crate::memory::MemorySourceStore::default()).await;
    }

    #[tokio::test]
    async fn the_memory_source_secrets_keep_the_contract() {
        source_secrets(&crate::memory::MemorySourceSecrets::default()).await;
    }

    #[tokio::test]
    async fn the_memory_replay_guard_keeps_the_contract() {
        replay_guard(&crate::memory::MemoryReplayGuard::default()).await;
    }

    #[tokio::test]
    async fn the_memory_publish_budget_keeps_the_contract() {
        publish_budget(&crate::memory::MemoryPublishBudget::default()).await;
    }
}
