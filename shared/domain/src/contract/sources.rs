//! The cases of inbound sources' ports: the source records, their secrets, and the replay
//! guard.

use chrono::{DateTime, Duration, Utc};

use super::fresh_tenant;
use crate::ids::{SourceId, TenantId};
use crate::inbound::{Encoding, EventTypeRule, HmacSettings, Scheme, Source, SourceSecret};
use crate::ports::{PageRequest, ReplayGuard, SourceSecrets, SourceStore, StoreError};

/// Now at millisecond precision, as stored.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_default()
}

fn source(tenant: &TenantId, name: &str) -> Source {
    let at = now();
    Source {
        id: SourceId::new(),
        tenant: tenant.clone(),
        name: name.into(),
        scheme: Scheme::HmacSha256,
        hmac: Some(HmacSettings {
            header: "X-Signature".into(),
            prefix: "sha256=".into(),
            encoding: Encoding::Hex,
        }),
        event_type: EventTypeRule {
            header: Some("X-Event".into()),
            prefix: Some("shop.".into()),
            ..EventTypeRule::default()
        },
        created_at: at,
        updated_at: at,
        secret_version: 0,
    }
}

/// Source records: create, read back as written, a taken id refused, listing per tenant
/// page by page, an edit only from the version read, deletion.
pub async fn source_store(store: &dyn SourceStore) {
    let tenant = fresh_tenant();
    let first = source(&tenant, "shop");
    store.create(&first).await.expect("create");
    assert_eq!(
        store.get(&first.id).await.expect("get"),
        Some(first.clone()),
        "read back"
    );
    assert!(
        matches!(store.create(&first).await, Err(StoreError::Conflict(_))),
        "a taken id is a conflict"
    );
    let second = source(&tenant, "billing");
    store.create(&second).await.expect("create");
    store
        .create(&source(&fresh_tenant(), "elsewhere"))
        .await
        .expect("create");

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list(
                &tenant,
                &PageRequest {
                    limit: 1,
                    cursor,
                    ..PageRequest::default()
                },
            )
            .await
            .expect("list");
        assert!(page.items.len() <= 1, "a page holds at most its limit");
        seen.extend(page.items.into_iter().map(|s| s.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    seen.sort();
    let mut want = vec![first.id.clone(), second.id.clone()];
    want.sort();
    assert_eq!(seen, want, "the tenant's sources, and only its own");

    let mut edited = first.clone();
    edited.name = "shop-eu".into();
    edited.secret_version = 1;
    edited.updated_at = first.updated_at + Duration::milliseconds(5);
    store
        .replace(&edited, first.updated_at)
        .await
        .expect("replace");
    assert_eq!(
        store.get(&first.id).await.expect("get"),
        Some(edited.clone())
    );
    assert!(
        matches!(
            store.replace(&edited, first.updated_at).await,
            Err(StoreError::Conflict(_))
        ),
        "an edit from a stale version is a conflict"
    );

    assert!(store.delete(&tenant, &first.id).await.expect("delete"));
    assert!(
        !store.delete(&tenant, &first.id).await.expect("delete"),
        "gone already"
    );
    assert_eq!(store.get(&first.id).await.expect("get"), None);
    assert!(
        !store
            .delete(&fresh_tenant(), &second.id)
            .await
            .expect("delete"),
        "another tenant cannot delete it"
    );
    assert!(store.get(&second.id).await.expect("get").is_some());
    assert!(
        matches!(
            store.replace(&edited, edited.updated_at).await,
            Err(StoreError::Conflict(_))
        ),
        "a deleted source cannot be edited"
    );
}

/// Source secrets: created at version 0, replaced only by a later version, deleted.
pub async fn source_secrets(secrets: &dyn SourceSecrets) {
    let tenant = fresh_tenant();
    let id = SourceId::new();
    let scheme = Scheme::Github;
    assert_eq!(secrets.get(&tenant, &id).await.expect("get"), None);
    let v0 = SourceSecret::generate(scheme);
    assert!(
        !secrets.put(&tenant, &id, &v0, 1).await.expect("put"),
        "no secret to replace"
    );
    secrets.create(&tenant, &id, &v0).await.expect("create");
    let stored = secrets
        .get(&tenant, &id)
        .await
        .expect("get")
        .expect("a secret");
    assert_eq!((stored.secret.expose(), stored.version), (v0.expose(), 0));

    let v2 = SourceSecret::generate(scheme);
    assert!(secrets.put(&tenant, &id, &v2, 2).await.expect("put"));
    let v1 = SourceSecret::generate(scheme);
    assert!(
        secrets.put(&tenant, &id, &v1, 1).await.expect("put"),
        "the secret exists"
    );
    let stored = secrets
        .get(&tenant, &id)
        .await
        .expect("get")
        .expect("a secret");
    assert_eq!(
        (stored.secret.expose(), stored.version),
        (v2.expose(), 2),
        "a later version is never replaced by an earlier one"
    );

    secrets.delete(&tenant, &id).await.expect("delete");
    assert_eq!(secrets.get(&tenant, &id).await.expect("get"), None);
}

/// The replay guard: a key is claimed once per source until released.
pub async fn replay_guard(guard: &dyn ReplayGuard) {
    let (source, other) = (SourceId::new(), SourceId::new());
    let at = now();
    let until = at + Duration::minutes(5);
    assert!(
        guard
            .claim(&source, "msg_1", at, until)
            .await
            .expect("claim")
    );
    assert!(
        !guard
            .claim(&source, "msg_1", at, until)
            .await
            .expect("claim"),
        "a replay"
    );
    assert!(
        guard
            .claim(&other, "msg_1", at, until)
            .await
            .expect("claim"),
        "another source's key is its own"
    );
    assert!(
        guard
            .claim(&source, "msg_2", at, until)
            .await
            .expect("claim")
    );
    guard.release(&source, "msg_1").await.expect("release");
    assert!(
        guard
            .claim(&source, "msg_1", at, until)
            .await
            .expect("claim"),
        "claimable again once released"
    );
}
