//! Tenants and their publish limits, for the bootstrap key: `GET /v1/tenants`,
//! `GET/PUT /v1/tenants/{tenant}`. A tenant is recorded when its first API key is created
//! (and `default` always is); `PUT` records one with limits of its own.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use serde_json::json;

use skyhook_api_types::ListResponse;
use skyhook_api_types::query::{PageQuery, page_request};
use skyhook_api_types::tenants::{PutTenant, TenantView};
use skyhook_domain::ids::TenantId;
use skyhook_domain::tenants::{TenantLimits, TenantRecord};
use skyhook_http::responses::{AuthErrors, BodyErrors, NotFound, QueryErrors};
use skyhook_http::{ApiError, ApiPath, ApiQuery, Principal, Role, read_json};

use crate::{ApiState, MAX_BODY_BYTES, audit_in_both, authorize};

/// Only the bootstrap key sees and sets tenants: a tenant's own admin may not raise its
/// limits.
async fn bootstrap(state: &ApiState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let principal = authorize(state, headers, Role::Admin).await?;
    if !principal.is_bootstrap() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only the bootstrap key manages tenants",
        ));
    }
    Ok(principal)
}

fn tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(raw).map_err(|_| ApiError::not_found("tenant"))
}

/// The stack's tenants, by id, with the limits each publishes under.
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", params(PageQuery),
    responses((status = 200, description = "A page of tenants.", body = ListResponse<TenantView>), QueryErrors, AuthErrors))]
pub(crate) async fn list_tenants(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<ListResponse<TenantView>>, ApiError> {
    bootstrap(&state, &headers).await?;
    let request = page_request(q.limit, q.cursor);
    let mut page = state.tenants.list(request.clone()).await?;
    // `default` is always a tenant; recorded the first time a valid list would lack it.
    let default = TenantId::default_tenant();
    if request.cursor.is_none() && !page.items.iter().any(|t| t.id == default) {
        state.tenants.ensure(&default, Utc::now()).await?;
        page = state.tenants.list(request).await?;
    }
    let defaults = state.tenant_defaults;
    Ok(Json(ListResponse::of(page, |t| {
        TenantView::of(&t, defaults)
    })))
}

/// One tenant and the limits it publishes under.
#[utoipa::path(get, path = "/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's id.")),
    responses((status = 200, description = "The tenant.", body = TenantView), NotFound, AuthErrors))]
pub(crate) async fn get_tenant(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<TenantView>, ApiError> {
    bootstrap(&state, &headers).await?;
    let tenant = tenant_id(&raw)?;
    if tenant == TenantId::default_tenant() {
        state.tenants.ensure(&tenant, Utc::now()).await?;
    }
    let record = state
        .tenants
        .get(&tenant)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    Ok(Json(TenantView::of(&record, state.tenant_defaults)))
}

/// Sets a tenant's limits (`null`: the stack's defaults), recording the tenant if it is
/// new. Every instance publishes under them within 30 seconds.
#[utoipa::path(put, path = "/v1/tenants/{tenant}", tag = "tenants", request_body = PutTenant,
    params(("tenant" = String, Path, description = "The tenant's id.")),
    responses((status = 200, description = "The tenant, as it is now.", body = TenantView), BodyErrors, NotFound, AuthErrors))]
pub(crate) async fn put_tenant(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiPath(raw): ApiPath<String>,
    body: Body,
) -> Result<Json<TenantView>, ApiError> {
    let principal = bootstrap(&state, &headers).await?;
    let tenant = TenantId::parse(&raw)
        .map_err(|e| ApiError::unprocessable("invalid_tenant", e.to_string()))?;
    let req: PutTenant = read_json(body, MAX_BODY_BYTES).await?;
    let limits = req
        .limits
        .map(|l| TenantLimits::new(l.events_per_second, l.burst))
        .transpose()
        .map_err(|e| ApiError::unprocessable("invalid_limits", e))?;
    let now = Utc::now();
    let record = state
        .tenants
        .put(&TenantRecord {
            id: tenant.clone(),
            limits,
            created_at: now,
            updated_at: now,
        })
        .await?;
    if let Some(gate) = &state.publisher.gate {
        gate.forget(&tenant).await;
    }
    let detail = Some(json!({
        "tenant": tenant.as_str(),
        "limits": limits.map(|l| json!({"events_per_second": l.events_per_second, "burst": l.burst})),
    }));
    audit_in_both(
        &state,
        &tenant,
        &principal,
        "tenant.update",
        tenant.as_str(),
        detail,
    )
    .await;
    Ok(Json(TenantView::of(&record, state.tenant_defaults)))
}
