//! `skyhook local`: the environment's configuration, the runner, and its banner on stdout.

use skyhook_cli::client::CliError;
use skyhook_cli::local::{LocalConfig, LocalError, banner};
use skyhook_domain::config::ProcessEnv;

use super::interrupted;

/// Runs until Ctrl-C or SIGTERM. A bad configuration is a usage error (exit 2); anything
/// that fails once running exits 1.
pub async fn run() -> Result<(), CliError> {
    skyhook_process::telemetry::init().map_err(|e| CliError::Usage(e.to_string()))?;
    let cfg = LocalConfig::from_env(&ProcessEnv).map_err(|e| CliError::Usage(e.to_string()))?;
    skyhook_cli::local::run(cfg, interrupted(), |cfg, running| {
        println!("{}", banner(cfg, running));
    })
    .await
    .map_err(|e| match e {
        LocalError::Config(c) => CliError::Usage(c.to_string()),
        other => CliError::Failed(other.to_string()),
    })
}
