//! Lambda entry point for `POST /v1/events` and `GET /v1/health` behind an HTTP API.

use std::sync::Arc;

use skyhook_ingest::{Config, IngestState, router, with_fallbacks};
use skyhook_shared::config::ProcessEnv;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    skyhook_shared::telemetry::init()?;
    let config = Config::from_env(&ProcessEnv, true)?;
    let sdk = skyhook_shared::aws::load_sdk_config().await;
    let state = IngestState::from_config(&sdk, &config).ok_or("admin key not configured")?;
    lambda_http::run(with_fallbacks(router(Arc::new(state)))).await
}
