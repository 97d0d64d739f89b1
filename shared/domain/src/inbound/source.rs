//! An inbound source: how its sender signs, where the event type and the message id are
//! found, and its secret. The plain types the ports speak in; verifying a request is in
//! the parent module.

use std::fmt;

use chrono::{DateTime, Utc};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::event_type::EventType;
use crate::ids::{SourceId, TenantId};
use crate::secret::SigningSecret;

/// How far a signed timestamp may be from this clock, either way: five minutes, as the
/// Standard Webhooks and Stripe libraries default to. A replay guard remembers each message
/// for as long.
pub const TOLERANCE_SECS: i64 = 300;
pub const MAX_NAME_LEN: usize = 100;
/// The longest secret a sender may have given (GitHub's and Stripe's are far shorter).
pub const MAX_SECRET_LEN: usize = 512;
pub const MAX_PREFIX_LEN: usize = 64;
pub const MAX_POINTER_LEN: usize = 256;

/// How a source's sender signs its webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>` over
    /// `"{id}.{timestamp}.{body}"`, keyed with a `whsec_…` secret.
    StandardWebhooks,
    /// `X-Hub-Signature-256: sha256=<hex>` over the body.
    Github,
    /// `Stripe-Signature: t=<unix>,v1=<hex>` over `"{t}.{body}"`.
    Stripe,
    /// A header of your choosing holding `<prefix><hex or base64>` over the body.
    HmacSha256,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::Github => "github",
            Scheme::Stripe => "stripe",
            Scheme::HmacSha256 => "hmac-sha256",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "standard-webhooks" => Ok(Scheme::StandardWebhooks),
            "github" => Ok(Scheme::Github),
            "stripe" => Ok(Scheme::Stripe),
            "hmac-sha256" => Ok(Scheme::HmacSha256),
            other => Err(format!(
                "unknown verification {other:?}: use standard-webhooks, github, stripe or hmac-sha256"
            )),
        }
    }

    /// Whether the sender signs a timestamp, which is then held to [`TOLERANCE_SECS`].
    pub fn has_timestamp(self) -> bool {
        matches!(self, Scheme::StandardWebhooks | Scheme::Stripe)
    }
}

/// How the `hmac-sha256` scheme writes the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Hex,
    Base64,
}

/// The `hmac-sha256` scheme's settings: the header that carries the signature, the text
/// before it (`sha256=`, say; may be empty) and how its bytes are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HmacSettings {
    #[cfg_attr(feature = "openapi", schema(example = "X-Signature"))]
    pub header: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(example = "sha256="))]
    pub prefix: String,
    pub encoding: Encoding,
}

impl HmacSettings {
    pub fn check(&self) -> Result<(), String> {
        check_header_name(&self.header).map_err(|e| format!("hmac.header {e}"))?;
        if self.prefix.len() > MAX_PREFIX_LEN || !self.prefix.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(format!(
                "hmac.prefix must be at most {MAX_PREFIX_LEN} visible ASCII characters"
            ));
        }
        Ok(())
    }
}

/// Where an inbound message's event type comes from: exactly one of `fixed` (a type),
/// `header` (a request header's value) or `pointer` (a JSON pointer to a string in the body);
/// `prefix` goes before a header's or pointer's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EventTypeRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = "order.created"))]
    pub fixed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = "X-GitHub-Event"))]
    pub header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = "/type"))]
    pub pointer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = "github."))]
    pub prefix: Option<String>,
}

impl EventTypeRule {
    pub fn fixed(event_type: &str) -> Self {
        EventTypeRule {
            fixed: Some(event_type.to_string()),
            ..Self::default()
        }
    }

    /// Checks the rule can give event types at all.
    pub fn check(&self) -> Result<(), String> {
        let prefix = self.prefix.as_deref().unwrap_or("");
        match (&self.fixed, &self.header, &self.pointer) {
            (Some(fixed), None, None) => {
                if self.prefix.is_some() {
                    return Err("event_type.prefix goes with header or pointer, not fixed".into());
                }
                EventType::parse(fixed)
                    .map(|_| ())
                    .map_err(|e| format!("event_type.fixed: {e}"))
            }
            (None, Some(header), None) => {
                check_header_name(header).map_err(|e| format!("event_type.header {e}"))?;
                check_prefix(prefix)
            }
            (None, None, Some(pointer)) => {
                if pointer.len() > MAX_POINTER_LEN
                    || !(pointer.is_empty() || pointer.starts_with('/'))
                {
                    return Err(format!(
                        "event_type.pointer must be a JSON pointer such as \"/type\" (at most {MAX_POINTER_LEN} characters)"
                    ));
                }
                check_prefix(prefix)
            }
            _ => Err("event_type needs exactly one of fixed, header or pointer".into()),
        }
    }

    /// The event type of one message: the fixed type, or the prefix and the header's or the
    /// body's value. `body` is the parsed body (pointer rules only read it).
    pub fn resolve<'a>(
        &self,
        header: impl Fn(&str) -> Option<&'a str>,
        body: &serde_json::Value,
    ) -> Result<EventType, String> {
        let prefix = self.prefix.as_deref().unwrap_or("");
        let value = match (&self.fixed, &self.header, &self.pointer) {
            (Some(fixed), _, _) => return EventType::parse(fixed).map_err(|e| e.to_string()),
            (_, Some(name), _) => header(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    format!("the {name} header, which gives the event type, is missing")
                })?
                .to_string(),
            (_, _, Some(pointer)) => body
                .pointer(pointer)
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| {
                    format!("the body has no string at {pointer:?}, which gives the event type")
                })?
                .to_string(),
            _ => return Err("the source has no event type rule".into()),
        };
        EventType::parse(&format!("{prefix}{value}"))
            .map_err(|e| format!("the event type {prefix}{value:?} is not valid: {e}"))
    }
}

fn check_prefix(prefix: &str) -> Result<(), String> {
    // Whatever follows, the prefix's own characters must be allowed in an event type.
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(format!(
            "event_type.prefix is longer than {MAX_PREFIX_LEN} characters"
        ));
    }
    if prefix.is_empty() {
        return Ok(());
    }
    EventType::parse(&format!("{prefix}x"))
        .map(|_| ())
        .map_err(|e| format!("event_type.prefix: {e}"))
}

fn check_header_name(name: &str) -> Result<(), String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || name.len() > 100 || !name.bytes().all(token) {
        return Err(format!("{name:?} is not a header name"));
    }
    Ok(())
}

/// An inbound source of one tenant. Its secret lives in the secret store, not here.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: SourceId,
    pub tenant: TenantId,
    pub name: String,
    pub scheme: Scheme,
    /// Only for [`Scheme::HmacSha256`].
    pub hmac: Option<HmacSettings>,
    pub event_type: EventTypeRule,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every change of the secret, so caches of it know when to read it again.
    pub secret_version: u64,
}

/// What is wrong with a source, by the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceProblem {
    #[error("{0}")]
    Name(String),
    #[error("{0}")]
    EventType(String),
    #[error("{0}")]
    Hmac(String),
}

impl SourceProblem {
    /// The API's error code for it.
    pub fn code(&self) -> &'static str {
        match self {
            SourceProblem::Name(_) => "invalid_name",
            SourceProblem::EventType(_) => "invalid_event_type_rule",
            SourceProblem::Hmac(_) => "invalid_hmac",
        }
    }
}

impl Source {
    /// Checks what an API caller could get wrong: the name, the rule, and the settings the
    /// scheme needs (and only those).
    pub fn check(&self) -> Result<(), SourceProblem> {
        check_name(&self.name).map_err(SourceProblem::Name)?;
        self.event_type.check().map_err(SourceProblem::EventType)?;
        match (self.scheme, &self.hmac) {
            (Scheme::HmacSha256, Some(h)) => h.check().map_err(SourceProblem::Hmac),
            (Scheme::HmacSha256, None) => Err(SourceProblem::Hmac(
                "verification hmac-sha256 needs hmac: {header, prefix, encoding}".into(),
            )),
            (_, Some(_)) => Err(SourceProblem::Hmac(
                "hmac goes only with verification hmac-sha256".into(),
            )),
            (_, None) => Ok(()),
        }
    }
}

pub fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() || name.chars().count() > MAX_NAME_LEN {
        return Err(format!("name must be 1 to {MAX_NAME_LEN} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("name must not contain control characters".into());
    }
    Ok(())
}

/// A source's secret as stored, with the source's `secret_version` it was written for: an
/// ingest uses it for that version of the source record, and caches it only when the two
/// agree (a record ahead of its secret is a change still being written, or one whose
/// secret write failed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSourceSecret {
    pub secret: SourceSecret,
    pub version: u64,
}

/// A source's secret: a `whsec_…` key for Standard Webhooks; for the other schemes the
/// string the sender was given, used as UTF-8 bytes (as GitHub and Stripe do).
#[derive(Clone, PartialEq, Eq)]
pub struct SourceSecret(String);

impl fmt::Debug for SourceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SourceSecret(****)")
    }
}

impl SourceSecret {
    pub fn parse(scheme: Scheme, s: &str) -> Result<Self, String> {
        if scheme == Scheme::StandardWebhooks {
            SigningSecret::parse(s).map_err(|e| e.to_string())?;
        } else if s.is_empty() || s.len() > MAX_SECRET_LEN || s.chars().any(char::is_control) {
            return Err(format!(
                "secret must be 1 to {MAX_SECRET_LEN} bytes without control characters"
            ));
        }
        Ok(SourceSecret(s.to_string()))
    }

    /// A new secret: `whsec_` and 32 random bytes for Standard Webhooks, 32 random bytes in
    /// hex for the others (to paste into the sender's settings).
    pub fn generate(scheme: Scheme) -> Self {
        if scheme == Scheme::StandardWebhooks {
            return SourceSecret(SigningSecret::generate().expose());
        }
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        SourceSecret(hex::encode(key))
    }

    /// The text form, for showing once and for the secret store.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub(super) fn key(&self, scheme: Scheme) -> Vec<u8> {
        match scheme {
            Scheme::StandardWebhooks => SigningSecret::parse(&self.0)
                .map(|s| s.key().to_vec())
                .unwrap_or_default(),
            _ => self.0.as_bytes().to_vec(),
        }
    }
}
