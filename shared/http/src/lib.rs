//! HTTP plumbing shared by the ingest and management routers: the one error type and its
//! JSON shape, bounded JSON body reading, and API-key authentication.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Mutex as AsyncMutex;
use tokio::time::Instant;

use skyhook_domain::config::AdminKeySource;
use skyhook_domain::ids::{ApiKeyId, TenantId};
pub use skyhook_domain::model::Role;
use skyhook_domain::ports::{ApiKeyStore, SecretValues, StoreError};
use skyhook_domain::publish::PublishError;

pub mod responses;

/// Every error a route returns: `{"error": {"code", "message"}}` with a fitting status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds the caller should wait before trying again (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, telling the caller to wait `seconds` before trying again.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {limit} bytes"),
        )
    }

    /// A fault of the service itself; the detail goes to the log, never to the caller.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the service failed to handle this request",
        )
    }

    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "backing service unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "a backing service is unavailable; try again",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = skyhook_api_types::ErrorBody {
            error: skyhook_api_types::ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable { .. } => ApiError::unavailable(err),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            StoreError::BadCursor => {
                ApiError::bad_request("invalid_cursor", "cursor is not one this API returned")
            }
            StoreError::Corrupt(_) | StoreError::Rejected { .. } => ApiError::internal(err),
        }
    }
}

impl From<skyhook_domain::redrive::RedriveError> for ApiError {
    fn from(err: skyhook_domain::redrive::RedriveError) -> Self {
        match err {
            skyhook_domain::redrive::RedriveError::Store(e) => e.into(),
            skyhook_domain::redrive::RedriveError::Send(e) => e.into(),
        }
    }
}

impl From<PublishError> for ApiError {
    fn from(err: PublishError) -> Self {
        match err {
            PublishError::UnknownSubscriber(_) => {
                ApiError::unprocessable("unknown_subscriber", err.to_string())
            }
            PublishError::TooManyTargets { .. } => {
                ApiError::unprocessable("too_many_subscriber_ids", err.to_string())
            }
            PublishError::InvalidInput(m) => ApiError::bad_request("invalid_request", m),
            PublishError::InProgress(_) => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                err.to_string(),
            ),
            PublishError::TooLarge { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                err.to_string(),
            ),
            PublishError::Enqueue { .. } => ApiError::unavailable(err),
            PublishError::RateLimited(limited) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                limited.to_string(),
            )
            .with_retry_after(skyhook_domain::tenants::retry_after_secs(
                &limited.retry_after,
            )),
            PublishError::FiltersTooSlow => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "filters_too_slow",
                err.to_string(),
            )
            .with_retry_after(1),
            PublishError::Store(e) => e.into(),
        }
    }
}

/// The (method, path) pairs an OpenAPI document describes, methods in upper case. It reads
/// the document as JSON, as a client does, so it serves the generated document, a router's
/// own part of it, and the file that is served alike.
pub fn documented_routes(doc: &serde_json::Value) -> Vec<(http::Method, String)> {
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) else {
        return Vec::new();
    };
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some_and(|op| op.is_object()))
                .filter_map(|m| http::Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
                .map(move |m| (m, path.clone()))
        })
        .collect()
}

/// JSON `404`/`405` for routes no router claims; shared by every Skyhook HTTP surface.
pub fn with_fallbacks(router: axum::Router) -> axum::Router {
    router
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept that method",
            )
        })
}

/// A query string parsed into `T`, with a rejection in the API's error shape: `400` with the
/// code of the parameter that failed ([`skyhook_api_types::query::error_code`]: `invalid_limit`,
/// `invalid_time`, …; `invalid_query` for the query as a whole, such as a repeated parameter)
/// and a message that names it.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned> ApiQuery<T> {
    /// Parses a raw query string (without the `?`).
    pub fn parse(query: &str) -> Result<T, ApiError> {
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map_err(|e| {
            let param = e.path().to_string();
            let inner = redact_values(&e.inner().to_string());
            if param == "." {
                ApiError::bad_request("invalid_query", format!("query string: {inner}"))
            } else {
                ApiError::bad_request(
                    skyhook_api_types::query::error_code(&param),
                    format!("query parameter {param}: {inner}"),
                )
            }
        })
    }
}

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Self::parse(parts.uri.query().unwrap_or_default()).map(ApiQuery)
    }
}

/// axum's `Path`, with its rejection in the API's error shape (`400 invalid_path`).
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))
    }
}

/// Reads at most `limit` bytes of body: more is a `413`; a body that breaks off (the caller
/// went away, a malformed chunked encoding) is a `400`.
pub async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let inner = e.into_inner();
        if inner
            .downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            ApiError::payload_too_large(limit)
        } else {
            ApiError::bad_request(
                "unreadable_body",
                format!("the request body could not be read: {inner}"),
            )
        }
    })
}

/// Reads at most `limit` bytes of body and parses them as `T`. Malformed JSON is a `400`,
/// JSON of the wrong shape a `422` naming the problem, and an oversized body a `413`.
pub async fn read_json<T: DeserializeOwned>(body: Body, limit: usize) -> Result<T, ApiError> {
    parse_json(&read_body(body, limit).await?)
}

/// [`read_json`] for routes whose body is optional: an empty body is `T::default()`.
pub async fn read_optional_json<T: DeserializeOwned + Default>(
    body: Body,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = read_body(body, limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(&bytes)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "malformed_json",
            "request body is empty; expected a JSON object",
        ));
    }
    // Every body is an object: serde would also fill a struct from an array, by position.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(v) => ApiError::unprocessable(
                "invalid_body",
                format!("request body must be a JSON object, not {}", json_kind(&v)),
            ),
            Err(e) => ApiError::bad_request(
                "malformed_json",
                format!("request body is not valid JSON: {e}"),
            ),
        });
    }
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::unprocessable("invalid_body", redact_values(&e.to_string()))
        }
        _ => ApiError::bad_request(
            "malformed_json",
            format!("request body is not valid JSON: {e}"),
        ),
    })
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// serde's message without the values it quotes from the request (`invalid type: string
/// "Bearer s3cr3t", expected a map` → `invalid type: string, expected a map`): a value sent
/// in the wrong place may be a credential, and error messages end up in logs.
pub fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        // serde quotes a string value as ` "…"` (escaped as Rust does) and names an
        // unknown variant as `` `…` ``; both are the caller's input.
        let closing = match c {
            ' ' if chars.peek() == Some(&'"') => '"',
            '`' if out.ends_with("variant `") => '`',
            _ => continue,
        };
        if closing == '"' {
            chars.next();
            out.pop();
        } else {
            out.truncate(out.len() - 2);
        }
        let mut escaped = false;
        for q in chars.by_ref() {
            match (escaped, q) {
                (false, '\\') => escaped = true,
                (false, q) if q == closing => break,
                _ => escaped = false,
            }
        }
    }
    out
}

/// The key of `Authorization: Bearer <key>`; `401` when there is none or it is malformed.
pub fn bearer_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing API key: send Authorization: Bearer <key>",
        ));
    };
    value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "malformed Authorization header: expected Bearer <key>",
            )
        })
}

/// Routes anyone may call without an API key.
pub const PUBLIC_PATHS: &[&str] = &["/v1/health"];
/// Routes below these prefixes need no API key either: an inbound webhook's sender proves
/// itself by its signature.
pub const PUBLIC_PREFIXES: &[&str] = &["/v1/inbound/"];

/// Whether `path` needs no API key.
pub fn is_public(path: &str) -> bool {
    PUBLIC_PATHS.contains(&path) || PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// A route layer: a request to a route that needs an API key and carries none (or a
/// malformed `Authorization` header) is `401` before its path or query is parsed, so a
/// caller without a key learns nothing from a `400`.
pub async fn require_api_key(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    match bearer_key(req.headers()) {
        Ok(_) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Who is calling: a tenant, a role, and which key (`None` for the bootstrap key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: TenantId,
    pub role: Role,
    pub key_id: Option<ApiKeyId>,
}

/// How the bootstrap key is named in audit records and `created_by`.
pub const BOOTSTRAP_ACTOR: &str = "bootstrap";

impl Principal {
    /// The bootstrap key: admin of tenant `default`, and the only key that may act for
    /// other tenants when creating keys.
    pub fn bootstrap() -> Self {
        Principal {
            tenant: TenantId::default_tenant(),
            role: Role::Admin,
            key_id: None,
        }
    }

    pub fn is_bootstrap(&self) -> bool {
        self.key_id.is_none()
    }

    /// Who this is in the audit trail: the key id, or `bootstrap`.
    pub fn actor(&self) -> String {
        match &self.key_id {
            Some(id) => id.to_string(),
            None => BOOTSTRAP_ACTOR.to_string(),
        }
    }

    /// `403` unless the caller's role includes `needed` (admin ⊃ publisher ⊃ reader).
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this API key's role ({}) cannot do this; it needs {}",
                    self.role.as_str(),
                    needed.as_str()
                ),
            ))
        }
    }
}

/// Prefix of every API key Skyhook issues, so a leaked key is easy to recognise in a scan.
pub const API_KEY_PREFIX: &str = "sk_";

/// A new API key: `sk_` and 32 bytes from the CSPRNG, base64url without padding.
pub fn generate_api_key() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{API_KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// What is stored of a key: its SHA-256 digest. A fast hash is enough here because keys are
/// 256 random bits, not passwords: there is nothing to guess from a leaked digest.
pub fn api_key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Checks `Authorization: Bearer <key>`: the bootstrap key, then the issued keys of the key
/// store. Keys are compared as SHA-256 digests in constant time, so neither their length nor
/// a matching prefix leaks through timing; issued keys are found by their digest, which says
/// nothing about the key.
pub struct Authenticator {
    source: AdminKeySource,
    secrets: Option<Arc<dyn SecretValues>>,
    /// The bootstrap key's digest when it lives in a secret, with when it was read: read
    /// again after [`ADMIN_KEY_TTL`], so a rotated key takes effect on warm containers.
    admin_digest: AsyncMutex<Option<([u8; 32], Instant)>>,
    keys: Option<Arc<dyn ApiKeyStore>>,
}

/// How long a warm container keeps the bootstrap admin key it read from Secrets Manager:
/// the longest a rotated key keeps working, and the longest a key put back keeps failing.
pub const ADMIN_KEY_TTL: std::time::Duration = std::time::Duration::from_secs(5 * 60);

fn digest(key: &str) -> [u8; 32] {
    api_key_digest(key)
}

impl Authenticator {
    /// `secrets` is needed only when the key lives in a secret store; it is read on the
    /// first request, not at start-up.
    pub fn new(source: AdminKeySource, secrets: Option<Arc<dyn SecretValues>>) -> Self {
        Self {
            source,
            secrets,
            admin_digest: AsyncMutex::new(None),
            keys: None,
        }
    }

    /// Also accepts the keys issued through `POST /v1/api-keys`.
    pub fn with_key_store(mut self, keys: Arc<dyn ApiKeyStore>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// The bootstrap key's digest: the configured value, or the secret's, read at most once
    /// per [`ADMIN_KEY_TTL`] (one reader at a time; the others wait for its answer).
    async fn admin_digest(&self) -> Result<[u8; 32], ApiError> {
        let id = match &self.source {
            AdminKeySource::Value(key) => return Ok(digest(key)),
            AdminKeySource::Secret(id) => id,
        };
        let mut cached = self.admin_digest.lock().await;
        if let Some((d, read_at)) = *cached
            && read_at.elapsed() < ADMIN_KEY_TTL
        {
            return Ok(d);
        }
        let secrets = self
            .secrets
            .as_ref()
            .ok_or_else(|| ApiError::internal("admin key secret configured without a client"))?;
        let value = secrets
            .secret_string(id)
            .await
            .map_err(|e| ApiError::unavailable(format!("reading the admin key secret: {e}")))?;
        let key = value
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ApiError::internal("admin key secret is empty"))?;
        let d = digest(key);
        *cached = Some((d, Instant::now()));
        Ok(d)
    }

    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let key = bearer_key(headers)?;
        let presented = digest(key);
        // An issued key does not depend on the bootstrap key: if that cannot be read, issued
        // keys still work, and only the error is kept for a key that is neither.
        let admin = self.admin_digest().await;
        if let Ok(admin) = &admin
            && bool::from(presented.ct_eq(admin))
        {
            return Ok(Principal::bootstrap());
        }
        if let Some(keys) = &self.keys
            && let Some((stored, stored_digest)) = keys.find(&presented).await?
            && bool::from(presented.ct_eq(&stored_digest))
        {
            return Ok(Principal {
                tenant: stored.tenant,
                role: stored.role,
                key_id: Some(stored.id),
            });
        }
        admin?;
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "the API key is not valid",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(http::header::AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    #[tokio::test]
    async fn admin_key_authenticates_as_default_tenant_admin() {
        let auth = Authenticator::new(AdminKeySource::Value("sk_test_0123456789".into()), None);
        let p = auth
            .authenticate(&headers(Some("Bearer sk_test_0123456789")))
            .await
            .unwrap();
        assert_eq!(p.role, Role::Admin);
        assert_eq!(p.tenant, TenantId::default_tenant());
    }

    #[tokio::test]
    async fn missing_malformed_and_wrong_keys_are_401() {
        let auth = Authenticator::new(AdminKeySource::Value("sk_test_0123456789".into()), None);
        for h in [
            headers(None),
            headers(Some("sk_test_0123456789")),
            headers(Some("Bearer ")),
            headers(Some("Bearer sk_test_012345678")),
        ] {
            let err = auth.authenticate(&h).await.unwrap_err();
            assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        }
    }

    #[test]
    fn roles_are_ordered_reader_publisher_admin() {
        let reader = Principal {
            tenant: TenantId::default_tenant(),
            role: Role::Reader,
            key_id: Some(ApiKeyId::new()),
        };
        assert!(reader.require(Role::Reader).is_ok());
        assert_eq!(
            reader.require(Role::Publisher).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
    }

    #[tokio::test]
    async fn issued_keys_authenticate_as_their_tenant_and_role() {
        use skyhook_domain::memory::MemoryApiKeyStore;
        let store = Arc::new(MemoryApiKeyStore::default());
        let key = generate_api_key();
        assert!(key.starts_with("sk_") && key.len() == 46, "{key}");
        let stored = skyhook_domain::model::ApiKey {
            id: ApiKeyId::new(),
            tenant: TenantId::parse("acme").unwrap(),
            role: Role::Publisher,
            description: None,
            created_at: chrono::Utc::now(),
            created_by: BOOTSTRAP_ACTOR.into(),
        };
        store.create(&stored, &api_key_digest(&key)).await.unwrap();
        let auth = Authenticator::new(AdminKeySource::Value("sk_test_0123456789".into()), None)
            .with_key_store(store.clone());
        let p = auth
            .authenticate(&headers(Some(&format!("Bearer {key}"))))
            .await
            .unwrap();
        assert_eq!(p.tenant.as_str(), "acme");
        assert_eq!(p.role, Role::Publisher);
        assert_eq!(p.key_id.as_ref(), Some(&stored.id));
        assert_eq!(p.actor(), stored.id.to_string());
        let other = generate_api_key();
        let err = auth
            .authenticate(&headers(Some(&format!("Bearer {other}"))))
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        store.delete(&stored.tenant, &stored.id).await.unwrap();
        let err = auth
            .authenticate(&headers(Some(&format!("Bearer {key}"))))
            .await
            .unwrap_err();
        assert_eq!(
            err.status,
            StatusCode::UNAUTHORIZED,
            "a deleted key stops working"
        );
    }

    /// A secret that can be changed, or made to fail, as the test goes.
    #[derive(Default)]
    struct FakeSecret {
        value: std::sync::Mutex<Option<String>>,
        failing: std::sync::atomic::AtomicBool,
        reads: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl SecretValues for FakeSecret {
        async fn secret_string(&self, _id: &str) -> Result<Option<String>, StoreError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(StoreError::unavailable("Secrets Manager", "throttled"));
            }
            Ok(self.value.lock().unwrap().clone())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotated_admin_key_takes_effect_within_the_ttl_and_issued_keys_never_need_it() {
        use skyhook_domain::memory::MemoryApiKeyStore;
        let secret = Arc::new(FakeSecret::default());
        *secret.value.lock().unwrap() = Some("sk_old_0123456789".into());
        let store = Arc::new(MemoryApiKeyStore::default());
        let issued = generate_api_key();
        let stored = skyhook_domain::model::ApiKey {
            id: ApiKeyId::new(),
            tenant: TenantId::parse("acme").unwrap(),
            role: Role::Reader,
            description: None,
            created_at: chrono::Utc::now(),
            created_by: BOOTSTRAP_ACTOR.into(),
        };
        store
            .create(&stored, &api_key_digest(&issued))
            .await
            .unwrap();
        let auth = Authenticator::new(
            AdminKeySource::Secret("admin".into()),
            Some(secret.clone() as Arc<dyn SecretValues>),
        )
        .with_key_store(store);
        let old = headers(Some("Bearer sk_old_0123456789"));
        let new = headers(Some("Bearer sk_new_0123456789"));
        assert_eq!(auth.authenticate(&old).await.unwrap().role, Role::Admin);
        assert_eq!(auth.authenticate(&old).await.unwrap().role, Role::Admin);
        assert_eq!(
            secret.reads.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "cached"
        );

        // Rotated: the old key works until the TTL runs out, then only the new one.
        *secret.value.lock().unwrap() = Some("sk_new_0123456789".into());
        tokio::time::advance(ADMIN_KEY_TTL - std::time::Duration::from_secs(1)).await;
        assert!(auth.authenticate(&old).await.is_ok());
        tokio::time::advance(std::time::Duration::from_secs(2)).await;
        assert_eq!(
            auth.authenticate(&old).await.unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(auth.authenticate(&new).await.unwrap().role, Role::Admin);

        // Secrets Manager failing: issued keys still work; the bootstrap key is 503, not 401.
        secret
            .failing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::advance(ADMIN_KEY_TTL).await;
        let p = auth
            .authenticate(&headers(Some(&format!("Bearer {issued}"))))
            .await
            .unwrap();
        assert_eq!(p.tenant.as_str(), "acme");
        assert_eq!(
            auth.authenticate(&new).await.unwrap_err().status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        // Back: read again at once, not after another TTL.
        secret
            .failing
            .store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(auth.authenticate(&new).await.unwrap().role, Role::Admin);
    }

    #[test]
    fn bodies_are_objects_and_errors_do_not_quote_values() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct B {
            name: String,
            headers: Option<std::collections::BTreeMap<String, String>>,
        }
        let err = parse_json::<B>(br#"["a", null]"#).unwrap_err();
        assert_eq!(
            (err.status, err.code),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
        );
        assert!(err.message.contains("an array"), "{}", err.message);
        let err = parse_json::<B>(br#"{"name": "a", "headers": "x-api-key: s3cr3t"}"#).unwrap_err();
        assert_eq!(err.code, "invalid_body");
        assert!(!err.message.contains("s3cr3t"), "{}", err.message);
        assert!(err.message.contains("expected a map"), "{}", err.message);
        assert_eq!(
            parse_json::<B>(b"{nope").unwrap_err().code,
            "malformed_json"
        );
        assert!(parse_json::<B>(br#"{"name": "a"}"#).is_ok());
        assert_eq!(
            redact_values(r#"invalid value: string "a \" b", expected x"#),
            "invalid value: string, expected x"
        );
        assert_eq!(
            redact_values(r#"invalid type: string "\", TOKEN", expected a map"#),
            "invalid type: string, expected a map"
        );
        assert_eq!(
            redact_values("unknown variant `s3cr3t`, expected one of `a`, `b`"),
            "unknown variant, expected one of `a`, `b`"
        );
    }

    #[tokio::test]
    async fn bad_query_strings_are_400_in_the_error_shape() {
        use axum::extract::FromRequestParts;
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Q {
            limit: Option<u32>,
        }
        let (mut parts, _) = http::Request::builder()
            .uri("/v1/x?limit=1&limit=2")
            .body(())
            .unwrap()
            .into_parts();
        let err = match ApiQuery::<Q>::from_request_parts(&mut parts, &()).await {
            Err(e) => e,
            Ok(_) => panic!("a duplicate field is refused"),
        };
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.code, "invalid_query");
        let (mut parts, _) = http::Request::builder()
            .uri("/v1/x?limit=5")
            .body(())
            .unwrap()
            .into_parts();
        let ApiQuery(q) = ApiQuery::<Q>::from_request_parts(&mut parts, &())
            .await
            .ok()
            .unwrap();
        assert_eq!(q.limit, Some(5));
    }

    #[tokio::test]
    async fn an_oversized_body_is_413_and_a_broken_one_400() {
        let big = read_body(Body::from(vec![b'x'; 2048]), 1024)
            .await
            .unwrap_err();
        assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
        let broken = futures::stream::iter(vec![
            Ok(axum::body::Bytes::from_static(b"{\"a\":")),
            Err(std::io::Error::other("connection reset")),
        ]);
        let err = read_body(Body::from_stream(broken), 1024)
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.code, "unreadable_body");
        assert_eq!(read_body(Body::from("ok"), 1024).await.unwrap(), "ok");
        type Fields = std::collections::BTreeMap<String, u32>;
        let empty: Fields = read_optional_json(Body::from(" \n"), 1024).await.unwrap();
        assert!(empty.is_empty());
        let given: Fields = read_optional_json(Body::from(r#"{"n": 7}"#), 1024)
            .await
            .unwrap();
        assert_eq!(given["n"], 7);
    }

    #[test]
    fn json_errors_distinguish_syntax_from_shape() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            a: u32,
        }
        assert_eq!(parse_json::<T>(b"{").unwrap_err().code, "malformed_json");
        assert_eq!(parse_json::<T>(b"").unwrap_err().code, "malformed_json");
        let shape = parse_json::<T>(br#"{"a":"x"}"#).unwrap_err();
        assert_eq!(shape.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(parse_json::<T>(br#"{"a":1}"#).is_ok());
    }

    #[test]
    fn store_errors_map_to_statuses_without_leaking_detail() {
        let e: ApiError = StoreError::unavailable("DynamoDB", "secret internal detail").into();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!e.message.contains("secret internal detail"));
        let e: ApiError = StoreError::BadCursor.into();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
