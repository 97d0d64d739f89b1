//! The HTTP API's requests, queries and answers, in one place. The handlers read and write
//! these types, the OpenAPI document is generated from them (and from the router), and the CLI
//! reads the API's answers into them, so the three cannot describe different APIs.
//!
//! Every answer type is `Serialize` (the server writes it) and `Deserialize` (the CLI reads
//! it); every request type is the other way round as well, so the CLI builds its requests
//! from the same structs the server parses.

pub mod deliveries;
pub mod dlq;
pub mod events;
pub mod keys;
pub mod query;
pub mod sources;
pub mod subscribers;
pub mod tenants;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use query::{Cursor, Limit, Timestamp};

/// `{"data": [...], "next_cursor": ...}`, the shape of every list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    /// Pass it back as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> ListResponse<T> {
    /// A store's page, each item shown through `view`.
    pub fn of<U>(page: skyhook_domain::ports::Page<U>, view: impl Fn(U) -> T) -> Self {
        ListResponse {
            data: page.items.into_iter().map(view).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// Every error: a stable code to branch on and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// snake_case, stable: `invalid_limit`, `not_found`, `unauthorized`, …
    #[schema(example = "invalid_limit")]
    pub code: String,
    /// What went wrong, in words.
    pub message: String,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthStatus {
    #[schema(example = "ok")]
    pub status: String,
    /// The running Skyhook version.
    pub version: String,
}

impl HealthStatus {
    pub fn ok() -> Self {
        HealthStatus {
            status: "ok".into(),
            version: skyhook_domain::VERSION.into(),
        }
    }
}
