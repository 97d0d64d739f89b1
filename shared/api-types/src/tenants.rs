//! Tenants and their publish limits (`/v1/tenants`, the bootstrap key's).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use skyhook_domain::model::format_time;
use skyhook_domain::tenants::{TenantLimits, TenantRecord};

/// How much a tenant may publish: `events_per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsView {
    /// 1 to 100,000.
    #[schema(example = 100)]
    pub events_per_second: u32,
    /// 1 to 1,000,000.
    #[schema(example = 1000)]
    pub burst: u32,
}

impl From<TenantLimits> for LimitsView {
    fn from(l: TenantLimits) -> Self {
        LimitsView {
            events_per_second: l.events_per_second,
            burst: l.burst,
        }
    }
}

/// `PUT /v1/tenants/{tenant}`: limits of its own, or `null` for the stack's defaults.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutTenant {
    pub limits: Option<LimitsView>,
}

/// A tenant as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TenantView {
    #[schema(example = "acme")]
    pub id: String,
    /// What it may publish now: its own limits, or the stack's defaults.
    pub limits: LimitsView,
    /// Whether `limits` are its own (`false`: the stack's defaults).
    pub custom_limits: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
}

impl TenantView {
    pub fn of(record: &TenantRecord, defaults: TenantLimits) -> Self {
        TenantView {
            id: record.id.to_string(),
            limits: record.limits.unwrap_or(defaults).into(),
            custom_limits: record.limits.is_some(),
            created_at: format_time(record.created_at),
        }
    }
}
