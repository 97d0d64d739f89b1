//! Idempotent creation of the table and queues Skyhook needs, for the local runner and
//! the tests. In AWS the SAM template creates the same resources.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use super::sdk_error_text;
use skyhook_domain::ports::StoreError;

/// Names of the resources to create.
#[derive(Debug, Clone)]
pub struct ResourceNames {
    pub table: String,
    pub stats_table: String,
    pub queue: String,
    pub dlq: String,
    /// The Secrets Manager secret holding the keyring secrets are sealed under.
    pub keyring_secret: String,
}

impl ResourceNames {
    /// Names sharing one prefix: `{prefix}-table`, `{prefix}-stats`, `{prefix}-deliveries`,
    /// `{prefix}-deliveries-dlq`, and the keyring secret `{prefix}/keyring`.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            table: format!("{prefix}-table"),
            stats_table: format!("{prefix}-stats"),
            queue: format!("{prefix}-deliveries"),
            dlq: format!("{prefix}-deliveries-dlq"),
            keyring_secret: format!("{prefix}/keyring"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Provisioned {
    pub table: String,
    pub stats_table: String,
    /// The table's change stream, which the stats consumer reads.
    pub stream_arn: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub dlq_arn: String,
    pub keyring_secret: String,
}

/// The queue's own visibility timeout only matters when a delivery function dies mid-batch;
/// every failed delivery sets its own delay.
const DEFAULT_VISIBILITY_SECS: u32 = 90;
/// 14 days, the SQS maximum: a message outlives the longest retry schedule.
const RETENTION_SECS: u32 = 1_209_600;

/// Creates the table (keys, the sparse `gsi1`, a stream of new and old images, TTL on `expires_at`) and the delivery queue with
/// its DLQ, whose redrive policy moves a message after `max_receive_count` receives.
pub async fn provision(
    config: &aws_config::SdkConfig,
    names: &ResourceNames,
    max_receive_count: u32,
) -> Result<Provisioned, StoreError> {
    let ddb = aws_sdk_dynamodb::Client::new(config);
    create_table(&ddb, &names.table).await?;
    create_keyring(
        &aws_sdk_secretsmanager::Client::new(config),
        &names.keyring_secret,
    )
    .await?;
    create_stats_table(&ddb, &names.stats_table).await?;
    let sqs = aws_sdk_sqs::Client::new(config);
    let dlq_url = create_queue(&sqs, &names.dlq).await?;
    let dlq_arn = queue_arn(&sqs, &dlq_url).await?;
    let queue_url = create_queue(&sqs, &names.queue).await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": max_receive_count,
    })
    .to_string();
    sqs.set_queue_attributes()
        .queue_url(&queue_url)
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            DEFAULT_VISIBILITY_SECS.to_string(),
        )
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            RETENTION_SECS.to_string(),
        )
        .send()
        .await
        .map_err(|e| StoreError::unavailable("SQS", sdk_error_text(&e)))?;
    let stream_arn = table_stream_arn(&aws_sdk_dynamodb::Client::new(config), &names.table).await?;
    Ok(Provisioned {
        table: names.table.clone(),
        stats_table: names.stats_table.clone(),
        stream_arn,
        queue_url,
        dlq_url,
        dlq_arn,
        keyring_secret: names.keyring_secret.clone(),
    })
}

/// Creates the keyring secret with one fresh key, unless it exists (a no-op then: its keys
/// seal what is stored already).
pub async fn create_keyring(
    sm: &aws_sdk_secretsmanager::Client,
    name: &str,
) -> Result<(), StoreError> {
    let created = sm
        .create_secret()
        .name(name)
        .description("Skyhook keyring: the keys secrets are sealed under in the table")
        .secret_string(skyhook_domain::keyring::Keyring::generate().to_document())
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(StoreError::unavailable(
            "Secrets Manager",
            sdk_error_text(&e),
        )),
    }
}

/// Creates a standard queue (a no-op when it exists) and returns its URL.
pub async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<String, StoreError> {
    let out = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| StoreError::unavailable("SQS", sdk_error_text(&e)))?;
    out.queue_url()
        .map(str::to_owned)
        .ok_or_else(|| StoreError::unavailable("SQS", "CreateQueue returned no URL"))
}

/// The ARN of the queue at `url`.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, StoreError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| StoreError::unavailable("SQS", sdk_error_text(&e)))?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| StoreError::unavailable("SQS", "queue has no ARN"))
}

fn key_attribute(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| StoreError::unavailable("DynamoDB", e))
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|e| StoreError::unavailable("DynamoDB", e))
}

/// Every global secondary index of the table.
/// The sparse dead-letter index; nothing on the delivery path carries its keys.
const INDEXES: [&str; 1] = ["gsi1"];

async fn add_index(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    name: &str,
) -> Result<(), StoreError> {
    let create = aws_sdk_dynamodb::types::CreateGlobalSecondaryIndexAction::builder()
        .index_name(name)
        .key_schema(key(&format!("{name}pk"), KeyType::Hash)?)
        .key_schema(key(&format!("{name}sk"), KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(|e| StoreError::unavailable("DynamoDB", e))?;
    ddb.update_table()
        .table_name(table)
        .attribute_definitions(key_attribute(&format!("{name}pk"))?)
        .attribute_definitions(key_attribute(&format!("{name}sk"))?)
        .global_secondary_index_updates(
            aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder()
                .create(create)
                .build(),
        )
        .send()
        .await
        .map_err(|e| StoreError::unavailable("DynamoDB", sdk_error_text(&e)))?;
    wait_until_active(ddb, table).await
}

/// A global secondary index `{name}` keyed on `{name}pk`/`{name}sk`, projecting every
/// attribute (the API reads whole log items from it).
fn index(name: &str) -> Result<GlobalSecondaryIndex, StoreError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(&format!("{name}pk"), KeyType::Hash)?)
        .key_schema(key(&format!("{name}sk"), KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(|e| StoreError::unavailable("DynamoDB", e))
}

async fn create_table(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), StoreError> {
    let existing_indexes: Option<Vec<String>> =
        match ddb.describe_table().table_name(table).send().await {
            Ok(out) => Some(
                out.table()
                    .map(|t| {
                        t.global_secondary_indexes()
                            .iter()
                            .filter_map(|i| i.index_name().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                None
            }
            Err(err) => return Err(StoreError::unavailable("DynamoDB", sdk_error_text(&err))),
        };
    if existing_indexes.is_some() {
        enable_stream(ddb, table).await?;
    }
    if let Some(indexes) = &existing_indexes {
        // A table made by an earlier version (a kept local runner table) gains the indexes
        // added since, one at a time as DynamoDB requires.
        for name in INDEXES {
            if !indexes.iter().any(|i| i == name) {
                add_index(ddb, table, name).await?;
            }
        }
    } else {
        let created = ddb
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(key_attribute("pk")?)
            .attribute_definitions(key_attribute("sk")?)
            .attribute_definitions(key_attribute("gsi1pk")?)
            .attribute_definitions(key_attribute("gsi1sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .set_global_secondary_indexes(Some(
                INDEXES.iter().map(|n| index(n)).collect::<Result<_, _>>()?,
            ))
            .stream_specification(stream_specification()?)
            .send()
            .await;
        if let Err(err) = created
            && !err
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception())
        {
            return Err(StoreError::unavailable("DynamoDB", sdk_error_text(&err)));
        }
        wait_until_active(ddb, table).await?;
    }
    enable_ttl(ddb, table).await
}

/// Turns on TTL on `expires_at`; a table that has it already is fine.
async fn enable_ttl(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), StoreError> {
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name("expires_at")
        .enabled(true)
        .build()
        .map_err(|e| StoreError::unavailable("DynamoDB", e))?;
    if let Err(err) = ddb
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
    {
        // Enabling TTL twice is refused with a ValidationException; that is success here.
        let text = sdk_error_text(&err);
        if !text.contains("already enabled") && !text.contains("ValidationException") {
            return Err(StoreError::unavailable("DynamoDB", text));
        }
    }
    Ok(())
}

/// The stats counters' table: keys only, no index, no stream; the time series' buckets
/// expire (TTL on `expires_at`).
async fn create_stats_table(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), StoreError> {
    match ddb.describe_table().table_name(table).send().await {
        // One made by an earlier version gains the TTL of the time series.
        Ok(_) => return enable_ttl(ddb, table).await,
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(err) => return Err(StoreError::unavailable("DynamoDB", sdk_error_text(&err))),
    }
    let created = ddb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(key_attribute("pk")?)
        .attribute_definitions(key_attribute("sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .send()
        .await;
    if let Err(err) = created
        && !err
            .as_service_error()
            .is_some_and(|e| e.is_resource_in_use_exception())
    {
        return Err(StoreError::unavailable("DynamoDB", sdk_error_text(&err)));
    }
    wait_until_active(ddb, table).await?;
    enable_ttl(ddb, table).await
}

/// The stats consumer reads both images of every change to fold it into the totals.
fn stream_specification() -> Result<StreamSpecification, StoreError> {
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .map_err(|e| StoreError::unavailable("DynamoDB", e))
}

/// A table made by an earlier version gains the stream the stats consumer reads.
async fn enable_stream(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), StoreError> {
    let out = ddb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| StoreError::unavailable("DynamoDB", sdk_error_text(&e)))?;
    let enabled = out
        .table()
        .and_then(|t| t.stream_specification())
        .is_some_and(|s| s.stream_enabled());
    if !enabled {
        ddb.update_table()
            .table_name(table)
            .stream_specification(stream_specification()?)
            .send()
            .await
            .map_err(|e| StoreError::unavailable("DynamoDB", sdk_error_text(&e)))?;
        wait_until_active(ddb, table).await?;
    }
    Ok(())
}

/// The ARN of the table's stream, which the local runner polls like Lambda would.
pub async fn table_stream_arn(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<String, StoreError> {
    let out = ddb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| StoreError::unavailable("DynamoDB", sdk_error_text(&e)))?;
    out.table()
        .and_then(|t| t.latest_stream_arn())
        .map(str::to_owned)
        .ok_or_else(|| StoreError::unavailable("DynamoDB", format!("table {table} has no stream")))
}

async fn wait_until_active(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), StoreError> {
    for _ in 0..120 {
        let out = ddb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| StoreError::unavailable("DynamoDB", sdk_error_text(&e)))?;
        // An index added to a live table backfills after the table itself is active again.
        let ready = out.table().is_some_and(|t| {
            t.table_status() == Some(&aws_sdk_dynamodb::types::TableStatus::Active)
                && t.global_secondary_indexes().iter().all(|i| {
                    i.index_status()
                        .is_none_or(|s| *s == aws_sdk_dynamodb::types::IndexStatus::Active)
                })
        });
        if ready {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Err(StoreError::unavailable(
        "DynamoDB",
        format!("table {table} did not become active within a minute"),
    ))
}
