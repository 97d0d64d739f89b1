//! The OpenAPI document is what the code generates, and it matches what the routers serve:
//! the same (method, path) pairs, each answered by a real route (not the JSON 404/405
//! fallbacks).

use std::collections::BTreeSet;

use http::{Method, StatusCode};
use skyhook_tests::Stack;

#[test]
fn the_served_document_is_the_generated_one() {
    let generated =
        skyhook_api::openapi::to_json(&skyhook_api::openapi::generate(skyhook_ingest::openapi()));
    assert!(
        generated == skyhook_api::openapi::DOCUMENT,
        "functions/api/src/openapi.json is stale: run `make openapi`"
    );
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_the_routers_serve() {
    let doc: serde_json::Value = serde_json::from_str(skyhook_api::openapi::DOCUMENT).unwrap();
    let documented: BTreeSet<(String, String)> = skyhook_http::documented_routes(&doc)
        .into_iter()
        .map(|(m, p)| (m.to_string(), p))
        .collect();
    let served: BTreeSet<(String, String)> = skyhook_api::routes()
        .into_iter()
        .chain(skyhook_ingest::routes())
        .map(|(m, p)| (m.to_string(), p))
        .collect();
    assert_eq!(documented, served);

    // And the route list is what the routers really answer on.
    let stack = Stack::new().await;
    for (method, path) in &served {
        let concrete = path
            .replace("{id}", "sub_0000000000000000000000000A")
            .replace("{source_id}", "src_0000000000000000000000000A");
        let router = if skyhook_ingest::routes()
            .iter()
            .any(|(m, p)| m.as_str() == method && p == path)
        {
            &stack.ingest
        } else {
            &stack.api
        };
        let (status, body) = Stack::send(
            router,
            Method::from_bytes(method.as_bytes()).unwrap(),
            &concrete,
            None,
            &[],
        )
        .await;
        // A handler's own 404 (the source does not exist) names what was not found.
        let unrouted = status == StatusCode::METHOD_NOT_ALLOWED
            || (status == StatusCode::NOT_FOUND && body["error"]["message"] == "route not found");
        assert!(
            !unrouted,
            "{method} {path} is documented but not routed ({status} {body})"
        );
    }
    let (status, body) = stack.api_call(Method::GET, "/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["openapi"], "3.1.0");
    assert!(body["paths"]["/v1/subscribers/{id}"]["patch"].is_object());
}
