//! Lambda entry point for `POST /v1/events` and `GET /v1/health` behind an HTTP API.

use std::sync::Arc;

use skyhook_ingest::{Config, IngestState, publisher, router, with_fallbacks};
use skyhook_shared::config::ProcessEnv;
use skyhook_shared::http::Authenticator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    skyhook_shared::telemetry::init();
    let config = Config::from_env(&ProcessEnv, true)?;
    let sdk = skyhook_shared::aws::load_sdk_config().await;
    let state = IngestState {
        publisher: publisher(&sdk, &config),
        auth: Arc::new(Authenticator::new(
            config.admin_key.clone().ok_or("admin key not configured")?,
            Some(aws_sdk_secretsmanager::Client::new(&sdk)),
        )),
        max_payload_bytes: config.max_payload_bytes,
    };
    lambda_http::run(with_fallbacks(router(Arc::new(state)))).await
}
