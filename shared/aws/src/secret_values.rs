//! Plain secret values in Secrets Manager, by name or ARN: where a deployment keeps the
//! bootstrap admin key.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use crate::sdk_error;
use skyhook_domain::ports::{SecretValues, StoreError};

const SERVICE: &str = "Secrets Manager";

/// Plain secret values, by name or ARN (the bootstrap admin key).
#[derive(Clone)]
pub struct SecretsManagerValues {
    client: Client,
}

impl SecretsManagerValues {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl SecretValues for SecretsManagerValues {
    async fn secret_string(&self, id: &str) -> Result<Option<String>, StoreError> {
        match self.client.get_secret_value().secret_id(id).send().await {
            Ok(out) => Ok(out.secret_string().map(str::to_string)),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(err) => Err(sdk_error(SERVICE, &err)),
        }
    }
}
