//! The one error type of every route, its JSON shape, and the fallbacks for routes and
//! methods no router claims.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use skyhook_domain::ports::StoreError;
use skyhook_domain::publish::PublishError;

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
