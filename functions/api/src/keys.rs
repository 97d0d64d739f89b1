//! API keys and the audit trail. Keys belong to one tenant and have one role; a tenant's
//! admin manages its own tenant's keys, and only the bootstrap key creates keys for others.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;

use skyhook_domain::ids::{ApiKeyId, TenantId};
use skyhook_domain::model::{ApiKey, AuditRecord, format_time};
use skyhook_domain::ports::PageRequest;
use skyhook_http::{
    ApiError, ApiPath, ApiQuery, Role, api_key_digest, generate_api_key, read_json,
};

use crate::{ApiState, ListResponse, MAX_BODY_BYTES, audit, authorize, page_limit};

const MAX_KEY_DESCRIPTION_CHARS: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    #[serde(default)]
    tenant: Option<String>,
    role: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Serialize)]
struct KeyView {
    id: String,
    tenant: String,
    role: &'static str,
    description: Option<String>,
    created_at: String,
    created_by: String,
    /// Only in the answer to the create: the key itself is never stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

impl From<&ApiKey> for KeyView {
    fn from(k: &ApiKey) -> Self {
        KeyView {
            id: k.id.to_string(),
            tenant: k.tenant.to_string(),
            role: k.role.as_str(),
            description: k.description.clone(),
            created_at: format_time(k.created_at),
            created_by: k.created_by.clone(),
            key: None,
        }
    }
}

pub(crate) async fn create_key(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let req: CreateKey = read_json(body, MAX_BODY_BYTES).await?;
    let tenant = match &req.tenant {
        None => principal.tenant.clone(),
        Some(t) => TenantId::parse(t)
            .map_err(|e| ApiError::unprocessable("invalid_tenant", e.to_string()))?,
    };
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::unprocessable("invalid_role", "role must be admin, publisher or reader")
    })?;
    if req
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_KEY_DESCRIPTION_CHARS)
    {
        return Err(ApiError::unprocessable(
            "invalid_description",
            format!("description is longer than {MAX_KEY_DESCRIPTION_CHARS} characters"),
        ));
    }
    if tenant != principal.tenant && !principal.is_bootstrap() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only the bootstrap key may create keys for another tenant",
        ));
    }
    let secret = generate_api_key();
    let key = ApiKey {
        id: ApiKeyId::new(),
        tenant: tenant.clone(),
        role,
        description: req.description,
        created_at: Utc::now(),
        created_by: principal.actor(),
    };
    state.keys.create(&key, &api_key_digest(&secret)).await?;
    let detail = Some(json!({"tenant": tenant.as_str(), "role": role.as_str()}));
    audit(
        &state,
        &tenant,
        &principal,
        "api_key.create",
        key.id.as_str(),
        detail.clone(),
    )
    .await;
    if tenant != principal.tenant {
        // The bootstrap tenant's trail shows what its key did elsewhere, too.
        audit(
            &state,
            &principal.tenant,
            &principal,
            "api_key.create",
            key.id.as_str(),
            detail,
        )
        .await;
    }
    let mut view = KeyView::from(&key);
    view.key = Some(secret);
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize)]
pub(crate) struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

pub(crate) async fn list_keys(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let page = state
        .keys
        .list(
            &principal.tenant,
            &PageRequest {
                limit: page_limit(q.limit.as_deref())?,
                cursor: q.cursor,
                active: None,
            },
        )
        .await?;
    Ok(ListResponse::of(page, |k| KeyView::from(&k)))
}

pub(crate) async fn delete_key(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let id = ApiKeyId::parse(&id).map_err(|_| ApiError::not_found("API key"))?;
    if !state.keys.delete(&principal.tenant, &id).await? {
        return Err(ApiError::not_found("API key"));
    }
    audit(
        &state,
        &principal.tenant,
        &principal,
        "api_key.delete",
        id.as_str(),
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct AuditView {
    at: String,
    actor: String,
    action: String,
    resource: String,
    detail: Option<serde_json::Value>,
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

/// The tenant's audit trail, newest first.
pub(crate) async fn list_audit(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let page = state
        .audit
        .list(
            &principal.tenant,
            &PageRequest {
                limit: page_limit(q.limit.as_deref())?,
                cursor: q.cursor,
                active: None,
            },
        )
        .await?;
    Ok(ListResponse::of(page, AuditView::from))
}
