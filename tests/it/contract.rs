//! The contract suite of `skyhook_domain::contract`, run against the AWS adapters on the
//! emulator: the same cases the in-memory twins pass in the unit tests.

use skyhook_domain::contract;
use skyhook_tests::Stack;

#[tokio::test]
async fn the_dynamodb_subscriber_store_keeps_the_contract() {
    let stack = Stack::new().await;
    contract::subscriber_store(stack.adapters.subscribers.as_ref()).await;
}

#[tokio::test]
async fn the_dynamodb_event_store_keeps_the_contract() {
    let stack = Stack::new().await;
    contract::event_store(stack.adapters.events.as_ref()).await;
}

#[tokio::test]
async fn the_dynamodb_idempotency_store_keeps_the_contract() {
    let stack = Stack::new().await;
    contract::idempotency_store(stack.adapters.idempotency.as_ref()).await;
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
