//! Signing and verifying deliveries: Standard Webhooks (`webhook-signature: v1,…`) and the
//! legacy hex schemes (`x-webhook-signature: sha256=…`) some older receivers expect.
//!
//! Pure functions of their inputs, including "now", so the public test vectors check them.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq as _;

use crate::secret::{LENIENT_STANDARD, SigningSecret};

/// How far a timestamp may be from the receiver's clock, either way, before a delivery is
/// refused as a possible replay. Five minutes is the Standard Webhooks default.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Why a delivery did not verify. Deliberately coarse: a receiver answers all of them with 4xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("a required webhook header is missing or empty")]
    MissingHeader,
    #[error("the webhook timestamp is not an integer number of seconds")]
    InvalidTimestamp,
    #[error("the webhook timestamp is too far in the past")]
    TimestampTooOld,
    #[error("the webhook timestamp is too far in the future")]
    TimestampTooNew,
    #[error("no signature matches")]
    NoMatchingSignature,
}

/// HMAC never rejects a key (long keys are hashed, short ones padded), so the error arm of
/// `new_from_slice` is unreachable; `SigningSecret` also bounds the length to 24..=64.
pub(crate) fn hmac<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn standard_mac(secret: &SigningSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let timestamp = timestamp.to_string();
    hmac::<Hmac<Sha256>>(
        secret.key(),
        &[msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    )
}

/// The Standard Webhooks signature `v1,<base64 HMAC-SHA256("{msg_id}.{timestamp}.{body}")>`.
pub fn sign(secret: &SigningSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1,{}",
        STANDARD.encode(standard_mac(secret, msg_id, timestamp, body))
    )
}

/// The `webhook-signature` value: one `v1,…` per secret, space-separated, so that during a
/// rotation grace period receivers holding either the old or the new secret verify.
pub fn signature_header(
    secrets: &[SigningSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    join(secrets.iter().map(|s| sign(s, msg_id, timestamp, body)))
}

/// [`verify_with_tolerance`] with [`DEFAULT_TOLERANCE_SECS`].
pub fn verify(
    secret: &SigningSecret,
    msg_id: &str,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(), VerifyError> {
    verify_with_tolerance(
        secret,
        msg_id,
        timestamp_header,
        signature_header,
        body,
        now_unix,
        DEFAULT_TOLERANCE_SECS,
    )
}

/// Verifies a Standard Webhooks delivery as a receiver would. Entries of versions other than
/// `v1` are skipped, so a sender may add newer schemes without breaking this receiver.
pub fn verify_with_tolerance(
    secret: &SigningSecret,
    msg_id: &str,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    if msg_id.is_empty() {
        return Err(VerifyError::MissingHeader);
    }
    let timestamp = check_timestamp(timestamp_header, signature_header, now_unix, tolerance_secs)?;
    let expected = standard_mac(secret, msg_id, timestamp, body);
    let found = signature_header
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|sig| LENIENT_STANDARD.decode(sig).ok())
        .any(|sig| bool::from(sig.ct_eq(&expected)));
    if found {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

/// Checks the headers are present and the timestamp is fresh, before any HMAC is computed, so
/// a replayed or junk request costs the receiver little.
fn check_timestamp(
    timestamp_header: &str,
    signature_header: &str,
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<i64, VerifyError> {
    let timestamp_header = timestamp_header.trim();
    if timestamp_header.is_empty() || signature_header.trim().is_empty() {
        return Err(VerifyError::MissingHeader);
    }
    let timestamp: i64 = timestamp_header
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp)?;
    // i128 so that extreme timestamps cannot overflow the subtraction.
    let age = i128::from(now_unix) - i128::from(timestamp);
    let tolerance = i128::from(tolerance_secs.max(0));
    if age > tolerance {
        Err(VerifyError::TimestampTooOld)
    } else if age < -tolerance {
        Err(VerifyError::TimestampTooNew)
    } else {
        Ok(timestamp)
    }
}

/// How a subscriber wants its deliveries signed.
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SignatureScheme {
    /// Standard Webhooks; what every official verifier library expects.
    #[default]
    #[serde(rename = "standard")]
    Standard,
    /// `x-webhook-signature: sha256=<hex>` over `"{timestamp}.{body}"`, for older receivers.
    #[serde(rename = "hex-sha256")]
    HexSha256,
    /// As `HexSha256` with HMAC-SHA512.
    #[serde(rename = "hex-sha512")]
    HexSha512,
}

/// The signature schemes that are not Standard Webhooks. A type of their own, so that the
/// legacy functions cannot be handed `Standard` and asked to invent a meaning for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LegacyScheme {
    Sha256,
    Sha512,
}

impl LegacyScheme {
    /// The label before `=` in each signature entry.
    pub fn label(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    fn mac(self, secret: &SigningSecret, timestamp: i64, body: &[u8]) -> Vec<u8> {
        let timestamp = timestamp.to_string();
        let parts: &[&[u8]] = &[timestamp.as_bytes(), b".", body];
        match self {
            Self::Sha256 => hmac::<Hmac<Sha256>>(secret.key(), parts),
            Self::Sha512 => hmac::<Hmac<Sha512>>(secret.key(), parts),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signature scheme {0:?}; expected \"standard\", \"hex-sha256\" or \"hex-sha512\"")]
pub struct SchemeError(String);

/// The three header names a scheme's deliveries carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderNames {
    pub id: &'static str,
    pub timestamp: &'static str,
    pub signature: &'static str,
}

impl SignatureScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::HexSha256 => "hex-sha256",
            Self::HexSha512 => "hex-sha512",
        }
    }

    pub fn parse(s: &str) -> Result<Self, SchemeError> {
        [Self::Standard, Self::HexSha256, Self::HexSha512]
            .into_iter()
            .find(|scheme| scheme.as_str() == s)
            .ok_or_else(|| SchemeError(s.to_owned()))
    }

    /// `None` for `Standard`.
    pub fn legacy(self) -> Option<LegacyScheme> {
        match self {
            Self::Standard => None,
            Self::HexSha256 => Some(LegacyScheme::Sha256),
            Self::HexSha512 => Some(LegacyScheme::Sha512),
        }
    }

    /// Legacy receivers were written against `x-`-prefixed names; Standard Webhooks names are
    /// fixed by the spec.
    pub fn header_names(self) -> HeaderNames {
        match self {
            Self::Standard => HeaderNames {
                id: "webhook-id",
                timestamp: "webhook-timestamp",
                signature: "webhook-signature",
            },
            Self::HexSha256 | Self::HexSha512 => HeaderNames {
                id: "x-webhook-id",
                timestamp: "x-webhook-timestamp",
                signature: "x-webhook-signature",
            },
        }
    }
}

impl fmt::Display for SignatureScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SignatureScheme {
    type Err = SchemeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// `sha256=<lowercase hex HMAC-SHA256("{timestamp}.{body}")>`, or `sha512=…`.
pub fn legacy_signature(
    scheme: LegacyScheme,
    secret: &SigningSecret,
    timestamp: i64,
    body: &[u8],
) -> String {
    format!(
        "{}={}",
        scheme.label(),
        hex::encode(scheme.mac(secret, timestamp, body))
    )
}

/// [`verify_legacy_with_tolerance`] with [`DEFAULT_TOLERANCE_SECS`].
pub fn verify_legacy(
    scheme: LegacyScheme,
    secret: &SigningSecret,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(), VerifyError> {
    verify_legacy_with_tolerance(
        scheme,
        secret,
        timestamp_header,
        signature_header,
        body,
        now_unix,
        DEFAULT_TOLERANCE_SECS,
    )
}

/// Verifies a legacy-scheme delivery; entries with another label are skipped, like other
/// versions in the standard scheme.
pub fn verify_legacy_with_tolerance(
    scheme: LegacyScheme,
    secret: &SigningSecret,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let timestamp = check_timestamp(timestamp_header, signature_header, now_unix, tolerance_secs)?;
    let expected = scheme.mac(secret, timestamp, body);
    let found = signature_header
        .split_whitespace()
        .filter_map(|entry| entry.split_once('='))
        .filter(|(label, _)| *label == scheme.label())
        .filter_map(|(_, sig)| hex::decode(sig).ok())
        .any(|sig| bool::from(sig.ct_eq(&expected)));
    if found {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

/// The id, timestamp and signature headers of one delivery attempt, one signature per secret
/// (two during a rotation grace period). `secrets` should not be empty: the signature header
/// would be empty and no receiver would accept the delivery.
pub fn delivery_headers(
    scheme: SignatureScheme,
    secrets: &[SigningSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let names = scheme.header_names();
    let signature = match scheme.legacy() {
        None => signature_header(secrets, msg_id, timestamp, body),
        Some(legacy) => join(
            secrets
                .iter()
                .map(|s| legacy_signature(legacy, s, timestamp, body)),
        ),
    };
    vec![
        (names.id, msg_id.to_owned()),
        (names.timestamp, timestamp.to_string()),
        (names.signature, signature),
    ]
}

fn join(entries: impl Iterator<Item = String>) -> String {
    entries.collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    const VECTORS: &str = include_str!("../testdata/standard-webhooks-vectors.json");

    struct Vector {
        secret: SigningSecret,
        id: String,
        timestamp: i64,
        body: String,
        signature: String,
    }

    fn vectors(kind: &str) -> Vec<Vector> {
        let all: Value = serde_json::from_str(VECTORS).unwrap();
        all[kind]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| Vector {
                secret: SigningSecret::parse(v["secret"].as_str().unwrap()).unwrap(),
                id: v["id"].as_str().unwrap().to_owned(),
                timestamp: v["timestamp"].as_i64().unwrap(),
                body: v["body"].as_str().unwrap().to_owned(),
                signature: v["signature"].as_str().unwrap().to_owned(),
            })
            .collect()
    }

    fn secret(n: u8) -> SigningSecret {
        SigningSecret::parse(&format!("whsec_{}", STANDARD.encode([n; 32]))).unwrap()
    }

    #[test]
    fn standard_webhooks_known_answers() {
        let valid = vectors("valid");
        assert!(valid.len() >= 2);
        for v in &valid {
            let body = v.body.as_bytes();
            assert_eq!(sign(&v.secret, &v.id, v.timestamp, body), v.signature);
            let ts = v.timestamp.to_string();
            assert_eq!(
                verify(&v.secret, &v.id, &ts, &v.signature, body, v.timestamp),
                Ok(())
            );
        }
    }

    #[test]
    fn standard_webhooks_invalid_vector_fails() {
        let invalid = vectors("invalid");
        assert!(!invalid.is_empty());
        for v in &invalid {
            let ts = v.timestamp.to_string();
            assert_eq!(
                verify(
                    &v.secret,
                    &v.id,
                    &ts,
                    &v.signature,
                    v.body.as_bytes(),
                    v.timestamp
                ),
                Err(VerifyError::NoMatchingSignature)
            );
        }
    }

    #[test]
    fn rotation_header_verifies_with_either_secret() {
        let (old, new, other) = (secret(1), secret(2), secret(3));
        let header = signature_header(&[new.clone(), old.clone()], "evt_1", 1_700_000_000, b"{}");
        let entries: Vec<&str> = header.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert!(entries.iter().all(|e| e.starts_with("v1,")));
        for s in [&old, &new] {
            assert_eq!(
                verify(s, "evt_1", "1700000000", &header, b"{}", 1_700_000_000),
                Ok(())
            );
        }
        assert_eq!(
            verify(&other, "evt_1", "1700000000", &header, b"{}", 1_700_000_000),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn other_versions_and_junk_entries_are_skipped() {
        let s = secret(1);
        let good = sign(&s, "evt_1", 100, b"x");
        let header = format!("v2,abc v1,@@notbase64@@ garbage {good}");
        assert_eq!(verify(&s, "evt_1", "100", &header, b"x", 100), Ok(()));
        let v2_only = good.replacen("v1,", "v2,", 1);
        assert_eq!(
            verify(&s, "evt_1", "100", &v2_only, b"x", 100),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn header_and_timestamp_errors() {
        let s = secret(1);
        let sig = sign(&s, "evt_1", 1000, b"x");
        assert_eq!(
            verify(&s, "", "1000", &sig, b"x", 1000),
            Err(VerifyError::MissingHeader)
        );
        assert_eq!(
            verify(&s, "evt_1", "", &sig, b"x", 1000),
            Err(VerifyError::MissingHeader)
        );
        assert_eq!(
            verify(&s, "evt_1", "1000", " ", b"x", 1000),
            Err(VerifyError::MissingHeader)
        );
        assert_eq!(
            verify(&s, "evt_1", "10.5", &sig, b"x", 1000),
            Err(VerifyError::InvalidTimestamp)
        );
        assert_eq!(
            verify(&s, "evt_1", "soon", &sig, b"x", 1000),
            Err(VerifyError::InvalidTimestamp)
        );
        // The edges of the window are inside it.
        assert_eq!(verify(&s, "evt_1", "1000", &sig, b"x", 1300), Ok(()));
        assert_eq!(verify(&s, "evt_1", "1000", &sig, b"x", 700), Ok(()));
        assert_eq!(
            verify(&s, "evt_1", "1000", &sig, b"x", 1301),
            Err(VerifyError::TimestampTooOld)
        );
        assert_eq!(
            verify(&s, "evt_1", "1000", &sig, b"x", 699),
            Err(VerifyError::TimestampTooNew)
        );
        assert_eq!(
            verify_with_tolerance(&s, "evt_1", "1000", &sig, b"x", 1301, 400),
            Ok(())
        );
        let extreme = i64::MIN.to_string();
        assert_eq!(
            verify(&s, "evt_1", &extreme, &sig, b"x", i64::MAX),
            Err(VerifyError::TimestampTooOld)
        );
    }

    #[test]
    fn legacy_known_answers() {
        // From Python: hmac.new(base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        //   b'1614265330.{"test": 2432232314}', hashlib.sha256 / sha512).hexdigest()
        let s = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sha256 = "sha256=e96203c6de850e7dc1fde7489ef6140b402d3a5a64fe250cd2eef9830fac1cef";
        let sha512 = "sha512=ec1b938365c2b40ea236c418f54711207294293a72c8dbb675f62c85ccda9221\
                      cad1d28032acf8e9ac9ab95febb538445b32d320971afa963243a88a3564a8d0";
        assert_eq!(
            legacy_signature(LegacyScheme::Sha256, &s, 1614265330, body),
            sha256
        );
        assert_eq!(
            legacy_signature(LegacyScheme::Sha512, &s, 1614265330, body),
            sha512
        );
        assert_eq!(
            verify_legacy(
                LegacyScheme::Sha256,
                &s,
                "1614265330",
                sha256,
                body,
                1614265330
            ),
            Ok(())
        );
        assert_eq!(
            verify_legacy(
                LegacyScheme::Sha512,
                &s,
                "1614265330",
                sha512,
                body,
                1614265330
            ),
            Ok(())
        );
        // A sha512 entry is not a sha256 signature, even if a receiver is confused about schemes.
        assert_eq!(
            verify_legacy(
                LegacyScheme::Sha256,
                &s,
                "1614265330",
                sha512,
                body,
                1614265330
            ),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            verify_legacy(
                LegacyScheme::Sha256,
                &s,
                "1614265330",
                sha256,
                body,
                1614265330 + 301
            ),
            Err(VerifyError::TimestampTooOld)
        );
        let upper = sha256.to_uppercase().replacen("SHA256", "sha256", 1);
        assert_eq!(
            verify_legacy(
                LegacyScheme::Sha256,
                &s,
                "1614265330",
                &upper,
                body,
                1614265330
            ),
            Ok(())
        );
    }

    #[test]
    fn delivery_headers_per_scheme() {
        let secrets = [secret(1), secret(2)];
        let standard = delivery_headers(SignatureScheme::Standard, &secrets, "evt_9", 42, b"{}");
        let names: Vec<&str> = standard.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["webhook-id", "webhook-timestamp", "webhook-signature"]
        );
        assert_eq!(standard[0].1, "evt_9");
        assert_eq!(standard[1].1, "42");
        assert_eq!(
            standard[2].1,
            signature_header(&secrets, "evt_9", 42, b"{}")
        );

        let legacy = delivery_headers(SignatureScheme::HexSha256, &secrets, "evt_9", 42, b"{}");
        let names: Vec<&str> = legacy.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["x-webhook-id", "x-webhook-timestamp", "x-webhook-signature"]
        );
        let entries: Vec<&str> = legacy[2].1.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert!(entries.iter().all(|e| e.starts_with("sha256=")));
        for s in &secrets {
            assert_eq!(
                verify_legacy(LegacyScheme::Sha256, s, "42", &legacy[2].1, b"{}", 42),
                Ok(())
            );
        }
        let sha512 = delivery_headers(
            SignatureScheme::HexSha512,
            &secrets[..1],
            "evt_9",
            42,
            b"{}",
        );
        assert!(sha512[2].1.starts_with("sha512=") && !sha512[2].1.contains(' '));
    }

    #[test]
    fn scheme_names() {
        for scheme in [
            SignatureScheme::Standard,
            SignatureScheme::HexSha256,
            SignatureScheme::HexSha512,
        ] {
            assert_eq!(SignatureScheme::parse(scheme.as_str()), Ok(scheme));
            assert_eq!(scheme.to_string().parse::<SignatureScheme>(), Ok(scheme));
            let json = serde_json::to_string(&scheme).unwrap();
            assert_eq!(json, format!("\"{}\"", scheme.as_str()));
            assert_eq!(
                serde_json::from_str::<SignatureScheme>(&json).unwrap(),
                scheme
            );
        }
        assert_eq!(SignatureScheme::default(), SignatureScheme::Standard);
        assert_eq!(SignatureScheme::Standard.legacy(), None);
        assert_eq!(
            SignatureScheme::HexSha512.legacy(),
            Some(LegacyScheme::Sha512)
        );
        let err = SignatureScheme::parse("HEX-SHA256").unwrap_err();
        assert!(err.to_string().contains("hex-sha256"), "{err}");
        assert!(serde_json::from_str::<SignatureScheme>("\"sha1\"").is_err());
    }

    fn tamper(bytes: &[u8], index: usize, flip: u8) -> Vec<u8> {
        let mut out = bytes.to_vec();
        let i = index % out.len();
        out[i] ^= flip;
        out
    }

    proptest! {
        #[test]
        fn sign_then_verify(
            key in 0u8..=255,
            id in "[!-~]{1,40}",
            ts in -1_000_000_000_000i64..1_000_000_000_000,
            body in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let s = secret(key);
            let header = sign(&s, &id, ts, &body);
            prop_assert_eq!(verify(&s, &id, &ts.to_string(), &header, &body, ts), Ok(()));
            let legacy = legacy_signature(LegacyScheme::Sha256, &s, ts, &body);
            prop_assert_eq!(verify_legacy(LegacyScheme::Sha256, &s, &ts.to_string(), &legacy, &body, ts), Ok(()));
        }

        #[test]
        fn any_single_byte_tamper_fails(
            id in "[a-z0-9_]{1,30}",
            ts in 1_000_000i64..2_000_000_000,
            body in proptest::collection::vec(any::<u8>(), 1..256),
            index: usize,
            flip in 1u8..=255,
            which in 0u8..3,
        ) {
            let s = secret(7);
            let header = sign(&s, &id, ts, &body);
            let result = match which {
                0 => verify(&s, &id, &ts.to_string(), &header, &tamper(&body, index, flip), ts),
                1 => match String::from_utf8(tamper(id.as_bytes(), index, flip)) {
                    Ok(id2) => verify(&s, &id2, &ts.to_string(), &header, &body, ts),
                    Err(_) => Err(VerifyError::NoMatchingSignature),
                },
                // Change one decimal digit but keep the time inside the window, so that only
                // the signature can catch it.
                _ => {
                    let digits = ts.to_string().into_bytes();
                    let i = digits.len() - 1 - index % 2;
                    let mut changed = digits.clone();
                    changed[i] = b'0' + (digits[i] - b'0' + 1 + flip % 9) % 10;
                    let ts2 = String::from_utf8(changed).unwrap();
                    verify(&s, &id, &ts2, &header, &body, ts2.parse().unwrap())
                }
            };
            prop_assert_eq!(result, Err(VerifyError::NoMatchingSignature));
        }

        #[test]
        fn signature_tamper_fails(body in proptest::collection::vec(any::<u8>(), 0..64), index: usize, flip in 1u8..=255) {
            let s = secret(3);
            let raw = standard_mac(&s, "evt_1", 5, &body);
            let header = format!("v1,{}", STANDARD.encode(tamper(&raw, index, flip)));
            prop_assert_eq!(verify(&s, "evt_1", "5", &header, &body, 5), Err(VerifyError::NoMatchingSignature));
        }

        #[test]
        fn outside_tolerance_fails(ts in 0i64..2_000_000_000, skew in 301i64..1_000_000, future: bool) {
            let s = secret(9);
            let header = sign(&s, "evt_1", ts, b"{}");
            let (now, want) = if future {
                (ts - skew, VerifyError::TimestampTooNew)
            } else {
                (ts + skew, VerifyError::TimestampTooOld)
            };
            prop_assert_eq!(verify(&s, "evt_1", &ts.to_string(), &header, b"{}", now), Err(want));
            prop_assert_eq!(
                verify_legacy(LegacyScheme::Sha512, &s, &ts.to_string(), &legacy_signature(LegacyScheme::Sha512, &s, ts, b"{}"), b"{}", now),
                Err(want)
            );
        }

        #[test]
        fn verify_never_panics(ts in "\\PC{0,24}", sig in "\\PC{0,120}", now: i64, tolerance: i64) {
            let s = secret(1);
            let _ = verify_with_tolerance(&s, "evt_1", &ts, &sig, b"", now, tolerance);
            let _ = verify_legacy_with_tolerance(LegacyScheme::Sha256, &s, &ts, &sig, b"", now, tolerance);
        }
    }
}
