//! Inbound webhooks: a source is where webhooks from outside arrive. Each request is verified
//! as its sender signs it (Standard Webhooks, GitHub, Stripe, or a configurable HMAC-SHA256
//! header), checked for freshness and replay, and published as an event of the source's
//! tenant.
//!
//! Pure functions of their inputs, including "now", so the public vectors check them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::Hmac;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::ids::SourceId;
use crate::publish::MAX_IDEMPOTENCY_KEY_LEN;
use crate::secret::{LENIENT_STANDARD, SigningSecret};
use crate::signing;

pub mod source;
pub use source::*;

/// Why an inbound request was refused (`401`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    InvalidSignature(String),
    #[error(
        "the signed timestamp is {0} s from this server's clock; at most {TOLERANCE_SECS} s is accepted"
    )]
    TimestampOutOfTolerance(i64),
    #[error("this message was already received; a replay is refused")]
    Replayed,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::InvalidSignature(_) => "invalid_signature",
            Refusal::TimestampOutOfTolerance(_) => "timestamp_out_of_tolerance",
            Refusal::Replayed => "replayed",
        }
    }
}

/// What a verified request is known by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The sender's id of the message, as signed: the sender's `webhook-id`, the Stripe
    /// event's `id`, or else the body's SHA-256. Retries of one message share it.
    pub message_id: String,
    /// The SHA-256 (hex) of exactly what was signed: a replay of the request has it, a
    /// sender's retry (newly signed) does not.
    pub replay_key: String,
}

impl Verified {
    /// The idempotency key the publish runs under: retries of one message publish once.
    pub fn idempotency_key(&self, source: &SourceId) -> String {
        let visible = self.message_id.bytes().all(|b| b.is_ascii_graphic());
        let key = format!("inbound:{source}:{}", self.message_id);
        if visible && key.len() <= MAX_IDEMPOTENCY_KEY_LEN {
            key
        } else {
            format!(
                "inbound:{source}:sha256:{}",
                sha256_hex(self.message_id.as_bytes())
            )
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    signing::hmac::<Hmac<Sha256>>(key, parts)
}

fn invalid(why: impl Into<String>) -> Refusal {
    Refusal::InvalidSignature(why.into())
}

fn check_age(timestamp: i64, now: i64) -> Result<(), Refusal> {
    let age = i128::from(now) - i128::from(timestamp);
    if age.abs() > i128::from(TOLERANCE_SECS) {
        Err(Refusal::TimestampOutOfTolerance(
            i64::try_from(age).unwrap_or(i64::MAX),
        ))
    } else {
        Ok(())
    }
}

/// Verifies one inbound request as `source`'s sender signs it. `header` looks a request
/// header up by name, in any case. The signature is checked first (in constant time), then
/// the timestamp, so a timestamp refusal speaks only of an authentic message.
pub fn verify<'a>(
    source: &Source,
    secret: &SourceSecret,
    header: impl Fn(&str) -> Option<&'a str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Verified, Refusal> {
    let now = now.timestamp();
    let key = secret.key(source.scheme);
    match source.scheme {
        Scheme::StandardWebhooks => verify_standard(secret, &header, body, now),
        Scheme::Github => verify_github(&key, &header, body),
        Scheme::Stripe => verify_stripe(&key, &header, body, now),
        Scheme::HmacSha256 => {
            let settings = source
                .hmac
                .as_ref()
                .ok_or_else(|| invalid("the source has no hmac settings"))?;
            verify_hmac(settings, &key, &header, body)
        }
    }
}

fn verify_standard<'a>(
    secret: &SourceSecret,
    header: &impl Fn(&str) -> Option<&'a str>,
    body: &[u8],
    now: i64,
) -> Result<Verified, Refusal> {
    let id = header("webhook-id").unwrap_or("");
    let timestamp = header("webhook-timestamp").unwrap_or("");
    let signature = header("webhook-signature").unwrap_or("");
    let secret = SigningSecret::parse(secret.expose())
        .map_err(|_| invalid("the source's secret is not a whsec_ key"))?;
    // Any age passes here; the tolerance is checked once the signature holds.
    signing::verify_with_tolerance(&secret, id, timestamp, signature, body, now, i64::MAX)
        .map_err(|e| match e {
            signing::VerifyError::NoMatchingSignature => {
                invalid("no webhook-signature entry matches")
            }
            other => invalid(other.to_string()),
        })?;
    let ts: i64 = timestamp.trim().parse().unwrap_or_default();
    check_age(ts, now)?;
    Ok(Verified {
        message_id: id.to_string(),
        replay_key: sha256_hex(
            &[id.as_bytes(), b".", ts.to_string().as_bytes(), b".", body].concat(),
        ),
    })
}

fn verify_github<'a>(
    key: &[u8],
    header: &impl Fn(&str) -> Option<&'a str>,
    body: &[u8],
) -> Result<Verified, Refusal> {
    let given = header("x-hub-signature-256")
        .ok_or_else(|| invalid("the X-Hub-Signature-256 header is missing"))?;
    let hex_sig = given
        .trim()
        .strip_prefix("sha256=")
        .ok_or_else(|| invalid("X-Hub-Signature-256 must be sha256=<hex>"))?;
    let given =
        hex::decode(hex_sig).map_err(|_| invalid("X-Hub-Signature-256 must be sha256=<hex>"))?;
    if !bool::from(given.ct_eq(&hmac_sha256(key, &[body]))) {
        return Err(invalid("the X-Hub-Signature-256 signature does not match"));
    }
    Ok(Verified {
        message_id: format!("sha256:{}", sha256_hex(body)),
        replay_key: sha256_hex(body),
    })
}

fn verify_stripe<'a>(
    key: &[u8],
    header: &impl Fn(&str) -> Option<&'a str>,
    body: &[u8],
    now: i64,
) -> Result<Verified, Refusal> {
    let given = header("stripe-signature")
        .ok_or_else(|| invalid("the Stripe-Signature header is missing"))?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in given.split(',') {
        match item.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.extend(hex::decode(sig).ok()),
            _ => {}
        }
    }
    let t = timestamp.ok_or_else(|| invalid("Stripe-Signature has no t=<unix seconds>"))?;
    let expected = hmac_sha256(key, &[t.to_string().as_bytes(), b".", body]);
    if !signatures
        .iter()
        .any(|sig| bool::from(sig.ct_eq(&expected)))
    {
        return Err(invalid("no v1 signature in Stripe-Signature matches"));
    }
    check_age(t, now)?;
    let signed = [t.to_string().as_bytes(), b".", body].concat();
    let event_id = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_string))
        .filter(|id| !id.is_empty());
    Ok(Verified {
        message_id: event_id.unwrap_or_else(|| format!("sha256:{}", sha256_hex(&signed))),
        replay_key: sha256_hex(&signed),
    })
}

fn verify_hmac<'a>(
    settings: &HmacSettings,
    key: &[u8],
    header: &impl Fn(&str) -> Option<&'a str>,
    body: &[u8],
) -> Result<Verified, Refusal> {
    let given = header(&settings.header)
        .ok_or_else(|| invalid(format!("the {} header is missing", settings.header)))?;
    let encoded = given.trim().strip_prefix(&settings.prefix).ok_or_else(|| {
        invalid(format!(
            "{} must start with {:?}",
            settings.header, settings.prefix
        ))
    })?;
    let (given, encoding) = match settings.encoding {
        Encoding::Hex => (hex::decode(encoded).ok(), "hex"),
        Encoding::Base64 => (LENIENT_STANDARD.decode(encoded).ok(), "base64"),
    };
    let given = given.ok_or_else(|| invalid(format!("{} is not {encoding}", settings.header)))?;
    if !bool::from(given.ct_eq(&hmac_sha256(key, &[body]))) {
        return Err(invalid(format!(
            "the {} signature does not match",
            settings.header
        )));
    }
    Ok(Verified {
        message_id: format!("sha256:{}", sha256_hex(body)),
        replay_key: sha256_hex(body),
    })
}

/// Signs `body` as `scheme`'s sender would, at `now`: the headers to send (`hmac`: the
/// `hmac-sha256` settings). For `skyhook sources send-test`, the demo and tests.
pub fn sign_as_sender(
    scheme: Scheme,
    hmac: Option<&HmacSettings>,
    secret: &SourceSecret,
    message_id: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let key = secret.key(scheme);
    let t = now.timestamp();
    match scheme {
        Scheme::StandardWebhooks => {
            let sig = SigningSecret::parse(secret.expose())
                .map(|s| signing::sign(&s, message_id, t, body))
                .unwrap_or_default();
            vec![
                ("webhook-id".into(), message_id.into()),
                ("webhook-timestamp".into(), t.to_string()),
                ("webhook-signature".into(), sig),
            ]
        }
        Scheme::Github => vec![
            (
                "X-Hub-Signature-256".into(),
                format!("sha256={}", hex::encode(hmac_sha256(&key, &[body]))),
            ),
            ("X-GitHub-Delivery".into(), message_id.into()),
        ],
        Scheme::Stripe => vec![(
            "Stripe-Signature".into(),
            format!(
                "t={t},v1={}",
                hex::encode(hmac_sha256(&key, &[t.to_string().as_bytes(), b".", body]))
            ),
        )],
        Scheme::HmacSha256 => {
            let Some(settings) = hmac else {
                return Vec::new();
            };
            let mac = hmac_sha256(&key, &[body]);
            let encoded = match settings.encoding {
                Encoding::Hex => hex::encode(mac),
                Encoding::Base64 => STANDARD.encode(mac),
            };
            vec![(
                settings.header.clone(),
                format!("{}{encoded}", settings.prefix),
            )]
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{Value, json};

    use super::*;
    use crate::ids::TenantId;

    const INBOUND: &str = include_str!("../../testdata/inbound-vectors.json");
    const STANDARD_VECTORS: &str = include_str!("../../testdata/standard-webhooks-vectors.json");

    fn source(scheme: Scheme, hmac: Option<HmacSettings>) -> Source {
        Source {
            id: SourceId::new(),
            tenant: TenantId::default_tenant(),
            name: "test".into(),
            scheme,
            hmac,
            event_type: EventTypeRule::fixed("inbound.test"),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            secret_version: 0,
        }
    }

    fn at(unix: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(unix, 0).unwrap()
    }

    /// Header lookup by lowercase name, as an HTTP server hands them over.
    fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect()
    }

    fn check(
        src: &Source,
        secret: &str,
        pairs: &[(&str, &str)],
        body: &str,
        now: i64,
    ) -> Result<Verified, Refusal> {
        let h = headers(pairs);
        verify(
            src,
            &SourceSecret::parse(src.scheme, secret).unwrap(),
            |name| h.get(&name.to_ascii_lowercase()).map(String::as_str),
            body.as_bytes(),
            at(now),
        )
    }

    #[test]
    fn githubs_published_vector_verifies_and_any_change_does_not() {
        let all: Value = serde_json::from_str(INBOUND).unwrap();
        let v = &all["github"][0];
        let (secret, body, sig) = (
            v["secret"].as_str().unwrap(),
            v["body"].as_str().unwrap(),
            v["signature"].as_str().unwrap(),
        );
        let src = source(Scheme::Github, None);
        let now = Utc::now().timestamp();
        let ok = check(&src, secret, &[("X-Hub-Signature-256", sig)], body, now).unwrap();
        assert_eq!(ok.replay_key, sha256_hex(body.as_bytes()));
        assert_eq!(
            ok.message_id,
            format!("sha256:{}", sha256_hex(body.as_bytes()))
        );
        for (why, secret, sig, body) in [
            ("another body", secret, sig, "Hello, World?"),
            ("another secret", "It's a Secret to Nobody", sig, body),
            ("no prefix", secret, &sig[7..], body),
            (
                "sha1 prefix",
                secret,
                &sig.replace("sha256=", "sha1="),
                body,
            ),
            ("not hex", secret, "sha256=zz", body),
        ] {
            let got = check(&src, secret, &[("X-Hub-Signature-256", sig)], body, now);
            assert_eq!(got.map_err(|e| e.code()), Err("invalid_signature"), "{why}");
        }
        assert_eq!(
            check(&src, secret, &[], body, now).map_err(|e| e.code()),
            Err("invalid_signature")
        );
    }

    #[test]
    fn stripe_signatures_follow_stripes_rule() {
        // Cross-checked with Python: hmac.new(b"whsec_test_secret",
        // b'1700000000.' + body, hashlib.sha256).hexdigest()
        let body = r#"{"id":"evt_1","type":"customer.created"}"#;
        let v1 = "2146c3ca883db3d5b33f638513d4322fcf955eeb8624ee63937a742c023fe30b";
        let src = source(Scheme::Stripe, None);
        let secret = "whsec_test_secret";
        let header = format!("t=1700000000,v1={v1}");
        let ok = check(
            &src,
            secret,
            &[("Stripe-Signature", &header)],
            body,
            1_700_000_100,
        )
        .unwrap();
        assert_eq!(
            ok.message_id, "evt_1",
            "the Stripe event id, signed in the body"
        );
        // Several v1 entries (a secret being rolled), and unknown schemes, are fine.
        let several = format!("t=1700000000,v1={},v0=abc,v1={v1}", "00".repeat(32));
        assert!(
            check(
                &src,
                secret,
                &[("Stripe-Signature", &several)],
                body,
                1_700_000_000
            )
            .is_ok()
        );
        // Five minutes either way, then not.
        assert!(
            check(
                &src,
                secret,
                &[("Stripe-Signature", &header)],
                body,
                1_700_000_300
            )
            .is_ok()
        );
        assert_eq!(
            check(
                &src,
                secret,
                &[("Stripe-Signature", &header)],
                body,
                1_700_000_301
            ),
            Err(Refusal::TimestampOutOfTolerance(301))
        );
        assert_eq!(
            check(
                &src,
                secret,
                &[("Stripe-Signature", &header)],
                body,
                1_699_999_699
            ),
            Err(Refusal::TimestampOutOfTolerance(-301))
        );
        // A moved timestamp breaks the signature: that is a signature refusal, not a stale one.
        let moved = format!("t=1700000999,v1={v1}");
        assert_eq!(
            check(
                &src,
                secret,
                &[("Stripe-Signature", &moved)],
                body,
                1_700_000_999
            )
            .map_err(|e| e.code()),
            Err("invalid_signature")
        );
        for bad in ["", "v1=abc", "t=x,v1=abc", &format!("t=1700000000,v0={v1}")] {
            assert_eq!(
                check(
                    &src,
                    secret,
                    &[("Stripe-Signature", bad)],
                    body,
                    1_700_000_000
                )
                .map_err(|e| e.code()),
                Err("invalid_signature"),
                "{bad}"
            );
        }
    }

    #[test]
    fn standard_webhooks_vectors_verify_and_a_retry_is_not_a_replay() {
        let all: Value = serde_json::from_str(STANDARD_VECTORS).unwrap();
        let src = source(Scheme::StandardWebhooks, None);
        for v in all["valid"].as_array().unwrap() {
            let ts = v["timestamp"].as_i64().unwrap();
            let (id, sig) = (v["id"].as_str().unwrap(), v["signature"].as_str().unwrap());
            let pairs = [
                ("webhook-id", id),
                ("webhook-timestamp", &ts.to_string()),
                ("webhook-signature", sig),
            ];
            let secret = v["secret"].as_str().unwrap();
            let body = v["body"].as_str().unwrap();
            let ok = check(&src, secret, &pairs, body, ts + 10).unwrap();
            assert_eq!(ok.message_id, id);
            assert_eq!(
                check(&src, secret, &pairs, body, ts + 301),
                Err(Refusal::TimestampOutOfTolerance(301))
            );
        }
        for v in all["invalid"].as_array().unwrap() {
            let ts = v["timestamp"].as_i64().unwrap();
            let pairs = [
                ("webhook-id", v["id"].as_str().unwrap()),
                ("webhook-timestamp", &ts.to_string()),
                ("webhook-signature", v["signature"].as_str().unwrap()),
            ];
            let got = check(
                &src,
                v["secret"].as_str().unwrap(),
                &pairs,
                v["body"].as_str().unwrap(),
                ts,
            );
            assert_eq!(got.map_err(|e| e.code()), Err("invalid_signature"));
        }
        // A sender's retry signs anew: the same message id, another replay key.
        let secret = SourceSecret::generate(Scheme::StandardWebhooks);
        let body = br#"{"a":1}"#;
        let first = sign_as_sender(src.scheme, None, &secret, "msg_1", body, at(1_000));
        let retry = sign_as_sender(src.scheme, None, &secret, "msg_1", body, at(1_060));
        let verified = |pairs: Vec<(String, String)>| {
            let h: BTreeMap<String, String> = pairs.into_iter().collect();
            verify(
                &src,
                &secret,
                |n| h.get(n).map(String::as_str),
                body,
                at(1_070),
            )
            .unwrap()
        };
        let (a, b) = (verified(first), verified(retry));
        assert_eq!(a.message_id, b.message_id);
        assert_ne!(a.replay_key, b.replay_key);
    }

    #[test]
    fn hmac_sha256_reads_the_configured_header_prefix_and_encoding() {
        // Python: base64.b64encode(hmac.new(b"shh", b"hello", hashlib.sha256).digest())
        let b64 = "Djljae4EPFtrkidDYxdFsiSc98ssRyLmHoAkR9XRTHA=";
        let src = source(
            Scheme::HmacSha256,
            Some(HmacSettings {
                header: "X-Signature".into(),
                prefix: "sha256=".into(),
                encoding: Encoding::Base64,
            }),
        );
        let now = Utc::now().timestamp();
        let header = format!("sha256={b64}");
        assert!(check(&src, "shh", &[("x-signature", &header)], "hello", now).is_ok());
        for bad in [
            b64.to_string(),
            format!("sha256={}", &b64[1..]),
            "sha256=!!".into(),
        ] {
            assert_eq!(
                check(&src, "shh", &[("x-signature", &bad)], "hello", now).map_err(|e| e.code()),
                Err("invalid_signature"),
                "{bad}"
            );
        }
        let hex_src = source(
            Scheme::HmacSha256,
            Some(HmacSettings {
                header: "X-Sig".into(),
                prefix: String::new(),
                encoding: Encoding::Hex,
            }),
        );
        let secret = SourceSecret::parse(Scheme::HmacSha256, "shh").unwrap();
        let signed: BTreeMap<String, String> = sign_as_sender(
            hex_src.scheme,
            hex_src.hmac.as_ref(),
            &secret,
            "",
            b"hello",
            at(now),
        )
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
        assert!(
            verify(
                &hex_src,
                &secret,
                |n| signed.get(&n.to_ascii_lowercase()).map(String::as_str),
                b"hello",
                at(now)
            )
            .is_ok()
        );
    }

    #[test]
    fn event_type_rules_give_types_or_say_why_not() {
        let body = json!({"type": "customer.created", "n": 1});
        let h = headers(&[("X-GitHub-Event", "pull_request")]);
        let lookup = |n: &str| h.get(&n.to_ascii_lowercase()).map(String::as_str);
        let rule = |v: Value| serde_json::from_value::<EventTypeRule>(v).unwrap();
        assert_eq!(
            rule(json!({"header": "X-GitHub-Event", "prefix": "github."}))
                .resolve(lookup, &body)
                .unwrap()
                .as_str(),
            "github.pull_request"
        );
        assert_eq!(
            rule(json!({"pointer": "/type", "prefix": "stripe."}))
                .resolve(lookup, &body)
                .unwrap()
                .as_str(),
            "stripe.customer.created"
        );
        assert_eq!(
            rule(json!({"fixed": "a.b"}))
                .resolve(lookup, &body)
                .unwrap()
                .as_str(),
            "a.b"
        );
        for (r, why) in [
            (json!({"pointer": "/n"}), "no string"),
            (json!({"pointer": "/missing"}), "no string"),
            (json!({"header": "X-Other"}), "missing"),
        ] {
            let err = rule(r).resolve(lookup, &body).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
        for bad in [
            json!({}),
            json!({"fixed": "a.b", "header": "X"}),
            json!({"fixed": "a.b", "prefix": "x."}),
            json!({"fixed": "a..b"}),
            json!({"header": "bad header"}),
            json!({"pointer": "type"}),
            json!({"pointer": "/type", "prefix": "sp ace."}),
        ] {
            assert!(rule(bad.clone()).check().is_err(), "{bad}");
        }
        assert!(serde_json::from_value::<EventTypeRule>(json!({"fixd": "a"})).is_err());
    }

    #[test]
    fn secrets_and_sources_are_checked() {
        assert!(SourceSecret::parse(Scheme::StandardWebhooks, "plain").is_err());
        assert!(SourceSecret::parse(Scheme::Github, "").is_err());
        assert!(SourceSecret::parse(Scheme::Github, "a\nb").is_err());
        assert!(SourceSecret::parse(Scheme::Stripe, "whsec_anything").is_ok());
        for scheme in [
            Scheme::StandardWebhooks,
            Scheme::Github,
            Scheme::Stripe,
            Scheme::HmacSha256,
        ] {
            let s = SourceSecret::generate(scheme);
            assert!(SourceSecret::parse(scheme, s.expose()).is_ok());
            assert_ne!(s, SourceSecret::generate(scheme));
            assert_eq!(format!("{s:?}"), "SourceSecret(****)");
            assert_eq!(Scheme::parse(scheme.as_str()), Ok(scheme));
        }
        let mut s = source(Scheme::HmacSha256, None);
        assert!(s.check().is_err(), "hmac-sha256 needs its settings");
        s.scheme = Scheme::Github;
        s.hmac = Some(HmacSettings {
            header: "X".into(),
            prefix: String::new(),
            encoding: Encoding::Hex,
        });
        assert!(s.check().is_err(), "only hmac-sha256 takes them");
        s.hmac = None;
        s.name = " ".into();
        assert!(s.check().is_err());
    }

    #[test]
    fn idempotency_keys_stay_within_the_publish_rules() {
        let id = SourceId::new();
        let plain = Verified {
            message_id: "msg_1".into(),
            replay_key: String::new(),
        };
        assert_eq!(plain.idempotency_key(&id), format!("inbound:{id}:msg_1"));
        for odd in ["with space", &"x".repeat(300), "ünïcode"] {
            let v = Verified {
                message_id: odd.to_string(),
                replay_key: String::new(),
            };
            let key = v.idempotency_key(&id);
            assert!(
                crate::publish::validate_idempotency_key(&key).is_ok(),
                "{key}"
            );
        }
    }
}
