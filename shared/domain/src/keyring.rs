//! Secrets sealed at rest: AES-256-GCM under a versioned keyring.
//!
//! The keyring is one JSON document, kept in one Secrets Manager secret:
//! `{"current": 2, "k1": "…", "k2": "…"}`. Each `k{n}` is key material (at least 32
//! characters of randomness, as Secrets Manager generates it or `skyhook keyring rotate`
//! writes it); its data key is HMAC-SHA256 of a fixed label under that material. New values
//! are sealed under `current`; a value names the version it was sealed under, so values of
//! every version still in the keyring open.
//!
//! A sealed value is `sk1.{version}.{base64url(nonce ‖ ciphertext ‖ tag)}`. It is bound to
//! its record by associated data ([`Keyring::seal`]'s `context`, such as
//! `subscriber-secret/{tenant}/{id}`): the same bytes under another record's context do not
//! open.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use tokio::time::Instant;

use crate::ids::TenantId;
use crate::ports::{SecretValues, StoreError};

/// The prefix of every sealed value (the format's version, not a key's).
const FORMAT: &str = "sk1";
/// The shortest key material accepted.
pub const MIN_MATERIAL_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// What a data key is derived with, under its material.
const DATA_KEY_LABEL: &[u8] = b"skyhook keyring data key v1";

/// The context a subscriber's secret document is sealed under.
pub fn subscriber_context(tenant: &TenantId, id: &(impl fmt::Display + ?Sized)) -> String {
    format!("subscriber-secret/{tenant}/{id}")
}

/// The context an inbound source's secret is sealed under.
pub fn source_context(tenant: &TenantId, id: &(impl fmt::Display + ?Sized)) -> String {
    format!("source-secret/{tenant}/{id}")
}

/// Why a keyring document or a sealed value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("the keyring is not valid: {0}")]
    BadKeyring(String),
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("the sealed value names key version {0}, which the keyring does not hold")]
    UnknownKey(u32),
    /// Wrong context (a value moved to another record), or changed bytes.
    #[error(
        "the sealed value does not open for this record (moved from another record, or altered)"
    )]
    Refused,
}

/// The data keys, by version, and the one new values are sealed under.
#[derive(Clone)]
pub struct Keyring {
    current: u32,
    materials: BTreeMap<u32, String>,
    keys: BTreeMap<u32, [u8; 32]>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn data_key(material: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(material.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(DATA_KEY_LABEL);
    mac.finalize().into_bytes().into()
}

/// Fresh key material: 32 random bytes, base64.
fn fresh_material() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    STANDARD.encode(bytes)
}

impl Keyring {
    /// A keyring of one fresh version, 1.
    pub fn generate() -> Self {
        Self::from_materials(1, BTreeMap::from([(1, fresh_material())]))
            .expect("a fresh keyring is valid")
    }

    fn from_materials(
        current: u32,
        materials: BTreeMap<u32, String>,
    ) -> Result<Self, KeyringError> {
        if current == 0 || materials.contains_key(&0) {
            return Err(KeyringError::BadKeyring("versions start at 1".into()));
        }
        if !materials.contains_key(&current) {
            return Err(KeyringError::BadKeyring(format!(
                "current is {current}, and there is no k{current}"
            )));
        }
        if let Some((v, _)) = materials
            .iter()
            .find(|(_, m)| m.chars().count() < MIN_MATERIAL_LEN)
        {
            return Err(KeyringError::BadKeyring(format!(
                "k{v} is shorter than {MIN_MATERIAL_LEN} characters"
            )));
        }
        let keys = materials.iter().map(|(v, m)| (*v, data_key(m))).collect();
        Ok(Self {
            current,
            materials,
            keys,
        })
    }

    /// Reads the keyring document.
    pub fn parse(document: &str) -> Result<Self, KeyringError> {
        let bad = |m: &str| KeyringError::BadKeyring(m.to_string());
        let value: serde_json::Value =
            serde_json::from_str(document).map_err(|_| bad("not a JSON object"))?;
        let object = value.as_object().ok_or_else(|| bad("not a JSON object"))?;
        let mut current = None;
        let mut materials = BTreeMap::new();
        for (name, v) in object {
            if name == "current" {
                let n = v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad("current is not a positive version"))?;
                current = Some(n);
            } else if let Some(version) = name.strip_prefix('k') {
                let version = canonical_version(version)
                    .ok_or_else(|| KeyringError::BadKeyring(format!("{name} is not k<version>")))?;
                let material = v
                    .as_str()
                    .ok_or_else(|| KeyringError::BadKeyring(format!("{name} is not a string")))?;
                materials.insert(version, material.to_string());
            } else {
                return Err(KeyringError::BadKeyring(format!(
                    "unknown field {name:?} (expected current and k<version>)"
                )));
            }
        }
        let current = current.ok_or_else(|| bad("current is missing"))?;
        Self::from_materials(current, materials)
    }

    /// The keyring document, to store.
    pub fn to_document(&self) -> String {
        let mut object = serde_json::Map::new();
        object.insert("current".into(), self.current.into());
        for (v, m) in &self.materials {
            object.insert(format!("k{v}"), m.clone().into());
        }
        serde_json::Value::Object(object).to_string()
    }

    /// The version new values are sealed under.
    pub fn current(&self) -> u32 {
        self.current
    }

    /// Every version held, oldest first.
    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.keys().copied()
    }

    /// This keyring with a fresh version added and made current.
    pub fn rotated(&self) -> Result<Self, KeyringError> {
        let next = self
            .keys
            .keys()
            .max()
            .copied()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or_else(|| KeyringError::BadKeyring("no version left after the last".into()))?;
        let mut materials = self.materials.clone();
        materials.insert(next, fresh_material());
        Self::from_materials(next, materials)
    }

    fn cipher(&self, version: u32) -> Result<Aes256Gcm, KeyringError> {
        let key = self
            .keys
            .get(&version)
            .ok_or(KeyringError::UnknownKey(version))?;
        Ok(Aes256Gcm::new(key.into()))
    }

    /// Seals `plaintext` under the current version, bound to `context`.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let cipher = self.cipher(self.current).expect("the current key is held");
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM seals any message of this size");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!(
            "{FORMAT}.{}.{}",
            self.current,
            URL_SAFE_NO_PAD.encode(bytes)
        )
    }

    /// Opens a value sealed under `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, KeyringError> {
        let (version, bytes) = parse_sealed(sealed)?;
        let cipher = self.cipher(version)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| KeyringError::Refused)
    }
}

/// The key version a sealed value names, without opening it.
pub fn sealed_version(sealed: &str) -> Result<u32, KeyringError> {
    parse_sealed(sealed).map(|(v, _)| v)
}

/// A version number as the keyring writes it: digits, no sign, no leading zero, above 0.
fn canonical_version(s: &str) -> Option<u32> {
    let n: u32 = s.parse().ok()?;
    (n > 0 && n.to_string() == s).then_some(n)
}

fn parse_sealed(sealed: &str) -> Result<(u32, Vec<u8>), KeyringError> {
    let mut parts = sealed.splitn(3, '.');
    let (Some(FORMAT), Some(version), Some(body)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(KeyringError::Malformed);
    };
    let version = canonical_version(version).ok_or(KeyringError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| KeyringError::Malformed)?;
    if bytes.len() < NONCE_LEN + TAG_LEN {
        return Err(KeyringError::Malformed);
    }
    Ok((version, bytes))
}

/// The keyring as a process uses it: read from its secret once, kept for `ttl` (so a
/// rotation reaches new writes within it), and read again at once when a value names a
/// version it does not hold yet (at most once a second). Sealing and opening make no AWS
/// call otherwise.
pub struct SealingKeys {
    values: Arc<dyn SecretValues>,
    secret: String,
    ttl: Duration,
    loaded: Mutex<Option<(Arc<Keyring>, Instant)>>,
    /// Held while the keyring is read: callers that arrive meanwhile (a batch's deliveries
    /// at a cold start) wait for that one read instead of each making their own.
    reading: tokio::sync::Mutex<()>,
}

/// How long a process keeps the keyring it read.
pub const KEYRING_TTL: Duration = Duration::from_secs(5 * 60);
/// The least time between two reads of the keyring for a version it did not hold.
const UNKNOWN_VERSION_REREAD: Duration = Duration::from_secs(1);

impl SealingKeys {
    pub fn new(values: Arc<dyn SecretValues>, secret: impl Into<String>) -> Self {
        Self {
            values,
            secret: secret.into(),
            ttl: KEYRING_TTL,
            loaded: Mutex::new(None),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    /// The secret the keyring is kept in.
    pub fn secret_name(&self) -> &str {
        &self.secret
    }

    fn cached(&self, max_age: Duration) -> Option<Arc<Keyring>> {
        let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded
            .as_ref()
            .filter(|(_, at)| at.elapsed() < max_age)
            .map(|(k, _)| k.clone())
    }

    /// Reads the keyring from its secret, now.
    pub async fn load(&self) -> Result<Arc<Keyring>, StoreError> {
        let document = self
            .values
            .secret_string(&self.secret)
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "the keyring secret {} does not exist (skyhook provision creates it)",
                    self.secret
                ))
            })?;
        let keyring = Arc::new(
            Keyring::parse(&document)
                .map_err(|e| StoreError::Corrupt(format!("secret {}: {e}", self.secret)))?,
        );
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((keyring.clone(), Instant::now()));
        Ok(keyring)
    }

    /// The keyring, read again once it is older than the TTL (by one caller at a time).
    pub async fn keyring(&self) -> Result<Arc<Keyring>, StoreError> {
        if let Some(k) = self.cached(self.ttl) {
            return Ok(k);
        }
        let _reading = self.reading.lock().await;
        match self.cached(self.ttl) {
            Some(k) => Ok(k),
            None => self.load().await,
        }
    }

    pub async fn seal(&self, context: &str, plaintext: &[u8]) -> Result<String, StoreError> {
        Ok(self.keyring().await?.seal(context, plaintext))
    }

    /// Opens a sealed value; a version this process does not hold yet makes it read the
    /// keyring again. A value that does not open is `Corrupt`, naming the context.
    pub async fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, StoreError> {
        let keyring = self.keyring().await?;
        let opened = match keyring.open(context, sealed) {
            Err(KeyringError::UnknownKey(_)) if self.cached(UNKNOWN_VERSION_REREAD).is_none() => {
                self.load().await?.open(context, sealed)
            }
            other => other,
        };
        opened.map_err(|e| StoreError::Corrupt(format!("{context}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_under_its_context_only() {
        let k = Keyring::generate();
        let sealed = k.seal("subscriber-secret/acme/sub_1", b"whsec_abc");
        assert!(sealed.starts_with("sk1.1."));
        assert!(!sealed.contains("whsec"));
        assert_eq!(
            k.open("subscriber-secret/acme/sub_1", &sealed).unwrap(),
            b"whsec_abc"
        );
        assert_eq!(
            k.open("subscriber-secret/acme/sub_2", &sealed),
            Err(KeyringError::Refused)
        );
        assert_eq!(
            k.open("subscriber-secret/other/sub_1", &sealed),
            Err(KeyringError::Refused)
        );
        // Two seals of one value differ (fresh nonces).
        assert_ne!(sealed, k.seal("subscriber-secret/acme/sub_1", b"whsec_abc"));
    }

    #[test]
    fn altered_or_malformed_values_are_refused() {
        let k = Keyring::generate();
        let sealed = k.seal("c", b"secret");
        // Each byte changed in turn (nonce, ciphertext, tag): none opens.
        let (version, bytes) = parse_sealed(&sealed).unwrap();
        for i in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[i] ^= 0x01;
            let altered = format!("{FORMAT}.{version}.{}", URL_SAFE_NO_PAD.encode(changed));
            assert_eq!(
                k.open("c", &altered),
                Err(KeyringError::Refused),
                "byte {i}"
            );
        }
        for bad in [
            "",
            "sk1",
            "sk1.1",
            "sk1.x.AAAA",
            "sk2.1.AAAA",
            "sk1.1.AAAA",
            "sk1.1.!!",
            "sk1.0.AAAA",
            "sk1.+1.AAAA",
            "sk1.01.AAAA",
        ] {
            assert_eq!(k.open("c", bad), Err(KeyringError::Malformed), "{bad}");
        }
        assert_eq!(
            k.open("c", &sealed.replacen("sk1.1.", "sk1.9.", 1)),
            Err(KeyringError::UnknownKey(9))
        );
    }

    #[test]
    fn a_rotation_seals_under_the_new_version_and_old_values_still_open() {
        let k1 = Keyring::generate();
        let old = k1.seal("c", b"one");
        let k2 = Keyring::parse(&k1.rotated().unwrap().to_document()).unwrap();
        assert_eq!(k2.current(), 2);
        assert_eq!(k2.versions().collect::<Vec<_>>(), vec![1, 2]);
        let new = k2.seal("c", b"two");
        assert_eq!(sealed_version(&new), Ok(2));
        assert_eq!(k2.open("c", &old).unwrap(), b"one");
        assert_eq!(k1.open("c", &new), Err(KeyringError::UnknownKey(2)));
    }

    #[test]
    fn keyring_documents_are_checked() {
        // As the template's generated secret makes it.
        let generated = format!(r#"{{"current":1,"k1":"{}"}}"#, "a1B2".repeat(16));
        assert_eq!(Keyring::parse(&generated).unwrap().current(), 1);
        for bad in [
            "",
            "[]",
            r#"{"k1":"0123456789012345678901234567890123"}"#,
            r#"{"current":2,"k1":"0123456789012345678901234567890123"}"#,
            r#"{"current":1,"k1":"short"}"#,
            r#"{"current":1,"k1":5}"#,
            r#"{"current":0,"k0":"0123456789012345678901234567890123"}"#,
            r#"{"current":1,"k1":"0123456789012345678901234567890123","other":1}"#,
            r#"{"current":1,"k01":"0123456789012345678901234567890123"}"#,
            r#"{"current":1,"k+1":"0123456789012345678901234567890123"}"#,
        ] {
            assert!(
                matches!(Keyring::parse(bad), Err(KeyringError::BadKeyring(_))),
                "{bad}"
            );
        }
        // Nothing of a key in its debug form.
        let k = Keyring::generate();
        let doc = k.to_document();
        let material = doc.split('"').nth(5).unwrap();
        assert!(!format!("{k:?}").contains(material));
    }

    /// A process reads the keyring once, and again only for a version it does not hold.
    #[tokio::test(start_paused = true)]
    async fn sealing_keys_read_the_keyring_once_and_again_for_a_newer_version() {
        struct Counting(
            crate::memory::MemorySecretValues,
            std::sync::atomic::AtomicUsize,
        );
        #[async_trait::async_trait]
        impl SecretValues for Counting {
            async fn secret_string(&self, id: &str) -> Result<Option<String>, StoreError> {
                self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                self.0.secret_string(id).await
            }
        }
        let values = Arc::new(Counting(Default::default(), Default::default()));
        let reads = || values.1.load(std::sync::atomic::Ordering::SeqCst);
        let missing = SealingKeys::new(values.clone(), "nope");
        assert!(matches!(
            missing.seal("c", b"x").await,
            Err(StoreError::Corrupt(_))
        ));

        let k1 = Keyring::generate();
        values.0.put("ring", &k1.to_document());
        let keys = SealingKeys::new(values.clone(), "ring");
        let before = reads();
        let sealed = keys.seal("c", b"one").await.unwrap();
        for _ in 0..10 {
            assert_eq!(keys.open("c", &sealed).await.unwrap(), b"one");
        }
        assert_eq!(reads() - before, 1, "one read for eleven uses");

        // A cold start: fifty deliveries at once make one read between them.
        let cold = SealingKeys::new(values.clone(), "ring");
        let before_cold = reads();
        let sealed_all = futures::future::join_all((0..50).map(|_| cold.seal("c", b"x"))).await;
        assert!(sealed_all.iter().all(Result::is_ok));
        assert_eq!(reads() - before_cold, 1, "one read for fifty at once");

        // Another process rotated: a value of version 2 makes this one read again.
        let k2 = k1.rotated().unwrap();
        values.0.put("ring", &k2.to_document());
        let newer = k2.seal("c", b"two");
        tokio::time::advance(UNKNOWN_VERSION_REREAD).await;
        assert_eq!(keys.open("c", &newer).await.unwrap(), b"two");
        assert_eq!(
            reads() - before_cold,
            2,
            "the cold start's read, and this one's again"
        );
        // A moved value is a clear error naming its context.
        let err = keys.open("other", &newer).await.unwrap_err();
        assert!(err.to_string().contains("other"), "{err}");
    }
}
