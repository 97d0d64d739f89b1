//! Skyhook's management API: subscribers and event delivery status. The `api` binary runs
//! this router in Lambda; the local runner serves it on a TCP port.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use skyhook_shared::aws::{
    DynamoDbAttemptLog, DynamoDbEventStore, DynamoDbSubscriberStore, SecretsManagerSecrets,
};
use skyhook_shared::config::{self, AdminKeySource, ConfigError, Env};
use skyhook_shared::event_type::EventTypeFilter;
use skyhook_shared::http::{ApiError, Authenticator, Principal, Role, read_json};
use skyhook_shared::ids::{EventId, SubscriberId};
use skyhook_shared::model::{DeliveryStatus, Subscriber, format_time};
use skyhook_shared::ports::{AttemptLog, EventStore, PageRequest, SecretStore, SubscriberStore};
use skyhook_shared::secret::SigningSecret;
use skyhook_shared::signing::SignatureScheme;
use skyhook_shared::url::{SubscriberUrl, UrlPolicy};

/// Management requests are small; this bounds what a caller can make us buffer.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 250;
const MAX_EVENT_TYPES: usize = 100;
const MAX_HEADERS: usize = 20;
const MAX_DESCRIPTION_CHARS: usize = 1024;
const MAX_HEADER_VALUE_BYTES: usize = 1024;
/// Headers a subscriber may not set: Skyhook's own, and those that would break the request.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "host",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-webhook-id",
    "x-webhook-timestamp",
    "x-webhook-signature",
    "x-correlation-id",
];

/// Settings of the management API, read once at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    pub secret_prefix: String,
    pub log_retention: std::time::Duration,
    pub admin_key: AdminKeySource,
    /// Local mode accepts `http://` and loopback subscriber URLs.
    pub local_mode: bool,
}

impl Config {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::required(env, config::TABLE)?,
            secret_prefix: config::optional(env, config::SECRET_PREFIX)
                .unwrap_or_else(|| config::DEFAULT_SECRET_PREFIX.to_string()),
            log_retention: config::duration(
                env,
                config::LOG_RETENTION,
                config::DEFAULT_LOG_RETENTION,
            )?,
            admin_key: config::admin_key_source(env)?,
            local_mode: config::flag(env, config::LOCAL_MODE)?,
        })
    }
}

/// What the routes share; every field is built once per process.
pub struct ApiState {
    pub subscribers: Arc<dyn SubscriberStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub events: Arc<dyn EventStore>,
    pub log: Arc<dyn AttemptLog>,
    pub auth: Arc<Authenticator>,
    pub url_policy: UrlPolicy,
}

impl ApiState {
    pub fn from_config(sdk: &aws_config::SdkConfig, config: &Config) -> Self {
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let sm = aws_sdk_secretsmanager::Client::new(sdk);
        ApiState {
            subscribers: Arc::new(DynamoDbSubscriberStore::new(ddb.clone(), &config.table)),
            secrets: Arc::new(SecretsManagerSecrets::new(
                sm.clone(),
                &config.secret_prefix,
            )),
            events: Arc::new(DynamoDbEventStore::new(
                ddb.clone(),
                &config.table,
                config.log_retention,
            )),
            log: Arc::new(DynamoDbAttemptLog::new(
                ddb,
                &config.table,
                config.log_retention,
            )),
            auth: Arc::new(Authenticator::new(config.admin_key.clone(), Some(sm))),
            url_policy: if config.local_mode {
                UrlPolicy::LOCAL
            } else {
                UrlPolicy::STRICT
            },
        }
    }
}

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route(
            "/v1/subscribers",
            get(list_subscribers).post(create_subscriber),
        )
        .route(
            "/v1/subscribers/{id}",
            get(get_subscriber).delete(delete_subscriber),
        )
        .route("/v1/events/{id}", get(get_event))
        .with_state(state)
}

/// A subscriber as the API shows it (the secret only once, at creation).
#[derive(Serialize)]
pub struct SubscriberView {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub active: bool,
    pub description: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub signature_scheme: SignatureScheme,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<&Subscriber> for SubscriberView {
    fn from(s: &Subscriber) -> Self {
        SubscriberView {
            id: s.id.to_string(),
            url: s.url.to_string(),
            event_types: s.event_types.iter().map(|f| f.to_string()).collect(),
            active: s.active,
            description: s.description.clone(),
            headers: s.headers.clone(),
            signature_scheme: s.signature_scheme,
            created_at: format_time(s.created_at),
            updated_at: format_time(s.updated_at),
            secret: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSubscriber {
    url: String,
    event_types: Vec<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    signature_scheme: Option<String>,
}

async fn authorize(
    state: &ApiState,
    headers: &HeaderMap,
    role: Role,
) -> Result<Principal, ApiError> {
    let principal = state.auth.authenticate(headers).await?;
    principal.require(role)?;
    Ok(principal)
}

/// Checks the event type filters of a subscriber: 1 to 100 valid filters.
pub fn parse_event_types(raw: &[String]) -> Result<Vec<EventTypeFilter>, ApiError> {
    if raw.is_empty() || raw.len() > MAX_EVENT_TYPES {
        return Err(ApiError::unprocessable(
            "invalid_event_types",
            format!("event_types must hold 1 to {MAX_EVENT_TYPES} entries"),
        ));
    }
    raw.iter()
        .map(|f| {
            EventTypeFilter::parse(f)
                .map_err(|e| ApiError::unprocessable("invalid_event_types", e.to_string()))
        })
        .collect()
}

/// Checks custom headers: valid names and values, none that Skyhook sets itself.
pub fn parse_headers(raw: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError> {
    if raw.len() > MAX_HEADERS {
        return Err(ApiError::unprocessable(
            "invalid_headers",
            format!("at most {MAX_HEADERS} custom headers"),
        ));
    }
    let mut out = BTreeMap::new();
    for (name, value) in raw {
        let lower = name.to_ascii_lowercase();
        if http::HeaderName::from_bytes(lower.as_bytes()).is_err() {
            return Err(ApiError::unprocessable(
                "invalid_headers",
                format!("{name:?} is not a valid header name"),
            ));
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(ApiError::unprocessable(
                "invalid_headers",
                format!("header {name} is set by Skyhook and cannot be overridden"),
            ));
        }
        if value.len() > MAX_HEADER_VALUE_BYTES || http::HeaderValue::from_str(&value).is_err() {
            return Err(ApiError::unprocessable(
                "invalid_headers",
                format!("the value of header {name} is not a valid header value"),
            ));
        }
        out.insert(lower, value);
    }
    Ok(out)
}

async fn create_subscriber(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let req: CreateSubscriber = read_json(body, MAX_BODY_BYTES).await?;
    let url = SubscriberUrl::parse(&req.url, state.url_policy)
        .map_err(|e| ApiError::unprocessable(e.code(), e.to_string()))?;
    let event_types = parse_event_types(&req.event_types)?;
    if let Some(d) = &req.description
        && d.chars().count() > MAX_DESCRIPTION_CHARS
    {
        return Err(ApiError::unprocessable(
            "invalid_description",
            format!("description is longer than {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    let secret = match &req.secret {
        Some(s) => SigningSecret::parse(s)
            .map_err(|e| ApiError::unprocessable("invalid_secret", e.to_string()))?,
        None => SigningSecret::generate(),
    };
    let signature_scheme = match &req.signature_scheme {
        Some(s) => SignatureScheme::parse(s)
            .map_err(|e| ApiError::unprocessable("invalid_signature_scheme", e.to_string()))?,
        None => SignatureScheme::Standard,
    };
    let headers = parse_headers(req.headers.unwrap_or_default())?;
    let now = Utc::now();
    let subscriber = Subscriber {
        id: SubscriberId::new(),
        tenant: principal.tenant.clone(),
        url,
        event_types,
        active: true,
        description: req.description,
        headers,
        signature_scheme,
        created_at: now,
        updated_at: now,
    };
    // The secret goes first: a subscriber that exists is always deliverable.
    state
        .secrets
        .create(&subscriber.tenant, &subscriber.id, &secret)
        .await?;
    if let Err(e) = state.subscribers.create(&subscriber).await {
        if let Err(cleanup) = state
            .secrets
            .delete(&subscriber.tenant, &subscriber.id)
            .await
        {
            tracing::error!(error = %cleanup, subscriber_id = %subscriber.id, "could not remove the secret of a subscriber that was not created");
        }
        return Err(e.into());
    }
    tracing::info!(subscriber_id = %subscriber.id, tenant = %subscriber.tenant, "subscriber created");
    let mut view = SubscriberView::from(&subscriber);
    view.secret = Some(secret.expose());
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
    active: Option<String>,
}

#[derive(Serialize)]
struct ListResponse {
    data: Vec<SubscriberView>,
    next_cursor: Option<String>,
}

async fn list_subscribers(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = authorize(&state, &headers, Role::Reader).await?;
    let limit = match q.limit.as_deref() {
        None => DEFAULT_PAGE_SIZE,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_limit",
                    format!("limit must be a number from 1 to {MAX_PAGE_SIZE}"),
                ));
            }
        },
    };
    let active = match q.active.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_active",
                "active must be true or false",
            ));
        }
    };
    let page = state
        .subscribers
        .list(
            &principal.tenant,
            &PageRequest {
                limit,
                cursor: q.cursor,
                active,
            },
        )
        .await?;
    Ok(Json(ListResponse {
        data: page.items.iter().map(SubscriberView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

fn subscriber_id(raw: &str) -> Result<SubscriberId, ApiError> {
    SubscriberId::parse(raw).map_err(|_| ApiError::not_found("subscriber"))
}

async fn get_subscriber(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = authorize(&state, &headers, Role::Reader).await?;
    let id = subscriber_id(&id)?;
    let sub = state
        .subscribers
        .get(&principal.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("subscriber"))?;
    Ok(Json(SubscriberView::from(&sub)))
}

async fn delete_subscriber(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let id = subscriber_id(&id)?;
    if !state.subscribers.delete(&principal.tenant, &id).await? {
        return Err(ApiError::not_found("subscriber"));
    }
    state.secrets.delete(&principal.tenant, &id).await?;
    tracing::info!(subscriber_id = %id, tenant = %principal.tenant, "subscriber deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct EventView {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    timestamp: String,
    data: Option<Box<RawValue>>,
    correlation_id: String,
    deliveries: Vec<DeliveryStatusView>,
}

#[derive(Serialize)]
struct DeliveryStatusView {
    subscriber_id: String,
    status: &'static str,
    attempts: u32,
    last_status_code: Option<u16>,
    last_error: Option<String>,
    updated_at: Option<String>,
}

impl From<DeliveryStatus> for DeliveryStatusView {
    fn from(s: DeliveryStatus) -> Self {
        DeliveryStatusView {
            subscriber_id: s.subscriber_id.to_string(),
            status: s.status.as_str(),
            attempts: s.attempts,
            last_status_code: s.last_status_code,
            last_error: s.last_error,
            updated_at: s.updated_at.map(format_time),
        }
    }
}

async fn get_event(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = authorize(&state, &headers, Role::Reader).await?;
    let id = EventId::parse(&id).map_err(|_| ApiError::not_found("event"))?;
    let (event, statuses) = tokio::join!(
        state.events.get_event(&principal.tenant, &id),
        state.log.statuses(&principal.tenant, &id)
    );
    let event = event?.ok_or_else(|| ApiError::not_found("event"))?;
    let mut statuses = statuses?;
    // One entry per targeted subscriber; those not yet attempted are pending.
    let deliveries = event
        .subscriber_ids
        .iter()
        .map(|sub| {
            statuses
                .iter()
                .position(|s| &s.subscriber_id == sub)
                .map(|i| statuses.swap_remove(i))
                .unwrap_or_else(|| DeliveryStatus::pending(sub.clone()))
                .into()
        })
        .collect();
    Ok(Json(EventView {
        id: event.id.to_string(),
        event_type: event.event_type.to_string(),
        timestamp: format_time(event.timestamp),
        data: event.data,
        correlation_id: event.correlation_id,
        deliveries,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_invalid_headers_are_refused() {
        let ok = parse_headers(BTreeMap::from([("X-Tenant".into(), "acme".into())])).unwrap();
        assert_eq!(ok.get("x-tenant").unwrap(), "acme");
        for (k, v) in [
            ("webhook-signature", "x"),
            ("Content-Type", "text/plain"),
            ("bad header", "x"),
            ("x-ok", "line\nbreak"),
        ] {
            let err = parse_headers(BTreeMap::from([(k.to_string(), v.to_string())])).unwrap_err();
            assert_eq!(err.code, "invalid_headers", "{k}");
        }
    }

    #[test]
    fn event_type_lists_must_be_non_empty_and_valid() {
        assert!(parse_event_types(&[]).is_err());
        assert!(parse_event_types(&["order.*".into(), "*".into()]).is_ok());
        assert_eq!(
            parse_event_types(&["order.*.x".into()]).unwrap_err().code,
            "invalid_event_types"
        );
    }

    #[test]
    fn config_reads_local_mode_and_requires_an_admin_key() {
        let mut env = std::collections::HashMap::new();
        env.insert("SKYHOOK_TABLE", "t");
        assert_eq!(Config::from_env(&env).unwrap_err().name, config::ADMIN_KEY);
        env.insert("SKYHOOK_ADMIN_KEY", "sk_local_0123456789");
        assert!(!Config::from_env(&env).unwrap().local_mode);
        env.insert("SKYHOOK_LOCAL_MODE", "true");
        assert!(Config::from_env(&env).unwrap().local_mode);
    }
}

/// What the management API cannot start without; the SAM template must set each (a test in
/// `tests/it/template.rs` holds it to this list). A deployment gives the admin key as a
/// Secrets Manager secret, so the key never sits in the function's settings.
pub const REQUIRED_ENV: &[&str] = &[config::TABLE, config::ADMIN_KEY_SECRET];

#[cfg(test)]
mod required_env_tests {
    use super::*;

    #[test]
    fn required_env_is_exactly_what_config_needs() {
        let all: std::collections::HashMap<&str, &str> =
            REQUIRED_ENV.iter().map(|name| (*name, "set")).collect();
        assert!(Config::from_env(&all).is_ok());
        for missing in REQUIRED_ENV {
            let mut env = all.clone();
            env.remove(missing);
            let err = Config::from_env(&env).unwrap_err();
            assert!(err.to_string().contains(missing), "{err}");
        }
    }
}
