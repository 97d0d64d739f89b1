//! An anonymous flood at `POST /v1/inbound/{source_id}`: what it costs and whom it touches.
//! The stores are in-memory twins that count their reads, so the test sees what would have
//! been a DynamoDB read or a Secrets Manager call.
//!
//! - Repeats of a source id that names nothing are answered from memory after the first.
//! - A flood at one real source is cut by its per-source bucket in each instance before any
//!   read: at most a burst's worth of reads get through.
//! - None of it takes from the tenant's publish budget (taken only once a signature holds),
//!   so the tenant's own publishes and its other sources go on.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http::{Method, Request, StatusCode};
use serde_json::json;
use tower::ServiceExt;

use skyhook_domain::config::AdminKeySource;
use skyhook_domain::ids::{SourceId, TenantId};
use skyhook_domain::inbound::{EventTypeRule, Scheme, Source, SourceSecret, StoredSourceSecret};
use skyhook_domain::memory::{
    MemoryDeliveryQueue, MemoryEventStore, MemoryIdempotencyStore, MemoryPublishBudget,
    MemoryReplayGuard, MemorySourceSecrets, MemorySourceStore, MemorySubscriberStore,
    MemoryTenantStore, NoProgramRunner,
};
use skyhook_domain::ports::{Page, PageRequest, SourceSecrets, SourceStore, StoreError};
use skyhook_domain::publish::Publisher;
use skyhook_domain::tenants::{TenantGate, TenantLimits};
use skyhook_http::Authenticator;
use skyhook_ingest::IngestState;
use skyhook_ingest::inbound::{Inbound, SOURCE_BURST};

const ADMIN_KEY: &str = "sk_flood_admin_0123456789";

/// A source store that counts its reads.
#[derive(Default)]
struct CountingSources {
    inner: MemorySourceStore,
    gets: AtomicUsize,
}

#[async_trait]
impl SourceStore for CountingSources {
    async fn create(&self, source: &Source) -> Result<(), StoreError> {
        self.inner.create(source).await
    }
    async fn get(&self, id: &SourceId) -> Result<Option<Source>, StoreError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.inner.get(id).await
    }
    async fn list(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<Source>, StoreError> {
        self.inner.list(tenant, page).await
    }
    async fn replace(
        &self,
        source: &Source,
        expected_updated_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner.replace(source, expected_updated_at).await
    }
    async fn delete(&self, tenant: &TenantId, id: &SourceId) -> Result<bool, StoreError> {
        self.inner.delete(tenant, id).await
    }
}

/// A secret store that counts its reads.
#[derive(Default)]
struct CountingSecrets {
    inner: MemorySourceSecrets,
    gets: AtomicUsize,
}

#[async_trait]
impl SourceSecrets for CountingSecrets {
    async fn create(
        &self,
        tenant: &TenantId,
        id: &SourceId,
        secret: &SourceSecret,
    ) -> Result<(), StoreError> {
        self.inner.create(tenant, id, secret).await
    }
    async fn get(
        &self,
        tenant: &TenantId,
        id: &SourceId,
    ) -> Result<Option<StoredSourceSecret>, StoreError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.inner.get(tenant, id).await
    }
    async fn put(
        &self,
        tenant: &TenantId,
        id: &SourceId,
        secret: &SourceSecret,
        version: u64,
    ) -> Result<bool, StoreError> {
        self.inner.put(tenant, id, secret, version).await
    }
    async fn delete(&self, tenant: &TenantId, id: &SourceId) -> Result<(), StoreError> {
        self.inner.delete(tenant, id).await
    }
}

fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post(router: &Router, source: &SourceId, signature: &str, delivery: &str) -> StatusCode {
    let body = r#"{"ref":"main"}"#;
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/v1/inbound/{source}"))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", signature)
        .body(Body::from(body))
        .unwrap();
    router.clone().oneshot(req).await.unwrap().status()
}

async fn source(sources: &CountingSources, secrets: &CountingSecrets, secret: &str) -> Source {
    let now = Utc::now();
    let source = Source {
        id: SourceId::new(),
        tenant: TenantId::default_tenant(),
        name: "flood".into(),
        scheme: Scheme::Github,
        hmac: None,
        event_type: serde_json::from_value::<EventTypeRule>(
            json!({"header": "X-GitHub-Event", "prefix": "gh."}),
        )
        .unwrap(),
        created_at: now,
        updated_at: now,
        secret_version: 0,
    };
    sources.create(&source).await.unwrap();
    secrets
        .create(
            &source.tenant,
            &source.id,
            &SourceSecret::parse(Scheme::Github, secret).unwrap(),
        )
        .await
        .unwrap();
    source
}

#[tokio::test]
async fn an_anonymous_flood_costs_bounded_reads_and_touches_no_tenant_budget() {
    let sources = Arc::new(CountingSources::default());
    let secrets = Arc::new(CountingSecrets::default());
    let budget = Arc::new(MemoryPublishBudget::default());
    let publisher = Publisher {
        subscribers: Arc::new(MemorySubscriberStore::default()),
        events: Arc::new(MemoryEventStore::default()),
        queue: Arc::new(MemoryDeliveryQueue::default()),
        idempotency: Arc::new(MemoryIdempotencyStore::default()),
        idempotency_ttl: std::time::Duration::from_secs(3600),
        filters: Arc::new(NoProgramRunner),
        gate: Some(Arc::new(TenantGate::new(
            Arc::new(MemoryTenantStore::default()),
            budget.clone(),
            TenantLimits::new(100, 1000).unwrap(),
        ))),
    };
    let state = IngestState {
        publisher,
        inbound: Inbound::new(
            sources.clone(),
            secrets.clone(),
            Arc::new(MemoryReplayGuard::default()),
        ),
        auth: Arc::new(Authenticator::new(
            AdminKeySource::Value(ADMIN_KEY.into()),
            None,
        )),
        max_payload_bytes: 64 * 1024,
    };
    let router = skyhook_ingest::with_fallbacks(skyhook_ingest::router(Arc::new(state)));
    let attacked = source(&sources, &secrets, "flooded secret").await;
    let other = source(&sources, &secrets, "other secret").await;

    // 1,000 requests at a source id that names nothing: one read, then memory.
    let nothing = SourceId::new();
    for i in 0..1000 {
        let status = post(&router, &nothing, "sha256=00", &format!("d-{i}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    assert_eq!(
        sources.gets.load(Ordering::Relaxed),
        1,
        "one read for 1,000"
    );

    // 2,000 forged requests at a real source: refused, and past the source's burst refused
    // before any read.
    let before = sources.gets.load(Ordering::Relaxed);
    let mut limited = 0;
    for i in 0..2000 {
        match post(&router, &attacked.id, "sha256=00", &format!("f-{i}")).await {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("{other}"),
        }
    }
    let reads = sources.gets.load(Ordering::Relaxed) - before;
    assert!(limited > 0, "the flood meets the source's bucket");
    // The burst, and the refill of the time the loop took (100 a second).
    assert!(
        reads <= 2000 - limited && reads >= SOURCE_BURST as usize,
        "{reads} reads, {limited} limited"
    );
    assert!(
        secrets.gets.load(Ordering::Relaxed) <= 1,
        "the secret is read once, then cached"
    );
    assert_eq!(
        budget.takes(),
        0,
        "no forged request reaches the tenant's budget"
    );

    // The tenant's other source, signed right, goes through at once.
    let body = r#"{"ref":"main"}"#;
    let status = post(
        &router,
        &other.id,
        &github_signature("other secret", body.as_bytes()),
        "real-1",
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // And the tenant's own publishes.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/events")
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .header("content-type", "application/json")
        .body(Body::from(r#"{"type":"order.created","data":{}}"#))
        .unwrap();
    assert_eq!(
        router.clone().oneshot(req).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
}
