//! The contract suite of `skyhook_domain::contract`, run against the AWS adapters on the
//! emulator: the same cases the in-memory twins pass in the unit tests.

use skyhook_domain::contract;
use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::Mutex;

use skyhook_tests::{Stack, StackOptions, eventually};

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

/// Subscribers' secret documents, sealed in the table (with Secrets Manager behind for
/// subscribers from before).
#[tokio::test]
async fn the_sealed_secret_store_keeps_the_contract() {
    let stack = Stack::new().await;
    contract::secret_store(stack.adapters.secrets.as_ref()).await;
}

/// The store of secrets from before sealing, still read while a subscriber has no sealed
/// item, and the source `skyhook secrets migrate` copies from.
#[tokio::test]
async fn the_legacy_secrets_manager_secret_store_keeps_the_contract() {
    let stack = Stack::new().await;
    let legacy =
        skyhook_aws::SecretsManagerSecrets::new(stack.secrets_client.clone(), &stack.secret_prefix);
    contract::secret_store(&legacy).await;
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

#[tokio::test]
async fn the_dynamodb_attempt_log_keeps_the_contract() {
    let stack = Stack::new().await;
    contract::attempt_log(stack.adapters.log.as_ref()).await;
}

#[tokio::test]
async fn the_dynamodb_health_store_keeps_the_contract() {
    let stack = Stack::new().await;
    contract::health_store(stack.adapters.health.as_ref()).await;
}

#[tokio::test]
async fn the_dynamodb_dead_letter_store_keeps_the_contract() {
    let stack = Stack::new().await;
    contract::dead_letter_store(stack.adapters.dead_letters.as_ref()).await;
}

#[tokio::test]
async fn the_dynamodb_audit_log_keeps_the_contract() {
    let stack = Stack::new().await;
    contract::audit_log(stack.adapters.audit.as_ref()).await;
}

#[tokio::test]
async fn the_dynamodb_rate_budget_keeps_the_contract() {
    let stack = Stack::new().await;
    contract::rate_budget(stack.adapters.rates.as_ref()).await;
}

/// The events reach the bus: a rule copies them to a queue the test reads.
#[tokio::test]
async fn the_eventbridge_ops_events_keep_the_contract() {
    let stack = Stack::with(StackOptions {
        ops_bus: true,
        ..StackOptions::default()
    })
    .await;
    contract::ops_events(stack.adapters.ops.as_ref()).await;
    let want: BTreeSet<String> = [
        "subscriber.disabled",
        "subscriber.breaker_opened",
        "subscriber.breaker_closed",
        "delivery.exhausted",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    // Each read takes what arrived since the last; the bus may deliver one twice.
    let seen = Mutex::new(BTreeSet::new());
    eventually(Duration::from_secs(30), "the events on the bus", || async {
        let mut seen = seen.lock().await;
        for e in stack.ops_events().await {
            seen.insert(e["detail-type"].as_str().unwrap_or("(none)").to_string());
        }
        (seen.len() >= want.len()).then_some(())
    })
    .await;
    assert_eq!(seen.into_inner(), want, "each kind, and nothing else");
}

/// Through the recording queue the delivery side uses, with the stack's own dead-letter
/// queue read back as a redrive reads it.
#[tokio::test]
async fn the_sqs_delivery_queue_and_dead_letter_queue_keep_the_contract() {
    let stack = Stack::new().await;
    let dlq = stack.adapters.dead_letter_queue(&stack.resources.dlq_url);
    contract::delivery_queue(stack.adapters.queue.as_ref(), dlq.as_ref()).await;
}

/// Written by the stats function's clients, read back through the API's attempt log.
#[tokio::test]
async fn the_dynamodb_stats_counters_keep_the_contract() {
    let stack = Stack::new().await;
    contract::stats_counters(stack.stats_counters.as_ref(), stack.adapters.log.as_ref()).await;
}

#[tokio::test]
async fn the_secrets_manager_secret_values_keep_the_contract() {
    let stack = Stack::new().await;
    let name = format!("{}contract-admin", stack.secret_prefix);
    stack
        .secrets_client
        .create_secret()
        .name(&name)
        .secret_string("sk_contract_value")
        .send()
        .await
        .expect("creating the secret");
    contract::secret_values(
        stack.adapters.secret_values.as_ref(),
        &name,
        "sk_contract_value",
    )
    .await;
}

/// The jq sandbox the functions run: worker processes, not this one.
#[tokio::test]
async fn the_jq_sandbox_keeps_the_program_runner_contract() {
    contract::program_runner(&skyhook_tests::jq_sandbox().sandbox()).await;
}

#[tokio::test]
async fn the_dynamodb_source_store_keeps_the_contract() {
    let stack = Stack::new().await;
    contract::source_store(stack.adapters.sources.as_ref()).await;
}

#[tokio::test]
async fn the_sealed_source_secrets_keep_the_contract() {
    let stack = Stack::new().await;
    contract::source_secrets(stack.adapters.source_secrets.as_ref()).await;
}

#[tokio::test]
async fn the_legacy_secrets_manager_source_secrets_keep_the_contract() {
    let stack = Stack::new().await;
    let legacy = skyhook_aws::SecretsManagerSourceSecrets::new(
        stack.secrets_client.clone(),
        &stack.source_secret_prefix,
    );
    contract::source_secrets(&legacy).await;
}

#[tokio::test]
async fn the_dynamodb_replay_guard_keeps_the_contract() {
    let stack = Stack::new().await;
    contract::replay_guard(stack.adapters.replays.as_ref()).await;
}
