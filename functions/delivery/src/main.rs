//! Lambda entry point for the delivery function (an SQS event source with
//! `ReportBatchItemFailures`).

use lambda_runtime::{LambdaEvent, service_fn};
use skyhook_delivery::{Config, Deliverer, handle};
use skyhook_domain::config::ProcessEnv;

fn main() -> Result<(), lambda_runtime::Error> {
    // Started as a transform worker: serve that, before any runtime starts.
    skyhook_process::serve_if_worker();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), lambda_runtime::Error> {
    skyhook_process::telemetry::init()?;
    let config = Config::from_env(&ProcessEnv)?;
    let sdk = skyhook_aws::load_sdk_config().await;
    let deliverer = Deliverer::from_config(&sdk, &config)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        handle(&deliverer, event)
    }))
    .await
}
