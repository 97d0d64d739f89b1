//! Secrets Manager adapter: one secret per subscriber, named `{prefix}{tenant}/{subscriber}`.
//!
//! Its value is a JSON document: the signing secret, the one a rotation replaced with the
//! end of its grace period, and the values of the subscriber's custom headers (receiver
//! credentials, kept out of the table). One `GetSecretValue` gives a delivery all of it.
//! A rotation or a header change writes a new version with `PutSecretValue`.
//!
//! A secret stored before the document is the bare `whsec_…` string; it is still read, and
//! a rotation of it found the previous secret in the `AWSPREVIOUS` version, whose grace
//! period starts at the current version's creation. The next write turns it into a document.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use chrono::{DateTime, Utc};

use super::sdk_error;
use crate::secret_document::{Document, Parsed};
use skyhook_domain::ids::{SubscriberId, TenantId};
use skyhook_domain::model::format_time;
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
    ) -> Result<Option<(Stored, Option<DateTime<Utc>>)>, StoreError> {
        let Some(out) = read_value(
            self.client
                .get_secret_value()
                .secret_id(name)
                .version_stage(stage),
        )
        .await?
        else {
            return Ok(None);
        };
        let value = out
            .secret_string()
            .ok_or_else(|| StoreError::Corrupt(format!("secret {name} has no string value")))?;
        let stored = Stored::parse(value)
            .map_err(|e| StoreError::Corrupt(format!("secret {name} ({stage}): {e}")))?;
        let created = out
            .created_date()
            .and_then(|d| DateTime::<Utc>::from_timestamp(d.secs(), d.subsec_nanos()));
        Ok(Some((stored, created)))
    }

    async fn write(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        doc: &Document,
    ) -> Result<bool, StoreError> {
        let value = serde_json::to_string(doc)
            .map_err(|e| StoreError::Corrupt(format!("secret document: {e}")))?;
        put_value(&self.client, self.secret_name(tenant, id), value).await
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
        headers: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let doc = Document {
            secret: secret.expose(),
            previous: None,
            previous_until: None,
            headers: Some(headers.clone()),
        };
        let value = serde_json::to_string(&doc)
            .map_err(|e| StoreError::Corrupt(format!("secret document: {e}")))?;
        create_tagged(
            &self.client,
            self.secret_name(tenant, id),
            format!("Skyhook signing secret and custom header values of subscriber {id}"),
            value,
            tenant,
            &format!("subscriber {id}"),
        )
        .await
    }

    async fn set_headers(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        headers: &BTreeMap<String, String>,
    ) -> Result<bool, StoreError> {
        let Some(now) = self.get(tenant, id).await? else {
            return Ok(false);
        };
        let mut doc = Document::of(&now);
        doc.headers = Some(headers.clone());
        self.write(tenant, id, &doc).await
    }

    async fn get_current(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<SubscriberSecrets>, StoreError> {
        Ok(self
            .read_stage(&self.secret_name(tenant, id), "AWSCURRENT")
            .await?
            .map(|(stored, _)| match stored {
                Stored::Document(doc) => doc.secrets(),
                Stored::Bare(current) => SubscriberSecrets::current(current),
            }))
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<SubscriberSecrets>, StoreError> {
        let name = self.secret_name(tenant, id);
        let Some((stored, rotated_at)) = self.read_stage(&name, "AWSCURRENT").await? else {
            // Not found, or scheduled for deletion with its subscriber.
            return Ok(None);
        };
        let current = match stored {
            Stored::Document(doc) => return Ok(Some(doc.secrets())),
            Stored::Bare(current) => current,
        };
        let grace = chrono::Duration::from_std(self.grace).unwrap_or(chrono::Duration::MAX);
        let until = rotated_at.and_then(|at| at.checked_add_signed(grace));
        // Only a version made within the grace period can have a predecessor still signing;
        // outside it, one call per cache miss is all a delivery costs.
        match until {
            Some(until) if Utc::now() < until => {
                match self.read_stage(&name, "AWSPREVIOUS").await? {
                    Some((Stored::Bare(previous), _)) if previous != current => {
                        Ok(Some(SubscriberSecrets {
                            signing: vec![current, previous],
                            previous_until: Some(until),
                            headers: None,
                        }))
                    }
                    _ => Ok(Some(SubscriberSecrets::current(current))),
                }
            }
            _ => Ok(Some(SubscriberSecrets::current(current))),
        }
    }

    async fn delete(&self, tenant: &TenantId, id: &SubscriberId) -> Result<(), StoreError> {
        schedule_deletion(&self.client, self.secret_name(tenant, id)).await
    }

    async fn rotate(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        secret: &SigningSecret,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let Some(now) = self.get(tenant, id).await? else {
            return Ok(None);
        };
        let grace = chrono::Duration::from_std(self.grace).unwrap_or(chrono::Duration::MAX);
        let until = Utc::now().checked_add_signed(grace).unwrap_or(Utc::now());
        let doc = Document {
            secret: secret.expose(),
            previous: now.signing.first().map(SigningSecret::expose),
            previous_until: Some(format_time(until)),
            headers: now.headers,
        };
        Ok(self.write(tenant, id, &doc).await?.then_some(until))
    }
}

/// A secret's value as stored.
enum Stored {
    Document(Parsed),
    /// A secret stored before the document: the signing secret alone.
    Bare(SigningSecret),
}

impl Stored {
    fn parse(value: &str) -> Result<Self, String> {
        if value.trim_start().starts_with('{') {
            let doc: Document = serde_json::from_str(value).map_err(|e| e.to_string())?;
            doc.parse().map(Stored::Document)
        } else {
            SigningSecret::parse(value)
                .map(Stored::Bare)
                .map_err(|e| e.to_string())
        }
    }
}

/// Sends a `GetSecretValue`; `None` when the secret (or the stage) does not exist or is
/// scheduled for deletion.
pub(crate) async fn read_value(
    request: aws_sdk_secretsmanager::operation::get_secret_value::builders::GetSecretValueFluentBuilder,
) -> Result<
    Option<aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput>,
    StoreError,
> {
    match request.send().await {
        Ok(out) => Ok(Some(out)),
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

/// Creates secret `name` holding `value`, tagged with its tenant. `Conflict` (about `what`)
/// when it exists already.
pub(crate) async fn create_tagged(
    client: &Client,
    name: String,
    description: String,
    value: String,
    tenant: &TenantId,
    what: &str,
) -> Result<(), StoreError> {
    let result = client
        .create_secret()
        .name(name)
        .description(description)
        .secret_string(value)
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
                "a secret for {what} already exists"
            )))
        }
        Err(err) => Err(sdk_error(SERVICE, &err)),
    }
}

/// Writes a new current version of secret `name`; `false` when it does not exist (or is
/// scheduled for deletion).
pub(crate) async fn put_value(
    client: &Client,
    name: String,
    value: String,
) -> Result<bool, StoreError> {
    match client
        .put_secret_value()
        .secret_id(name)
        .secret_string(value)
        .send()
        .await
    {
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

/// Schedules secret `name` for deletion (recoverable for 7 days); a missing one is done.
pub(crate) async fn schedule_deletion(client: &Client, name: String) -> Result<(), StoreError> {
    match client
        .delete_secret()
        .secret_id(name)
        .recovery_window_in_days(7)
        .send()
        .await
    {
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
