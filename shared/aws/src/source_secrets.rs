//! Secrets Manager adapter for inbound sources: one secret per source, named
//! `{prefix}{tenant}/{source}`, whose value is the secret as the sender holds it.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use super::secretsmanager::{create_tagged, put_value, read_value, schedule_deletion};
use skyhook_domain::ids::{SourceId, TenantId};
use skyhook_domain::inbound::{Scheme, SourceSecret};
use skyhook_domain::ports::{SourceSecrets, StoreError};

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
        create_tagged(
            &self.client,
            self.secret_name(tenant, id),
            format!("Skyhook secret of inbound source {id}: verifies its sender's signatures"),
            secret.expose().to_string(),
            tenant,
            &format!("source {id}"),
        )
        .await
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &SourceId,
    ) -> Result<Option<SourceSecret>, StoreError> {
        let Some(out) = read_value(
            self.client
                .get_secret_value()
                .secret_id(self.secret_name(tenant, id)),
        )
        .await?
        else {
            return Ok(None);
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
        put_value(
            &self.client,
            self.secret_name(tenant, id),
            secret.expose().to_string(),
        )
        .await
    }

    async fn delete(&self, tenant: &TenantId, id: &SourceId) -> Result<(), StoreError> {
        schedule_deletion(&self.client, self.secret_name(tenant, id)).await
    }
}
