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

/// Installs the global subscriber once; later calls are ignored (tests call it freely).
/// A malformed `SKYHOOK_LOG_FORMAT` stops start-up like any other setting.
pub fn init() -> Result<(), ConfigError> {
    let json = json_format(&ProcessEnv)?;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .try_init()
    } else {
        use std::io::IsTerminal;
        builder
            .with_target(false)
            .with_ansi(std::io::stdout().is_terminal())
            .try_init()
    };
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
