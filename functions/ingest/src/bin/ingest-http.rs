//! Lambda entry point for `POST /v1/events` and `GET /v1/health` behind an HTTP API.

use std::sync::Arc;

use skyhook_domain::config::ProcessEnv;
use skyhook_ingest::{Config, IngestState, router, with_fallbacks};

fn main() -> Result<(), lambda_http::Error> {
    // Started as a worker of the jq sandbox (content filters): serve that, before any
    // runtime starts.
    skyhook_process::serve_if_worker();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), lambda_http::Error> {
    skyhook_process::telemetry::init()?;
    let config = Config::from_env(&ProcessEnv, true)?;
    let sdk = skyhook_aws::load_sdk_config().await;
    let state = IngestState::from_config(&sdk, &config).ok_or("admin key not configured")?;
    lambda_http::run(with_fallbacks(router(Arc::new(state)))).await
}
