//! Inbound sources: where webhooks from outside arrive, how their senders sign, and which
//! event type each message becomes. Admins manage them; readers may look. A source's secret
//! is in Secrets Manager, shown once when created.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use serde_json::json;

use skyhook_api_types::ListResponse;
use skyhook_api_types::query::{PageQuery, page_request};
use skyhook_api_types::sources::{CreateSource, SourceView, UpdateSource};
use skyhook_domain::ids::SourceId;
use skyhook_domain::inbound::{EventTypeRule, HmacSettings, Scheme, Source, SourceSecret};
use skyhook_http::responses::{AuthErrors, BodyErrors, Conflict, NotFound, QueryErrors};
use skyhook_http::{ApiError, ApiPath, ApiQuery, Principal, Role, read_json};

use crate::{ApiState, MAX_BODY_BYTES, audit, authorize};

fn parse_scheme(raw: &str) -> Result<Scheme, ApiError> {
    Scheme::parse(raw).map_err(|e| ApiError::unprocessable("invalid_verification", e))
}

fn parse_secret(scheme: Scheme, raw: &str) -> Result<SourceSecret, ApiError> {
    SourceSecret::parse(scheme, raw).map_err(|e| {
        ApiError::unprocessable(
            "invalid_secret",
            format!("secret for {}: {e}", scheme.as_str()),
        )
    })
}

/// A source's own checks: the name, the event type rule and the hmac settings.
fn check(source: &Source) -> Result<(), ApiError> {
    source
        .check()
        .map_err(|e| ApiError::unprocessable(e.code(), e.to_string()))
}

/// The caller's source: another tenant's, like a missing one, is not found.
async fn load(state: &ApiState, principal: &Principal, id: &str) -> Result<Source, ApiError> {
    let not_found = || ApiError::not_found("source");
    let id = SourceId::parse(id).map_err(|_| not_found())?;
    state
        .sources
        .get(&id)
        .await?
        .filter(|s| s.tenant == principal.tenant)
        .ok_or_else(not_found)
}

/// Creates an inbound source; the answer is the only place its secret appears.
#[utoipa::path(post, path = "/v1/sources", tag = "sources", request_body = CreateSource,
    responses((status = 201, description = "The source, with its secret shown this once.", body = SourceView), BodyErrors, AuthErrors))]
pub(crate) async fn create_source(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<SourceView>), ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let req: CreateSource = read_json(body, MAX_BODY_BYTES).await?;
    let scheme = parse_scheme(&req.verification)?;
    let now = Utc::now();
    let source = Source {
        id: SourceId::new(),
        tenant: principal.tenant.clone(),
        name: req.name,
        scheme,
        hmac: req.hmac,
        event_type: req.event_type,
        created_at: now,
        updated_at: now,
        secret_version: 0,
    };
    check(&source)?;
    let secret = match &req.secret {
        Some(raw) => parse_secret(scheme, raw)?,
        None => SourceSecret::generate(scheme),
    };
    // The secret goes first: a source that exists can always verify.
    state
        .source_secrets
        .create(&source.tenant, &source.id, &secret)
        .await?;
    if let Err(e) = state.sources.create(&source).await {
        if let Err(cleanup) = state
            .source_secrets
            .delete(&source.tenant, &source.id)
            .await
        {
            tracing::warn!(error = %cleanup, source = %source.id, "could not remove the secret of a source that was not created");
        }
        return Err(e.into());
    }
    audit(
        &state,
        &principal.tenant,
        &principal,
        "source.create",
        source.id.as_str(),
        Some(json!({"name": source.name, "verification": scheme.as_str()})),
    )
    .await;
    let mut view = SourceView::from(&source);
    view.secret = Some(secret.expose().to_string());
    Ok((StatusCode::CREATED, Json(view)))
}

/// The tenant's sources.
#[utoipa::path(get, path = "/v1/sources", tag = "sources", params(PageQuery),
    responses((status = 200, description = "A page of sources.", body = ListResponse<SourceView>), QueryErrors, AuthErrors))]
pub(crate) async fn list_sources(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<ListResponse<SourceView>>, ApiError> {
    let principal = authorize(&state, &headers, Role::Reader).await?;
    let page = state
        .sources
        .list(&principal.tenant, &page_request(q.limit, q.cursor))
        .await?;
    Ok(Json(ListResponse::of(page, |s| SourceView::from(&s))))
}

/// One source.
#[utoipa::path(get, path = "/v1/sources/{id}", tag = "sources",
    params(("id" = String, Path, description = "The source's id (`src_…`).")),
    responses((status = 200, description = "The source.", body = SourceView), NotFound, AuthErrors))]
pub(crate) async fn get_source(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SourceView>, ApiError> {
    let principal = authorize(&state, &headers, Role::Reader).await?;
    let source = load(&state, &principal, &id).await?;
    Ok(Json(SourceView::from(&source)))
}

/// `old` with the fields given; the HMAC settings of a scheme no longer used go with it.
fn patched(
    old: &Source,
    scheme: Option<Scheme>,
    name: Option<String>,
    event_type: Option<EventTypeRule>,
    hmac: Option<HmacSettings>,
) -> Source {
    let mut source = old.clone();
    if let Some(name) = name {
        source.name = name;
    }
    if let Some(rule) = event_type {
        source.event_type = rule;
    }
    if let Some(scheme) = scheme {
        source.scheme = scheme;
        if scheme != Scheme::HmacSha256 {
            source.hmac = None;
        }
    }
    if let Some(hmac) = hmac {
        source.hmac = Some(hmac);
    }
    source
}

/// A new verification scheme without a new secret: the stored secret must suit it.
async fn check_secret_suits(
    state: &ApiState,
    old: &Source,
    scheme: Scheme,
) -> Result<(), ApiError> {
    let current = state
        .source_secrets
        .get(&old.tenant, &old.id)
        .await?
        .ok_or_else(|| ApiError::not_found("source"))?;
    parse_secret(scheme, current.secret.expose()).map_err(|_| {
        ApiError::unprocessable(
            "invalid_secret",
            format!(
                "the source's secret does not suit {}; give a new secret with it",
                scheme.as_str()
            ),
        )
    })?;
    Ok(())
}

/// Writes the secret of the source's new version, trying twice: until it lands, the
/// previous secret keeps verifying.
async fn put_new_secret(
    state: &ApiState,
    source: &Source,
    new: &SourceSecret,
) -> Result<(), ApiError> {
    let (tenant, id, version) = (&source.tenant, &source.id, source.secret_version);
    let mut put = state.source_secrets.put(tenant, id, new, version).await;
    if let Err(e) = &put {
        tracing::warn!(error = %e, source = %id, "could not write a source's new secret; trying again");
        put = state.source_secrets.put(tenant, id, new, version).await;
    }
    match put {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::not_found("source")),
        Err(e) => {
            tracing::error!(error = %e, source = %id, "the source's new secret was not written: the previous one still verifies; send the change again");
            Err(e.into())
        }
    }
}

/// Changes a source: only the fields given change.
///
/// A new `secret` applies to the very next inbound request. A new `verification` needs a
/// secret that suits it: give one with it when the current one does not.
#[utoipa::path(patch, path = "/v1/sources/{id}", tag = "sources", request_body = UpdateSource,
    params(("id" = String, Path, description = "The source's id (`src_…`).")),
    responses((status = 200, description = "The source as it now is.", body = SourceView), BodyErrors, NotFound, Conflict, AuthErrors))]
pub(crate) async fn patch_source(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    body: Body,
) -> Result<Json<SourceView>, ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let req: UpdateSource = read_json(body, MAX_BODY_BYTES).await?;
    let changed = req.fields();
    if changed.is_empty() {
        return Err(ApiError::unprocessable(
            "empty_update",
            "give at least one of name, verification, secret, event_type, hmac",
        ));
    }
    let scheme = req.verification.as_deref().map(parse_scheme).transpose()?;
    let old = load(&state, &principal, &id).await?;
    let mut source = patched(&old, scheme, req.name, req.event_type, req.hmac);
    check(&source)?;
    let secret = req
        .secret
        .as_deref()
        .map(|raw| parse_secret(source.scheme, raw))
        .transpose()?;
    if secret.is_none() && source.scheme != old.scheme {
        check_secret_suits(&state, &old, source.scheme).await?;
    }
    // The record first, under its version, then the secret written for that version: a
    // change that loses a race to another (its record update conflicts) has touched no
    // secret, so the winner's stays. An ingest that meets the new record before its secret
    // keeps using the stored secret, and caches it only once the versions agree.
    if secret.is_some() {
        source.secret_version += 1;
    }
    source.updated_at = Utc::now().max(old.updated_at + chrono::Duration::milliseconds(1));
    state.sources.replace(&source, old.updated_at).await?;
    if let Some(new) = &secret {
        put_new_secret(&state, &source, new).await?;
    }
    audit(
        &state,
        &principal.tenant,
        &principal,
        "source.update",
        source.id.as_str(),
        Some(json!({"fields": changed})),
    )
    .await;
    Ok(Json(SourceView::from(&source)))
}

/// Deletes a source and its secret: its inbound URL stops at once.
#[utoipa::path(delete, path = "/v1/sources/{id}", tag = "sources",
    params(("id" = String, Path, description = "The source's id (`src_…`).")),
    responses((status = 204, description = "Deleted."), NotFound, AuthErrors))]
pub(crate) async fn delete_source(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let source = load(&state, &principal, &id).await?;
    // The secret first: without it the inbound URL already answers 404, and a delete that
    // fails halfway is finished by the next one (a missing secret deletes as done).
    state
        .source_secrets
        .delete(&source.tenant, &source.id)
        .await?;
    if !state.sources.delete(&principal.tenant, &source.id).await? {
        return Err(ApiError::not_found("source"));
    }
    audit(
        &state,
        &principal.tenant,
        &principal,
        "source.delete",
        source.id.as_str(),
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
