//! Skyhook's ingest: `POST /v1/events` (API Gateway HTTP API) and EventBridge events, both
//! published through the shared fan-out. The binaries and the local runner call these.

use std::sync::Arc;

pub mod inbound;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Json, Router};
use lambda_runtime::LambdaEvent;
use serde_json::value::RawValue;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use skyhook_api_types::HealthStatus;
use skyhook_api_types::events::{PublishEvent, PublishReceiptView};
use skyhook_aws::{Adapters, Resources, Retention};
use skyhook_domain::config::{self, AdminKeySource, ConfigError, Env};
use skyhook_domain::event_type::EventType;
use skyhook_domain::ids::{SubscriberId, TenantId};
use skyhook_domain::publish::{PublishError, PublishRequest, Publisher};
use skyhook_domain::tenants::TenantLimits;
use skyhook_http::responses::{AuthErrors, BodyErrors, Conflict, RateLimited};
pub use skyhook_http::with_fallbacks;
use skyhook_http::{ApiError, Authenticator, Role, read_json};
use skyhook_process::SandboxSettings;

pub const EVENTBRIDGE_TENANT: &str = "SKYHOOK_EVENTBRIDGE_TENANT";
pub use skyhook_domain::model::CORRELATION_HEADER;

/// Settings of the ingest functions, read once at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    pub queue_url: String,
    pub max_payload_bytes: usize,
    pub log_retention: std::time::Duration,
    /// Needed by `ingest-http` only; `None` for `ingest-events`.
    pub admin_key: Option<AdminKeySource>,
    pub eventbridge_tenant: TenantId,
    /// The jq sandbox of subscribers' content filters (the limits of transforms:
    /// `SKYHOOK_TRANSFORM_TIMEOUT`, `SKYHOOK_TRANSFORM_MEMORY_MB`).
    pub sandbox: SandboxSettings,
    /// Tenants' publish limits unless they have their own (`SKYHOOK_TENANT_EVENTS_PER_SECOND`,
    /// `SKYHOOK_TENANT_BURST`).
    pub tenant_limits: TenantLimits,
    /// Where inbound sources' secrets live (`SKYHOOK_SOURCE_SECRET_PREFIX`; `ingest-http`).
    pub source_secret_prefix: String,
    /// The secret holding the keyring that seals sources' secrets in the table.
    pub keyring_secret: String,
}

impl Config {
    pub fn from_env(env: &dyn Env, needs_auth: bool) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::required(env, config::TABLE)?,
            queue_url: config::required(env, config::QUEUE_URL)?,
            max_payload_bytes: config::max_payload_bytes(env)?,
            log_retention: config::duration(
                env,
                config::LOG_RETENTION,
                config::DEFAULT_LOG_RETENTION,
            )?,
            admin_key: if needs_auth {
                Some(config::admin_key_source(env)?)
            } else {
                None
            },
            eventbridge_tenant: config::parsed(
                env,
                EVENTBRIDGE_TENANT,
                TenantId::default_tenant(),
                TenantId::parse,
            )?,
            sandbox: SandboxSettings::from_env(env)?,
            tenant_limits: TenantLimits::from_env(env)?,
            // Only `ingest-http` receives inbound webhooks, and reads sources' secrets.
            keyring_secret: if needs_auth {
                config::keyring_secret(env)
            } else {
                config::DEFAULT_KEYRING_SECRET.to_string()
            },
            source_secret_prefix: needs_auth
                .then(|| config::optional(env, config::SOURCE_SECRET_PREFIX))
                .flatten()
                .unwrap_or_else(|| config::DEFAULT_SOURCE_SECRET_PREFIX.to_string()),
        })
    }
}

/// What `ingest-events` cannot start without; the SAM template must set each (a test in
/// `tests/it/template.rs` holds it to this list, and the unit test below holds this list to
/// `Config::from_env`).
pub const REQUIRED_ENV_EVENTS: &[&str] = &[config::TABLE, config::QUEUE_URL];

/// What `ingest-http` cannot start without. Of the two ways to give the admin key, a
/// deployment uses the Secrets Manager one: the key never sits in the function's settings.
pub const REQUIRED_ENV_HTTP: &[&str] =
    &[config::TABLE, config::QUEUE_URL, config::ADMIN_KEY_SECRET];

impl Config {
    /// The adapters this configuration names (clients are made once per process).
    pub fn adapters(&self, sdk: &aws_config::SdkConfig) -> Adapters {
        Adapters::from_sdk(
            sdk,
            &Resources {
                table: self.table.clone(),
                stats_table: None,
                queue_url: self.queue_url.clone(),
                dlq_url: None,
                secret_prefix: config::DEFAULT_SECRET_PREFIX.to_string(),
                source_secret_prefix: self.source_secret_prefix.clone(),
                keyring_secret: self.keyring_secret.clone(),
                event_bus: None,
            },
            &Retention {
                log: self.log_retention,
                ..Retention::default()
            },
        )
    }
}

/// Builds the publisher over DynamoDB and SQS.
pub fn publisher(sdk: &aws_config::SdkConfig, config: &Config) -> Publisher {
    config
        .adapters(sdk)
        .publisher(Arc::new(config.sandbox.sandbox()), config.tenant_limits)
}

/// The authenticator of `ingest-http`: the bootstrap key and the API keys issued through
/// `POST /v1/api-keys`. `None` when the config has no admin key (`ingest-events`).
pub fn authenticator(adapters: &Adapters, config: &Config) -> Option<Authenticator> {
    let source = config.admin_key.clone()?;
    Some(
        Authenticator::new(source, Some(adapters.secret_values.clone()))
            .with_key_store(adapters.keys.clone()),
    )
}

/// What the HTTP routes share.
pub struct IngestState {
    pub publisher: Publisher,
    /// Webhooks from outside: sources, their secrets, the replay guard.
    pub inbound: inbound::Inbound,
    pub auth: Arc<Authenticator>,
    pub max_payload_bytes: usize,
}

impl IngestState {
    /// The state `ingest-http` and the local runner serve. `None` when the config has no
    /// admin key source (it was read for `ingest-events`).
    pub fn from_config(sdk: &aws_config::SdkConfig, config: &Config) -> Option<Self> {
        Self::new(&config.adapters(sdk), config)
    }

    /// The state over these adapters.
    pub fn new(adapters: &Adapters, config: &Config) -> Option<Self> {
        Some(IngestState {
            publisher: adapters.publisher(Arc::new(config.sandbox.sandbox()), config.tenant_limits),
            inbound: inbound::Inbound::of(adapters),
            auth: Arc::new(authenticator(adapters, config)?),
            max_payload_bytes: config.max_payload_bytes,
        })
    }
}

/// Every route of this router with its handler and its OpenAPI operation; [`router`] serves
/// them and [`openapi`] describes them.
fn ingest_routes() -> OpenApiRouter<Arc<IngestState>> {
    OpenApiRouter::new()
        .routes(routes!(publish_event))
        .routes(routes!(inbound::receive))
        .routes(routes!(health))
}

/// This router's part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ingest_routes().into_openapi()
}

/// The (method, path) pairs [`router`] serves.
pub fn routes() -> Vec<(http::Method, String)> {
    skyhook_http::documented_routes(&serde_json::to_value(openapi()).unwrap_or_default())
}

/// `POST /v1/events`, `POST /v1/inbound/{source_id}` and `GET /v1/health`; unknown routes answer in the API's error shape
/// once wrapped in [`with_fallbacks`].
pub fn router(state: Arc<IngestState>) -> Router {
    Router::from(ingest_routes())
        .route_layer(axum::middleware::from_fn(skyhook_http::require_api_key))
        .with_state(state)
}

/// Whether the service is up; needs no key.
#[utoipa::path(get, path = "/v1/health", tag = "meta", security(()),
    responses((status = 200, description = "The service is up.", body = HealthStatus)))]
pub async fn health() -> Json<HealthStatus> {
    Json(HealthStatus::ok())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str().map_err(|_| {
                ApiError::bad_request("invalid_header", format!("{name} is not ASCII"))
            })
        })
        .transpose()
}

/// Publishes an event.
///
/// It goes to every subscriber whose filters match its type (or to the ones named). An
/// `Idempotency-Key` header (or the body's `id`) makes repeats within 24 h answer with the
/// first event.
#[utoipa::path(post, path = "/v1/events", tag = "events", request_body = PublishEvent,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Repeats within 24 h with the same key answer with the first event."),
        ("X-Correlation-Id" = Option<String>, Header, description = "Sent on every delivery as `x-correlation-id`."),
    ),
    responses((status = 202, description = "Published: the event and how many subscribers it goes to.", body = PublishReceiptView), BodyErrors, Conflict, RateLimited, AuthErrors))]
async fn publish_event(
    State(state): State<Arc<IngestState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<PublishReceiptView>), ApiError> {
    // A key whose tenant this instance just refused is refused again at once, before the
    // key is looked up: a flood costs its tenant's refusals, not a read each.
    let key_digest = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(skyhook_http::api_key_digest);
    if let (Some(gate), Some(digest)) = (&state.publisher.gate, &key_digest)
        && let Some(refused) = gate.key_wait(digest, chrono::Utc::now())
    {
        return Err(PublishError::RateLimited(refused).into());
    }
    let principal = state.auth.authenticate(&headers).await?;
    principal.require(Role::Publisher)?;
    if let Some(len) = header_str(&headers, "content-length")?.and_then(|v| v.parse::<usize>().ok())
        && len > state.max_payload_bytes
    {
        return Err(ApiError::payload_too_large(state.max_payload_bytes));
    }
    let body: PublishEvent = read_json(body, state.max_payload_bytes).await?;
    let request = publish_request(principal.tenant, &headers, body)?;
    let receipt = state.publisher.publish(request).await.inspect_err(|e| {
        if let (PublishError::RateLimited(limited), Some(gate), Some(digest)) =
            (e, &state.publisher.gate, key_digest)
        {
            gate.note_key(digest, limited, chrono::Utc::now());
        }
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PublishReceiptView::from(receipt)),
    ))
}

/// The publish a `POST /v1/events` asks for, checked: its type, its targets, its
/// idempotency key (the header, else the body's `id`) and its correlation id.
fn publish_request(
    tenant: TenantId,
    headers: &HeaderMap,
    body: PublishEvent,
) -> Result<PublishRequest, ApiError> {
    let event_type = EventType::parse(&body.event_type)
        .map_err(|e| ApiError::unprocessable("invalid_event_type", e.to_string()))?;
    let subscriber_ids = body
        .subscriber_ids
        .map(|ids| {
            ids.iter()
                .map(|id| SubscriberId::parse(id))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(|e| ApiError::unprocessable("invalid_subscriber_id", e.to_string()))?;
    let idempotency_key = match header_str(headers, "idempotency-key")? {
        Some(k) => Some(k.to_string()),
        None => body.id,
    };
    if let Some(key) = &idempotency_key {
        skyhook_domain::publish::validate_caller_idempotency_key(key)
            .map_err(|m| ApiError::bad_request("invalid_request", m))?;
    }
    let correlation_id = header_str(headers, CORRELATION_HEADER)?.map(str::to_string);
    Ok(PublishRequest {
        tenant,
        event_type,
        data: body.data,
        idempotency_key,
        subscriber_ids,
        correlation_id,
        timestamp: None,
    })
}

/// Why an EventBridge event could not be published.
#[derive(Debug, thiserror::Error)]
pub enum EventBridgeError {
    #[error("detail-type {0:?} cannot be made into an event type")]
    BadDetailType(String),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

impl From<EventBridgeError> for lambda_runtime::Diagnostic {
    fn from(err: EventBridgeError) -> Self {
        let error_type = match &err {
            EventBridgeError::BadDetailType(_) => "BadDetailType",
            // Lambda's asynchronous retries send it again after a minute, then two.
            EventBridgeError::Publish(PublishError::RateLimited(_)) => "RateLimited",
            EventBridgeError::Publish(e) if e.is_retryable() => "PublishUnavailable",
            EventBridgeError::Publish(_) => "PublishRejected",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_string(),
            error_message: err.to_string(),
        }
    }
}

/// Turns an EventBridge `detail-type` into an event type: characters an event type cannot
/// hold (AWS uses spaces, as in `EC2 Instance State-change Notification`) become `-`.
pub fn event_type_from_detail_type(detail_type: &str) -> Option<EventType> {
    let mut out = String::with_capacity(detail_type.len());
    for c in detail_type.trim().chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    EventType::parse(out.trim_matches('-')).ok()
}

/// The `ingest-events` handler: `detail-type` → type, `detail` → data, the EventBridge
/// event id → idempotency key, `time` → the event's timestamp.
pub async fn handle_eventbridge(
    publisher: &Publisher,
    tenant: &TenantId,
    event: LambdaEvent<EventBridgeEvent<Box<RawValue>>>,
) -> Result<serde_json::Value, EventBridgeError> {
    let ev = event.payload;
    if ev.source == skyhook_domain::model::OPS_EVENT_SOURCE {
        // Skyhook's own operational events share the bus; fanned out as webhooks they could
        // feed themselves (an exhausted delivery announcing itself to a failing endpoint).
        // Operators route them with rules of their own.
        return Ok(serde_json::json!({"ignored": "a Skyhook operational event"}));
    }
    let event_type = event_type_from_detail_type(&ev.detail_type)
        .ok_or_else(|| EventBridgeError::BadDetailType(ev.detail_type.clone()))?;
    let receipt = publisher
        .publish(PublishRequest {
            tenant: tenant.clone(),
            event_type,
            data: ev.detail,
            idempotency_key: ev.id.as_ref().map(|id| format!("eventbridge:{id}")),
            subscriber_ids: None,
            correlation_id: ev
                .id
                .clone()
                .filter(|id| skyhook_domain::publish::validate_correlation_id(id).is_ok()),
            timestamp: ev.time,
        })
        .await?;
    Ok(serde_json::json!({
        "id": receipt.id.to_string(),
        "type": receipt.event_type.to_string(),
        "subscribers": receipt.subscribers,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_types_with_spaces_become_event_types() {
        assert_eq!(
            event_type_from_detail_type("EC2 Instance State-change Notification")
                .unwrap()
                .as_str(),
            "EC2-Instance-State-change-Notification"
        );
        assert_eq!(
            event_type_from_detail_type("order.created")
                .unwrap()
                .as_str(),
            "order.created"
        );
        assert!(event_type_from_detail_type("  !!  ").is_none());
    }

    #[test]
    fn config_requires_table_and_queue_and_an_admin_key_for_http() {
        let mut env = std::collections::HashMap::new();
        assert_eq!(
            Config::from_env(&env, false).unwrap_err().name,
            config::TABLE
        );
        env.insert("SKYHOOK_TABLE", "t");
        env.insert("SKYHOOK_QUEUE_URL", "http://q");
        assert!(Config::from_env(&env, false).is_ok());
        assert_eq!(
            Config::from_env(&env, true).unwrap_err().name,
            config::ADMIN_KEY
        );
        env.insert("SKYHOOK_ADMIN_KEY", "sk_local_0123456789");
        assert!(Config::from_env(&env, true).is_ok());
        env.insert(EVENTBRIDGE_TENANT, "Bad Tenant");
        assert_eq!(
            Config::from_env(&env, true).unwrap_err().name,
            EVENTBRIDGE_TENANT
        );
    }

    #[test]
    fn required_env_lists_are_exactly_what_config_needs() {
        for (needs_auth, required) in [(false, REQUIRED_ENV_EVENTS), (true, REQUIRED_ENV_HTTP)] {
            config::assert_required_env(required, |env| Config::from_env(env, needs_auth));
        }
    }
}
