//! Request parts read into typed values, with rejections in the API's error shape: query
//! strings, path segments and bounded JSON bodies.

use axum::body::Body;
use serde::de::DeserializeOwned;

use crate::ApiError;

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
