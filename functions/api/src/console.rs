//! The operator console at `/console`: plain ES modules, CSS and one HTML page, embedded in
//! the binary (no build step, nothing to deploy beside the function). The page signs in with
//! an API key and calls the API from the same origin; it needs no key to be served.
//!
//! Every answer carries a strict Content-Security-Policy: scripts and styles only from this
//! origin (there are no inline ones), requests only to this origin, no frames, no plugins.

use axum::Router;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// The policy sent with every console answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The console's files: path below `/console/`, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../console/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../console/style.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/api.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/ui.js"),
    ),
    (
        "pager.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/pager.js"),
    ),
    (
        "chart.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/chart.js"),
    ),
    (
        "pages/signin.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/pages/signin.js"),
    ),
    (
        "pages/subscribers.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/pages/subscribers.js"),
    ),
    (
        "pages/events.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/pages/events.js"),
    ),
    (
        "pages/deliveries.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/pages/deliveries.js"),
    ),
    (
        "pages/admin.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/pages/admin.js"),
    ),
];

/// The console's routes, served without an API key.
pub fn router() -> Router {
    Router::new()
        .route(
            "/console",
            get(|headers: HeaderMap| async move { serve("index.html", &headers) }),
        )
        .route(
            "/console/",
            get(|| async { Redirect::permanent("/console") }),
        )
        .route("/console/{*path}", get(serve_path))
}

/// A file below `/console/`. A path that does not decode to UTF-8 names no file: the same
/// 404 as an unknown one.
async fn serve_path(path: Result<Path<String>, PathRejection>, headers: HeaderMap) -> Response {
    serve(path.as_ref().map_or("", |p| p.0.as_str()), &headers)
}

/// The paths below `/console/` that hold a file (the page itself is `/console`).
pub fn files() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|(path, _, _)| *path)
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(p, _, _)| *p == path) else {
        return skyhook_http::ApiError::not_found("console file").into_response();
    };
    // The content's hash: a browser revalidates each time and gets 304 while it is current.
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(bytes)[..12]));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, *bytes).into_response()
    };
    let h = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, *content_type),
        (header::CACHE_CONTROL, "no-cache"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module a console file imports is one of the embedded files, so a new page cannot
    /// be forgotten in [`ASSETS`]; and nothing in them is inline script or style.
    #[test]
    fn every_import_is_embedded_and_nothing_is_inline() {
        let known: Vec<&str> = files().collect();
        for (path, _, bytes) in ASSETS {
            let text = std::str::from_utf8(bytes).expect("UTF-8");
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let spec = line
                    .rsplit_once("from '")
                    .and_then(|(_, rest)| rest.split_once('\''))
                    .map(|(spec, _)| spec)
                    .expect("an import with a quoted path");
                let mut parts: Vec<&str> = if dir.is_empty() {
                    Vec::new()
                } else {
                    dir.split('/').collect()
                };
                for segment in spec.split('/') {
                    match segment {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                let target = parts.join("/");
                assert!(
                    known.contains(&target.as_str()),
                    "{path} imports {spec}, which is not embedded"
                );
            }
            if path.ends_with(".html") {
                assert!(
                    !text.contains("style=") && !text.contains("onclick"),
                    "{path}"
                );
                for tag in text.split("<script").skip(1) {
                    assert!(
                        tag.split('>')
                            .next()
                            .is_some_and(|attrs| attrs.contains("src=")),
                        "inline script in {path}"
                    );
                }
            }
            if path.ends_with(".js") {
                assert!(
                    !text.contains("innerHTML") && !text.contains("eval("),
                    "{path} builds markup from strings"
                );
            }
        }
    }

    #[tokio::test]
    async fn files_are_served_with_the_policy_and_revalidate() {
        use tower::ServiceExt;
        let app = router();
        let get = |path: &str, etag: Option<&str>| {
            let mut req = axum::http::Request::get(path);
            if let Some(e) = etag {
                req = req.header(header::IF_NONE_MATCH, e);
            }
            app.clone()
                .oneshot(req.body(axum::body::Body::empty()).expect("request"))
        };
        let page = get("/console", None).await.expect("answer");
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(
            page.headers()[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(
            page.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let etag = page.headers()[header::ETAG]
            .to_str()
            .expect("ASCII")
            .to_string();
        let again = get("/console", Some(&etag)).await.expect("answer");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        for file in files() {
            let res = get(&format!("/console/{file}"), None)
                .await
                .expect("answer");
            assert_eq!(res.status(), StatusCode::OK, "{file}");
        }
        let js = get("/console/app.js", None).await.expect("answer");
        assert_eq!(
            js.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(js.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let missing = get("/console/nope.js", None).await.expect("answer");
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let traversal = get("/console/../Cargo.toml", None).await.expect("answer");
        assert_ne!(traversal.status(), StatusCode::OK);
        // A path that does not decode to UTF-8 is a missing file, in the API's error shape.
        let undecodable = get("/console/%A0.js", None).await.expect("answer");
        assert_eq!(undecodable.status(), StatusCode::NOT_FOUND);
        let body = axum::body::to_bytes(undecodable.into_body(), 4096)
            .await
            .expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body["error"]["code"], "not_found");
    }
}
