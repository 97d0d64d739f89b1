//! The OpenAPI 3.1 document of the whole HTTP API (management and ingest routes), generated
//! from the handlers' `#[utoipa::path]` operations and the `skyhook-api-types` types they read
//! and answer with. The generated document is kept in `openapi.json` beside this file and
//! served as it is: `make openapi` writes it, and `make test` fails while it is stale.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::{Modify, OpenApi as _};

use skyhook_http::responses::AuthErrors;
use skyhook_http::{ApiError, Role};

use crate::{ApiState, authorize};

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// The name of the API-key security scheme in the document.
pub const SECURITY_SCHEME: &str = "api_key";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Skyhook",
        description = "Webhook delivery on AWS serverless: publish events, manage subscribers, \
            follow deliveries, recover failures. Every error is \
            `{\"error\": {\"code\", \"message\"}}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "events", description = "Publish events and see how their deliveries went."),
        (name = "subscribers", description = "Webhook endpoints: their filters, secrets and health."),
        (name = "deliveries", description = "The attempt log and delivery totals."),
        (name = "dlq", description = "Deliveries that ran out of attempts, and sending them back."),
        (name = "api-keys", description = "Keys: each belongs to one tenant and has one role."),
        (name = "audit", description = "Management changes of the tenant."),
        (name = "tenants", description = "Tenants and their publish limits (the bootstrap key's)."),
        (name = "meta", description = "Health and this document."),
    ),
    components(schemas(
        skyhook_api_types::Limit,
        skyhook_api_types::Cursor,
        skyhook_api_types::Timestamp
    )),
    modifiers(&ApiKeyAuth)
)]
struct Base;

/// Every route needs `Authorization: Bearer <api key>` unless its operation says otherwise.
struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SECURITY_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`sk_…`). Its role decides what it may do: reader, \
                         publisher or admin.",
                    ))
                    .build(),
            ),
        );
        doc.security = Some(vec![SecurityRequirement::new(
            SECURITY_SCHEME,
            Vec::<String>::new(),
        )]);
    }
}

/// The management API's operations.
pub fn paths() -> OpenApi {
    crate::api_routes().into_openapi()
}

/// The whole document: the management routes and the ingest routes
/// (`skyhook_ingest::openapi()`), which another function serves behind the same API.
pub fn generate(ingest: OpenApi) -> OpenApi {
    let mut doc = Base::openapi();
    doc.info.version = skyhook_domain::VERSION.to_string();
    doc.merge(paths());
    doc.merge(ingest);
    optional_bodies_are_absent_not_null(&mut doc);
    doc
}

/// An optional body (`Option<T>` in an operation) is one that may be left out, but utoipa
/// writes it as "`T` or `null`", and a body of `null` is refused. This keeps `T` alone on
/// bodies that are not required.
fn optional_bodies_are_absent_not_null(doc: &mut OpenApi) {
    use utoipa::openapi::schema::{Schema, SchemaType, Type};
    use utoipa::openapi::{RefOr, Required};
    for item in doc.paths.paths.values_mut() {
        for op in [&mut item.post, &mut item.put, &mut item.patch]
            .into_iter()
            .flatten()
        {
            let Some(RefOr::T(body)) = op.request_body.as_mut() else {
                continue;
            };
            if body.required == Some(Required::True) {
                continue;
            }
            for content in body.content.values_mut() {
                let RefOr::T(content) = content else {
                    continue;
                };
                let Some(RefOr::T(Schema::OneOf(one))) = &content.schema else {
                    continue;
                };
                let not_null: Vec<_> = one
                    .items
                    .iter()
                    .filter(|s| {
                        !matches!(s, RefOr::T(Schema::Object(o))
                            if o.schema_type == SchemaType::Type(Type::Null))
                    })
                    .cloned()
                    .collect();
                if let [only] = not_null.as_slice() {
                    content.schema = Some(only.clone());
                }
            }
        }
    }
}

/// The document as it is written to `openapi.json`: pretty JSON and a final newline.
pub fn to_json(doc: &OpenApi) -> String {
    let mut text = serde_json::to_string_pretty(doc).unwrap_or_default();
    text.push('\n');
    text
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.",
        content_type = "application/json", body = Object), AuthErrors))]
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
    fn the_served_document_is_openapi_3_1_and_lists_the_management_routes() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        for (method, path) in crate::routes() {
            assert!(
                doc["paths"][&path][method.as_str().to_ascii_lowercase()].is_object(),
                "{method} {path} is served but not in openapi.json; run `make openapi`"
            );
        }
    }
}
