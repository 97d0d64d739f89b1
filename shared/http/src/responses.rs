//! The error answers routes can give, for the OpenAPI document: each route lists the groups
//! that apply to it beside its own success answer. All share the one error shape,
//! `{"error": {"code", "message"}}`.

use skyhook_api_types::ErrorBody;
use utoipa::IntoResponses;

/// What any route that needs an API key can answer besides its own.
#[derive(IntoResponses)]
pub enum AuthErrors {
    /// No API key, or one that is unknown or revoked (`unauthorized`, `invalid_api_key`).
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The key's role does not allow this (`forbidden`).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// A fault of the service itself (`internal_error`); the detail is in its log.
    #[response(status = 500)]
    Internal(ErrorBody),
    /// A backing service failed (`service_unavailable`); try again.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// A query string that does not parse.
#[derive(IntoResponses)]
pub enum QueryErrors {
    /// A query parameter that does not parse: the code names it (`invalid_limit`,
    /// `invalid_time`, `invalid_outcome`, `invalid_subscriber_id`, …; `invalid_query` for the
    /// query as a whole), or a cursor this API did not hand out for this query
    /// (`invalid_cursor`).
    #[response(status = 400)]
    BadQuery(ErrorBody),
}

/// A JSON body that is malformed, too large or invalid.
#[derive(IntoResponses)]
pub enum BodyErrors {
    /// The body is not JSON, or not an object (`malformed_json`), or could not be read
    /// (`unreadable_body`).
    #[response(status = 400)]
    Malformed(ErrorBody),
    /// The body is larger than the route takes (`payload_too_large`).
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// Well-formed but invalid: `invalid_body` for unknown or mistyped fields, or a code
    /// naming the field, such as `invalid_url` or `invalid_event_types`.
    #[response(status = 422)]
    Invalid(ErrorBody),
}

/// The id in the path names nothing of the caller's tenant.
#[derive(IntoResponses)]
pub enum NotFound {
    /// No such resource in the caller's tenant (`not_found`); another tenant's is answered
    /// the same.
    #[response(status = 404)]
    NotFound(ErrorBody),
}

/// The request clashes with the resource's state.
#[derive(IntoResponses)]
pub enum Conflict {
    /// A concurrent change (`conflict`), an inactive subscriber (`subscriber_inactive`), a
    /// publish with the same idempotency key under way (`idempotency_in_progress`), a missing
    /// secret (`secret_missing`).
    #[response(status = 409)]
    Conflict(ErrorBody),
}

/// The tenant is past its publish limit.
#[derive(IntoResponses)]
pub enum RateLimited {
    /// The tenant published more than its limits allow (`rate_limited`); `Retry-After` says
    /// how many seconds to wait. Other tenants are not affected.
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds to wait before trying again.")))]
    RateLimited(ErrorBody),
}
