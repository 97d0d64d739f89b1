//! Inbound sources: where webhooks from outside arrive (`POST /v1/inbound/{id}`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use skyhook_domain::inbound::{EventTypeRule, HmacSettings, Scheme, Source};
use skyhook_domain::model::format_time;

/// `POST /v1/sources`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSource {
    /// 1 to 100 characters.
    #[schema(example = "GitHub: acme/shop", min_length = 1, max_length = 100)]
    pub name: String,
    /// How the sender signs: `standard-webhooks`, `github`, `stripe` or `hmac-sha256`.
    #[schema(value_type = Scheme)]
    pub verification: String,
    /// The secret the sender signs with: a `whsec_…` key for `standard-webhooks`, any
    /// non-empty string the sender was given for the others. Generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 512)]
    pub secret: Option<String>,
    /// Where each message's event type comes from.
    pub event_type: EventTypeRule,
    /// For `hmac-sha256` only: the header, the text before the signature, and its encoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac: Option<HmacSettings>,
}

/// `PATCH /v1/sources/{id}`: only the fields given change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// A new scheme; the secret must suit it (give a new one with it when it does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Scheme>)]
    pub verification: Option<String>,
    /// A new secret: the sender's next requests must be signed with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 512)]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<EventTypeRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac: Option<HmacSettings>,
}

impl UpdateSource {
    /// The names of the fields it sets.
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("verification", self.verification.is_some()),
            ("secret", self.secret.is_some()),
            ("event_type", self.event_type.is_some()),
            ("hmac", self.hmac.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// A source as the API shows it; its secret only in the answer to the create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SourceView {
    #[schema(example = "src_01JD0000000000000000000000")]
    pub id: String,
    pub name: String,
    pub verification: Scheme,
    pub hmac: Option<HmacSettings>,
    pub event_type: EventTypeRule,
    /// Where the sender posts: this path on the ingest's URL.
    #[schema(example = "/v1/inbound/src_01JD0000000000000000000000")]
    pub inbound_path: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: String,
    /// The secret: only in the answer to the create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<&Source> for SourceView {
    fn from(s: &Source) -> Self {
        SourceView {
            id: s.id.to_string(),
            name: s.name.clone(),
            verification: s.scheme,
            hmac: s.hmac.clone(),
            event_type: s.event_type.clone(),
            inbound_path: format!("/v1/inbound/{}", s.id),
            created_at: format_time(s.created_at),
            updated_at: format_time(s.updated_at),
            secret: None,
        }
    }
}
