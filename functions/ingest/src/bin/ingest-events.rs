//! Lambda entry point for EventBridge events (a rule targets this function).

use lambda_runtime::{LambdaEvent, service_fn};
use skyhook_domain::config::ProcessEnv;
use skyhook_ingest::{Config, handle_eventbridge, publisher};

fn main() -> Result<(), lambda_runtime::Error> {
    // Started as a worker of the jq sandbox (content filters): serve that, before any
    // runtime starts.
    skyhook_process::serve_if_worker();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), lambda_runtime::Error> {
    skyhook_process::telemetry::init()?;
    let config = Config::from_env(&ProcessEnv, false)?;
    let sdk = skyhook_aws::load_sdk_config().await;
    let publisher = publisher(&sdk, &config);
    let tenant = &config.eventbridge_tenant;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        let publisher = &publisher;
        async move { handle_eventbridge(publisher, tenant, event).await }
    }))
    .await
}
