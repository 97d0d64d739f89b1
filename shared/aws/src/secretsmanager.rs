//! Secrets Manager adapter: one secret per subscriber, named `{prefix}{tenant}/{subscriber}`.
//!
//! A rotation is `PutSecretValue`: the new version takes the `AWSCURRENT` label and the old
//! one `AWSPREVIOUS`. The current version's creation date is when the rotation happened, so
//! no extra record is needed to know whether the previous secret is still in its grace period.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use chrono::{DateTime, Utc};

use super::sdk_error;
use skyhook_domain::ids::{SubscriberId, TenantId};
use skyhook_domain::ports::{SecretStore, StoreError, SubscriberSecrets};
use skyhook_domain::secret::SigningSecret;

const SERVICE: &str = "Secrets Manager";

#[derive(Clone)]
pub struct SecretsManagerSecrets {
    client: Client,
    prefix: String,
    grace: Duration,
}

impl SecretsManagerSecrets {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            grace: skyhook_domain::config::DEFAULT_ROTATION_GRACE,
        }
    }

    /// How long the previous secret keeps signing after a rotation.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The value of one version stage, with that version's creation time; `None` when the
    /// secret or the stage does not exist (or the secret is scheduled for deletion).
    async fn read_stage(
        &self,
        name: &str,
        stage: &str,
    ) -> Result<Option<(SigningSecret, Option<DateTime<Utc>>)>, StoreError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(name)
            .version_stage(stage)
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
            .ok_or_else(|| StoreError::Corrupt(format!("secret {name} has no string value")))?;
        let secret = SigningSecret::parse(value)
            .map_err(|e| StoreError::Corrupt(format!("secret {name} ({stage}): {e}")))?;
        let created = out
            .created_date()
            .and_then(|d| DateTime::<Utc>::from_timestamp(d.secs(), d.subsec_nanos()));
        Ok(Some((secret, created)))
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
            Err(err) => Err(sdk_error(SERVICE, &err)),
        }
    }

    async fn get_current(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<SubscriberSecrets>, StoreError> {
        Ok(self
            .read_stage(&self.secret_name(tenant, id), "AWSCURRENT")
            .await?
            .map(|(current, _)| SubscriberSecrets::current(current)))
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<SubscriberSecrets>, StoreError> {
        let name = self.secret_name(tenant, id);
        let Some((current, rotated_at)) = self.read_stage(&name, "AWSCURRENT").await? else {
            // Not found, or scheduled for deletion with its subscriber.
            return Ok(None);
        };
        let grace = chrono::Duration::from_std(self.grace).unwrap_or(chrono::Duration::MAX);
        let until = rotated_at.and_then(|at| at.checked_add_signed(grace));
        // Only a version made within the grace period can have a predecessor still signing;
        // outside it, one call per cache miss is all a delivery costs.
        match until {
            Some(until) if Utc::now() < until => {
                match self.read_stage(&name, "AWSPREVIOUS").await? {
                    Some((previous, _)) if previous != current => Ok(Some(SubscriberSecrets {
                        signing: vec![current, previous],
                        previous_until: Some(until),
                    })),
                    _ => Ok(Some(SubscriberSecrets::current(current))),
                }
            }
            _ => Ok(Some(SubscriberSecrets::current(current))),
        }
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
            Err(err) => Err(sdk_error(SERVICE, &err)),
        }
    }

    async fn rotate(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        secret: &SigningSecret,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let result = self
            .client
            .put_secret_value()
            .secret_id(self.secret_name(tenant, id))
            .secret_string(secret.expose())
            .send()
            .await;
        match result {
            Ok(_) => {
                let grace = chrono::Duration::from_std(self.grace).unwrap_or(chrono::Duration::MAX);
                Ok(Some(
                    Utc::now().checked_add_signed(grace).unwrap_or(Utc::now()),
                ))
            }
            Err(err)
                if err.as_service_error().is_some_and(|e| {
                    e.is_resource_not_found_exception() || e.is_invalid_request_exception()
                }) =>
            {
                Ok(None)
            }
            Err(err) => Err(sdk_error(SERVICE, &err)),
        }
    }
}
