//! Reading `SKYHOOK_` settings: each binary's `Config` is built from these helpers, once at
//! start-up, and a missing or malformed variable stops start-up with its name.

use std::collections::HashMap;
use std::fmt::Display;
use std::time::Duration;

use crate::retry::{RetrySchedule, parse_duration};

/// Where settings come from: the process environment, or a map in tests.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

impl Env for HashMap<&str, &str> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).map(|v| v.to_string())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration {name}: {problem}")]
pub struct ConfigError {
    pub name: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(name: &str, problem: impl Display) -> Self {
        Self {
            name: name.to_string(),
            problem: problem.to_string(),
        }
    }
}

/// A set, non-empty variable.
/// Checks that `required` names exactly what `from_env` cannot start without: with all of
/// them set it starts, and with any one missing it refuses, naming that one. (For each
/// function's unit tests; the template test holds the SAM template to the same lists.)
#[cfg(any(test, feature = "testing"))]
pub fn assert_required_env<T>(
    required: &[&str],
    from_env: impl Fn(&HashMap<&str, &str>) -> Result<T, ConfigError>,
) {
    let all: HashMap<&str, &str> = required.iter().map(|name| (*name, "set")).collect();
    assert!(from_env(&all).is_ok(), "starts with {required:?} set");
    for missing in required {
        let mut env = all.clone();
        env.remove(missing);
        match from_env(&env) {
            Ok(_) => panic!("starts without {missing}"),
            Err(e) => assert!(e.to_string().contains(missing), "{e}"),
        }
    }
}

pub fn required(env: &dyn Env, name: &str) -> Result<String, ConfigError> {
    match env.get(name) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        _ => Err(ConfigError::new(name, "is required but not set")),
    }
}

pub fn optional(env: &dyn Env, name: &str) -> Option<String> {
    env.get(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A variable parsed by `parse`, or `default` when unset.
pub fn parsed<T, E: Display>(
    env: &dyn Env,
    name: &str,
    default: T,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, ConfigError> {
    match optional(env, name) {
        Some(v) => parse(&v).map_err(|e| ConfigError::new(name, e)),
        None => Ok(default),
    }
}

pub fn duration(env: &dyn Env, name: &str, default: Duration) -> Result<Duration, ConfigError> {
    parsed(env, name, default, parse_duration)
}

pub fn flag(env: &dyn Env, name: &str) -> Result<bool, ConfigError> {
    parsed(env, name, false, |v| {
        match v.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err("expected true or false"),
        }
    })
}

/// `SKYHOOK_LOCAL_MODE`: loopback and http targets, for `skyhook local` on one machine.
/// Refused inside Lambda (`AWS_LAMBDA_FUNCTION_NAME` set), where it would let tenants'
/// subscribers reach the stack's private network and metadata addresses, unless the Lambda
/// is an emulator's: its AWS endpoint on this machine (`AWS_ENDPOINT_URL` on a loopback
/// address, as `make smoke` runs the functions) or LocalStack's runtime
/// (`LOCALSTACK_HOSTNAME`). A proxy or custom endpoint elsewhere does not count.
pub fn local_mode(env: &dyn Env) -> Result<bool, ConfigError> {
    let local = flag(env, LOCAL_MODE)?;
    if !local || env.get("AWS_LAMBDA_FUNCTION_NAME").is_none() {
        return Ok(local);
    }
    let emulated = optional(env, "LOCALSTACK_HOSTNAME").is_some()
        || optional(env, "AWS_ENDPOINT_URL")
            .and_then(|u| url::Url::parse(&u).ok())
            .and_then(|u| u.host().map(|h| h.to_owned()))
            .is_some_and(|host| match host {
                url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
                url::Host::Ipv4(ip) => ip.is_loopback(),
                url::Host::Ipv6(ip) => ip.is_loopback(),
            });
    if !emulated {
        return Err(ConfigError::new(
            LOCAL_MODE,
            "local mode is for skyhook local and emulators, never inside Lambda in AWS",
        ));
    }
    Ok(local)
}

pub const TABLE: &str = "SKYHOOK_TABLE";
/// How long one run of a subscriber's transform may take (default `250ms`, at most `10s`).
pub const TRANSFORM_TIMEOUT: &str = "SKYHOOK_TRANSFORM_TIMEOUT";
/// The address space of a transform's worker process, in MiB (default 64, 32 to 4096).
pub const TRANSFORM_MEMORY_MB: &str = "SKYHOOK_TRANSFORM_MEMORY_MB";
/// A tenant's publishes a second, on average, unless it has limits of its own (default 100).
pub const TENANT_EVENTS_PER_SECOND: &str = "SKYHOOK_TENANT_EVENTS_PER_SECOND";
/// A tenant's publishes at once after a quiet spell (default ten seconds' worth).
pub const TENANT_BURST: &str = "SKYHOOK_TENANT_BURST";
/// How many jq worker processes a function runs at once (default 1, at most 16); with
/// `SKYHOOK_TRANSFORM_MEMORY_MB` each, beside the function, inside its memory size.
pub const TRANSFORM_WORKERS: &str = "SKYHOOK_TRANSFORM_WORKERS";
/// The binary run as a transform worker; by default the running binary itself.
pub const JQ_WORKER_BIN: &str = "SKYHOOK_JQ_WORKER_BIN";
/// The small table of stats counters, apart from the ledger so its writes stay off the
/// ledger's stream.
pub const STATS_TABLE: &str = "SKYHOOK_STATS_TABLE";
pub const QUEUE_URL: &str = "SKYHOOK_QUEUE_URL";
pub const DLQ_URL: &str = "SKYHOOK_DLQ_URL";
pub const SECRET_PREFIX: &str = "SKYHOOK_SECRET_PREFIX";
/// Where inbound sources' secrets live in Secrets Manager (default `skyhook/sources/`).
pub const SOURCE_SECRET_PREFIX: &str = "SKYHOOK_SOURCE_SECRET_PREFIX";
/// The Secrets Manager secret holding the keyring that seals secrets at rest (default
/// `skyhook/keyring`; the template passes its own).
pub const KEYRING_SECRET: &str = "SKYHOOK_KEYRING_SECRET";
pub const RETRY_SCHEDULE: &str = "SKYHOOK_RETRY_SCHEDULE";
pub const HTTP_TIMEOUT: &str = "SKYHOOK_HTTP_TIMEOUT";
pub const MAX_PAYLOAD_BYTES: &str = "SKYHOOK_MAX_PAYLOAD_BYTES";
pub const LOG_RETENTION: &str = "SKYHOOK_LOG_RETENTION";
pub const SECRET_CACHE_TTL: &str = "SKYHOOK_SECRET_CACHE_TTL";
pub const LOCAL_MODE: &str = "SKYHOOK_LOCAL_MODE";
pub const ADMIN_KEY: &str = "SKYHOOK_ADMIN_KEY";
pub const ADMIN_KEY_SECRET: &str = "SKYHOOK_ADMIN_KEY_SECRET";
pub const ROTATION_GRACE: &str = "SKYHOOK_SECRET_ROTATION_GRACE";
pub const AUDIT_RETENTION: &str = "SKYHOOK_AUDIT_RETENTION";
pub const BREAKER_FAILURES: &str = "SKYHOOK_BREAKER_FAILURES";
/// The EventBridge bus (name or ARN) that operational events go to; unset, they are only
/// logged.
pub const EVENT_BUS: &str = "SKYHOOK_EVENT_BUS";
/// The CloudWatch namespace of the delivery function's EMF metrics; unset, none are written.
pub const METRICS_NAMESPACE: &str = "SKYHOOK_METRICS_NAMESPACE";
/// Tenants whose delivery metrics also get a `Tenant` dimension (comma-separated ids; each
/// costs six custom metrics a month). Unset: stack-wide metrics only.
pub const METRICS_TENANTS: &str = "SKYHOOK_METRICS_TENANTS";

/// The tenants of [`METRICS_TENANTS`].
pub fn metrics_tenants(
    env: &dyn Env,
) -> Result<std::collections::BTreeSet<crate::ids::TenantId>, ConfigError> {
    parsed(env, METRICS_TENANTS, Default::default(), |v| {
        v.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| crate::ids::TenantId::parse(t).map_err(|e| format!("{t:?}: {e}")))
            .collect::<Result<_, _>>()
    })
}
pub const BREAKER_COOLDOWN: &str = "SKYHOOK_BREAKER_COOLDOWN";
pub const BREAKER_MAX_COOLDOWN: &str = "SKYHOOK_BREAKER_MAX_COOLDOWN";
pub const AUTO_DISABLE_AFTER: &str = "SKYHOOK_AUTO_DISABLE_AFTER";

/// The circuit breaker's settings: `SKYHOOK_BREAKER_FAILURES` (1–1000, default 5),
/// `SKYHOOK_BREAKER_COOLDOWN` (default 30s), `SKYHOOK_BREAKER_MAX_COOLDOWN` (default 1h, at
/// least the cool-down) and `SKYHOOK_AUTO_DISABLE_AFTER` (default 5d).
pub fn breaker_policy(env: &dyn Env) -> Result<crate::breaker::BreakerPolicy, ConfigError> {
    use crate::breaker::*;
    let failures = parsed(env, BREAKER_FAILURES, DEFAULT_BREAKER_FAILURES, |v| match v
        .parse::<u32>()
    {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err("expected a number from 1 to 1000"),
    })?;
    let cooldown = duration(env, BREAKER_COOLDOWN, DEFAULT_BREAKER_COOLDOWN)?;
    if cooldown.is_zero() {
        return Err(ConfigError::new(
            BREAKER_COOLDOWN,
            "must be longer than zero",
        ));
    }
    let max_cooldown = duration(env, BREAKER_MAX_COOLDOWN, DEFAULT_BREAKER_MAX_COOLDOWN)?;
    if max_cooldown < cooldown {
        return Err(ConfigError::new(
            BREAKER_MAX_COOLDOWN,
            "must be at least SKYHOOK_BREAKER_COOLDOWN",
        ));
    }
    let auto_disable_after = duration(env, AUTO_DISABLE_AFTER, DEFAULT_AUTO_DISABLE_AFTER)?;
    if auto_disable_after.is_zero() {
        return Err(ConfigError::new(
            AUTO_DISABLE_AFTER,
            "must be longer than zero",
        ));
    }
    Ok(BreakerPolicy {
        failures,
        cooldown,
        max_cooldown,
        auto_disable_after,
    })
}

pub const DEFAULT_SECRET_PREFIX: &str = "skyhook/subscribers/";
pub const DEFAULT_SOURCE_SECRET_PREFIX: &str = "skyhook/sources/";
pub const DEFAULT_KEYRING_SECRET: &str = "skyhook/keyring";

/// `SKYHOOK_KEYRING_SECRET`, or its default.
pub fn keyring_secret(env: &dyn Env) -> String {
    optional(env, KEYRING_SECRET).unwrap_or_else(|| DEFAULT_KEYRING_SECRET.to_string())
}
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(15);
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// SQS's own maximum message size; a larger payload could never be queued.
pub const MAX_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
pub const DEFAULT_LOG_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
pub const DEFAULT_SECRET_CACHE_TTL: Duration = Duration::from_secs(15 * 60);
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long the previous secret keeps signing after a rotation: a day gives every receiver
/// time to deploy the new secret.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);
/// Audit records outlive the delivery log: a year, for "who changed this endpoint?" questions.
pub const DEFAULT_AUDIT_RETENTION: Duration = Duration::from_secs(365 * 24 * 3600);
/// How long a dead letter is listed: as long as SQS keeps the message (its 14-day maximum).
pub const DEAD_LETTER_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

pub fn rotation_grace(env: &dyn Env) -> Result<Duration, ConfigError> {
    duration(env, ROTATION_GRACE, DEFAULT_ROTATION_GRACE)
}

/// Longest attempt timeout: a Lambda invocation lasts at most 15 minutes.
pub const MAX_HTTP_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The timeout of one delivery attempt: more than zero (zero would fail every attempt) and
/// at most [`MAX_HTTP_TIMEOUT`].
pub fn http_timeout(env: &dyn Env) -> Result<Duration, ConfigError> {
    parsed(
        env,
        HTTP_TIMEOUT,
        DEFAULT_HTTP_TIMEOUT,
        |v| match parse_duration(v).map_err(|e| e.to_string())? {
            d if d.is_zero() => Err("must be more than zero".to_string()),
            d if d > MAX_HTTP_TIMEOUT => Err("must be at most 15m (a Lambda's limit)".to_string()),
            d => Ok(d),
        },
    )
}

pub fn retry_schedule(env: &dyn Env) -> Result<RetrySchedule, ConfigError> {
    parsed(env, RETRY_SCHEDULE, RetrySchedule::default(), |v| {
        RetrySchedule::parse(v)
    })
}

pub fn max_payload_bytes(env: &dyn Env) -> Result<usize, ConfigError> {
    parsed(
        env,
        MAX_PAYLOAD_BYTES,
        DEFAULT_MAX_PAYLOAD_BYTES,
        |v| match v.parse::<usize>() {
            Ok(n) if (1..=MAX_MAX_PAYLOAD_BYTES).contains(&n) => Ok(n),
            Ok(_) => Err(format!("must be between 1 and {MAX_MAX_PAYLOAD_BYTES}")),
            Err(_) => Err("expected a number of bytes".to_string()),
        },
    )
}

/// How the HTTP functions learn the bootstrap admin key.
#[derive(Clone)]
pub enum AdminKeySource {
    /// The key itself (local mode, tests).
    Value(String),
    /// The id or ARN of a Secrets Manager secret holding it (AWS).
    Secret(String),
}

impl std::fmt::Debug for AdminKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminKeySource::Value(_) => f.write_str("AdminKeySource::Value(****)"),
            AdminKeySource::Secret(id) => write!(f, "AdminKeySource::Secret({id})"),
        }
    }
}

/// Shortest admin key accepted, so that a placeholder like `admin` is refused.
pub const MIN_ADMIN_KEY_LEN: usize = 16;

pub fn admin_key_source(env: &dyn Env) -> Result<AdminKeySource, ConfigError> {
    if let Some(key) = optional(env, ADMIN_KEY) {
        if key.len() < MIN_ADMIN_KEY_LEN {
            return Err(ConfigError::new(
                ADMIN_KEY,
                format!("must be at least {MIN_ADMIN_KEY_LEN} characters"),
            ));
        }
        return Ok(AdminKeySource::Value(key));
    }
    match optional(env, ADMIN_KEY_SECRET) {
        Some(id) => Ok(AdminKeySource::Secret(id)),
        None => Err(ConfigError::new(
            ADMIN_KEY,
            format!("either {ADMIN_KEY} or {ADMIN_KEY_SECRET} must be set"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn required_names_the_missing_variable() {
        let err = required(&env(&[]), TABLE).unwrap_err();
        assert_eq!(err.name, TABLE);
        assert!(err.to_string().contains("SKYHOOK_TABLE"));
        assert!(required(&env(&[(TABLE, "  ")]), TABLE).is_err());
        assert_eq!(required(&env(&[(TABLE, "t1")]), TABLE).unwrap(), "t1");
    }

    #[test]
    fn malformed_values_are_errors_naming_the_variable() {
        let e = env(&[(HTTP_TIMEOUT, "soon"), (RETRY_SCHEDULE, "5s,,5m")]);
        assert_eq!(
            duration(&e, HTTP_TIMEOUT, DEFAULT_HTTP_TIMEOUT)
                .unwrap_err()
                .name,
            HTTP_TIMEOUT
        );
        assert_eq!(retry_schedule(&e).unwrap_err().name, RETRY_SCHEDULE);
    }

    #[test]
    fn defaults_apply_when_unset() {
        let e = env(&[]);
        assert_eq!(
            duration(&e, HTTP_TIMEOUT, DEFAULT_HTTP_TIMEOUT).unwrap(),
            DEFAULT_HTTP_TIMEOUT
        );
        assert_eq!(retry_schedule(&e).unwrap().max_attempts(), 8);
        assert_eq!(max_payload_bytes(&e).unwrap(), 262_144);
        assert!(!flag(&e, LOCAL_MODE).unwrap());
    }

    #[test]
    fn an_attempt_timeout_must_be_positive_and_within_a_lambda_run() {
        assert_eq!(http_timeout(&env(&[])).unwrap(), DEFAULT_HTTP_TIMEOUT);
        for bad in ["0s", "0ms", "16m", "soon"] {
            assert_eq!(
                http_timeout(&env(&[(HTTP_TIMEOUT, bad)])).unwrap_err().name,
                HTTP_TIMEOUT,
                "{bad}"
            );
        }
        assert_eq!(
            http_timeout(&env(&[(HTTP_TIMEOUT, "500ms")])).unwrap(),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn payload_limit_is_capped_at_the_sqs_maximum() {
        assert!(max_payload_bytes(&env(&[(MAX_PAYLOAD_BYTES, "2000000")])).is_err());
        assert_eq!(
            max_payload_bytes(&env(&[(MAX_PAYLOAD_BYTES, "1048576")])).unwrap(),
            1_048_576
        );
    }

    #[test]
    fn admin_key_must_be_set_and_long_enough() {
        assert!(admin_key_source(&env(&[])).is_err());
        assert!(admin_key_source(&env(&[(ADMIN_KEY, "short")])).is_err());
        assert!(matches!(
            admin_key_source(&env(&[(ADMIN_KEY_SECRET, "skyhook/admin")])).unwrap(),
            AdminKeySource::Secret(_)
        ));
        let src = admin_key_source(&env(&[(ADMIN_KEY, "sk_0123456789abcdef")])).unwrap();
        assert!(!format!("{src:?}").contains("0123456789"));
    }

    #[test]
    fn flags_accept_common_spellings() {
        assert!(flag(&env(&[(LOCAL_MODE, "TRUE")]), LOCAL_MODE).unwrap());
        assert!(!flag(&env(&[(LOCAL_MODE, "0")]), LOCAL_MODE).unwrap());
        assert!(flag(&env(&[(LOCAL_MODE, "maybe")]), LOCAL_MODE).is_err());
        assert!(local_mode(&env(&[(LOCAL_MODE, "true")])).unwrap());
        assert!(!local_mode(&env(&[("AWS_LAMBDA_FUNCTION_NAME", "x-api")])).unwrap());
        assert_eq!(
            local_mode(&env(&[
                (LOCAL_MODE, "true"),
                ("AWS_LAMBDA_FUNCTION_NAME", "x-api")
            ]))
            .unwrap_err()
            .name,
            LOCAL_MODE
        );
        assert!(
            local_mode(&env(&[
                (LOCAL_MODE, "true"),
                ("AWS_LAMBDA_FUNCTION_NAME", "x-api"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
            ]))
            .unwrap(),
            "an emulator's Lambda runtime"
        );
        assert!(
            local_mode(&env(&[
                (LOCAL_MODE, "true"),
                ("AWS_LAMBDA_FUNCTION_NAME", "x-api"),
                ("AWS_ENDPOINT_URL", "https://proxy.example.com"),
            ]))
            .is_err(),
            "a proxy endpoint is not an emulator"
        );
    }
}
