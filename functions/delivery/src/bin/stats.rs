//! Lambda entry point for the stats consumer (a DynamoDB stream event source on the table).

use lambda_runtime::{LambdaEvent, service_fn};
use skyhook_delivery::stats::{StatsConfig, handle};
use skyhook_domain::config::ProcessEnv;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    skyhook_process::telemetry::init()?;
    let config = StatsConfig::from_env(&ProcessEnv)?;
    let sdk = skyhook_aws::load_sdk_config().await;
    let counters = config.adapters(&sdk).stats;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| handle(&counters, event))).await
}
