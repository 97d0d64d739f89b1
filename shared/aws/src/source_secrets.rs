//! Secrets Manager adapter for inbound sources: one secret per source, named
//! `{prefix}{tenant}/{source}`, whose value is the secret as the sender holds it.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use super::sdk_error;
use skyhook_domain::ids::{SourceId, TenantId};
use skyhook_domain::inbound::{Scheme, SourceSecret};
use skyhook_domain::ports::{SourceSecrets, StoreError};

const SERVICE: &str = "Secrets Manager";

#[derive(Clone)]
pub struct SecretsManagerSourceSecrets {
    client: Client,
    prefix: String,
}

impl SecretsManagerSourceSecrets {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
        }
    }

    pub fn secret_name(&self, tenant: &TenantId, id: &SourceId) -> String {
        format!("{}{tenant}/{id}", self.prefix)
    }
}

#[async_trait]
impl SourceSecrets for SecretsManagerSourceSecrets {
    async fn create(
        &self,
        tenant: &TenantId,
        id: &SourceId,
        secret: &SourceSecret,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .create_secret()
            .name(self.secret_name(tenant, id))
            .description(format!(
                "Skyhook secret of inbound source {id}: verifies its sender's signatures"
            ))
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
                    "a secret for source {id} already exists"
                )))
            }
            Err(err) => Err(sdk_error(SERVICE, &err)),
        }
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &SourceId,
    ) -> Result<Option<SourceSecret>, StoreError> {
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
                return Ok(None);
            }
            Err(err) => return Err(sdk_error(SERVICE, &err)),
        };
        let value = out
            .secret_string()
            .ok_or_else(|| StoreError::Corrupt(format!("source {id}'s secret has no string")))?;
        // Stored only after it was checked against its scheme; any scheme but Standard
        // Webhooks reads every non-empty string back as it was written.
        SourceSecret::parse(Scheme::Github, value)
            .or_else(|_| SourceSecret::parse(Scheme::StandardWebhooks, value))
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("source {id}'s secret: {e}")))
    }

    async fn put(
        &self,
        tenant: &TenantId,
        id: &SourceId,
        secret: &SourceSecret,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_secret_value()
            .secret_id(self.secret_name(tenant, id))
            .secret_string(secret.expose())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err.as_service_error().is_some_and(|e| {
                    e.is_resource_not_found_exception() || e.is_invalid_request_exception()
                }) =>
            {
                Ok(false)
            }
            Err(err) => Err(sdk_error(SERVICE, &err)),
        }
    }

    async fn delete(&self, tenant: &TenantId, id: &SourceId) -> Result<(), StoreError> {
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
            Err(err) => Err(sdk_error(SERVICE, &err)),
        }
    }
}
