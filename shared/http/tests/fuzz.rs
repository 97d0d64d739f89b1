//! Property-based fuzzing of the HTTP plumbing every route shares: JSON bodies, bounded body
//! reading, query strings, `Authorization` headers and the error shape. No input may panic,
//! and every refusal is an `ApiError` whose body is the SPEC shape
//! `{"error": {"code": "<snake_case>", "message": "…"}}`.
//!
//! Every test is named `fuzz_…` (`make fuzz` selects them). Case counts default low enough
//! for `make test`; `PROPTEST_CASES` raises them, and failures are never persisted to files.

use skyhook_domain::fuzzing::{block_on, config, is_snake_case, json_value};
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::response::IntoResponse;
use http::{HeaderMap, HeaderValue, StatusCode};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use skyhook_domain::config::AdminKeySource;
use skyhook_domain::ids::{ApiKeyId, EventId, TenantId};
use skyhook_domain::memory::MemoryApiKeyStore;
use skyhook_domain::model::{ApiKey, Role};
use skyhook_domain::ports::{ApiKeyStore, StoreError};
use skyhook_domain::publish::PublishError;
use skyhook_http::{
    ApiError, ApiQuery, Authenticator, api_key_digest, parse_json, read_body, read_json,
    read_optional_json,
};

/// The error as a response: its status, and a body of exactly the SPEC shape carrying its
/// code and message.
fn check_shape(err: &ApiError) -> Result<(), TestCaseError> {
    prop_assert!(is_snake_case(err.code), "{:?}", err.code);
    let response = err.clone().into_response();
    prop_assert_eq!(response.status(), err.status);
    prop_assert_eq!(
        response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let bytes = block_on(axum::body::to_bytes(response.into_body(), usize::MAX)).unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    let obj = body.as_object().unwrap();
    prop_assert_eq!(obj.len(), 1);
    let inner = body["error"].as_object().unwrap();
    prop_assert_eq!(inner.len(), 2);
    prop_assert_eq!(inner["code"].as_str(), Some(err.code));
    prop_assert_eq!(inner["message"].as_str(), Some(err.message.as_str()));
    Ok(())
}

/// Request bodies: JSON of every shape, with the fields a route reads or not, and bytes
/// that are not JSON or not UTF-8.
fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    let fields = prop::collection::vec(
        (
            prop_oneof![
                Just("n".to_string()),
                Just("name".to_string()),
                Just("headers".to_string()),
                "\\PC{0,6}"
            ],
            json_value(3, 5),
        ),
        0..4,
    )
    .prop_map(|kv| {
        Value::Object(kv.into_iter().collect())
            .to_string()
            .into_bytes()
    });
    prop_oneof![
        4 => fields,
        2 => json_value(3, 5).prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => "[ \t\r\n]{0,4}".prop_map(String::into_bytes),
        1 => (1usize..300).prop_map(|n| format!("{}{}", "{\"n\":".repeat(n), "}".repeat(n)).into_bytes()),
        1 => "\\{\"n\": ?[0-9.eE+-]{1,30}\\}".prop_map(String::into_bytes),
    ]
}

/// A body type like the routes' own: typed fields, a map, unknown fields refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Shaped {
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

fn check_parse<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    parsed: &Result<T, ApiError>,
) -> Result<(), TestCaseError> {
    let valid_json = serde_json::from_slice::<Value>(bytes).ok();
    match parsed {
        Ok(_) => prop_assert!(
            matches!(valid_json, Some(Value::Object(_))),
            "accepted a body that is not a JSON object"
        ),
        Err(e) => {
            check_shape(e)?;
            let pair = (e.status, e.code);
            prop_assert!(
                pair == (StatusCode::BAD_REQUEST, "malformed_json")
                    || pair == (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
                "{pair:?}"
            );
            if bytes.iter().all(u8::is_ascii_whitespace) {
                prop_assert_eq!(e.code, "malformed_json");
            }
            if valid_json.is_some() {
                prop_assert_eq!(e.code, "invalid_body", "valid JSON is not malformed");
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    /// Any body: parsed, or `400 malformed_json` / `422 invalid_body` in the error shape;
    /// only JSON objects are accepted.
    #[test]
    fn fuzz_parse_json(bytes in body_bytes()) {
        check_parse(&bytes, &parse_json::<Shaped>(&bytes))?;
        check_parse(&bytes, &parse_json::<Value>(&bytes))?;
        check_parse(&bytes, &parse_json::<BTreeMap<String, Value>>(&bytes))?;
        let optional = block_on(read_optional_json::<BTreeMap<String, Value>>(Body::from(bytes.clone()), 1 << 20));
        if bytes.iter().all(u8::is_ascii_whitespace) {
            prop_assert!(optional.is_ok_and(|m| m.is_empty()));
        } else {
            check_parse(&bytes, &optional)?;
        }
    }

    /// A value sent in the wrong place may be a credential: the message that refuses it
    /// never quotes it, whatever quotes, escapes and commas it holds.
    #[test]
    fn fuzz_refusals_do_not_quote_values(
        before in "[\\PC\"\\\\]{0,8}",
        after in "[\\PC\"\\\\]{0,8}",
        glue in prop_oneof![Just(""), Just("\", "), Just("\\\", "), Just("\" "), Just(", ")],
        token in "[A-Z0-9]{12}",
        field in prop_oneof![Just("headers"), Just("n")],
    ) {
        let value = format!("{before}{glue}TOKEN{token}{after}");
        let body = serde_json::json!({ field: value }).to_string();
        let err = parse_json::<Shaped>(body.as_bytes()).unwrap_err();
        prop_assert_eq!(err.code, "invalid_body");
        prop_assert!(!err.message.contains(&token), "{:?} quoted in {:?}", value, err.message);
    }

    /// Bodies read in chunks, some failing, against a limit: the bytes, `413` once past the
    /// limit, or `400 unreadable_body` for a stream that breaks first.
    #[test]
    fn fuzz_read_body(
        chunks in prop::collection::vec(
            prop_oneof![
                8 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Ok),
                1 => "\\PC{0,10}".prop_map(Err),
            ],
            0..6,
        ),
        limit in 0usize..160,
    ) {
        let mut expected: Result<Vec<u8>, (StatusCode, &str)> = Ok(Vec::new());
        for c in &chunks {
            match (c, &mut expected) {
                (_, Err(_)) => break,
                (Err(_), _) => expected = Err((StatusCode::BAD_REQUEST, "unreadable_body")),
                (Ok(bytes), Ok(acc)) => {
                    acc.extend_from_slice(bytes);
                    if acc.len() > limit {
                        expected = Err((StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
                    }
                }
            }
        }
        let stream = futures::stream::iter(chunks.clone().into_iter().map(|c| {
            c.map(Bytes::from).map_err(std::io::Error::other)
        }));
        let got = block_on(read_body(Body::from_stream(stream), limit));
        match (&got, &expected) {
            (Ok(b), Ok(want)) => prop_assert_eq!(b.as_ref(), want.as_slice()),
            (Err(e), Err((status, code))) => {
                check_shape(e)?;
                prop_assert_eq!((e.status, e.code), (*status, *code));
            }
            _ => prop_assert!(false, "got {:?}, expected {:?}", got, expected),
        }
        let whole: Vec<u8> = chunks.iter().filter_map(|c| c.as_ref().ok()).flatten().copied().collect();
        if let Err(e) = block_on(read_json::<Value>(Body::from(whole.clone()), limit)) {
            check_shape(&e)?;
            if whole.len() <= limit {
                prop_assert_ne!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
            }
        }
    }
}

/// A query string: known and unknown names, repeated names, values percent-encoded or raw,
/// broken escapes, encodings of bytes that are not UTF-8.
fn query_string() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("limit".to_string()),
        Just("cursor".to_string()),
        Just("active".to_string()),
        "[a-z_]{1,8}",
        "[\\PC&=]{0,6}",
    ];
    let value = prop_oneof![
        "[0-9]{1,25}",
        Just("-1".to_string()),
        Just("true".to_string()),
        "[A-Za-z0-9_-]{0,40}",
        "(%[0-9A-Fa-f]{2}|%[g-z]{0,2}|%|\\+|[a-z]){0,12}",
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..20)
            .prop_map(|b| b.iter().map(|b| format!("%{b:02X}")).collect()),
    ];
    let pair = (name, prop::option::of(value), any::<bool>());
    prop::collection::vec(pair, 0..5).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v, encode)| {
                let enc = |s: &str| -> String {
                    if encode {
                        s.bytes()
                            .map(|b| {
                                if b.is_ascii_alphanumeric() || b == b'%' || b == b'+' {
                                    (b as char).to_string()
                                } else {
                                    format!("%{b:02X}")
                                }
                            })
                            .collect()
                    } else {
                        s.to_string()
                    }
                };
                match v {
                    Some(v) => format!("{}={}", enc(&k), enc(&v)),
                    None => enc(&k),
                }
            })
            .collect::<Vec<_>>()
            .join("&")
    })
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
    active: Option<String>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct TypedQuery {
    limit: Option<u32>,
    active: Option<bool>,
}

proptest! {
    #![proptest_config(config(256))]

    /// Any query string that makes a valid URI: parsed, or a `400` in the shape whose code
    /// names the parameter.
    #[test]
    fn fuzz_api_query(q in query_string()) {
        let Ok(uri) = format!("/v1/x?{q}").parse::<http::Uri>() else {
            // Not a URI a server would hand on; hyper refuses it before any route.
            return Ok(());
        };
        let (mut parts, ()) = http::Request::builder().uri(uri).body(()).unwrap().into_parts();
        for result in [
            block_on(ApiQuery::<PageQuery>::from_request_parts(&mut parts, &())).map(|_| ()),
            block_on(ApiQuery::<TypedQuery>::from_request_parts(&mut parts, &())).map(|_| ()),
            block_on(ApiQuery::<BTreeMap<String, String>>::from_request_parts(&mut parts, &())).map(|_| ()),
        ] {
            if let Err(e) = result {
                check_shape(&e)?;
                // The code names the parameter that failed, or the query as a whole.
                prop_assert_eq!(e.status, StatusCode::BAD_REQUEST);
                prop_assert!(
                    ["invalid_query", "invalid_limit", "invalid_active"].contains(&e.code),
                    "{}", e.code
                );
            }
        }
    }

    /// Every error a route can return renders as the SPEC shape; 5xx bodies never carry the
    /// backing service's detail.
    #[test]
    fn fuzz_error_shape(
        status in 400u16..600,
        code in "[a-z][a-z0-9]{0,8}(_[a-z0-9]{1,8}){0,3}",
        message in any::<String>(),
        detail in "[A-Za-z0-9]{12,20}",
        cursor_or_conflict in any::<bool>(),
    ) {
        let code: &'static str = Box::leak(code.into_boxed_str());
        let status = StatusCode::from_u16(status).unwrap();
        check_shape(&ApiError::new(status, code, message.clone()))?;
        for err in [
            StoreError::unavailable("DynamoDB", &detail),
            StoreError::Rejected { service: "SQS", detail: detail.clone() },
            StoreError::Corrupt(detail.clone()),
        ] {
            let e = ApiError::from(err);
            check_shape(&e)?;
            prop_assert!(e.status.is_server_error());
            prop_assert!(!e.message.contains(&detail));
        }
        let e = ApiError::from(if cursor_or_conflict { StoreError::BadCursor } else { StoreError::Conflict(message.clone()) });
        check_shape(&e)?;
        prop_assert!(e.status.is_client_error());
        for err in [
            PublishError::InvalidInput(message.clone()),
            PublishError::InProgress(EventId::new()),
            PublishError::TooLarge { size: 2, limit: 1 },
            PublishError::TooManyTargets { given: 101 },
            PublishError::Enqueue { failed: 1, total: 2, detail: detail.clone() },
            PublishError::Store(StoreError::unavailable("SQS", &detail)),
        ] {
            let e = ApiError::from(err);
            check_shape(&e)?;
            if e.status.is_server_error() {
                prop_assert!(!e.message.contains(&detail));
            }
        }
    }
}

const ADMIN_KEY: &str = "sk_fuzz_admin_0123456789";

/// Header values as they can arrive: visible ASCII, spaces and tabs, and obs-text bytes.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        8 => 0x20u8..0x7f,
        1 => Just(b'\t'),
        1 => 0x80u8..=0xff,
    ];
    prop_oneof![
        prop::collection::vec(byte, 0..60),
        (
            "(Bearer|bearer|BEARER|Basic|) {0,2}",
            "[ \t]{0,2}",
            any::<bool>(),
            "[ \t]{0,2}"
        )
            .prop_map(|(scheme, pre, admin, post)| {
                let key = if admin {
                    ADMIN_KEY
                } else {
                    "sk_fuzz_admin_012345678"
                };
                format!("{scheme}{pre}{key}{post}").into_bytes()
            }),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// Any `Authorization` value: the bootstrap key or an issued key exactly (after
    /// `Bearer `/`bearer ` and surrounding blanks), else `401` in the error shape.
    #[test]
    fn fuzz_authorization_header(value in header_bytes(), issued in any::<bool>()) {
        let Ok(header) = HeaderValue::from_bytes(&value) else {
            return Ok(());
        };
        let store = Arc::new(MemoryApiKeyStore::default());
        let issued_key = "sk_fuzz_issued_0123456789";
        if issued {
            let key = ApiKey {
                id: ApiKeyId::new(),
                tenant: TenantId::parse("acme").unwrap(),
                role: Role::Reader,
                description: None,
                created_at: chrono::Utc::now(),
                created_by: "bootstrap".into(),
            };
            block_on(store.create(&key, &api_key_digest(issued_key))).unwrap();
        }
        let auth = Authenticator::new(AdminKeySource::Value(ADMIN_KEY.into()), None)
            .with_key_store(store);
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, header.clone());
        let presented = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        match block_on(auth.authenticate(&headers)) {
            Ok(p) => {
                if p.is_bootstrap() {
                    prop_assert_eq!(presented, Some(ADMIN_KEY));
                } else {
                    prop_assert!(issued);
                    prop_assert_eq!(presented, Some(issued_key));
                }
            }
            Err(e) => {
                check_shape(&e)?;
                prop_assert_eq!(e.status, StatusCode::UNAUTHORIZED);
                prop_assert!(e.code == "unauthorized" || e.code == "invalid_api_key");
                prop_assert_ne!(presented, Some(ADMIN_KEY));
                prop_assert!(!e.message.contains(ADMIN_KEY));
            }
        }
    }
}
