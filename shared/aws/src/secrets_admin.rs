//! The operator's keyring and secret commands (`skyhook keyring …`, `skyhook secrets
//! migrate`), run with the operator's AWS credentials, never by a function: rotate the
//! keyring, seal everything again under its newest version, report what is sealed under
//! which version, and move secrets from before sealing (one Secrets Manager secret each)
//! into the table.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};

use sha2::{Digest, Sha256};

use crate::dynamodb::sealed::{ResealReport, Vault};
use crate::dynamodb::{DynamoDbSealedSecrets, DynamoDbSealedSourceSecrets, Table};
use crate::{Resources, SecretsManagerSecrets, SecretsManagerSourceSecrets, sdk_error};
use skyhook_domain::ids::{SourceId, SubscriberId, TenantId};
use skyhook_domain::keyring::{self, Keyring, SealingKeys};
use skyhook_domain::ports::{SecretValues, StoreError};

const SERVICE: &str = "Secrets Manager";

/// What is sealed under which keyring version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyringStatus {
    pub current: u32,
    pub versions: Vec<u32>,
    /// Sealed items per key version.
    pub sealed: BTreeMap<u32, usize>,
    /// Items whose sealed value is malformed.
    pub unreadable: usize,
    /// Secrets still in Secrets Manager, one per subscriber or source, waiting for
    /// `skyhook secrets migrate`.
    pub legacy: usize,
}

/// What a migration did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    pub subscribers: usize,
    pub sources: usize,
    /// Secrets left where they were, with why (named by their Secrets Manager name).
    pub failed: Vec<(String, String)>,
}

pub struct SecretsAdmin {
    sm: Client,
    keys: Arc<SealingKeys>,
    vault: Vault,
    subscribers: DynamoDbSealedSecrets,
    sources: DynamoDbSealedSourceSecrets,
    secret_prefix: String,
    source_secret_prefix: String,
}

impl SecretsAdmin {
    pub fn from_sdk(sdk: &SdkConfig, resources: &Resources) -> Self {
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let sm = Client::new(sdk);
        let values: Arc<dyn SecretValues> = Arc::new(crate::SecretsManagerValues::new(sm.clone()));
        let keys = Arc::new(SealingKeys::new(values, &resources.keyring_secret));
        Self {
            vault: Vault::new(Table::new(ddb.clone(), &resources.table), keys.clone()),
            subscribers: DynamoDbSealedSecrets::new(ddb.clone(), &resources.table, keys.clone())
                .with_legacy(SecretsManagerSecrets::new(
                    sm.clone(),
                    &resources.secret_prefix,
                )),
            sources: DynamoDbSealedSourceSecrets::new(ddb, &resources.table, keys.clone())
                .with_legacy(SecretsManagerSourceSecrets::new(
                    sm.clone(),
                    &resources.source_secret_prefix,
                )),
            sm,
            keys,
            secret_prefix: resources.secret_prefix.clone(),
            source_secret_prefix: resources.source_secret_prefix.clone(),
        }
    }

    /// Adds a fresh key version to the keyring and makes it current: new writes use it once
    /// each process reads the keyring again (within [`skyhook_domain::keyring::KEYRING_TTL`]),
    /// and values sealed before still open. Returns the new version.
    ///
    /// The new secret version's id is derived from the version it was read from, so two
    /// rotations from the same keyring write the same version id with different keys, and
    /// Secrets Manager refuses the second (a `Conflict`: run it again), where the last write
    /// would otherwise win and lose the other's key, and with it what was sealed under it.
    pub async fn rotate_keyring(&self) -> Result<u32, StoreError> {
        let name = self.keys.secret_name();
        let read = self
            .sm
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        let keyring = Keyring::parse(read.secret_string().unwrap_or_default())
            .map_err(|e| StoreError::Corrupt(format!("the keyring: {e}")))?
            .rotated()
            .map_err(|e| StoreError::Corrupt(format!("the keyring: {e}")))?;
        let base = read.version_id().unwrap_or_default();
        let token = hex::encode(Sha256::digest(format!("skyhook keyring after {base}")));
        let written = self
            .sm
            .put_secret_value()
            .secret_id(name)
            .client_request_token(token)
            .secret_string(keyring.to_document())
            .send()
            .await;
        match written {
            Ok(_) => Ok(keyring.current()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_exists_exception()) =>
            {
                Err(StoreError::Conflict(
                    "another rotation of the keyring landed first; run it again".into(),
                ))
            }
            Err(e) => Err(sdk_error(SERVICE, &e)),
        }
    }

    /// Seals every value again under the keyring's newest version.
    pub async fn reseal(&self) -> Result<ResealReport, StoreError> {
        self.vault.reseal().await
    }

    pub async fn status(&self) -> Result<KeyringStatus, StoreError> {
        let keyring: Arc<Keyring> = self.keys.load().await?;
        let mut sealed = BTreeMap::new();
        let mut unreadable = 0;
        for raw in self.vault.all().await? {
            match crate::dynamodb::attr(&raw, "sealed").map(keyring::sealed_version) {
                Some(Ok(version)) => *sealed.entry(version).or_insert(0) += 1,
                _ => unreadable += 1,
            }
        }
        Ok(KeyringStatus {
            current: keyring.current(),
            versions: keyring.versions().collect(),
            sealed,
            unreadable,
            legacy: self.legacy_names(&self.secret_prefix).await?.len()
                + self.legacy_names(&self.source_secret_prefix).await?.len(),
        })
    }

    /// Moves every subscriber's and source's secret from Secrets Manager into a sealed item,
    /// deleting each old secret only once its sealed item reads back. Safe to run twice, and
    /// to stop halfway: what was moved is not in Secrets Manager any more.
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        let mut report = MigrationReport::default();
        for name in self.legacy_names(&self.secret_prefix).await? {
            let moved = match owner(&name, &self.secret_prefix) {
                Some((tenant, id)) => match SubscriberId::parse(id) {
                    Ok(id) => self.subscribers.migrate(&tenant, &id).await,
                    Err(e) => Err(StoreError::Corrupt(format!("not a subscriber id: {e}"))),
                },
                None => Err(StoreError::Corrupt("not {tenant}/{subscriber}".into())),
            };
            match moved {
                Ok(true) => report.subscribers += 1,
                Ok(false) => {}
                Err(e) => report.failed.push((name, e.to_string())),
            }
        }
        for name in self.legacy_names(&self.source_secret_prefix).await? {
            let moved = match owner(&name, &self.source_secret_prefix) {
                Some((tenant, id)) => match SourceId::parse(id) {
                    Ok(id) => self.sources.migrate(&tenant, &id).await,
                    Err(e) => Err(StoreError::Corrupt(format!("not a source id: {e}"))),
                },
                None => Err(StoreError::Corrupt("not {tenant}/{source}".into())),
            };
            match moved {
                Ok(true) => report.sources += 1,
                Ok(false) => {}
                Err(e) => report.failed.push((name, e.to_string())),
            }
        }
        Ok(report)
    }

    /// The names of the secrets under `prefix` (not those scheduled for deletion).
    async fn legacy_names(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        let mut pages = self
            .sm
            .list_secrets()
            .filters(
                Filter::builder()
                    .key(FilterNameStringType::Name)
                    .values(prefix)
                    .build(),
            )
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error(SERVICE, &e))?;
            names.extend(
                page.secret_list()
                    .iter()
                    .filter_map(|s| s.name())
                    // The filter matches by prefix of words; keep exact prefixes only.
                    .filter(|n| n.starts_with(prefix))
                    .map(str::to_string),
            );
        }
        Ok(names)
    }
}

/// The tenant and id a legacy secret's name `{prefix}{tenant}/{id}` names.
fn owner<'a>(name: &'a str, prefix: &str) -> Option<(TenantId, &'a str)> {
    let (tenant, id) = name.strip_prefix(prefix)?.split_once('/')?;
    Some((TenantId::parse(tenant).ok()?, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names_give_their_tenant_and_id() {
        let (tenant, id) = owner("skyhook/subscribers/acme/sub_1", "skyhook/subscribers/").unwrap();
        assert_eq!((tenant.as_str(), id), ("acme", "sub_1"));
        assert!(owner("skyhook/keyring", "skyhook/subscribers/").is_none());
        assert!(owner("skyhook/subscribers/acme", "skyhook/subscribers/").is_none());
    }
}
