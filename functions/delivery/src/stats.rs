//! The stats consumer: reads the table's change stream (Lambda's DynamoDB event source, or
//! the local runner's poller) and folds each batch into one change per counter, off the
//! delivery path. Only delivery items count; TTL deletions (and every other removal) are
//! ignored, so totals outlive the log they were counted from.

use std::sync::Arc;

use aws_lambda_events::dynamodb::Event;
use lambda_runtime::LambdaEvent;

use skyhook_aws::{Adapters, Resources, Retention, ledger_change};
use skyhook_domain::config::{self, ConfigError, Env};
use skyhook_domain::ports::StatsCounters;
use skyhook_domain::stats_fold::{LedgerChange, fold};

/// Settings of the stats consumer, read once at start-up.
#[derive(Debug, Clone)]
pub struct StatsConfig {
    pub stats_table: String,
}

impl StatsConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            stats_table: config::required(env, config::STATS_TABLE)?,
        })
    }

    /// The resources this configuration names, for [`Adapters::from_sdk`]: only the stats
    /// table (the consumer gets the ledger's changes from its event source, sends nothing to
    /// a queue and reads no secret).
    pub fn adapters(&self, sdk: &aws_config::SdkConfig) -> Adapters {
        Adapters::from_sdk(
            sdk,
            &Resources {
                table: String::new(),
                stats_table: Some(self.stats_table.clone()),
                queue_url: String::new(),
                dlq_url: None,
                secret_prefix: config::DEFAULT_SECRET_PREFIX.to_string(),
                source_secret_prefix: config::DEFAULT_SOURCE_SECRET_PREFIX.to_string(),
                keyring_secret: config::DEFAULT_KEYRING_SECRET.to_string(),
                event_bus: None,
            },
            &Retention::default(),
        )
    }
}

/// What the stats consumer cannot start without (held to the template by a test).
pub const REQUIRED_ENV_STATS: &[&str] = &[config::STATS_TABLE];

/// Folds one stream batch into the counters. An error fails the batch, which Lambda then
/// hands over again: the counters take the same batch only once (see [`StatsCounters`]).
pub async fn handle(
    counters: &Arc<dyn StatsCounters>,
    event: LambdaEvent<Event>,
) -> Result<(), lambda_runtime::Error> {
    let records = &event.payload.records;
    let mut changes: Vec<LedgerChange> = Vec::new();
    for record in records {
        if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
            continue;
        }
        let c = &record.change;
        match ledger_change(&c.keys, &c.old_image, &c.new_image) {
            Ok(Some(change)) => changes.push(change),
            Ok(None) => {}
            // One unreadable item must not hold up the shard for a day: it is logged and left.
            Err(e) => {
                tracing::error!(error = %e, event_id = %record.event_id, "unreadable ledger change; not counted")
            }
        }
    }
    let folded = fold(&changes);
    let series = skyhook_domain::series::fold(&skyhook_domain::stats_fold::attempts(&changes));
    if folded.is_empty() && series.is_empty() {
        return Ok(());
    }
    let batch = batch_name(&event.payload);
    counters.apply(&batch, &folded, &series).await?;
    tracing::info!(
        records = records.len(),
        counters = folded.len(),
        buckets = series.len(),
        "stats folded"
    );
    Ok(())
}

/// Names a batch by where it sits in its stream: the same records give the same name.
pub fn batch_name(event: &Event) -> String {
    let first = event.records.first();
    let last = event.records.last();
    let seq = |r: Option<&aws_lambda_events::dynamodb::EventRecord>| {
        r.and_then(|r| r.change.sequence_number.clone())
            .unwrap_or_default()
    };
    format!(
        "{}|{}|{}|{}",
        first
            .and_then(|r| r.event_source_arn.clone())
            .unwrap_or_default(),
        seq(first),
        seq(last),
        event.records.len()
    )
}
