//! API keys and the audit trail. Keys belong to one tenant and have one role; a tenant's
//! admin manages its own tenant's keys, and only the bootstrap key creates keys for others.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use serde_json::json;

use skyhook_api_types::ListResponse;
use skyhook_api_types::keys::{AuditView, CreateKey, KeyView, WhoAmI};
use skyhook_api_types::query::{PageQuery, page_request};
use skyhook_domain::ids::{ApiKeyId, TenantId};
use skyhook_domain::model::ApiKey;
use skyhook_http::responses::{AuthErrors, BodyErrors, NotFound, QueryErrors};
use skyhook_http::{
    ApiError, ApiPath, ApiQuery, Role, api_key_digest, generate_api_key, read_json,
};

use crate::{ApiState, MAX_BODY_BYTES, audit, audit_in_both, authorize};

const MAX_KEY_DESCRIPTION_CHARS: usize = 256;

/// Creates a key; the answer is the only place the key itself appears.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", request_body = CreateKey,
    responses((status = 201, description = "The key, with the key itself shown this once.", body = KeyView), BodyErrors, AuthErrors))]
pub(crate) async fn create_key(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<KeyView>), ApiError> {
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
    // The tenant is in the registry from its first key (`GET /v1/tenants`).
    state.tenants.ensure(&tenant, key.created_at).await?;
    let detail = Some(json!({"tenant": tenant.as_str(), "role": role.as_str()}));
    // The bootstrap tenant's trail shows what its key did elsewhere, too.
    audit_in_both(
        &state,
        &tenant,
        &principal,
        "api_key.create",
        key.id.as_str(),
        detail,
    )
    .await;
    let mut view = KeyView::from(&key);
    view.key = Some(secret);
    Ok((StatusCode::CREATED, Json(view)))
}

/// The tenant's keys, never the keys themselves.
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", params(PageQuery),
    responses((status = 200, description = "A page of keys.", body = ListResponse<KeyView>), QueryErrors, AuthErrors))]
pub(crate) async fn list_keys(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<ListResponse<KeyView>>, ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let page = state
        .keys
        .list(&principal.tenant, &page_request(q.limit, q.cursor))
        .await?;
    Ok(Json(ListResponse::of(page, |k| KeyView::from(&k))))
}

/// Revokes a key at once.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "The key's id (`key_…`).")),
    responses((status = 204, description = "Revoked."), NotFound, AuthErrors))]
pub(crate) async fn delete_key(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
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

/// The tenant's audit trail, newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(PageQuery),
    responses((status = 200, description = "A page of the audit trail.", body = ListResponse<AuditView>), QueryErrors, AuthErrors))]
pub(crate) async fn list_audit(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<ListResponse<AuditView>>, ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let page = state
        .audit
        .list(&principal.tenant, &page_request(q.limit, q.cursor))
        .await?;
    Ok(Json(ListResponse::of(page, AuditView::from)))
}

/// The calling key: its tenant and role (a console shows only what the role may do).
#[utoipa::path(get, path = "/v1/whoami", tag = "api-keys",
    responses((status = 200, description = "The calling key.", body = WhoAmI), AuthErrors))]
pub(crate) async fn whoami(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
) -> Result<Json<WhoAmI>, ApiError> {
    let principal = authorize(&state, &headers, Role::Reader).await?;
    Ok(Json(WhoAmI {
        tenant: principal.tenant.to_string(),
        role: principal.role,
        key_id: principal.key_id.map(|k| k.to_string()),
    }))
}
