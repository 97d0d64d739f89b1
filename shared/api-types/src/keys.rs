//! API keys and the audit trail.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use skyhook_domain::model::{ApiKey, AuditRecord, Role, format_time};

/// `POST /v1/api-keys`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// The key's tenant; the caller's when absent. Only the bootstrap key may name another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[schema(value_type = Role)]
    pub role: String,
    /// Up to 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An API key as the API shows it: the key itself only in the answer to the create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    #[schema(example = "key_01JD0000000000000000000000")]
    pub id: String,
    pub tenant: String,
    pub role: Role,
    pub description: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    /// The key id (or `bootstrap`) that created it.
    pub created_by: String,
    /// `sk_…`: only in the answer to the create; it is stored as a digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl From<&ApiKey> for KeyView {
    fn from(k: &ApiKey) -> Self {
        KeyView {
            id: k.id.to_string(),
            tenant: k.tenant.to_string(),
            role: k.role,
            description: k.description.clone(),
            created_at: format_time(k.created_at),
            created_by: k.created_by.clone(),
            key: None,
        }
    }
}

/// One management change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditView {
    #[schema(value_type = String, format = DateTime)]
    pub at: String,
    /// The key id, or `bootstrap`.
    pub actor: String,
    /// Such as `subscriber.create`, `api_key.delete`.
    pub action: String,
    /// The id of what changed.
    pub resource: String,
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

impl From<AuditRecord> for AuditView {
    fn from(r: AuditRecord) -> Self {
        AuditView {
            at: format_time(r.at),
            actor: r.actor,
            action: r.action,
            resource: r.resource,
            detail: r.detail,
        }
    }
}

/// `GET /v1/whoami`: what the calling key may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub tenant: String,
    pub role: Role,
    /// The key's id; `null` for the bootstrap key.
    pub key_id: Option<String>,
}
