//! Skyhook's management API: subscribers and their secrets, delivery status, the attempt
//! log and stats, the dead-letter queue and recovery, API keys, the audit trail and the
//! OpenAPI document. The `api` binary runs this router in Lambda; the local runner serves it
//! on a TCP port beside the ingest router.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, Method};
use axum::routing::{MethodRouter, delete, get, patch, post};
use chrono::Utc;
use serde::Serialize;

use skyhook_aws::{Adapters, Resources, Retention};
use skyhook_domain::config::{self, AdminKeySource, ConfigError, Env};
use skyhook_domain::health::{BreakerState, Health};
use skyhook_domain::ids::TenantId;
use skyhook_domain::model::{AuditRecord, Subscriber, format_time, parse_time};
use skyhook_domain::ports::{
    ApiKeyStore, AttemptLog, AuditLog, DeadLetterQueue, DeadLetterStore, EventStore, HealthStore,
    OpsEvents, SecretStore, SubscriberStore,
};
use skyhook_domain::publish::Publisher;
use skyhook_domain::signing::SignatureScheme;
use skyhook_domain::url::UrlPolicy;
use skyhook_http::{ApiError, Authenticator, Principal, Role};

mod deliveries;
mod dlq;
mod keys;
pub mod openapi;
mod subscribers;

pub use subscribers::{parse_event_types, parse_headers};

/// Management requests are small; this bounds what a caller can make us buffer.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 250;
/// Bulk routes (redrive, recover) stop after this long and report `complete: false`, well
/// inside API Gateway's 29-second limit; calling them again carries on where they stopped.
pub const BULK_TIME_BUDGET: Duration = Duration::from_secs(20);

/// Settings of the management API, read once at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    /// The stats counters' table, which `GET /v1/stats` reads.
    pub stats_table: String,
    /// Recovered, redriven and test messages are sent here.
    pub queue_url: String,
    /// Redrive reads dead messages from here.
    pub dlq_url: String,
    pub secret_prefix: String,
    pub log_retention: Duration,
    pub audit_retention: Duration,
    /// How long the previous secret keeps signing after a rotation.
    pub rotation_grace: Duration,
    pub admin_key: AdminKeySource,
    /// Local mode accepts `http://` and loopback subscriber URLs.
    pub local_mode: bool,
    /// Where operational events go (`SKYHOOK_EVENT_BUS`); `None`: only logged.
    pub event_bus: Option<String>,
}

impl Config {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::required(env, config::TABLE)?,
            stats_table: config::required(env, config::STATS_TABLE)?,
            queue_url: config::required(env, config::QUEUE_URL)?,
            dlq_url: config::required(env, config::DLQ_URL)?,
            secret_prefix: config::optional(env, config::SECRET_PREFIX)
                .unwrap_or_else(|| config::DEFAULT_SECRET_PREFIX.to_string()),
            log_retention: config::duration(
                env,
                config::LOG_RETENTION,
                config::DEFAULT_LOG_RETENTION,
            )?,
            audit_retention: config::duration(
                env,
                config::AUDIT_RETENTION,
                config::DEFAULT_AUDIT_RETENTION,
            )?,
            rotation_grace: config::rotation_grace(env)?,
            admin_key: config::admin_key_source(env)?,
            local_mode: config::flag(env, config::LOCAL_MODE)?,
            event_bus: config::optional(env, config::EVENT_BUS),
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
    /// Sends test events, and re-enqueues recovered and redriven messages.
    pub publisher: Publisher,
    pub dlq: Arc<dyn DeadLetterQueue>,
    pub dead_letters: Arc<dyn DeadLetterStore>,
    pub keys: Arc<dyn ApiKeyStore>,
    pub audit: Arc<dyn AuditLog>,
    /// Subscribers' health, shown on each subscriber.
    pub health: Arc<dyn HealthStore>,
    /// Operational events: a person disabling a subscriber is one.
    pub ops: Arc<dyn OpsEvents>,
}

impl Config {
    /// The resources and retention this configuration names, for [`Adapters::from_sdk`].
    pub fn resources(&self) -> (Resources, Retention) {
        (
            Resources {
                table: self.table.clone(),
                stats_table: Some(self.stats_table.clone()),
                queue_url: self.queue_url.clone(),
                dlq_url: Some(self.dlq_url.clone()),
                secret_prefix: self.secret_prefix.clone(),
                event_bus: self.event_bus.clone(),
            },
            Retention {
                log: self.log_retention,
                audit: self.audit_retention,
                rotation_grace: self.rotation_grace,
                ..Retention::default()
            },
        )
    }
}

impl ApiState {
    pub fn from_config(sdk: &aws_config::SdkConfig, config: &Config) -> Self {
        let (resources, retention) = config.resources();
        Self::new(&Adapters::from_sdk(sdk, &resources, &retention), config)
    }

    /// The state over these adapters.
    pub fn new(adapters: &Adapters, config: &Config) -> Self {
        let dlq = adapters
            .dlq
            .clone()
            .unwrap_or_else(|| adapters.dead_letter_queue(&config.dlq_url));
        ApiState {
            subscribers: adapters.subscribers.clone(),
            secrets: adapters.secrets.clone(),
            events: adapters.events.clone(),
            log: adapters.log.clone(),
            auth: Arc::new(
                Authenticator::new(
                    config.admin_key.clone(),
                    Some(adapters.secret_values.clone()),
                )
                .with_key_store(adapters.keys.clone()),
            ),
            url_policy: if config.local_mode {
                UrlPolicy::LOCAL
            } else {
                UrlPolicy::STRICT
            },
            publisher: adapters.publisher(),
            dlq,
            dead_letters: adapters.dead_letters.clone(),
            keys: adapters.keys.clone(),
            audit: adapters.audit.clone(),
            health: adapters.health.clone(),
            ops: adapters.ops.clone(),
        }
    }
}

type Handler = MethodRouter<Arc<ApiState>>;

/// Every route of the management API with its handler. [`router`] is built from this list
/// and [`routes`] reads it, so the OpenAPI test compares the document with what is served.
fn route_table() -> Vec<(Method, &'static str, Handler)> {
    vec![
        (
            Method::GET,
            "/v1/subscribers",
            get(subscribers::list_subscribers),
        ),
        (
            Method::POST,
            "/v1/subscribers",
            post(subscribers::create_subscriber),
        ),
        (
            Method::GET,
            "/v1/subscribers/{id}",
            get(subscribers::get_subscriber),
        ),
        (
            Method::PATCH,
            "/v1/subscribers/{id}",
            patch(subscribers::patch_subscriber),
        ),
        (
            Method::DELETE,
            "/v1/subscribers/{id}",
            delete(subscribers::delete_subscriber),
        ),
        (
            Method::POST,
            "/v1/subscribers/{id}/rotate-secret",
            post(subscribers::rotate_secret),
        ),
        (
            Method::POST,
            "/v1/subscribers/{id}/test",
            post(subscribers::send_test),
        ),
        (
            Method::POST,
            "/v1/subscribers/{id}/recover",
            post(subscribers::recover),
        ),
        (Method::GET, "/v1/events/{id}", get(deliveries::get_event)),
        (
            Method::GET,
            "/v1/deliveries",
            get(deliveries::list_deliveries),
        ),
        (Method::GET, "/v1/stats", get(deliveries::stats)),
        (Method::GET, "/v1/dlq", get(dlq::list_dead)),
        (Method::POST, "/v1/dlq/redrive", post(dlq::redrive)),
        (Method::GET, "/v1/api-keys", get(keys::list_keys)),
        (Method::POST, "/v1/api-keys", post(keys::create_key)),
        (
            Method::DELETE,
            "/v1/api-keys/{id}",
            delete(keys::delete_key),
        ),
        (Method::GET, "/v1/audit", get(keys::list_audit)),
        (Method::GET, "/v1/openapi.json", get(openapi::serve)),
    ]
}

/// The (method, path) pairs [`router`] serves.
pub fn routes() -> Vec<(Method, &'static str)> {
    route_table().into_iter().map(|(m, p, _)| (m, p)).collect()
}

pub fn router(state: Arc<ApiState>) -> Router {
    route_table()
        .into_iter()
        .fold(Router::new(), |r, (_, path, handler)| {
            r.route(path, handler)
        })
        .route_layer(axum::middleware::from_fn(skyhook_http::require_api_key))
        .with_state(state)
}

pub(crate) async fn authorize(
    state: &ApiState,
    headers: &HeaderMap,
    role: Role,
) -> Result<Principal, ApiError> {
    let principal = state.auth.authenticate(headers).await?;
    principal.require(role)?;
    Ok(principal)
}

/// `limit` of a list route: 1 to [`MAX_PAGE_SIZE`], [`DEFAULT_PAGE_SIZE`] when absent.
pub(crate) fn page_limit(raw: Option<&str>) -> Result<usize, ApiError> {
    match raw {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit must be a number from 1 to {MAX_PAGE_SIZE}"),
            )),
        },
    }
}

/// An RFC 3339 time from a query or body field, or a `400` naming the field.
pub(crate) fn parse_time_param(
    name: &str,
    raw: Option<&str>,
) -> Result<Option<chrono::DateTime<Utc>>, ApiError> {
    raw.map(|v| {
        parse_time(v).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_time",
                format!("{name} must be an RFC 3339 time such as 2026-01-02T03:04:05Z"),
            )
        })
    })
    .transpose()
}

/// Records a management change. The change has already happened when this runs, so a
/// failure to store the record cannot undo it; it is logged in full instead, which keeps the
/// trail in the function's logs.
pub(crate) async fn audit(
    state: &ApiState,
    tenant: &TenantId,
    principal: &Principal,
    action: &str,
    resource: &str,
    detail: Option<serde_json::Value>,
) {
    let record = AuditRecord {
        tenant: tenant.clone(),
        at: Utc::now(),
        actor: principal.actor(),
        action: action.to_string(),
        resource: resource.to_string(),
        detail,
    };
    tracing::info!(
        tenant = %record.tenant,
        actor = %record.actor,
        action = %record.action,
        resource = %record.resource,
        "management change"
    );
    if let Err(e) = state.audit.record(&record).await {
        tracing::error!(
            error = %e,
            tenant = %record.tenant,
            actor = %record.actor,
            action = %record.action,
            resource = %record.resource,
            detail = ?record.detail,
            "could not store the audit record"
        );
    }
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
    pub max_concurrency: u32,
    pub rate_limit: Option<u32>,
    pub disabled_reason: Option<&'static str>,
    pub health: HealthView,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A subscriber's endpoint health as the API shows it.
#[derive(Serialize)]
pub struct HealthView {
    pub state: BreakerState,
    pub consecutive_failures: u32,
    pub opened_at: Option<String>,
    pub last_error: Option<String>,
}

impl From<&Health> for HealthView {
    fn from(h: &Health) -> Self {
        HealthView {
            state: h.state,
            consecutive_failures: h.consecutive_failures,
            opened_at: h.opened_at.map(format_time),
            last_error: h.last_error.clone(),
        }
    }
}

impl SubscriberView {
    /// As `principal` may see it: only admins see the URL's query string, which often
    /// carries the receiver's token (header values no role sees).
    pub fn seen_by(mut self, principal: &Principal) -> Self {
        if principal.require(Role::Admin).is_err() {
            self.url = skyhook_domain::url::mask_query(&self.url);
        }
        self
    }

    /// The subscriber with its health (`None`: healthy).
    pub fn with_health(s: &Subscriber, health: Option<&Health>) -> Self {
        let mut view = SubscriberView::from(s);
        if let Some(h) = health {
            view.health = HealthView::from(h);
        }
        view
    }
}

impl From<&Subscriber> for SubscriberView {
    fn from(s: &Subscriber) -> Self {
        SubscriberView {
            id: s.id.to_string(),
            url: s.url.to_string(),
            event_types: s.event_types.iter().map(|f| f.to_string()).collect(),
            active: s.active,
            description: s.description.clone(),
            // Names only: the values are receiver credentials (masked in the record too,
            // except in one written before they moved to Secrets Manager).
            headers: skyhook_domain::model::masked_headers(&s.headers),
            signature_scheme: s.signature_scheme,
            max_concurrency: s.max_concurrency,
            rate_limit: s.rate_limit,
            disabled_reason: s.disabled_reason.map(|r| r.as_str()),
            health: HealthView::from(&Health::healthy()),
            created_at: format_time(s.created_at),
            updated_at: format_time(s.updated_at),
            secret: None,
        }
    }
}

/// `{"data": [...], "next_cursor": ...}`, the shape of every list.
#[derive(Serialize)]
pub(crate) struct ListResponse<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> ListResponse<T> {
    /// A store's page, each item shown through its view.
    pub(crate) fn of<U>(
        page: skyhook_domain::ports::Page<U>,
        view: impl Fn(U) -> T,
    ) -> axum::Json<Self> {
        axum::Json(ListResponse {
            data: page.items.into_iter().map(view).collect(),
            next_cursor: page.next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_queues_grace_and_local_mode_and_requires_an_admin_key() {
        let mut env = std::collections::HashMap::new();
        env.insert("SKYHOOK_TABLE", "t");
        assert_eq!(
            Config::from_env(&env).unwrap_err().name,
            config::STATS_TABLE
        );
        env.insert("SKYHOOK_STATS_TABLE", "s");
        assert_eq!(Config::from_env(&env).unwrap_err().name, config::QUEUE_URL);
        env.insert("SKYHOOK_QUEUE_URL", "http://q");
        assert_eq!(Config::from_env(&env).unwrap_err().name, config::DLQ_URL);
        env.insert("SKYHOOK_DLQ_URL", "http://dlq");
        assert_eq!(Config::from_env(&env).unwrap_err().name, config::ADMIN_KEY);
        env.insert("SKYHOOK_ADMIN_KEY", "sk_local_0123456789");
        let c = Config::from_env(&env).unwrap();
        assert!(!c.local_mode);
        assert_eq!(c.rotation_grace, Duration::from_secs(24 * 3600));
        assert_eq!(c.audit_retention, Duration::from_secs(365 * 24 * 3600));
        env.insert("SKYHOOK_LOCAL_MODE", "true");
        env.insert("SKYHOOK_SECRET_ROTATION_GRACE", "1h");
        let c = Config::from_env(&env).unwrap();
        assert!(c.local_mode);
        assert_eq!(c.rotation_grace, Duration::from_secs(3600));
        env.insert("SKYHOOK_AUDIT_RETENTION", "forever");
        assert_eq!(
            Config::from_env(&env).unwrap_err().name,
            config::AUDIT_RETENTION
        );
    }

    #[test]
    fn limits_and_times_are_checked() {
        assert_eq!(page_limit(None).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_limit(Some("250")).unwrap(), 250);
        for bad in ["0", "251", "x", "-1"] {
            assert_eq!(page_limit(Some(bad)).unwrap_err().code, "invalid_limit");
        }
        assert!(
            parse_time_param("since", Some("2026-01-02T03:04:05Z"))
                .unwrap()
                .is_some()
        );
        assert_eq!(
            parse_time_param("since", Some("yesterday"))
                .unwrap_err()
                .code,
            "invalid_time"
        );
    }

    #[test]
    fn every_route_is_listed_once() {
        let routes = routes();
        let unique: std::collections::HashSet<_> = routes.iter().collect();
        assert_eq!(unique.len(), routes.len());
    }
}

/// What the management API cannot start without; the SAM template must set each (a test in
/// `tests/it/template.rs` holds it to this list). A deployment gives the admin key as a
/// Secrets Manager secret, so the key never sits in the function's settings.
pub const REQUIRED_ENV: &[&str] = &[
    config::TABLE,
    config::STATS_TABLE,
    config::QUEUE_URL,
    config::DLQ_URL,
    config::ADMIN_KEY_SECRET,
];

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
