//! Subscriber routes: create, list, read, update, delete, rotate the signing secret, send a
//! test event, and recover failed deliveries of a time window.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::json;
use serde_json::value::RawValue;

use skyhook_api_types::ListResponse;
use skyhook_api_types::events::PublishReceiptView;
use skyhook_api_types::query::{SubscribersQuery, page_request};
use skyhook_api_types::subscribers::{
    CreateSubscriber, Recover, RecoverResult, RotateSecret, RotatedSecret, SubscriberView,
    TransformPreview, TransformPreviewResult, UpdateSubscriber,
};
use skyhook_domain::event_type::{EventType, EventTypeFilter};
use skyhook_domain::ids::{SubscriberId, TenantId};
use skyhook_domain::model::{
    DisabledReason, MASKED_VALUE, MAX_MAX_CONCURRENCY, MAX_RATE_LIMIT, OpsEvent, OpsEventKind,
    Subscriber, format_time, masked_headers,
};
use skyhook_domain::ports::PageRequest;
use skyhook_domain::publish::{MAX_FILTERS_PER_TENANT, PublishRequest};
use skyhook_domain::secret::SigningSecret;
use skyhook_domain::signing::SignatureScheme;
use skyhook_domain::url::SubscriberUrl;
use skyhook_http::responses::{AuthErrors, BodyErrors, Conflict, NotFound, QueryErrors};
use skyhook_http::{ApiError, ApiPath, ApiQuery, Principal, Role, read_json, read_optional_json};

use crate::{ApiState, MAX_BODY_BYTES, audit, authorize, parse_time_param, seen_by};

const MAX_EVENT_TYPES: usize = skyhook_domain::event_type::MAX_FILTERS;
const MAX_HEADERS: usize = 20;
const MAX_DESCRIPTION_CHARS: usize = 1024;
const MAX_HEADER_VALUE_BYTES: usize = 1024;
/// The event type `POST /v1/subscribers/{id}/test` sends.
pub const TEST_EVENT_TYPE: &str = "skyhook.test";

/// Checks the event type filters of a subscriber: 1 to 100 valid filters.
pub fn parse_event_types(raw: &[String]) -> Result<Vec<EventTypeFilter>, ApiError> {
    if raw.is_empty() || raw.len() > MAX_EVENT_TYPES {
        return Err(ApiError::unprocessable(
            "invalid_event_types",
            format!("event_types must hold 1 to {MAX_EVENT_TYPES} entries"),
        ));
    }
    raw.iter()
        .map(|f| {
            EventTypeFilter::parse(f)
                .map_err(|e| ApiError::unprocessable("invalid_event_types", e.to_string()))
        })
        .collect()
}

/// Checks custom headers: valid names and values, none that Skyhook sets itself.
pub fn parse_headers(raw: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError> {
    if raw.len() > MAX_HEADERS {
        return Err(ApiError::unprocessable(
            "invalid_headers",
            format!("at most {MAX_HEADERS} custom headers"),
        ));
    }
    let mut out = BTreeMap::new();
    for (name, value) in raw {
        let lower = name.to_ascii_lowercase();
        if http::HeaderName::from_bytes(lower.as_bytes()).is_err() {
            return Err(ApiError::unprocessable(
                "invalid_headers",
                format!("{name:?} is not a valid header name"),
            ));
        }
        if skyhook_domain::model::RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(ApiError::unprocessable(
                "invalid_headers",
                format!("header {name} is set by Skyhook and cannot be overridden"),
            ));
        }
        if value.len() > MAX_HEADER_VALUE_BYTES || http::HeaderValue::from_str(&value).is_err() {
            return Err(ApiError::unprocessable(
                "invalid_headers",
                format!("the value of header {name} is not a valid header value"),
            ));
        }
        out.insert(lower, value);
    }
    Ok(out)
}

/// The subscriber's custom header values as stored: with its secret, or in the record of
/// a subscriber saved before they moved there.
async fn stored_headers(
    state: &ApiState,
    sub: &Subscriber,
) -> Result<BTreeMap<String, String>, ApiError> {
    Ok(state
        .secrets
        .get(&sub.tenant, &sub.id)
        .await?
        .and_then(|s| s.headers)
        .unwrap_or_else(|| sub.headers.clone()))
}

/// Puts the stored value in place of every value given as [`MASKED_VALUE`], so a subscriber
/// read from the API can be sent back as it is.
fn unmask_headers(
    given: BTreeMap<String, String>,
    stored: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ApiError> {
    given
        .into_iter()
        .map(|(name, value)| {
            if value != MASKED_VALUE {
                return Ok((name, value));
            }
            match stored.get(&name).filter(|v| v.as_str() != MASKED_VALUE) {
                Some(v) => Ok((name, v.clone())),
                None => Err(ApiError::unprocessable(
                    "invalid_headers",
                    format!(
                        "header {name} has no stored value to keep; give its value rather than {MASKED_VALUE:?}"
                    ),
                )),
            }
        })
        .collect()
}

fn check_description(d: &Option<String>) -> Result<(), ApiError> {
    match d {
        Some(d) if d.chars().count() > MAX_DESCRIPTION_CHARS => Err(ApiError::unprocessable(
            "invalid_description",
            format!("description is longer than {MAX_DESCRIPTION_CHARS} characters"),
        )),
        _ => Ok(()),
    }
}

fn parse_url(state: &ApiState, raw: &str) -> Result<SubscriberUrl, ApiError> {
    SubscriberUrl::parse(raw, state.url_policy)
        .map_err(|e| ApiError::unprocessable(e.code(), e.to_string()))
}

fn parse_scheme(raw: &str) -> Result<SignatureScheme, ApiError> {
    SignatureScheme::parse(raw)
        .map_err(|e| ApiError::unprocessable("invalid_signature_scheme", e.to_string()))
}

/// Compiles a transform as it will run, in the jq sandbox; a program that does not compile
/// is a `422` with the compiler's message.
async fn check_transform(state: &ApiState, raw: Option<&str>) -> Result<Option<String>, ApiError> {
    check_program(state, raw, "invalid_transform").await
}

/// Compiles a content filter as fan-out will run it; the same rules as a transform.
async fn check_filter(state: &ApiState, raw: Option<&str>) -> Result<Option<String>, ApiError> {
    check_program(state, raw, "invalid_filter").await
}

/// Refuses a content filter that would give the tenant more than
/// [`MAX_FILTERS_PER_TENANT`] distinct programs: each runs on every event its subscribers'
/// types match, within one publish's shared time budget. `except` is the subscriber being
/// changed (its current filter is being replaced).
async fn check_filter_count(
    state: &ApiState,
    tenant: &TenantId,
    filter: &str,
    except: Option<&SubscriberId>,
) -> Result<(), ApiError> {
    let mut programs = std::collections::BTreeSet::from([filter.to_string()]);
    let mut cursor = None;
    // Bounded: a tenant's list ends, and each page holds up to a thousand.
    for _ in 0..10_000 {
        let page = state
            .subscribers
            .list(
                tenant,
                &PageRequest {
                    limit: 1000,
                    cursor: cursor.take(),
                    active: None,
                },
            )
            .await?;
        programs.extend(
            page.items
                .into_iter()
                .filter(|s| Some(&s.id) != except)
                .filter_map(|s| s.filter),
        );
        if programs.len() > MAX_FILTERS_PER_TENANT {
            return Err(ApiError::unprocessable(
                "too_many_filters",
                format!(
                    "the tenant's subscribers may hold at most {MAX_FILTERS_PER_TENANT} distinct content filters; share one, or remove one first"
                ),
            ));
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(()),
        }
    }
    Ok(())
}

/// A tenant's program is compiled in a sandbox worker, never in the API's own process: a
/// program that could still crash the compiler costs a worker, not the API. A sandbox that
/// cannot compile at all is the service's fault (`503`), not the program's.
async fn check_program(
    state: &ApiState,
    raw: Option<&str>,
    code: &'static str,
) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    match state.sandbox.check(raw).await {
        Ok(()) => Ok(Some(raw.to_string())),
        Err(e) if e.is_unavailable() => Err(ApiError::unavailable(e)),
        Err(e) => Err(ApiError::unprocessable(code, e.to_string())),
    }
}

fn parse_secret(raw: &str) -> Result<SigningSecret, ApiError> {
    SigningSecret::parse(raw).map_err(|e| ApiError::unprocessable("invalid_secret", e.to_string()))
}

pub(crate) fn subscriber_id(raw: &str) -> Result<SubscriberId, ApiError> {
    SubscriberId::parse(raw).map_err(|_| ApiError::not_found("subscriber"))
}

/// The `{id}` of a subscriber route.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Read by the OpenAPI document only; handlers take the id as text.
pub(crate) struct SubscriberPath {
    /// The subscriber's id (`sub_…`).
    id: String,
}

/// The caller's subscriber, or `404`: another tenant's id is as unknown as a made-up one.
pub(crate) async fn load(
    state: &ApiState,
    principal: &Principal,
    raw_id: &str,
) -> Result<Subscriber, ApiError> {
    let id = subscriber_id(raw_id)?;
    let sub = state
        .subscribers
        .get(&principal.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("subscriber"))?;
    Ok(move_plain_headers(state, sub).await)
}

/// A subscriber saved before header values moved to Secrets Manager keeps them in plain
/// text in its record. The first time the API reads it, the values move to its secret and
/// the record keeps only the names; `skyhook subscribers list --all` reads, and so moves,
/// every one. A failure leaves the subscriber as it was (and is logged): the next read
/// tries again.
pub(crate) async fn move_plain_headers(state: &ApiState, sub: Subscriber) -> Subscriber {
    if sub.headers.values().all(|v| v.as_str() == MASKED_VALUE) {
        return sub;
    }
    let moved = async {
        // The values the secret holds win over the record's: set after the record was.
        let mut values = sub.headers.clone();
        if let Some(stored) = state
            .secrets
            .get(&sub.tenant, &sub.id)
            .await?
            .and_then(|s| s.headers)
        {
            values.extend(stored);
        }
        values.retain(|name, v| v.as_str() != MASKED_VALUE && sub.headers.contains_key(name));
        if !state
            .secrets
            .set_headers(&sub.tenant, &sub.id, &values)
            .await?
        {
            return Ok::<_, skyhook_domain::ports::StoreError>(None);
        }
        // Deliveries read the secret (and so the header values) again before the next one,
        // and only then does the record lose its copy: no delivery goes out without them.
        state
            .subscribers
            .secret_changed(&sub.tenant, &sub.id)
            .await?;
        let current = state
            .subscribers
            .get(&sub.tenant, &sub.id)
            .await?
            .unwrap_or_else(|| sub.clone());
        let mut blanked = current.clone();
        blanked.headers = masked_headers(&current.headers);
        blanked.updated_at = Utc::now().max(current.updated_at + chrono::Duration::milliseconds(1));
        state
            .subscribers
            .replace(&blanked, current.updated_at)
            .await?;
        Ok(state
            .subscribers
            .get(&sub.tenant, &sub.id)
            .await?
            .or(Some(blanked)))
    };
    match moved.await {
        Ok(Some(blanked)) => {
            tracing::info!(subscriber = %sub.id, "moved the subscriber's header values to its secret");
            blanked
        }
        Ok(None) => sub,
        Err(e) => {
            tracing::warn!(error = %e, subscriber = %sub.id, "could not move the subscriber's header values to its secret");
            sub
        }
    }
}

/// Checks `max_concurrency`: 1 to 100 deliveries in flight.
fn check_max_concurrency(n: u32) -> Result<u32, ApiError> {
    if (1..=MAX_MAX_CONCURRENCY).contains(&n) {
        Ok(n)
    } else {
        Err(ApiError::unprocessable(
            "invalid_max_concurrency",
            format!("max_concurrency must be from 1 to {MAX_MAX_CONCURRENCY}"),
        ))
    }
}

/// Checks `rate_limit`: 1 to 10,000 deliveries a second.
fn check_rate_limit(n: u32) -> Result<u32, ApiError> {
    if (1..=MAX_RATE_LIMIT).contains(&n) {
        Ok(n)
    } else {
        Err(ApiError::unprocessable(
            "invalid_rate_limit",
            format!("rate_limit must be from 1 to {MAX_RATE_LIMIT} deliveries a second, or null"),
        ))
    }
}

/// A new subscriber's headers: valid, and none given as the mask the API shows.
fn parse_new_headers(raw: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError> {
    let headers = parse_headers(raw)?;
    if let Some(name) = headers
        .iter()
        .find(|(_, v)| v.as_str() == MASKED_VALUE)
        .map(|(k, _)| k)
    {
        return Err(ApiError::unprocessable(
            "invalid_headers",
            format!(
                "header {name} is {MASKED_VALUE:?}, which the API shows in place of a value; give its value"
            ),
        ));
    }
    Ok(headers)
}

/// Stores a new subscriber, its secret (with the header values) first: a subscriber that
/// exists is always deliverable. A record that cannot be written takes its secret away.
async fn store_new(
    state: &ApiState,
    subscriber: &Subscriber,
    secret: &SigningSecret,
    headers: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    let (tenant, id) = (&subscriber.tenant, &subscriber.id);
    state.secrets.create(tenant, id, secret, headers).await?;
    if let Err(e) = state.subscribers.create(subscriber).await {
        if let Err(cleanup) = state.secrets.delete(tenant, id).await {
            tracing::error!(error = %cleanup, subscriber_id = %id, "could not remove the secret of a subscriber that was not created");
        }
        return Err(e.into());
    }
    Ok(())
}

/// Creates a subscriber; the answer is the only place its signing secret appears.
#[utoipa::path(post, path = "/v1/subscribers", tag = "subscribers", request_body = CreateSubscriber,
    responses((status = 201, description = "Created; the answer holds its signing secret, shown this once.", body = SubscriberView), BodyErrors, AuthErrors))]
pub(crate) async fn create_subscriber(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<SubscriberView>), ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let req: CreateSubscriber = read_json(body, MAX_BODY_BYTES).await?;
    let url = parse_url(&state, &req.url)?;
    let event_types = parse_event_types(&req.event_types)?;
    check_description(&req.description)?;
    let secret = match &req.secret {
        Some(s) => parse_secret(s)?,
        None => SigningSecret::generate(),
    };
    let signature_scheme = match &req.signature_scheme {
        Some(s) => parse_scheme(s)?,
        None => SignatureScheme::Standard,
    };
    let headers = parse_new_headers(req.headers.unwrap_or_default())?;
    let max_concurrency = req
        .max_concurrency
        .map(check_max_concurrency)
        .transpose()?
        .unwrap_or(skyhook_domain::model::DEFAULT_MAX_CONCURRENCY);
    let rate_limit = req.rate_limit.map(check_rate_limit).transpose()?;
    let transform = check_transform(&state, req.transform.as_deref()).await?;
    let filter = check_filter(&state, req.filter.as_deref()).await?;
    if let Some(f) = &filter {
        check_filter_count(&state, &principal.tenant, f, None).await?;
    }
    let now = Utc::now();
    let subscriber = Subscriber {
        id: SubscriberId::new(),
        tenant: principal.tenant.clone(),
        url,
        event_types,
        active: true,
        description: req.description,
        // The values go to Secrets Manager with the signing secret; the record keeps names.
        headers: masked_headers(&headers),
        signature_scheme,
        created_at: now,
        updated_at: now,
        secret_version: 0,
        max_concurrency,
        rate_limit,
        disabled_reason: None,
        transform,
        filter,
    };
    store_new(&state, &subscriber, &secret, &headers).await?;
    audit(
        &state,
        &principal.tenant,
        &principal,
        "subscriber.create",
        subscriber.id.as_str(),
        Some(json!({"url": subscriber.url.as_str()})),
    )
    .await;
    let mut view = SubscriberView::from(&subscriber);
    view.secret = Some(secret.expose());
    Ok((StatusCode::CREATED, Json(view)))
}

/// The tenant's subscribers, oldest first, each with its health.
#[utoipa::path(get, path = "/v1/subscribers", tag = "subscribers", params(SubscribersQuery),
    responses((status = 200, description = "A page of subscribers.", body = ListResponse<SubscriberView>), QueryErrors, AuthErrors))]
pub(crate) async fn list_subscribers(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<SubscribersQuery>,
) -> Result<Json<ListResponse<SubscriberView>>, ApiError> {
    let principal = authorize(&state, &headers, Role::Reader).await?;
    let page = state
        .subscribers
        .list(
            &principal.tenant,
            &PageRequest {
                active: q.active,
                ..page_request(q.limit, q.cursor)
            },
        )
        .await?;
    let mut page = page;
    let mut moved = Vec::with_capacity(page.items.len());
    for sub in std::mem::take(&mut page.items) {
        moved.push(move_plain_headers(&state, sub).await);
    }
    page.items = moved;
    let ids: Vec<SubscriberId> = page.items.iter().map(|s| s.id.clone()).collect();
    let health = state.health.get_many(&principal.tenant, &ids).await?;
    Ok(Json(ListResponse::of(page, |s| {
        seen_by(
            SubscriberView::with_health(&s, health.get(&s.id)),
            &principal,
        )
    })))
}

/// One subscriber with its health, never its secret.
#[utoipa::path(get, path = "/v1/subscribers/{id}", tag = "subscribers", params(SubscriberPath),
    responses((status = 200, description = "The subscriber.", body = SubscriberView), NotFound, AuthErrors))]
pub(crate) async fn get_subscriber(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SubscriberView>, ApiError> {
    let principal = authorize(&state, &headers, Role::Reader).await?;
    let sub = load(&state, &principal, &id).await?;
    let health = state.health.get(&principal.tenant, &sub.id).await?;
    Ok(Json(seen_by(
        SubscriberView::with_health(&sub, health.as_ref()),
        &principal,
    )))
}

/// Changes a subscriber.
///
/// Only the fields given change, validated as on create. Disabling keeps the subscriber's
/// deliveries waiting; enabling sends them.
#[utoipa::path(patch, path = "/v1/subscribers/{id}", tag = "subscribers", params(SubscriberPath),
    request_body = UpdateSubscriber,
    responses((status = 200, description = "The subscriber.", body = SubscriberView), BodyErrors, NotFound, Conflict, AuthErrors))]
pub(crate) async fn patch_subscriber(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    body: Body,
) -> Result<Json<SubscriberView>, ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let req: UpdateSubscriber = read_json(body, MAX_BODY_BYTES).await?;
    // Everything is validated before anything is read or written, as on create.
    let patch = Patch::parse(&state, &req).await?;
    let changed = req.fields();
    if changed.is_empty() {
        return Err(ApiError::unprocessable(
            "empty_update",
            "give at least one of url, event_types, active, description, headers, signature_scheme, max_concurrency, rate_limit, transform, filter",
        ));
    }
    let old = load(&state, &principal, &id).await?;
    let mut sub = patch.apply(&state, &req, &old).await?;
    // New header values go to Secrets Manager first; a value given as the mask keeps what
    // is stored under that name.
    let replaced_headers = match patch.headers {
        Some(h) => Some(swap_headers(&state, &old, &mut sub, h).await?),
        None => None,
    };
    // Strictly later than the stored time, which the next edit's condition compares with.
    sub.updated_at = Utc::now().max(old.updated_at + chrono::Duration::milliseconds(1));
    store_patched(&state, &old, &sub, replaced_headers.as_ref()).await?;
    after_patch(&state, &principal, &old, &sub, changed).await?;
    let health = state.health.get(&principal.tenant, &sub.id).await?;
    Ok(Json(seen_by(
        SubscriberView::with_health(&sub, health.as_ref()),
        &principal,
    )))
}

/// The fields of a `PATCH`, each validated as on create.
struct Patch {
    url: Option<SubscriberUrl>,
    event_types: Option<Vec<EventTypeFilter>>,
    headers: Option<BTreeMap<String, String>>,
    scheme: Option<SignatureScheme>,
    max_concurrency: Option<u32>,
    rate_limit: Option<Option<u32>>,
    transform: Option<Option<String>>,
    filter: Option<Option<String>>,
}

impl Patch {
    async fn parse(state: &ApiState, req: &UpdateSubscriber) -> Result<Self, ApiError> {
        if let Some(d) = &req.description {
            check_description(d)?;
        }
        let transform = match &req.transform {
            Some(t) => Some(check_transform(state, t.as_deref()).await?),
            None => None,
        };
        let filter = match &req.filter {
            Some(f) => Some(check_filter(state, f.as_deref()).await?),
            None => None,
        };
        Ok(Patch {
            url: req
                .url
                .as_deref()
                .map(|u| parse_url(state, u))
                .transpose()?,
            event_types: req
                .event_types
                .as_deref()
                .map(parse_event_types)
                .transpose()?,
            headers: req
                .headers
                .clone()
                .map(|h| parse_headers(h.unwrap_or_default()))
                .transpose()?,
            scheme: req
                .signature_scheme
                .as_deref()
                .map(parse_scheme)
                .transpose()?,
            max_concurrency: req.max_concurrency.map(check_max_concurrency).transpose()?,
            rate_limit: req
                .rate_limit
                .map(|r| r.map(check_rate_limit).transpose())
                .transpose()?,
            transform,
            filter,
        })
    }

    /// `old` with the patch's fields (all but the headers, which live with the secret).
    async fn apply(
        &self,
        state: &ApiState,
        req: &UpdateSubscriber,
        old: &Subscriber,
    ) -> Result<Subscriber, ApiError> {
        let mut sub = old.clone();
        if let Some(a) = req.active {
            sub.active = a;
            // A person's choice: disabling says so, enabling clears any reason.
            sub.disabled_reason = (!a).then_some(DisabledReason::Manual);
        }
        if let Some(Some(new)) = &self.filter
            && sub.filter.as_ref() != Some(new)
        {
            check_filter_count(state, &sub.tenant, new, Some(&sub.id)).await?;
        }
        set(&mut sub.url, &self.url);
        set(&mut sub.event_types, &self.event_types);
        set(&mut sub.max_concurrency, &self.max_concurrency);
        set(&mut sub.rate_limit, &self.rate_limit);
        set(&mut sub.transform, &self.transform);
        set(&mut sub.filter, &self.filter);
        set(&mut sub.description, &req.description);
        set(&mut sub.signature_scheme, &self.scheme);
        Ok(sub)
    }
}

/// Sets `field` to `value` when one is given.
fn set<T: Clone>(field: &mut T, value: &Option<T>) {
    if let Some(v) = value {
        *field = v.clone();
    }
}

/// Stores new header values with the secret and masks them on `sub`; the values they
/// replace, to put back if the subscriber's own write fails.
async fn swap_headers(
    state: &ApiState,
    old: &Subscriber,
    sub: &mut Subscriber,
    new: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let before = stored_headers(state, old).await?;
    let values = unmask_headers(new, &before)?;
    if !state
        .secrets
        .set_headers(&old.tenant, &old.id, &values)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "secret_missing",
            "the subscriber's secret is missing; rotate its secret to make a new one, then set its headers",
        ));
    }
    sub.headers = masked_headers(&values);
    Ok(before)
}

/// Replaces the subscriber as it was read; on failure puts back the header values swapped
/// before it. New header values are read again by deliveries from the next one on.
async fn store_patched(
    state: &ApiState,
    old: &Subscriber,
    sub: &Subscriber,
    replaced_headers: Option<&BTreeMap<String, String>>,
) -> Result<(), ApiError> {
    if let Err(e) = state.subscribers.replace(sub, old.updated_at).await {
        if let Some(before) = replaced_headers
            && let Err(undo) = state
                .secrets
                .set_headers(&old.tenant, &old.id, before)
                .await
        {
            tracing::error!(error = %undo, subscriber_id = %old.id, "could not restore the header values of a subscriber that was not updated");
        }
        return Err(e.into());
    }
    if replaced_headers.is_some() {
        // Deliveries read the secret (and so the header values) again before the next one.
        state
            .subscribers
            .secret_changed(&sub.tenant, &sub.id)
            .await?;
    }
    Ok(())
}

/// What follows an edit: a person's disable is an operational event; an enable sends the
/// parked deliveries again; the audit record names the fields changed.
async fn after_patch(
    state: &ApiState,
    principal: &Principal,
    old: &Subscriber,
    sub: &Subscriber,
    changed: Vec<&'static str>,
) -> Result<(), ApiError> {
    let action = match (old.active, sub.active) {
        (false, true) => "subscriber.activate",
        (true, false) => "subscriber.deactivate",
        _ => "subscriber.update",
    };
    if old.active && !sub.active {
        let event = OpsEvent::new(
            OpsEventKind::SubscriberDisabled,
            &sub.tenant,
            &sub.id,
            DisabledReason::Manual.as_str(),
            sub.updated_at,
        );
        if let Err(e) = state.ops.emit(&event).await {
            tracing::error!(error = %e, "could not put the operational event on the bus");
        }
    }
    let mut detail = json!({"fields": changed});
    // Enabled: what was parked while it was disabled goes out again. A failure here leaves
    // the rest parked (enabling again, or a redrive of this subscriber, goes on).
    let unparked = if sub.active && !old.active {
        Some(state.redrive.unpark(&principal.tenant, &sub.id).await)
    } else {
        None
    };
    if let Some(Ok(p)) = &unparked {
        detail["unparked"] = json!(p.handled);
    }
    let id = sub.id.as_str();
    audit(
        state,
        &principal.tenant,
        principal,
        action,
        id,
        Some(detail),
    )
    .await;
    if let Some(result) = unparked {
        let p = result?;
        if !p.complete {
            tracing::warn!(subscriber_id = %sub.id, "not every parked delivery was sent again in time; enable again or redrive this subscriber to go on");
        }
    }
    Ok(())
}

/// Deletes a subscriber.
///
/// Its secret is scheduled for deletion; its waiting deliveries end as
/// `subscriber_deleted`.
#[utoipa::path(delete, path = "/v1/subscribers/{id}", tag = "subscribers", params(SubscriberPath),
    responses((status = 204, description = "Deleted."), NotFound, AuthErrors))]
pub(crate) async fn delete_subscriber(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let id = subscriber_id(&id)?;
    if !state.subscribers.delete(&principal.tenant, &id).await? {
        return Err(ApiError::not_found("subscriber"));
    }
    // The subscriber is gone either way; a secret left behind signs nothing (its name holds
    // a subscriber id that is never reused), so this is logged, not returned as a failure
    // that a retry could only answer with 404.
    if let Err(e) = state.secrets.delete(&principal.tenant, &id).await {
        tracing::error!(error = %e, subscriber_id = %id, "could not schedule the deleted subscriber's secret for deletion");
    }
    // Its parked deliveries end as `subscriber_deleted`; messages still queued end so when
    // the delivery function meets them.
    let ended = state.redrive.end_parked(&principal.tenant, &id).await;
    if let Err(e) = &ended {
        tracing::error!(error = ?e, subscriber_id = %id, "could not end the deleted subscriber's parked deliveries; GET /v1/dlq still lists them");
    }
    audit(
        &state,
        &principal.tenant,
        &principal,
        "subscriber.delete",
        id.as_str(),
        ended.ok().map(|p| json!({"parked_ended": p.handled})),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotates the signing secret.
///
/// Makes a new signing secret current (given, or generated); the old one keeps signing for
/// the grace period, so receivers can switch without dropping a delivery.
#[utoipa::path(post, path = "/v1/subscribers/{id}/rotate-secret", tag = "subscribers",
    params(SubscriberPath),
    request_body(content = Option<RotateSecret>, description = "Optional: no body rotates to a generated secret."),
    responses((status = 200, description = "The new secret, shown this once.", body = RotatedSecret), BodyErrors, NotFound, AuthErrors))]
pub(crate) async fn rotate_secret(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    body: Body,
) -> Result<Json<RotatedSecret>, ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    // The body is optional: no body rotates to a generated secret.
    let req: RotateSecret = read_optional_json(body, MAX_BODY_BYTES).await?;
    let secret = match &req.secret {
        Some(s) => parse_secret(s)?,
        None => SigningSecret::generate(),
    };
    let sub = load(&state, &principal, &id).await?;
    let expires = match state.secrets.rotate(&sub.tenant, &sub.id, &secret).await? {
        Some(until) => Some(format_time(until)),
        None => {
            // The secret was lost (deleted by hand): the new one becomes the only one. Header
            // values went with it, unless the record still holds them (saved before they
            // moved); set them again with a PATCH.
            let kept: BTreeMap<String, String> = sub
                .headers
                .iter()
                .filter(|(_, v)| v.as_str() != MASKED_VALUE)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            state
                .secrets
                .create(&sub.tenant, &sub.id, &secret, &kept)
                .await?;
            None
        }
    };
    // Caches of the secret read it again before the next delivery, not after a TTL.
    state
        .subscribers
        .secret_changed(&sub.tenant, &sub.id)
        .await?;
    audit(
        &state,
        &principal.tenant,
        &principal,
        "subscriber.rotate_secret",
        sub.id.as_str(),
        None,
    )
    .await;
    Ok(Json(RotatedSecret {
        id: sub.id.to_string(),
        secret: secret.expose(),
        previous_secret_expires_at: expires,
    }))
}

/// Sends a `skyhook.test` event to this subscriber only, through the normal pipeline.
#[utoipa::path(post, path = "/v1/subscribers/{id}/test", tag = "subscribers", params(SubscriberPath),
    responses((status = 202, description = "The test event was published.", body = PublishReceiptView), NotFound, Conflict, AuthErrors))]
pub(crate) async fn send_test(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<PublishReceiptView>), ApiError> {
    let principal = authorize(&state, &headers, Role::Publisher).await?;
    let sub = load(&state, &principal, &id).await?;
    if !sub.active {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "subscriber_inactive",
            "the subscriber is not active; activate it with PATCH before testing",
        ));
    }
    let data = json!({
        "subscriber_id": sub.id.as_str(),
        "message": "This is a test event from Skyhook.",
    });
    let receipt = state
        .publisher
        .publish(PublishRequest {
            tenant: principal.tenant.clone(),
            event_type: EventType::parse(TEST_EVENT_TYPE)
                .map_err(|e| ApiError::internal(format!("test event type: {e}")))?,
            data: RawValue::from_string(data.to_string())
                .map_err(|e| ApiError::internal(format!("test event data: {e}")))?,
            idempotency_key: None,
            subscriber_ids: Some(vec![sub.id.clone()]),
            correlation_id: None,
            timestamp: None,
        })
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PublishReceiptView::from(receipt)),
    ))
}

/// Runs the subscriber's transform (or the one given) on a sample event, in the same sandbox
/// and limits as a delivery, and answers with the body a delivery would send.
#[utoipa::path(post, path = "/v1/subscribers/{id}/transform/preview", tag = "subscribers",
    params(SubscriberPath), request_body = TransformPreview,
    responses((status = 200, description = "The body a delivery of the sample would send.", body = TransformPreviewResult),
        BodyErrors, NotFound, AuthErrors))]
pub(crate) async fn preview_transform(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    body: Body,
) -> Result<Json<TransformPreviewResult>, ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let req: TransformPreview = read_json(body, MAX_BODY_BYTES).await?;
    let event_type = EventType::parse(&req.event_type)
        .map_err(|e| ApiError::unprocessable("invalid_event_type", e.to_string()))?;
    let timestamp =
        parse_time_param("timestamp", req.timestamp.as_deref())?.unwrap_or_else(Utc::now);
    let given = check_transform(&state, req.transform.as_deref()).await?;
    let sub = load(&state, &principal, &id).await?;
    let event = json!({
        "type": event_type.as_str(),
        "timestamp": format_time(timestamp),
        "data": req.data,
    });
    let body = match given.or(sub.transform) {
        None => event,
        Some(program) => {
            let out = state
                .sandbox
                .run(&principal.tenant, &program, &event.to_string())
                .await
                .map_err(|e| ApiError::unprocessable("transform_failed", e.to_string()))?;
            serde_json::from_str(&out).map_err(ApiError::internal)?
        }
    };
    Ok(Json(TransformPreviewResult { body }))
}

/// Recovers failed deliveries of a time window.
///
/// Re-enqueues this subscriber's deliveries that failed for good and had a failed attempt
/// in `[since, until]`, rebuilt from the stored events. Deliveries that are no longer failed
/// (delivered since, or already recovered) are skipped, so calling it again is safe.
#[utoipa::path(post, path = "/v1/subscribers/{id}/recover", tag = "subscribers",
    params(SubscriberPath), request_body = Recover,
    responses((status = 200, description = "What this call recovered; call again while `complete` is false.", body = RecoverResult), BodyErrors, NotFound, AuthErrors))]
pub(crate) async fn recover(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    body: Body,
) -> Result<Json<RecoverResult>, ApiError> {
    let principal = authorize(&state, &headers, Role::Admin).await?;
    let req: Recover = read_json(body, MAX_BODY_BYTES).await?;
    let since = parse_time_param("since", req.since.as_deref())?
        .ok_or_else(|| ApiError::unprocessable("invalid_time", "since is required"))?;
    let until: Option<DateTime<Utc>> = parse_time_param("until", req.until.as_deref())?;
    if until.is_some_and(|u| u < since) {
        return Err(ApiError::unprocessable(
            "invalid_time",
            "until must not be before since",
        ));
    }
    let sub = load(&state, &principal, &id).await?;
    let done = state.redrive.recover(&sub, since, until).await?;
    audit(
        &state,
        &principal.tenant,
        &principal,
        "subscriber.recover",
        sub.id.as_str(),
        Some(json!({
            "since": format_time(since),
            "until": until.map(format_time),
            "recovered": done.recovered,
        })),
    )
    .await;
    Ok(Json(RecoverResult {
        recovered: done.recovered,
        skipped: done.skipped,
        complete: done.complete,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_invalid_headers_are_refused() {
        let ok = parse_headers(BTreeMap::from([("X-Tenant".into(), "acme".into())])).unwrap();
        assert_eq!(ok.get("x-tenant").unwrap(), "acme");
        for (k, v) in [
            ("webhook-signature", "x"),
            ("Content-Type", "text/plain"),
            ("bad header", "x"),
            ("x-ok", "line\nbreak"),
        ] {
            let err = parse_headers(BTreeMap::from([(k.to_string(), v.to_string())])).unwrap_err();
            assert_eq!(err.code, "invalid_headers", "{k}");
        }
    }

    #[test]
    fn event_type_lists_must_be_non_empty_and_valid() {
        assert!(parse_event_types(&[]).is_err());
        assert!(parse_event_types(&["order.*".into(), "*".into()]).is_ok());
        assert_eq!(
            parse_event_types(&["order.*.x".into()]).unwrap_err().code,
            "invalid_event_types"
        );
    }

    #[test]
    fn patch_tells_null_from_absent() {
        let p: UpdateSubscriber = serde_json::from_str(r#"{"description": null}"#).unwrap();
        assert_eq!(p.description, Some(None));
        assert!(p.headers.is_none());
        assert_eq!(p.fields(), ["description"]);
        let p: UpdateSubscriber = serde_json::from_str(r#"{"headers": {"x-a": "1"}}"#).unwrap();
        assert_eq!(p.headers.unwrap().unwrap().len(), 1);
        assert!(serde_json::from_str::<UpdateSubscriber>(r#"{"secret": "whsec_x"}"#).is_err());
        // What the CLI sends is what the API reads: null stays null, absent stays absent.
        let clear = UpdateSubscriber {
            rate_limit: Some(None),
            ..UpdateSubscriber::default()
        };
        assert_eq!(
            serde_json::to_string(&clear).unwrap(),
            r#"{"rate_limit":null}"#
        );
    }
}
