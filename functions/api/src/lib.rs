//! Skyhook's management API: subscribers and their secrets, delivery status, the attempt
//! log and stats, the dead-letter queue and recovery, API keys, the audit trail and the
//! OpenAPI document. The `api` binary runs this router in Lambda; the local runner serves it
//! on a TCP port beside the ingest router.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, Method};
use chrono::Utc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use skyhook_api_types::subscribers::SubscriberView;
use skyhook_aws::{Adapters, Resources, Retention};
use skyhook_domain::config::{self, AdminKeySource, ConfigError, Env};
use skyhook_domain::ids::TenantId;
use skyhook_domain::model::{AuditRecord, parse_time};
use skyhook_domain::ports::{
    ApiKeyStore, AttemptLog, AuditLog, DeadLetterStore, EventStore, HealthStore, OpsEvents,
    SecretStore, SourceSecrets, SourceStore, SubscriberStore,
};
use skyhook_domain::publish::Publisher;
use skyhook_domain::redrive::Redrive;
use skyhook_domain::tenants::TenantLimits;
use skyhook_domain::url::UrlPolicy;
use skyhook_http::{ApiError, Authenticator, Principal, Role};
use skyhook_process::SandboxSettings;

pub mod console;
mod deliveries;
mod dlq;
mod keys;
pub mod openapi;
mod sources;
mod subscribers;
mod tenants;

pub use subscribers::{parse_event_types, parse_headers};

/// Management requests are small; this bounds what a caller can make us buffer.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
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
    /// The jq sandbox that previews transforms.
    pub transform: SandboxSettings,
    /// Tenants' publish limits unless they have their own (`SKYHOOK_TENANT_EVENTS_PER_SECOND`,
    /// `SKYHOOK_TENANT_BURST`): test sends and resends are publishes too.
    pub tenant_limits: TenantLimits,
    /// Where inbound sources' secrets live (`SKYHOOK_SOURCE_SECRET_PREFIX`).
    pub source_secret_prefix: String,
    /// The secret holding the keyring that seals secrets in the table.
    pub keyring_secret: String,
}

impl Config {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::required(env, config::TABLE)?,
            stats_table: config::required(env, config::STATS_TABLE)?,
            queue_url: config::required(env, config::QUEUE_URL)?,
            dlq_url: config::required(env, config::DLQ_URL)?,
            keyring_secret: config::keyring_secret(env),
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
            local_mode: config::local_mode(env)?,
            event_bus: config::optional(env, config::EVENT_BUS),
            transform: SandboxSettings::from_env(env)?,
            tenant_limits: TenantLimits::from_env(env)?,
            source_secret_prefix: config::optional(env, config::SOURCE_SECRET_PREFIX)
                .unwrap_or_else(|| config::DEFAULT_SOURCE_SECRET_PREFIX.to_string()),
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
    /// Redrive, unpark, recovery and resend.
    pub redrive: Redrive,
    pub dead_letters: Arc<dyn DeadLetterStore>,
    pub keys: Arc<dyn ApiKeyStore>,
    pub audit: Arc<dyn AuditLog>,
    /// Subscribers' health, shown on each subscriber.
    pub health: Arc<dyn HealthStore>,
    /// Operational events: a person disabling a subscriber is one.
    pub ops: Arc<dyn OpsEvents>,
    /// Runs transform previews (and, for the publisher, content filters).
    pub sandbox: Arc<dyn skyhook_domain::ports::ProgramRunner>,
    /// Inbound sources and their secrets.
    pub sources: Arc<dyn SourceStore>,
    pub source_secrets: Arc<dyn SourceSecrets>,
    /// The tenants' registry, and the limits of a tenant with none of its own.
    pub tenants: Arc<dyn skyhook_domain::ports::TenantStore>,
    pub tenant_defaults: TenantLimits,
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
                source_secret_prefix: self.source_secret_prefix.clone(),
                keyring_secret: self.keyring_secret.clone(),
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
        let sandbox = Arc::new(config.transform.sandbox());
        let publisher = adapters.publisher(sandbox.clone(), config.tenant_limits);
        let redrive = Redrive {
            subscribers: adapters.subscribers.clone(),
            events: adapters.events.clone(),
            log: adapters.log.clone(),
            dead_letters: adapters.dead_letters.clone(),
            dlq,
            publisher: publisher.clone(),
            budget: BULK_TIME_BUDGET,
        };
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
            publisher,
            redrive,
            dead_letters: adapters.dead_letters.clone(),
            keys: adapters.keys.clone(),
            audit: adapters.audit.clone(),
            health: adapters.health.clone(),
            ops: adapters.ops.clone(),
            sandbox,
            sources: adapters.sources.clone(),
            source_secrets: adapters.source_secrets.clone(),
            tenants: adapters.tenants.clone(),
            tenant_defaults: config.tenant_limits,
        }
    }
}

/// Every route of the management API with its handler and its OpenAPI operation (from the
/// handler's `#[utoipa::path]`). [`router`] serves them and [`openapi::paths`] describes
/// them, so what is documented is what is served.
fn api_routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(
            subscribers::list_subscribers,
            subscribers::create_subscriber
        ))
        .routes(routes!(
            subscribers::get_subscriber,
            subscribers::patch_subscriber,
            subscribers::delete_subscriber
        ))
        .routes(routes!(subscribers::rotate_secret))
        .routes(routes!(subscribers::send_test))
        .routes(routes!(subscribers::recover))
        .routes(routes!(subscribers::preview_transform))
        .routes(routes!(deliveries::get_event))
        .routes(routes!(deliveries::resend))
        .routes(routes!(deliveries::list_deliveries))
        .routes(routes!(deliveries::stats))
        .routes(routes!(deliveries::timeseries))
        .routes(routes!(dlq::list_dead))
        .routes(routes!(dlq::redrive))
        .routes(routes!(keys::list_keys, keys::create_key))
        .routes(routes!(keys::delete_key))
        .routes(routes!(keys::list_audit))
        .routes(routes!(keys::whoami))
        .routes(routes!(sources::list_sources, sources::create_source))
        .routes(routes!(
            sources::get_source,
            sources::patch_source,
            sources::delete_source
        ))
        .routes(routes!(tenants::list_tenants))
        .routes(routes!(tenants::get_tenant, tenants::put_tenant))
        .routes(routes!(openapi::serve))
}

/// The (method, path) pairs [`router`] serves, methods in upper case.
pub fn routes() -> Vec<(Method, String)> {
    skyhook_http::documented_routes(
        &serde_json::to_value(api_routes().into_openapi()).unwrap_or_default(),
    )
}

/// The management API, and the console at `/console` (which needs no key to be served).
pub fn router(state: Arc<ApiState>) -> Router {
    Router::from(api_routes())
        .route_layer(axum::middleware::from_fn(skyhook_http::require_api_key))
        .with_state(state)
        .merge(console::router())
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
/// Records a change made in `tenant` in its trail and, when the caller belongs to another
/// tenant (the bootstrap key acting elsewhere), in the caller's too.
pub(crate) async fn audit_in_both(
    state: &ApiState,
    tenant: &TenantId,
    principal: &Principal,
    action: &str,
    resource: &str,
    detail: Option<serde_json::Value>,
) {
    audit(state, tenant, principal, action, resource, detail.clone()).await;
    if *tenant != principal.tenant {
        audit(
            state,
            &principal.tenant,
            principal,
            action,
            resource,
            detail,
        )
        .await;
    }
}

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

/// `view` as `principal` may see it: only admins see the URL's query string, which often
/// carries the receiver's token (header values no role sees).
pub fn seen_by(mut view: SubscriberView, principal: &Principal) -> SubscriberView {
    if principal.require(Role::Admin).is_err() {
        view.url = skyhook_domain::url::mask_query(&view.url);
    }
    view
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
    fn times_are_checked() {
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
        config::assert_required_env(REQUIRED_ENV, |env| Config::from_env(env));
    }
}
