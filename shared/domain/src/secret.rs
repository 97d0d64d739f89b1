//! Signing secrets (`whsec_…`): parsed once into key bytes, and hard to leak by accident.

use std::fmt;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;

const PREFIX: &str = "whsec_";
/// Standard Webhooks asks for 24 to 64 random bytes: fewer is too weak, more gains nothing
/// for HMAC-SHA256 and some receivers reject it.
const MIN_KEY_LEN: usize = 24;
const MAX_KEY_LEN: usize = 64;
const GENERATED_KEY_LEN: usize = 32;

/// Secrets are copied around by hand, and some tools drop base64 padding; both forms name the
/// same key.
pub(crate) const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a string is not a signing secret. No variant carries any part of the input: even a
/// malformed secret may be most of a real one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("signing secret must start with \"whsec_\"")]
    MissingPrefix,
    #[error("signing secret must be \"whsec_\" followed by standard base64")]
    InvalidBase64,
    #[error("signing secret must decode to {MIN_KEY_LEN} to {MAX_KEY_LEN} bytes, not {0}")]
    WrongLength(usize),
}

/// The HMAC key a subscriber's deliveries are signed with. It has no `Display` or
/// `Serialize` so that it cannot land in a log line or an API response without a visible
/// call to [`SigningSecret::expose`].
#[derive(Clone)]
pub struct SigningSecret {
    key: Vec<u8>,
}

impl SigningSecret {
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let encoded = s.strip_prefix(PREFIX).ok_or(SecretError::MissingPrefix)?;
        // The decoder's own error names the offending byte, which is part of the secret.
        let key = LENIENT_STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::InvalidBase64)?;
        if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&key.len()) {
            return Err(SecretError::WrongLength(key.len()));
        }
        Ok(Self { key })
    }

    /// A new secret of 32 bytes from the thread-local CSPRNG (ChaCha, seeded by the OS).
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        Self { key }
    }

    /// The raw HMAC key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The `whsec_…` text form, for showing to the subscriber once or storing in Secrets
    /// Manager. Named so that every place a secret leaves the process is easy to find.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.key))
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(whsec_****)")
    }
}

/// Constant time, so that comparing a guessed secret against a real one says nothing about
/// how many leading bytes were right.
impl PartialEq for SigningSecret {
    fn eq(&self, other: &Self) -> bool {
        self.key.ct_eq(&other.key).into()
    }
}

impl Eq for SigningSecret {}

/// Lets request bodies carry `"secret": "whsec_…"` directly; validates like [`SigningSecret::parse`].
impl<'de> serde::Deserialize<'de> for SigningSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn parses_the_public_vector_secret() {
        let s = SigningSecret::parse(VECTOR_SECRET).unwrap();
        assert_eq!(s.key().len(), 24);
        assert_eq!(s.expose(), VECTOR_SECRET);
    }

    #[test]
    fn padding_is_optional() {
        // 25 bytes encode to 36 characters, two of them padding.
        let padded = format!("whsec_{}", STANDARD.encode([7u8; 25]));
        assert!(padded.ends_with("=="));
        let unpadded = padded.trim_end_matches('=');
        assert_eq!(
            SigningSecret::parse(&padded).unwrap(),
            SigningSecret::parse(unpadded).unwrap()
        );
    }

    #[test]
    fn rejects_malformed_secrets() {
        assert_eq!(
            SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SecretError::MissingPrefix)
        );
        assert_eq!(
            SigningSecret::parse("WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SecretError::MissingPrefix)
        );
        assert_eq!(
            SigningSecret::parse("whsec_not*base64!"),
            Err(SecretError::InvalidBase64)
        );
        // URL-safe alphabet is a different encoding, not a typo to forgive.
        assert_eq!(
            SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa_-"),
            Err(SecretError::InvalidBase64)
        );
        assert_eq!(
            SigningSecret::parse("whsec_"),
            Err(SecretError::WrongLength(0))
        );
        let short = format!("whsec_{}", STANDARD.encode([1u8; 23]));
        assert_eq!(
            SigningSecret::parse(&short),
            Err(SecretError::WrongLength(23))
        );
        let long = format!("whsec_{}", STANDARD.encode([1u8; 65]));
        assert_eq!(
            SigningSecret::parse(&long),
            Err(SecretError::WrongLength(65))
        );
        assert!(SigningSecret::parse(&format!("whsec_{}", STANDARD.encode([1u8; 64]))).is_ok());
    }

    #[test]
    fn errors_never_echo_the_input() {
        let input = "whsec_SECRETSECRET!!";
        let msg = SigningSecret::parse(input).unwrap_err().to_string();
        assert!(!msg.contains("SECRET"), "{msg}");
    }

    #[test]
    fn debug_hides_the_key() {
        let s = SigningSecret::parse(VECTOR_SECRET).unwrap();
        let shown = format!("{s:?} {:?}", Some(&s));
        assert!(!shown.contains("MfKQ"), "{shown}");
        assert!(shown.starts_with("SigningSecret(whsec_****)"));
    }

    #[test]
    fn generated_secrets_are_32_random_bytes() {
        let a = SigningSecret::generate();
        let b = SigningSecret::generate();
        assert_eq!(a.key().len(), 32);
        assert_ne!(a, b);
        assert_eq!(SigningSecret::parse(&a.expose()).unwrap(), a);
    }

    #[test]
    fn deserialize_validates() {
        let s: SigningSecret = serde_json::from_str(&format!("\"{VECTOR_SECRET}\"")).unwrap();
        assert_eq!(s.expose(), VECTOR_SECRET);
        assert!(serde_json::from_str::<SigningSecret>("\"whsec_abc\"").is_err());
    }

    proptest! {
        #[test]
        fn expose_round_trips(key in proptest::collection::vec(any::<u8>(), MIN_KEY_LEN..=MAX_KEY_LEN)) {
            let text = format!("whsec_{}", STANDARD.encode(&key));
            let s = SigningSecret::parse(&text).unwrap();
            prop_assert_eq!(s.key(), key.as_slice());
            prop_assert_eq!(s.expose(), text);
        }

        #[test]
        fn equality_follows_the_key(a in proptest::collection::vec(any::<u8>(), 24..=40), b in proptest::collection::vec(any::<u8>(), 24..=40)) {
            let sa = SigningSecret::parse(&format!("whsec_{}", STANDARD.encode(&a))).unwrap();
            let sb = SigningSecret::parse(&format!("whsec_{}", STANDARD.encode(&b))).unwrap();
            prop_assert_eq!(sa == sb, a == b);
        }

        #[test]
        fn parse_never_panics(s in "(whsec_)?\\PC{0,100}") {
            let _ = SigningSecret::parse(&s);
        }
    }
}
