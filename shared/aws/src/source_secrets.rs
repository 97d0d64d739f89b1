//! Secrets Manager adapter for inbound sources: one secret per source, named
//! `{prefix}{tenant}/{source}`, whose value is `{"version": n, "secret": "…"}`: the secret
//! as the sender holds it, and the source version it was written for. A value that is not
//! that object (written before versions) is the secret itself, of version 0.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use super::secretsmanager::{create_tagged, put_value, read_value, schedule_deletion};
use skyhook_domain::ids::{SourceId, TenantId};
use skyhook_domain::inbound::{Scheme, SourceSecret, StoredSourceSecret};
use skyhook_domain::ports::{SourceSecrets, StoreError};

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Versioned {
    version: u64,
    secret: String,
}

fn encode(secret: &SourceSecret, version: u64) -> Result<String, StoreError> {
    serde_json::to_string(&Versioned {
        version,
        secret: secret.expose().to_string(),
    })
    .map_err(|e| StoreError::Corrupt(format!("a source secret: {e}")))
}

fn decode(id: &SourceId, value: &str) -> Result<StoredSourceSecret, StoreError> {
    let (raw, version) = match serde_json::from_str::<Versioned>(value) {
        Ok(v) => (v.secret, v.version),
        Err(_) => (value.to_string(), 0),
    };
    // Stored only after it was checked against its scheme; any scheme but Standard
    // Webhooks reads every non-empty string back as it was written.
    let secret = SourceSecret::parse(Scheme::Github, &raw)
        .or_else(|_| SourceSecret::parse(Scheme::StandardWebhooks, &raw))
        .map_err(|e| StoreError::Corrupt(format!("source {id}'s secret: {e}")))?;
    Ok(StoredSourceSecret { secret, version })
}

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
            encode(secret, 0)?,
            tenant,
            &format!("source {id}"),
        )
        .await
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &SourceId,
    ) -> Result<Option<StoredSourceSecret>, StoreError> {
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
        decode(id, value).map(Some)
    }

    async fn put(
        &self,
        tenant: &TenantId,
        id: &SourceId,
        secret: &SourceSecret,
        version: u64,
    ) -> Result<bool, StoreError> {
        // A later change that landed first keeps its secret. (Secrets Manager has no
        // conditional write: between this read and the write another writer could slip in,
        // which only two changes to one source within milliseconds can do.)
        match self.get(tenant, id).await? {
            None => return Ok(false),
            Some(stored) if stored.version >= version => return Ok(true),
            Some(_) => {}
        }
        put_value(
            &self.client,
            self.secret_name(tenant, id),
            encode(secret, version)?,
        )
        .await
    }

    async fn delete(&self, tenant: &TenantId, id: &SourceId) -> Result<(), StoreError> {
        schedule_deletion(&self.client, self.secret_name(tenant, id)).await
    }
}
