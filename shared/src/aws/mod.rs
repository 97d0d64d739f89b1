//! AWS adapters for the ports, plus idempotent provisioning of the resources they use.
//!
//! Endpoints come from the SDK's own configuration (`AWS_ENDPOINT_URL`, `AWS_REGION`),
//! so the same code talks to AWS, LocalStack or moto.

mod dynamodb;
mod provision;
mod secretsmanager;
mod sqs;

pub use dynamodb::{
    DynamoDbApiKeyStore, DynamoDbAttemptLog, DynamoDbAuditLog, DynamoDbDeadLetterStore,
    DynamoDbEventStore, DynamoDbIdempotencyStore, DynamoDbSubscriberStore,
};
pub use provision::{Provisioned, ResourceNames, create_queue, provision, queue_arn};
pub use secretsmanager::SecretsManagerSecrets;
pub use sqs::{SqsDeadLetterQueue, SqsDeliveryQueue};

/// Loads the SDK configuration once; every client of a process is built from it.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
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
        None => {
            let mut text = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}
