//! Logging set-up: JSON lines in Lambda (CloudWatch parses them), readable text locally.

use tracing_subscriber::EnvFilter;

use skyhook_domain::config::{ConfigError, Env, ProcessEnv};

pub const LOG_FORMAT: &str = "SKYHOOK_LOG_FORMAT";

/// The log format: `SKYHOOK_LOG_FORMAT` (`json` or `text`), else JSON in Lambda and text
/// elsewhere. Returns whether it is JSON.
pub fn json_format(env: &dyn Env) -> Result<bool, ConfigError> {
    match env.get(LOG_FORMAT).map(|v| v.trim().to_ascii_lowercase()) {
        Some(v) if v == "json" => Ok(true),
        Some(v) if v == "text" => Ok(false),
        Some(v) if !v.is_empty() => Err(ConfigError::new(LOG_FORMAT, "expected json or text")),
        _ => Ok(env.get("AWS_LAMBDA_FUNCTION_NAME").is_some()),
    }
}

/// The JSON lines a function writes in Lambda (one object per event, its fields flat, the
/// current span's; no time, which CloudWatch adds), to `writer`: what `init` installs there,
/// and what `make bench` counts the bytes of.
pub fn json_subscriber<W>(
    filter: EnvFilter,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .without_time()
        .finish()
}

/// A function's log level unless `RUST_LOG` says otherwise: INFO, the SDK's own at WARN.
pub const DEFAULT_FILTER: &str = "info,aws_config=warn,aws_smithy_runtime=warn";

/// The filter of a function's logs: `RUST_LOG`, else [`DEFAULT_FILTER`].
pub fn default_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

/// Installs the global subscriber once; later calls are ignored (tests call it freely).
/// A malformed `SKYHOOK_LOG_FORMAT` stops start-up like any other setting.
pub fn init() -> Result<(), ConfigError> {
    let json = json_format(&ProcessEnv)?;
    let filter = default_filter();
    if json {
        use tracing_subscriber::util::SubscriberInitExt;
        let _ = json_subscriber(filter, std::io::stdout).try_init();
    } else {
        use std::io::IsTerminal;
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            .with_ansi(std::io::stdout().is_terminal())
            .try_init();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn the_format_is_json_or_text_and_defaults_by_where_it_runs() {
        let env = |pairs: &[(&'static str, &'static str)]| -> HashMap<&'static str, &'static str> {
            pairs.iter().copied().collect()
        };
        assert!(!json_format(&env(&[])).unwrap());
        assert!(json_format(&env(&[("AWS_LAMBDA_FUNCTION_NAME", "delivery")])).unwrap());
        assert!(json_format(&env(&[(LOG_FORMAT, "JSON")])).unwrap());
        assert!(
            !json_format(&env(&[
                (LOG_FORMAT, "text"),
                ("AWS_LAMBDA_FUNCTION_NAME", "x")
            ]))
            .unwrap()
        );
        assert_eq!(
            json_format(&env(&[(LOG_FORMAT, "xml")])).unwrap_err().name,
            LOG_FORMAT
        );
    }
}
