//! Lambda entry point for the management API behind an HTTP API.

use std::sync::Arc;

use skyhook_api::{ApiState, Config, router};
use skyhook_shared::config::ProcessEnv;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    skyhook_shared::telemetry::init()?;
    let config = Config::from_env(&ProcessEnv)?;
    let sdk = skyhook_shared::aws::load_sdk_config().await;
    let state = Arc::new(ApiState::from_config(&sdk, &config));
    lambda_http::run(skyhook_shared::http::with_fallbacks(router(state))).await
}
