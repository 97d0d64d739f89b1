//! `POST /v1/inbound/{source_id}`: webhooks from outside. No API key: the sender proves
//! itself by its signature, checked as it signs (see [`skyhook_domain::inbound`]). A
//! verified, fresh, first-seen message is published as an event of the source's tenant,
//! under the sender's message id as the idempotency key, so the sender's retries publish
//! once.
//!
//! Nothing is written for a refused request: the replay guard's one write happens only
//! after the signature, the timestamp, the body and the event type all passed.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use moka::future::Cache;
use serde_json::value::RawValue;

use skyhook_api_types::ErrorBody;
use skyhook_api_types::events::PublishReceiptView;
use skyhook_aws::Adapters;
use skyhook_domain::event_type::EventType;
use skyhook_domain::ids::SourceId;
use skyhook_domain::inbound::{self, Refusal, Source, SourceSecret, TOLERANCE_SECS};
use skyhook_domain::model::CORRELATION_HEADER;
use skyhook_domain::ports::{ReplayGuard, SourceSecrets, SourceStore};
use skyhook_domain::publish::{PublishRequest, validate_correlation_id};
use skyhook_domain::tenants::{TenantLimits, gcra, retry_after_secs};
use skyhook_http::ApiError;
use skyhook_http::responses::{Conflict, NotFound, RateLimited};

use crate::IngestState;

/// How long a secret read from the secret store is reused without a change to its source.
const SECRET_TTL: Duration = Duration::from_secs(300);
/// Requests one instance takes for one source: on average a second, and at once. Checked
/// before anything is read, so a flood at one source costs no read past it.
/// Well under the route's own API Gateway throttle, so that a flood at one source (a leaked
/// URL) is cut here before it can fill the route for every tenant's sources.
pub const SOURCE_REQUESTS_PER_SECOND: u32 = 20;
pub const SOURCE_BURST: u32 = 40;
const SOURCE_LIMITS: TenantLimits = TenantLimits {
    events_per_second: SOURCE_REQUESTS_PER_SECOND,
    burst: SOURCE_BURST,
};
/// How long an instance remembers that a source id names nothing.
const UNKNOWN_TTL: Duration = Duration::from_secs(60);

/// What inbound requests need besides the publisher.
pub struct Inbound {
    pub sources: Arc<dyn SourceStore>,
    pub secrets: Arc<dyn SourceSecrets>,
    pub replays: Arc<dyn ReplayGuard>,
    /// Secrets by source and secret version: read once per change of the secret, so a busy
    /// source does not pay Secrets Manager for every request.
    cache: Cache<(SourceId, u64), Arc<SourceSecret>>,
    /// Secrets read for a record ahead of them (a change still being written, or whose
    /// secret write failed): kept a few seconds, so such a source does not cost a read per
    /// request, and read again soon, so the new secret applies once it lands.
    pending: Cache<(SourceId, u64), Arc<SourceSecret>>,
    /// Each source's request bucket in this instance (its theoretical arrival time, µs).
    buckets: Cache<SourceId, Arc<std::sync::Mutex<Option<i64>>>>,
    /// Source ids this instance found naming nothing: answered 404 without a read.
    unknown: Cache<SourceId, ()>,
}

impl Inbound {
    pub fn new(
        sources: Arc<dyn SourceStore>,
        secrets: Arc<dyn SourceSecrets>,
        replays: Arc<dyn ReplayGuard>,
    ) -> Self {
        Inbound {
            sources,
            secrets,
            replays,
            cache: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(SECRET_TTL)
                .build(),
            pending: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(5))
                .build(),
            buckets: Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(Duration::from_secs(60))
                .build(),
            unknown: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(UNKNOWN_TTL)
                .build(),
        }
    }

    /// One request for `id` in this instance's bucket of it: `Err` with the wait when past
    /// [`SOURCE_REQUESTS_PER_SECOND`] and [`SOURCE_BURST`].
    async fn admit(&self, id: &SourceId, now: chrono::DateTime<Utc>) -> Result<(), Duration> {
        let bucket = self
            .buckets
            .get_with(id.clone(), async { Arc::new(std::sync::Mutex::new(None)) })
            .await;
        let mut tat = bucket.lock().unwrap_or_else(|e| e.into_inner());
        let new = gcra(*tat, now.timestamp_micros(), 1, SOURCE_LIMITS)?;
        *tat = Some(new);
        Ok(())
    }

    /// Over the AWS adapters.
    pub fn of(adapters: &Adapters) -> Self {
        Self::new(
            adapters.sources.clone(),
            adapters.source_secrets.clone(),
            adapters.replays.clone(),
        )
    }

    /// The source's secret as of its secret version; `None` while it has none (a source
    /// being created or deleted).
    async fn secret(&self, source: &Source) -> Result<Option<Arc<SourceSecret>>, ApiError> {
        let key = (source.id.clone(), source.secret_version);
        if let Some(hit) = self.cache.get(&key).await {
            return Ok(Some(hit));
        }
        if let Some(hit) = self.pending.get(&key).await {
            return Ok(Some(hit));
        }
        let Some(stored) = self.secrets.get(&source.tenant, &source.id).await? else {
            return Ok(None);
        };
        let secret = Arc::new(stored.secret);
        // A record ahead of its secret: the change is still being written (or its secret
        // write failed); use what is stored, but read again next time.
        if stored.version == source.secret_version {
            self.cache.insert(key, secret.clone()).await;
        } else {
            self.pending.insert(key, secret.clone()).await;
        }
        Ok(Some(secret))
    }
}

fn refused(refusal: Refusal) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        refusal.code(),
        refusal.to_string(),
    )
}

/// What is checked before anything is read, since anyone may call the route: a source this
/// instance knows names nothing is 404 at once, and each source has its own bucket here,
/// apart from its tenant's publish limit (taken only once the signature holds).
async fn gate(inbound: &Inbound, id: &SourceId) -> Result<(), ApiError> {
    if inbound.unknown.contains_key(id) {
        return Err(ApiError::not_found("source"));
    }
    inbound.admit(id, Utc::now()).await.map_err(|wait| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "source {id} receives more than {SOURCE_REQUESTS_PER_SECOND} requests a second here; retry later"
            ),
        )
        .with_retry_after(retry_after_secs(&wait))
    })
}

/// The event a verified request makes: its body as the data, and the type the source's
/// rule finds (in a header, or at a JSON pointer of the body).
fn event_of<'a>(
    source: &Source,
    header: impl Fn(&str) -> Option<&'a str>,
    bytes: &[u8],
) -> Result<(Box<RawValue>, EventType), ApiError> {
    let data: Box<RawValue> = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the body is not JSON: {e}"))
    })?;
    let parsed = if source.event_type.pointer.is_some() {
        serde_json::from_str(data.get()).unwrap_or_default()
    } else {
        serde_json::Value::Null
    };
    let event_type = source
        .event_type
        .resolve(header, &parsed)
        .map_err(|m| ApiError::unprocessable("invalid_event_type", m))?;
    Ok((data, event_type))
}

/// Receives a webhook from outside.
///
/// No API key: the request must carry the signature of the source's verification scheme
/// (`standard-webhooks`, `github`, `stripe` or `hmac-sha256`). Timestamps more than 5 min
/// away and replays are refused. The body (JSON) is published as the event's `data`, under
/// the type the source's rule gives.
#[utoipa::path(post, path = "/v1/inbound/{source_id}", tag = "inbound", security(()),
    params(("source_id" = String, Path, description = "The source (`src_…`).")),
    request_body(content = serde_json::Value, description = "The sender's webhook, as it sent it: JSON.", content_type = "application/json"),
    responses(
        (status = 202, description = "Verified and published: the event and how many subscribers it goes to.", body = PublishReceiptView),
        (status = 400, description = "The body is not JSON.", body = ErrorBody),
        (status = 401, description = "Refused: `invalid_signature`, `timestamp_out_of_tolerance` or `replayed`.", body = ErrorBody),
        (status = 413, description = "The body is larger than the publish limit.", body = ErrorBody),
        (status = 422, description = "The source's rule gives no valid event type for this message: `invalid_event_type`.", body = ErrorBody),
        NotFound, Conflict, RateLimited))]
pub(crate) async fn receive(
    State(state): State<Arc<IngestState>>,
    source_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<PublishReceiptView>), ApiError> {
    let not_found = || ApiError::not_found("source");
    // A segment that does not decode (such as `%A0`) names no source.
    let Ok(Path(source_id)) = source_id else {
        return Err(not_found());
    };
    let id = SourceId::parse(&source_id).map_err(|_| not_found())?;
    let inbound = &state.inbound;
    gate(inbound, &id).await?;
    let bytes = skyhook_http::read_body(body, state.max_payload_bytes).await?;
    let Some(source) = inbound.sources.get(&id).await? else {
        inbound.unknown.insert(id, ()).await;
        return Err(not_found());
    };
    let secret = inbound.secret(&source).await?.ok_or_else(not_found)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = Utc::now();
    let verified = inbound::verify(&source, &secret, header, &bytes, now).map_err(refused)?;

    let (data, event_type) = event_of(&source, header, &bytes)?;
    let until = now + chrono::Duration::seconds(2 * TOLERANCE_SECS);
    if !inbound
        .replays
        .claim(&id, &verified.replay_key, now, until)
        .await?
    {
        return Err(refused(Refusal::Replayed));
    }
    // The sender's own delivery id, when it gives one, follows the event as its correlation id.
    let correlation_id = ["x-github-delivery", CORRELATION_HEADER]
        .into_iter()
        .find_map(|name| header(name).filter(|v| validate_correlation_id(v).is_ok()))
        .map(str::to_string);
    let published = state
        .publisher
        .publish(PublishRequest {
            tenant: source.tenant.clone(),
            event_type,
            data,
            idempotency_key: Some(verified.idempotency_key(&id)),
            subscriber_ids: None,
            correlation_id,
            timestamp: None,
        })
        .await;
    match published {
        Ok(receipt) => {
            tracing::info!(source = %id, event_id = %receipt.id, "inbound webhook published");
            Ok((
                StatusCode::ACCEPTED,
                Json(PublishReceiptView::from(receipt)),
            ))
        }
        Err(e) => {
            // Not published: the sender may send the same request again.
            if let Err(release) = inbound.replays.release(&id, &verified.replay_key).await {
                tracing::warn!(error = %release, "could not forget a refused inbound message");
            }
            Err(e.into())
        }
    }
}
