//! The delivery function's settings, read once at start-up from its environment.

use std::collections::BTreeSet;
use std::time::Duration;

use skyhook_aws::{Resources, Retention};
use skyhook_domain::breaker::BreakerPolicy;
use skyhook_domain::config::{self, ConfigError, Env};
use skyhook_domain::ids::TenantId;
use skyhook_domain::retry::RetrySchedule;
use skyhook_process::SandboxSettings;

/// Settings of the delivery function, read once at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub secret_prefix: String,
    /// The secret holding the keyring that seals secrets in the table.
    pub keyring_secret: String,
    pub retry_schedule: RetrySchedule,
    pub http_timeout: Duration,
    pub log_retention: Duration,
    pub secret_cache_ttl: Duration,
    /// How long the previous secret keeps signing after a rotation.
    pub rotation_grace: Duration,
    /// Local mode lets deliveries reach loopback and private addresses (a receiver on the
    /// developer's machine); outside it they are refused at connect time.
    pub local_mode: bool,
    /// The circuit breaker and auto-disable settings.
    pub breaker: BreakerPolicy,
    /// Where operational events go (`SKYHOOK_EVENT_BUS`); `None`: only logged.
    pub event_bus: Option<String>,
    /// The CloudWatch namespace of the per-batch metrics written as EMF log lines
    /// (`SKYHOOK_METRICS_NAMESPACE`); `None`: no metrics lines.
    pub metrics_namespace: Option<String>,
    /// Tenants whose metrics also carry a `Tenant` dimension (`SKYHOOK_METRICS_TENANTS`);
    /// every other tenant counts in the stack-wide figures only.
    pub metrics_tenants: BTreeSet<TenantId>,
    /// The jq sandbox of subscribers' transforms (`SKYHOOK_TRANSFORM_TIMEOUT`,
    /// `SKYHOOK_TRANSFORM_MEMORY_MB`).
    pub transform: SandboxSettings,
}

impl Config {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::required(env, config::TABLE)?,
            queue_url: config::required(env, config::QUEUE_URL)?,
            dlq_url: config::required(env, config::DLQ_URL)?,
            keyring_secret: config::keyring_secret(env),
            secret_prefix: config::optional(env, config::SECRET_PREFIX)
                .unwrap_or_else(|| config::DEFAULT_SECRET_PREFIX.to_string()),
            retry_schedule: config::retry_schedule(env)?,
            http_timeout: config::http_timeout(env)?,
            log_retention: config::duration(
                env,
                config::LOG_RETENTION,
                config::DEFAULT_LOG_RETENTION,
            )?,
            secret_cache_ttl: config::duration(
                env,
                config::SECRET_CACHE_TTL,
                config::DEFAULT_SECRET_CACHE_TTL,
            )?,
            rotation_grace: config::rotation_grace(env)?,
            local_mode: config::local_mode(env)?,
            breaker: config::breaker_policy(env)?,
            event_bus: config::optional(env, config::EVENT_BUS),
            metrics_namespace: config::optional(env, config::METRICS_NAMESPACE),
            metrics_tenants: config::metrics_tenants(env)?,
            transform: SandboxSettings::from_env(env)?,
        })
    }
}

/// What the delivery function cannot start without; the SAM template must set each (a test
/// in `tests/it/template.rs` holds it to this list, and the unit test below holds this list
/// to `Config::from_env`).
pub const REQUIRED_ENV: &[&str] = &[config::TABLE, config::QUEUE_URL, config::DLQ_URL];

impl Config {
    /// The resources and retention this configuration names, for [`Adapters::from_sdk`].
    pub fn resources(&self) -> (Resources, Retention) {
        (
            Resources {
                table: self.table.clone(),
                stats_table: None,
                queue_url: self.queue_url.clone(),
                dlq_url: Some(self.dlq_url.clone()),
                secret_prefix: self.secret_prefix.clone(),
                source_secret_prefix: config::DEFAULT_SOURCE_SECRET_PREFIX.to_string(),
                keyring_secret: self.keyring_secret.clone(),
                event_bus: self.event_bus.clone(),
            },
            Retention {
                log: self.log_retention,
                rotation_grace: self.rotation_grace,
                ..Retention::default()
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_missing_and_malformed_variables() {
        let mut env = std::collections::HashMap::new();
        env.insert("SKYHOOK_TABLE", "t");
        env.insert("SKYHOOK_QUEUE_URL", "q");
        assert_eq!(Config::from_env(&env).unwrap_err().name, config::DLQ_URL);
        env.insert("SKYHOOK_DLQ_URL", "d");
        let c = Config::from_env(&env).unwrap();
        assert_eq!(c.http_timeout, Duration::from_secs(15));
        assert_eq!(c.retry_schedule.max_attempts(), 8);
        assert!(!c.local_mode);
        assert_eq!(c.rotation_grace, Duration::from_secs(24 * 3600));
        env.insert("SKYHOOK_LOCAL_MODE", "true");
        env.insert("SKYHOOK_SECRET_ROTATION_GRACE", "10m");
        let c = Config::from_env(&env).unwrap();
        assert!(c.local_mode);
        assert_eq!(c.rotation_grace, Duration::from_secs(600));
        env.insert("SKYHOOK_SECRET_ROTATION_GRACE", "soon");
        assert_eq!(
            Config::from_env(&env).unwrap_err().name,
            config::ROTATION_GRACE
        );
        env.remove("SKYHOOK_SECRET_ROTATION_GRACE");
        env.insert("SKYHOOK_RETRY_SCHEDULE", "5s,forever");
        assert_eq!(
            Config::from_env(&env).unwrap_err().name,
            config::RETRY_SCHEDULE
        );
        // 27 × 12 h could outlive the queue's 14-day retention: refused at start-up.
        let too_long = vec!["12h"; 27].join(",");
        env.insert("SKYHOOK_RETRY_SCHEDULE", &too_long);
        let err = Config::from_env(&env).unwrap_err();
        assert_eq!(err.name, config::RETRY_SCHEDULE);
        assert!(err.to_string().contains("retention"), "{err}");
    }

    #[test]
    fn tenants_with_their_own_metrics_are_listed_and_checked() {
        let mut env: std::collections::HashMap<&str, &str> =
            REQUIRED_ENV.iter().map(|name| (*name, "set")).collect();
        assert!(Config::from_env(&env).unwrap().metrics_tenants.is_empty());
        env.insert("SKYHOOK_METRICS_TENANTS", " acme, default ,");
        let tenants: Vec<String> = Config::from_env(&env)
            .unwrap()
            .metrics_tenants
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(tenants, ["acme", "default"]);
        env.insert("SKYHOOK_METRICS_TENANTS", "acme,Bad Tenant");
        let err = Config::from_env(&env).unwrap_err();
        assert_eq!(err.name, config::METRICS_TENANTS);
        assert!(err.to_string().contains("Bad Tenant"), "{err}");
    }

    #[test]
    fn required_env_is_exactly_what_config_needs() {
        config::assert_required_env(REQUIRED_ENV, |env| Config::from_env(env));
    }
}
