//! The one place the AWS adapters are built: from an SDK configuration and the names of the
//! resources. Every Lambda function, `skyhook local` and the test stack call
//! [`Adapters::from_sdk`], so they cannot drift apart.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;

use super::{
    DynamoDbApiKeyStore, DynamoDbAttemptLog, DynamoDbAuditLog, DynamoDbDeadLetterStore,
    DynamoDbEventStore, DynamoDbHealthStore, DynamoDbIdempotencyStore, DynamoDbPublishBudget,
    DynamoDbRateBudget, DynamoDbReplayGuard, DynamoDbSealedSecrets, DynamoDbSealedSourceSecrets,
    DynamoDbSourceStore, DynamoDbStatsCounters, DynamoDbSubscriberStore, DynamoDbTenantStore,
    EventBridgeOpsEvents, SecretsManagerSecrets, SecretsManagerSourceSecrets, SecretsManagerValues,
    SqsDeadLetterQueue, SqsDeliveryQueue,
};
use skyhook_domain::config;
use skyhook_domain::directory::CachedRoutes;
use skyhook_domain::keyring::SealingKeys;
use skyhook_domain::ports::{
    ApiKeyStore, AttemptLog, AuditLog, DeadLetterQueue, DeadLetterStore, DeliveryQueue, EventStore,
    HealthStore, IdempotencyStore, OpsEvents, RateBudget, ReplayGuard, SecretStore, SecretValues,
    SourceSecrets, SourceStore, StatsCounters, SubscriberStore,
};
use skyhook_domain::publish::Publisher;
use skyhook_domain::tenants::{TenantGate, TenantLimits};

/// Where Skyhook's data lives.
#[derive(Debug, Clone)]
pub struct Resources {
    pub table: String,
    /// The stats counters' table; only the API (which reads them) and the stats consumer
    /// (which writes them) need it.
    pub stats_table: Option<String>,
    pub queue_url: String,
    /// Only the delivery function and the API use the dead-letter queue.
    pub dlq_url: Option<String>,
    /// Where subscribers' secrets lived in Secrets Manager before they were sealed in the
    /// table (read while a subscriber has no sealed item yet).
    pub secret_prefix: String,
    /// Where inbound sources' secrets lived in Secrets Manager before they were sealed in
    /// the table (read while a source has no sealed item yet).
    pub source_secret_prefix: String,
    /// The Secrets Manager secret holding the keyring that seals secrets in the table.
    pub keyring_secret: String,
    /// The EventBridge bus operational events go to; `None`: they are only logged.
    pub event_bus: Option<String>,
}

/// How long things are kept.
#[derive(Debug, Clone)]
pub struct Retention {
    pub log: Duration,
    pub audit: Duration,
    /// How long a rotated-out secret keeps signing.
    pub rotation_grace: Duration,
    pub idempotency: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            log: config::DEFAULT_LOG_RETENTION,
            audit: config::DEFAULT_AUDIT_RETENTION,
            rotation_grace: config::DEFAULT_ROTATION_GRACE,
            idempotency: config::IDEMPOTENCY_TTL,
        }
    }
}

/// Every port, backed by AWS. Fields are public so that a test can put a recording twin in
/// place of one adapter and keep the rest.
#[derive(Clone)]
pub struct Adapters {
    pub subscribers: Arc<dyn SubscriberStore>,
    /// The same store with the fan-out targets cached (checked against the directory
    /// version on every publish): what publishing uses.
    pub routes: Arc<dyn SubscriberStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub events: Arc<dyn EventStore>,
    pub log: Arc<dyn AttemptLog>,
    pub stats: Arc<dyn StatsCounters>,
    pub queue: Arc<dyn DeliveryQueue>,
    pub dead_letters: Arc<dyn DeadLetterStore>,
    pub dlq: Option<Arc<dyn DeadLetterQueue>>,
    pub keys: Arc<dyn ApiKeyStore>,
    pub audit: Arc<dyn AuditLog>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub idempotency_ttl: Duration,
    /// Subscribers' shared rate-limit budgets.
    pub rates: Arc<dyn RateBudget>,
    /// Subscribers' health: failures and circuit breakers.
    pub health: Arc<dyn HealthStore>,
    /// Operational events (breaker opened, subscriber disabled, …).
    pub ops: Arc<dyn OpsEvents>,
    /// Where a deployment keeps the bootstrap admin key.
    pub secret_values: Arc<dyn SecretValues>,
    /// The keyring secrets are sealed under, cached.
    pub sealing: Arc<SealingKeys>,
    /// Inbound sources, their secrets, and the replay guard of inbound messages.
    pub sources: Arc<dyn SourceStore>,
    pub source_secrets: Arc<dyn SourceSecrets>,
    pub replays: Arc<dyn ReplayGuard>,
    /// The tenants' registry and their publish buckets.
    pub tenants: Arc<dyn skyhook_domain::ports::TenantStore>,
    pub publish_budget: Arc<dyn skyhook_domain::ports::PublishBudget>,
    sqs_client: aws_sdk_sqs::Client,
}

impl Adapters {
    /// Builds every client once; no AWS call happens here.
    pub fn from_sdk(sdk: &SdkConfig, resources: &Resources, retention: &Retention) -> Self {
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let sm = aws_sdk_secretsmanager::Client::new(sdk);
        let table = &resources.table;
        let mut queue = SqsDeliveryQueue::new(sqs.clone(), &resources.queue_url);
        if let Some(dlq) = &resources.dlq_url {
            queue = queue.with_dead_letter_queue(dlq);
        }
        let secret_values = Arc::new(SecretsManagerValues::new(sm.clone()));
        let sealing = Arc::new(SealingKeys::new(
            secret_values.clone(),
            &resources.keyring_secret,
        ));
        let subscribers: Arc<dyn SubscriberStore> =
            Arc::new(DynamoDbSubscriberStore::new(ddb.clone(), table));
        Adapters {
            routes: Arc::new(CachedRoutes::new(subscribers.clone())),
            subscribers,
            secrets: Arc::new(
                DynamoDbSealedSecrets::new(ddb.clone(), table, sealing.clone())
                    .with_grace(retention.rotation_grace)
                    .with_legacy(
                        SecretsManagerSecrets::new(sm.clone(), &resources.secret_prefix)
                            .with_grace(retention.rotation_grace),
                    ),
            ),
            events: Arc::new(DynamoDbEventStore::new(ddb.clone(), table, retention.log)),
            log: Arc::new(
                DynamoDbAttemptLog::new(ddb.clone(), table, retention.log)
                    .with_stats_table(resources.stats_table.clone()),
            ),
            stats: Arc::new(DynamoDbStatsCounters::new(
                ddb.clone(),
                resources.stats_table.clone(),
            )),
            queue: Arc::new(queue),
            dead_letters: Arc::new(DynamoDbDeadLetterStore::new(ddb.clone(), table)),
            dlq: resources.dlq_url.as_ref().map(|url| {
                Arc::new(SqsDeadLetterQueue::new(sqs.clone(), url)) as Arc<dyn DeadLetterQueue>
            }),
            keys: Arc::new(DynamoDbApiKeyStore::new(ddb.clone(), table)),
            sources: Arc::new(DynamoDbSourceStore::new(ddb.clone(), table)),
            source_secrets: Arc::new(
                DynamoDbSealedSourceSecrets::new(ddb.clone(), table, sealing.clone()).with_legacy(
                    SecretsManagerSourceSecrets::new(sm, &resources.source_secret_prefix),
                ),
            ),
            sealing,
            replays: Arc::new(DynamoDbReplayGuard::new(ddb.clone(), table)),
            audit: Arc::new(DynamoDbAuditLog::new(ddb.clone(), table, retention.audit)),
            rates: Arc::new(DynamoDbRateBudget::new(ddb.clone(), table)),
            tenants: Arc::new(DynamoDbTenantStore::new(ddb.clone(), table)),
            publish_budget: Arc::new(DynamoDbPublishBudget::new(ddb.clone(), table)),
            health: Arc::new(DynamoDbHealthStore::new(ddb.clone(), table)),
            ops: Arc::new(EventBridgeOpsEvents::new(
                aws_sdk_eventbridge::Client::new(sdk),
                resources.event_bus.clone(),
            )),
            idempotency: Arc::new(DynamoDbIdempotencyStore::new(ddb, table)),
            idempotency_ttl: retention.idempotency,
            secret_values,
            sqs_client: sqs,
        }
    }

    /// A dead-letter queue adapter for `url`, over this process's SQS client.
    pub fn dead_letter_queue(&self, url: &str) -> Arc<dyn DeadLetterQueue> {
        Arc::new(SqsDeadLetterQueue::new(self.sqs_client.clone(), url))
    }

    /// The fan-out over these adapters; `filters` runs subscribers' content filters, and
    /// each tenant publishes within its limits (`defaults` unless it has its own).
    pub fn publisher(
        &self,
        filters: Arc<dyn skyhook_domain::ports::ProgramRunner>,
        defaults: TenantLimits,
    ) -> Publisher {
        Publisher {
            filters,
            gate: Some(Arc::new(TenantGate::new(
                self.tenants.clone(),
                self.publish_budget.clone(),
                defaults,
            ))),
            subscribers: self.routes.clone(),
            events: self.events.clone(),
            queue: self.queue.clone(),
            idempotency: self.idempotency.clone(),
            idempotency_ttl: self.idempotency_ttl,
        }
    }
}
