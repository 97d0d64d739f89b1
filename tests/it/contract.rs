//! The contract suite of `skyhook_domain::contract`, run against the AWS adapters on the
//! emulator: the same cases the in-memory twins pass in the unit tests.

use skyhook_domain::contract;
use skyhook_tests::Stack;

#[tokio::test]
async fn the_dynamodb_subscriber_store_keeps_the_contract() {
    let stack = Stack::new().await;
    contract::subscriber_store(stack.adapters.subscribers.as_ref()).await;
}

/// Through both ingest functions' clients: they are the ones that store events (with
/// spill-over chunks for a fan-out above 1,000) and claim idempotency keys in AWS.
#[tokio::test]
async fn the_dynamodb_event_store_keeps_the_contract() {
    let stack = Stack::new().await;
    for adapters in [&stack.ingest_adapters, &stack.events_adapters] {
        contract::event_store(adapters.events.as_ref()).await;
    }
}

#[tokio::test]
async fn the_dynamodb_idempotency_store_keeps_the_contract() {
    let stack = Stack::new().await;
    for adapters in [&stack.ingest_adapters, &stack.events_adapters] {
        contract::idempotency_store(adapters.idempotency.as_ref()).await;
    }
}

#[tokio::test]
async fn the_secrets_manager_secret_store_keeps_the_contract() {
    let stack = Stack::new().await;
    contract::secret_store(stack.adapters.secrets.as_ref()).await;
}

#[tokio::test]
async fn the_dynamodb_api_key_store_keeps_the_contract() {
    let stack = Stack::new().await;
    contract::api_key_store(stack.adapters.keys.as_ref()).await;
}

#[tokio::test]
async fn the_dynamodb_tenant_store_keeps_the_contract() {
    let stack = Stack::new().await;
    contract::tenant_store(stack.adapters.tenants.as_ref()).await;
}

/// Through both ingest functions' clients, which take from the buckets in AWS.
#[tokio::test]
async fn the_dynamodb_publish_budget_keeps_the_contract() {
    let stack = Stack::new().await;
    for adapters in [&stack.ingest_adapters, &stack.events_adapters] {
        contract::publish_budget(adapters.publish_budget.as_ref()).await;
    }
}
