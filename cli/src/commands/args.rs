//! Flags that several command groups share: where the API is and the key to call it with,
//! and the `NAME=VALUE` form of `--header`.

use clap::Args;

use skyhook_cli::client::{API_KEY, API_URL, ApiClient, CliError};

/// `--api-url` and `--api-key`, flattened into every command that calls the API.
#[derive(Args, Clone)]
pub struct ApiArgs {
    /// Base URL of the Skyhook API.
    #[arg(long, env = API_URL, default_value = skyhook_cli::client::DEFAULT_API_URL)]
    pub(crate) api_url: String,
    /// API key (sent as a bearer token).
    #[arg(long, env = API_KEY, hide_env_values = true)]
    api_key: Option<String>,
}

impl ApiArgs {
    pub fn client(&self) -> Result<ApiClient, CliError> {
        ApiClient::new(Some(self.api_url.clone()), self.api_key.clone())
    }
}

/// A `--header` value: `NAME=VALUE`, the name trimmed and not empty.
pub fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}
