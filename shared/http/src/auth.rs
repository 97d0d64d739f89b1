//! API-key authentication: the bearer key, its digest, the bootstrap key, and the principal
//! a request acts as.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Mutex as AsyncMutex;
use tokio::time::Instant;

use skyhook_domain::config::AdminKeySource;
use skyhook_domain::ids::{ApiKeyId, TenantId};
use skyhook_domain::model::Role;
use skyhook_domain::ports::{ApiKeyStore, SecretValues};

use crate::ApiError;

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
