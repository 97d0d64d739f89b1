//! AWS adapters for the ports of `skyhook-domain`, one file per adapter, plus idempotent
//! provisioning of the resources they use and the one wiring function ([`Adapters`]).
//!
//! Endpoints come from the SDK's own configuration (`AWS_ENDPOINT_URL`, `AWS_REGION`),
//! so the same code talks to AWS, LocalStack or moto.

pub mod dynamodb;
mod eventbridge;
mod provision;
mod secret_document;
mod secret_values;
mod secrets_admin;
mod secretsmanager;
mod source_secrets;
mod sqs;
mod sqs_dead_letters;
mod wiring;

pub use dynamodb::sealed::ResealReport;
pub use dynamodb::{
    DynamoDbApiKeyStore, DynamoDbAttemptLog, DynamoDbAuditLog, DynamoDbDeadLetterStore,
    DynamoDbEventStore, DynamoDbHealthStore, DynamoDbIdempotencyStore, DynamoDbPublishBudget,
    DynamoDbRateBudget, DynamoDbReplayGuard, DynamoDbSealedSecrets, DynamoDbSealedSourceSecrets,
    DynamoDbSourceStore, DynamoDbStatsCounters, DynamoDbSubscriberStore, DynamoDbTenantStore,
    ledger_change,
};
pub use eventbridge::EventBridgeOpsEvents;
pub use provision::{
    Provisioned, ResourceNames, create_queue, provision, queue_arn, table_stream_arn,
};
pub use secret_values::SecretsManagerValues;
pub use secrets_admin::{KeyringStatus, MigrationReport, SecretsAdmin};
pub use secretsmanager::SecretsManagerSecrets;
pub use source_secrets::SecretsManagerSourceSecrets;
pub use sqs::SqsDeliveryQueue;
pub use sqs_dead_letters::SqsDeadLetterQueue;
pub use wiring::{Adapters, Resources, Retention};

/// Loads the SDK configuration once; every client of a process is built from it.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Error codes with which AWS refuses a request as such; repeating it gets the same answer.
const PERMANENT_CODES: &[&str] = &[
    "ValidationException",
    "ItemCollectionSizeLimitExceededException",
    "InvalidParameterValue",
    "InvalidParameterException",
    "InvalidRequestException",
    "InvalidMessageContents",
    "BatchRequestTooLong",
    "BatchEntryIdsNotDistinct",
    "TooManyEntriesInBatchRequest",
    "AccessDeniedException",
    "AccessDenied",
];

/// Classifies an SDK error: a refusal of the request itself is [`StoreError::Rejected`],
/// anything else (throttling, timeouts, outages) [`StoreError::Unavailable`] and retryable.
pub(crate) fn sdk_error<E, R>(
    service: &'static str,
    err: &aws_sdk_sqs::error::SdkError<E, R>,
) -> skyhook_domain::ports::StoreError
where
    E: std::error::Error + aws_sdk_sqs::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_sqs::error::ProvideErrorMetadata;
    let detail = sdk_error_text(err);
    match err.code() {
        Some(code) if PERMANENT_CODES.contains(&code) => {
            skyhook_domain::ports::StoreError::Rejected { service, detail }
        }
        _ => skyhook_domain::ports::StoreError::Unavailable { service, detail },
    }
}

/// Renders an SDK error with its service error code and message, never the request.
pub(crate) fn sdk_error_text<E, R>(err: &aws_sdk_sqs::error::SdkError<E, R>) -> String
where
    E: std::error::Error + aws_sdk_sqs::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_sqs::error::ProvideErrorMetadata;
    match err.code() {
        Some(code) => format!("{code}: {}", err.message().unwrap_or("no message")),
        None => skyhook_domain::model::error_chain(err),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::error::{ErrorMetadata, SdkError};
    use aws_sdk_sqs::operation::send_message::SendMessageError;

    use super::*;
    use skyhook_domain::ports::StoreError;

    fn service_error(code: &str) -> SdkError<SendMessageError, ()> {
        SdkError::service_error(
            SendMessageError::generic(ErrorMetadata::builder().code(code).message("m").build()),
            (),
        )
    }

    #[test]
    fn refusals_are_permanent_and_outages_retryable() {
        let refused = sdk_error("SQS", &service_error("InvalidParameterValue"));
        assert!(matches!(refused, StoreError::Rejected { .. }));
        assert!(!refused.is_retryable());
        let throttled = sdk_error("SQS", &service_error("ThrottlingException"));
        assert!(throttled.is_retryable());
        assert!(throttled.to_string().contains("ThrottlingException"));
    }
}
