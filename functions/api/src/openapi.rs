//! The OpenAPI 3.1 document of the whole HTTP API (management and ingest routes), written by
//! hand in `openapi.json` beside this file and served as is. A test compares its paths with
//! the routes both routers serve, so the two cannot drift apart.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;

use skyhook_http::{ApiError, Role};

use crate::{ApiState, authorize};

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// The (method, path) pairs the document describes, methods in upper case.
pub fn operations() -> Vec<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap_or_default();
    let mut out = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) {
        for (path, item) in paths {
            if let Some(ops) = item.as_object() {
                for method in ops.keys() {
                    out.push((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
    }
    out
}

pub(crate) async fn serve(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    authorize(&state, &headers, Role::Reader).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], DOCUMENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_lists_the_management_routes() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let ops = operations();
        for (method, path) in crate::routes() {
            assert!(
                ops.contains(&(method.to_string(), path.to_string())),
                "{method} {path} is served but not documented"
            );
        }
    }

    #[test]
    fn every_schema_reference_resolves() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        let text = DOCUMENT;
        for part in text.split("\"$ref\": \"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{name} is referenced but not defined"
            );
        }
    }
}
