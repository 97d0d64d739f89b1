//! Lambda entry point for the management API behind an HTTP API.

use std::sync::Arc;

use skyhook_api::{ApiState, Config, router};
use skyhook_domain::config::ProcessEnv;

fn main() -> Result<(), lambda_http::Error> {
    // Started as a transform worker: serve that, before any runtime starts.
    skyhook_process::serve_if_worker();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), lambda_http::Error> {
    skyhook_process::telemetry::init()?;
    let config = Config::from_env(&ProcessEnv)?;
    let sdk = skyhook_aws::load_sdk_config().await;
    let state = Arc::new(ApiState::from_config(&sdk, &config));
    lambda_http::run(skyhook_http::with_fallbacks(router(state))).await
}
