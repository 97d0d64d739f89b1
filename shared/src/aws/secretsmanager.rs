//! Secrets Manager adapter: one secret per subscriber, named `{prefix}{tenant}/{subscriber}`.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use super::sdk_error_text;
use crate::ids::{SubscriberId, TenantId};
use crate::ports::{SecretStore, StoreError, SubscriberSecrets};
use crate::secret::SigningSecret;

const SERVICE: &str = "Secrets Manager";

#[derive(Clone)]
pub struct SecretsManagerSecrets {
    client: Client,
    prefix: String,
}

impl SecretsManagerSecrets {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
        }
    }

    pub fn secret_name(&self, tenant: &TenantId, id: &SubscriberId) -> String {
        format!("{}{tenant}/{id}", self.prefix)
    }
}

#[async_trait]
impl SecretStore for SecretsManagerSecrets {
    async fn create(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        secret: &SigningSecret,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .create_secret()
            .name(self.secret_name(tenant, id))
            .description(format!("Skyhook signing secret of subscriber {id}"))
            .secret_string(secret.expose())
            .tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key("skyhook:tenant")
                    .value(tenant.as_str())
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_exists_exception()) =>
            {
                Err(StoreError::Conflict(format!(
                    "a secret for subscriber {id} already exists"
                )))
            }
            Err(err) => Err(StoreError::unavailable(SERVICE, sdk_error_text(&err))),
        }
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<SubscriberSecrets>, StoreError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(self.secret_name(tenant, id))
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(err)
                if err.as_service_error().is_some_and(|e| {
                    e.is_resource_not_found_exception() || e.is_invalid_request_exception()
                }) =>
            {
                // Not found, or scheduled for deletion with its subscriber.
                return Ok(None);
            }
            Err(err) => return Err(StoreError::unavailable(SERVICE, sdk_error_text(&err))),
        };
        let value = out
            .secret_string()
            .ok_or_else(|| StoreError::Corrupt(format!("secret of {id} has no string value")))?;
        let current = SigningSecret::parse(value)
            .map_err(|e| StoreError::Corrupt(format!("secret of {id}: {e}")))?;
        Ok(Some(SubscriberSecrets {
            signing: vec![current],
        }))
    }

    async fn delete(&self, tenant: &TenantId, id: &SubscriberId) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_secret()
            .secret_id(self.secret_name(tenant, id))
            .recovery_window_in_days(7)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(StoreError::unavailable(SERVICE, sdk_error_text(&err))),
        }
    }
}
