//! Secrets sealed in the table: a subscriber's secret document (signing secret, the one a
//! rotation replaced and its grace end, custom header values) and an inbound source's
//! secret, each one item in the `SEALSUB#{nn}` or `SEALSRC#{nn}` partitions, sealed with AES-256-GCM under the
//! keyring ([`skyhook_domain::keyring`]) and bound to its tenant and record. Only the key
//! version and a revision are in plain text.
//!
//! One Secrets Manager secret (the keyring) serves every subscriber, where there was one
//! secret per subscriber at $0.40 a month. Secrets stored before that (one Secrets Manager
//! secret each) are still read while no sealed item exists, and are moved here by
//! `skyhook secrets migrate` ([`crate::migrate_secrets`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{SERVICE, Table, from_item, keys, n, s, to_item, written};
use crate::sdk_error;
use crate::secret_document::Document;
use crate::{SecretsManagerSecrets, SecretsManagerSourceSecrets};
use skyhook_domain::ids::{SourceId, SubscriberId, TenantId};
use skyhook_domain::inbound::{Scheme, SourceSecret, StoredSourceSecret};
use skyhook_domain::keyring::{self, SealingKeys};
use skyhook_domain::model::format_time;
use skyhook_domain::ports::{SecretStore, SourceSecrets, StoreError, SubscriberSecrets};
use skyhook_domain::secret::SigningSecret;

/// How often a read-modify-write is tried again when another writer changed the item
/// between its read and its write.
const WRITE_ROUNDS: u32 = 5;

/// One sealed item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SealedItem {
    pub pk: String,
    pub sk: String,
    pub kind: String,
    pub tenant: TenantId,
    /// The subscriber's or source's id.
    pub owner: String,
    /// `sk1.{key version}.{…}`.
    pub sealed: String,
    /// The keyring version it is sealed under (also in `sealed`), for the re-seal pass.
    pub key_version: u32,
    /// Bumped by every write: the condition of the next one.
    pub rev: u64,
    /// A random id of the write that made this revision: a write whose condition failed
    /// because its own earlier try (retried by the SDK) had landed finds it here.
    #[serde(default)]
    pub write_id: String,
    /// A source secret's source version (0 for subscribers).
    #[serde(default)]
    pub version: u64,
    pub updated_at: String,
}

pub(crate) const SUBSCRIBER_KIND: &str = "sealed-subscriber-secret";
pub(crate) const SOURCE_KIND: &str = "sealed-source-secret";

/// What a re-seal pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResealReport {
    /// The keyring version everything is sealed under once the pass is done.
    pub current: u32,
    /// Sealed items read.
    pub checked: usize,
    /// Sealed again under `current`.
    pub resealed: usize,
    /// Changed by another writer during the pass: run it again to cover them.
    pub changed: usize,
    /// Items that could not be read or opened, by key, with why; the pass went on.
    pub failed: Vec<(String, String)>,
}

/// The record a sealed item belongs to: its key, and the context its value is sealed under.
pub(crate) struct Record {
    kind: &'static str,
    tenant: TenantId,
    owner: String,
    pk: String,
    sk: String,
    context: String,
}

impl Record {
    fn subscriber(tenant: &TenantId, id: &SubscriberId) -> Self {
        let (pk, sk) = keys::sealed_subscriber_key(tenant, id);
        Self {
            kind: SUBSCRIBER_KIND,
            tenant: tenant.clone(),
            owner: id.to_string(),
            pk,
            sk,
            context: keyring::subscriber_context(tenant, id),
        }
    }

    fn source(tenant: &TenantId, id: &SourceId) -> Self {
        let (pk, sk) = keys::sealed_source_key(tenant, id);
        Self {
            kind: SOURCE_KIND,
            tenant: tenant.clone(),
            owner: id.to_string(),
            pk,
            sk,
            context: keyring::source_context(tenant, id),
        }
    }
}

/// A fresh random write id.
fn write_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The table and the keyring, which both stores share.
#[derive(Clone)]
pub(crate) struct Vault {
    table: Table,
    keys: Arc<SealingKeys>,
}

impl Vault {
    pub fn new(table: Table, keys: Arc<SealingKeys>) -> Self {
        Self { table, keys }
    }

    /// The context an item's value is sealed under.
    fn context_of(item: &SealedItem) -> Result<String, StoreError> {
        match item.kind.as_str() {
            SUBSCRIBER_KIND => Ok(keyring::subscriber_context(&item.tenant, &item.owner)),
            SOURCE_KIND => Ok(keyring::source_context(&item.tenant, &item.owner)),
            other => Err(StoreError::Corrupt(format!(
                "sealed item {} is of unknown kind {other:?}",
                item.sk
            ))),
        }
    }

    /// Seals every item not under the keyring's current version again under it, shard by
    /// shard. Idempotent and resumable: an item already current is only counted, and an
    /// item another writer changed meanwhile is left for the next pass (it was sealed by
    /// that writer, under the version it knew).
    pub async fn reseal(&self) -> Result<ResealReport, StoreError> {
        let keyring = self.keys.load().await?;
        let mut report = ResealReport {
            current: keyring.current(),
            ..ResealReport::default()
        };
        for raw in self.all().await? {
            report.checked += 1;
            let key = format!(
                "{}/{}",
                super::attr(&raw, "pk").unwrap_or("?"),
                super::attr(&raw, "sk").unwrap_or("?")
            );
            match self.reseal_one(raw, &keyring).await {
                Ok(Some(true)) => report.resealed += 1,
                Ok(Some(false)) => report.changed += 1,
                Ok(None) => {}
                Err(e) => report.failed.push((key, e.to_string())),
            }
        }
        Ok(report)
    }

    /// Seals one item again under the keyring's current version: `None` when it is sealed
    /// under it already, `Some(false)` when another writer changed it meanwhile.
    async fn reseal_one(
        &self,
        raw: super::Item,
        keyring: &keyring::Keyring,
    ) -> Result<Option<bool>, StoreError> {
        let item: SealedItem = from_item(raw)?;
        let version = keyring::sealed_version(&item.sealed)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if version == keyring.current() {
            return Ok(None);
        }
        let context = Self::context_of(&item)?;
        let plain = keyring
            .open(&context, &item.sealed)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let next = SealedItem {
            key_version: keyring.current(),
            sealed: keyring.seal(&context, &plain),
            rev: item.rev + 1,
            write_id: write_id(),
            updated_at: format_time(Utc::now()),
            ..item.clone()
        };
        self.write(&next, Some(item.rev)).await.map(Some)
    }

    /// Every sealed item, raw, shard by shard.
    pub async fn all(&self) -> Result<Vec<super::Item>, StoreError> {
        let mut all = Vec::new();
        for prefix in keys::SEALED_PREFIXES {
            for shard in 0..keys::SEALED_SHARDS {
                all.extend(
                    super::query_all(
                        self.table
                            .query()
                            .key_condition_expression("pk = :pk")
                            .expression_attribute_values(
                                ":pk",
                                s(keys::sealed_shard_pk(prefix, shard)),
                            )
                            .consistent_read(true),
                    )
                    .await?,
                );
            }
        }
        Ok(all)
    }

    /// The record's sealed item and its value, opened; `None` when there is no item.
    pub async fn read(&self, record: &Record) -> Result<Option<(SealedItem, Vec<u8>)>, StoreError> {
        let Some(raw) = self.table.get(&record.pk, &record.sk, true).await? else {
            return Ok(None);
        };
        let item: SealedItem = from_item(raw)?;
        if item.tenant != record.tenant || item.owner != record.owner || item.kind != record.kind {
            return Err(StoreError::Corrupt(format!(
                "the sealed item {} names another record",
                record.sk
            )));
        }
        let plain = self.keys.open(&record.context, &item.sealed).await?;
        Ok(Some((item, plain)))
    }

    /// Seals `plaintext` as the record's item, the next revision of `before` (`None`: a
    /// new item), and writes it if the stored item is still `before`. `false`: another
    /// writer got there first.
    pub async fn seal(
        &self,
        record: &Record,
        plaintext: &[u8],
        before: Option<&SealedItem>,
        version: u64,
    ) -> Result<bool, StoreError> {
        let sealed = self.keys.seal(&record.context, plaintext).await?;
        let item = SealedItem {
            pk: record.pk.clone(),
            sk: record.sk.clone(),
            kind: record.kind.to_string(),
            tenant: record.tenant.clone(),
            owner: record.owner.clone(),
            key_version: keyring::sealed_version(&sealed)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            sealed,
            rev: before.map_or(0, |b| b.rev + 1),
            write_id: write_id(),
            version,
            updated_at: format_time(Utc::now()),
        };
        if self.write(&item, before.map(|b| b.rev)).await? {
            return Ok(true);
        }
        // Refused: another writer got in first, or this write's own earlier try landed
        // (the SDK retried it after a lost answer), which the item's write id tells.
        let landed = match self.table.get(&record.pk, &record.sk, true).await? {
            Some(raw) => from_item::<SealedItem>(raw)?.write_id == item.write_id,
            None => false,
        };
        Ok(landed)
    }

    /// Writes `item`: as a new item when `before` is `None` (refused if one exists), else
    /// only if the stored one is still revision `before`. `false`: the condition failed.
    pub async fn write(&self, item: &SealedItem, before: Option<u64>) -> Result<bool, StoreError> {
        let put = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(to_item(item)?));
        let put = match before {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(rev) => put
                .condition_expression("rev = :rev")
                .expression_attribute_values(":rev", n(rev)),
        };
        written(put.send().await)
    }

    pub async fn delete(&self, record: &Record) -> Result<(), StoreError> {
        self.table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .key("pk", s(&record.pk))
            .key("sk", s(&record.sk))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &e))?;
        Ok(())
    }
}

/// Subscribers' secret documents, sealed in the table.
#[derive(Clone)]
pub struct DynamoDbSealedSecrets {
    vault: Vault,
    grace: Duration,
    /// Where secrets were kept before: read while a subscriber has no sealed item yet, and
    /// deleted with the subscriber.
    legacy: Option<SecretsManagerSecrets>,
}

impl DynamoDbSealedSecrets {
    pub fn new(client: Client, table: impl Into<String>, keys: Arc<SealingKeys>) -> Self {
        Self {
            vault: Vault::new(Table::new(client, table), keys),
            grace: skyhook_domain::config::DEFAULT_ROTATION_GRACE,
            legacy: None,
        }
    }

    /// How long the previous secret keeps signing after a rotation.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Reads subscribers' secrets from Secrets Manager while they have no sealed item.
    pub fn with_legacy(mut self, legacy: SecretsManagerSecrets) -> Self {
        self.legacy = Some(legacy);
        self
    }

    /// The sealed item and its document; `None` when there is no sealed item.
    async fn read(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<(SealedItem, Document)>, StoreError> {
        let Some((item, plain)) = self.vault.read(&Record::subscriber(tenant, id)).await? else {
            return Ok(None);
        };
        // The error would quote the plaintext: a fixed message instead.
        let doc = serde_json::from_slice(&plain).map_err(|_| {
            StoreError::Corrupt(format!("subscriber {id}'s secret document is not readable"))
        })?;
        Ok(Some((item, doc)))
    }

    /// Seals `doc` as the next revision of `before` (`None`: a new item).
    async fn write(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        doc: &Document,
        before: Option<&SealedItem>,
    ) -> Result<bool, StoreError> {
        let plain = serde_json::to_vec(doc)
            .map_err(|e| StoreError::Corrupt(format!("secret document: {e}")))?;
        self.vault
            .seal(&Record::subscriber(tenant, id), &plain, before, 0)
            .await
    }

    /// Writes `change(what the secrets are now)` over the sealed item (or over the legacy
    /// secret, as a new sealed item), again if another writer got in between. `None`: the
    /// subscriber has no secret.
    async fn modify(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        change: impl Fn(SubscriberSecrets) -> Document,
    ) -> Result<Option<()>, StoreError> {
        for _ in 0..WRITE_ROUNDS {
            let (before, now) = match self.read(tenant, id).await? {
                Some((item, doc)) => (Some(item), secrets_of(doc)?),
                None => match self.legacy_get(tenant, id).await? {
                    Some(now) => (None, now),
                    None => return Ok(None),
                },
            };
            if self
                .write(tenant, id, &change(now), before.as_ref())
                .await?
            {
                return Ok(Some(()));
            }
        }
        Err(StoreError::Conflict(format!(
            "subscriber {id}'s secrets changed under {WRITE_ROUNDS} writes in a row"
        )))
    }

    async fn legacy_get(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<SubscriberSecrets>, StoreError> {
        match &self.legacy {
            Some(legacy) => legacy.get(tenant, id).await,
            None => Ok(None),
        }
    }

    /// Moves one subscriber's legacy secret into a sealed item, verifies the item opens to
    /// the same secrets, then deletes the legacy secret. Safe to run twice: an existing
    /// sealed item is verified and kept. `false` when there was nothing to move.
    pub async fn migrate(&self, tenant: &TenantId, id: &SubscriberId) -> Result<bool, StoreError> {
        let legacy = self.legacy.as_ref().ok_or_else(|| StoreError::Rejected {
            service: SERVICE,
            detail: "no legacy secret store to migrate from".into(),
        })?;
        let Some(old) = legacy.get(tenant, id).await? else {
            return Ok(false);
        };
        // An existing sealed item was written from this legacy secret or by a later change
        // (a rotation or a header change made since the upgrade): it is the newer one, and
        // opening it is its check. One written now must hold what the legacy secret holds.
        let copied = self.read(tenant, id).await?.is_none()
            && self.write(tenant, id, &Document::of(&old), None).await?;
        let Some((_, doc)) = self.read(tenant, id).await? else {
            return Err(StoreError::Corrupt(format!(
                "subscriber {id}'s sealed secret is not there after writing it"
            )));
        };
        let sealed = secrets_of(doc)?;
        if copied && (sealed.signing != old.signing || sealed.headers != old.headers) {
            return Err(StoreError::Corrupt(format!(
                "subscriber {id}'s sealed secret does not read back as its legacy secret; kept both"
            )));
        }
        legacy.delete(tenant, id).await?;
        Ok(true)
    }
}

fn secrets_of(doc: Document) -> Result<SubscriberSecrets, StoreError> {
    doc.parse()
        .map(|p| p.secrets())
        .map_err(|e| StoreError::Corrupt(format!("a sealed secret document: {e}")))
}

#[async_trait]
impl SecretStore for DynamoDbSealedSecrets {
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
        if self.write(tenant, id, &doc, None).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict(format!(
                "a secret for subscriber {id} already exists"
            )))
        }
    }

    async fn set_headers(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        headers: &BTreeMap<String, String>,
    ) -> Result<bool, StoreError> {
        let done = self
            .modify(tenant, id, |now| {
                let mut doc = Document::of(&now);
                doc.headers = Some(headers.clone());
                doc
            })
            .await?;
        Ok(done.is_some())
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
    ) -> Result<Option<SubscriberSecrets>, StoreError> {
        match self.read(tenant, id).await? {
            Some((_, doc)) => secrets_of(doc).map(Some),
            None => self.legacy_get(tenant, id).await,
        }
    }

    /// The legacy secret first: were the sealed item gone first and the legacy delete to
    /// fail, reads would fall back to an older secret than the one the item held.
    async fn delete(&self, tenant: &TenantId, id: &SubscriberId) -> Result<(), StoreError> {
        if let Some(legacy) = &self.legacy {
            legacy.delete(tenant, id).await?;
        }
        self.vault.delete(&Record::subscriber(tenant, id)).await
    }

    async fn rotate(
        &self,
        tenant: &TenantId,
        id: &SubscriberId,
        secret: &SigningSecret,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let grace = chrono::Duration::from_std(self.grace).unwrap_or(chrono::Duration::MAX);
        let until = Utc::now().checked_add_signed(grace).unwrap_or(Utc::now());
        let done = self
            .modify(tenant, id, |now| Document {
                secret: secret.expose(),
                previous: now.signing.first().map(SigningSecret::expose),
                previous_until: Some(format_time(until)),
                headers: now.headers,
            })
            .await?;
        Ok(done.map(|()| until))
    }
}

/// Inbound sources' secrets, sealed in the table.
#[derive(Clone)]
pub struct DynamoDbSealedSourceSecrets {
    vault: Vault,
    legacy: Option<SecretsManagerSourceSecrets>,
}

#[derive(Serialize, Deserialize)]
struct SourceDocument {
    secret: String,
}

impl DynamoDbSealedSourceSecrets {
    pub fn new(client: Client, table: impl Into<String>, keys: Arc<SealingKeys>) -> Self {
        Self {
            vault: Vault::new(Table::new(client, table), keys),
            legacy: None,
        }
    }

    /// Reads sources' secrets from Secrets Manager while they have no sealed item.
    pub fn with_legacy(mut self, legacy: SecretsManagerSourceSecrets) -> Self {
        self.legacy = Some(legacy);
        self
    }

    async fn read(
        &self,
        tenant: &TenantId,
        id: &SourceId,
    ) -> Result<Option<(SealedItem, StoredSourceSecret)>, StoreError> {
        let Some((item, plain)) = self.vault.read(&Record::source(tenant, id)).await? else {
            return Ok(None);
        };
        let doc: SourceDocument = serde_json::from_slice(&plain).map_err(|_| {
            StoreError::Corrupt(format!("source {id}'s sealed secret is not readable"))
        })?;
        // Stored only after it was checked against its scheme; any scheme but Standard
        // Webhooks reads every non-empty string back as it was written.
        let secret = SourceSecret::parse(Scheme::Github, &doc.secret)
            .or_else(|_| SourceSecret::parse(Scheme::StandardWebhooks, &doc.secret))
            .map_err(|_| StoreError::Corrupt(format!("source {id}'s secret is not readable")))?;
        let version = item.version;
        Ok(Some((item, StoredSourceSecret { secret, version })))
    }

    async fn write(
        &self,
        tenant: &TenantId,
        id: &SourceId,
        secret: &SourceSecret,
        version: u64,
        before: Option<&SealedItem>,
    ) -> Result<bool, StoreError> {
        let plain = serde_json::to_vec(&SourceDocument {
            secret: secret.expose().to_string(),
        })
        .map_err(|e| StoreError::Corrupt(format!("a source secret: {e}")))?;
        self.vault
            .seal(&Record::source(tenant, id), &plain, before, version)
            .await
    }

    /// Moves one source's legacy secret into a sealed item, as
    /// [`DynamoDbSealedSecrets::migrate`] does.
    pub async fn migrate(&self, tenant: &TenantId, id: &SourceId) -> Result<bool, StoreError> {
        let legacy = self.legacy.as_ref().ok_or_else(|| StoreError::Rejected {
            service: SERVICE,
            detail: "no legacy secret store to migrate from".into(),
        })?;
        let Some(old) = legacy.get(tenant, id).await? else {
            return Ok(false);
        };
        if self.read(tenant, id).await?.is_none() {
            self.write(tenant, id, &old.secret, old.version, None)
                .await?;
        }
        match self.read(tenant, id).await? {
            Some((_, sealed))
                if sealed.version > old.version
                    || sealed.secret.expose() == old.secret.expose() =>
            {
                legacy.delete(tenant, id).await?;
                Ok(true)
            }
            _ => Err(StoreError::Corrupt(format!(
                "source {id}'s sealed secret does not match its legacy secret; kept both"
            ))),
        }
    }
}

#[async_trait]
impl SourceSecrets for DynamoDbSealedSourceSecrets {
    async fn create(
        &self,
        tenant: &TenantId,
        id: &SourceId,
        secret: &SourceSecret,
    ) -> Result<(), StoreError> {
        if self.write(tenant, id, secret, 0, None).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict(format!(
                "a secret for source {id} already exists"
            )))
        }
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &SourceId,
    ) -> Result<Option<StoredSourceSecret>, StoreError> {
        match self.read(tenant, id).await? {
            Some((_, stored)) => Ok(Some(stored)),
            None => match &self.legacy {
                Some(legacy) => legacy.get(tenant, id).await,
                None => Ok(None),
            },
        }
    }

    async fn put(
        &self,
        tenant: &TenantId,
        id: &SourceId,
        secret: &SourceSecret,
        version: u64,
    ) -> Result<bool, StoreError> {
        for _ in 0..WRITE_ROUNDS {
            let before = match self.read(tenant, id).await? {
                // A later change that landed first keeps its secret.
                Some((_, stored)) if stored.version >= version => return Ok(true),
                Some((item, _)) => Some(item),
                None => {
                    let legacy = match &self.legacy {
                        Some(legacy) => legacy.get(tenant, id).await?,
                        None => None,
                    };
                    match legacy {
                        Some(stored) if stored.version >= version => return Ok(true),
                        Some(_) => None,
                        None => return Ok(false),
                    }
                }
            };
            if self
                .write(tenant, id, secret, version, before.as_ref())
                .await?
            {
                return Ok(true);
            }
        }
        Err(StoreError::Conflict(format!(
            "source {id}'s secret changed under {WRITE_ROUNDS} writes in a row"
        )))
    }

    /// The legacy secret first, as for subscribers.
    async fn delete(&self, tenant: &TenantId, id: &SourceId) -> Result<(), StoreError> {
        if let Some(legacy) = &self.legacy {
            legacy.delete(tenant, id).await?;
        }
        self.vault.delete(&Record::source(tenant, id)).await
    }
}
